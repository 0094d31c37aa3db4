"""The Celery application: workers run every Terraform command."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "changecontrol.settings")

app = Celery("changecontrol")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
