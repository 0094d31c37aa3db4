"""Notifications: one ``notify()`` entry point, a channel registry, delivery from Celery.

This app never imports the domain services: callers (deployments.services) hand it a
subject, a body, recipients (users and/or role names) and an event name; it records one
``Notification`` row per recipient and channel inside the caller's transaction, and sends
them from a Celery task after commit, retrying with backoff. A failure is logged and
recorded on the row (visible in the admin), and never blocks the change that caused it.
"""
