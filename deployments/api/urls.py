"""The v1 API's routes, one module of deployments.api per noun."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from deployments.api import (
    audit,
    environments,
    history,
    metrics,
    notifications,
    plans,
    policies,
    queue,
    runs,
    stacks,
    tickets,
    webhooks,
)

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("environments", environments.EnvironmentViewSet, basename="environment")
router.register("tickets", tickets.TicketViewSet, basename="ticket")
router.register("runs", runs.RunViewSet, basename="run")
router.register("notifications", notifications.NotificationViewSet, basename="notification")
router.register("plans", plans.SpeculativePlanViewSet, basename="speculative-plan")
router.register("stacks", stacks.StackViewSet, basename="stack")

app_name = "api"
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("me/queue/", queue.MeQueueView.as_view(), name="me-queue"),
    path("deployments/", history.DeploymentHistoryView.as_view(), name="deployment-list"),
    path("audit/", audit.AuditEventList.as_view(), name="audit"),
    path("webhooks/github/", webhooks.GitHubWebhookView.as_view(), name="webhook-github"),
    path("metrics/", metrics.MetricsView.as_view(), name="metrics"),
    path("policies/evaluate/", policies.PolicyEvaluateView.as_view(), name="policy-evaluate"),
    path("", include(router.urls)),
]
