"""The Celery application: workers run every Terraform command."""

import os

from celery import Celery

from changecontrol.broker import install as install_broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "changecontrol.settings")
# The embedded broker writes messages atomically (changecontrol/broker.py).
install_broker()

app = Celery("changecontrol")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
