from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from . import queue, views
from .audit import AuditEventList
from .metrics import MetricsView
from .notifications import NotificationViewSet
from .plans import SpeculativePlanViewSet
from .webhooks import GitHubWebhookView

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("environments", views.EnvironmentViewSet, basename="environment")
router.register("tickets", views.TicketViewSet, basename="ticket")
router.register("runs", views.RunViewSet, basename="run")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("plans", SpeculativePlanViewSet, basename="speculative-plan")

app_name = "api"
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("me/queue/", queue.MeQueueView.as_view(), name="me-queue"),
    path("deployments/", queue.DeploymentHistoryView.as_view(), name="deployment-list"),
    path("audit/", AuditEventList.as_view(), name="audit"),
    path("webhooks/github/", GitHubWebhookView.as_view(), name="webhook-github"),
    path("metrics/", MetricsView.as_view(), name="metrics"),
    path("", include(router.urls)),
]
