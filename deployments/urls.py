from django.urls import path

from . import (
    evidence_views,
    views,
    views_audit,
    views_calendar,
    views_followups,
    views_home,
    views_metrics,
    views_monitoring,
    views_notifications,
    views_rollback,
    views_tokens,
)

urlpatterns = [
    path("", views_home.home, name="home"),
    path("tickets/", views.ticket_list, name="ticket_list"),
    path(
        "environments/<slug:name>/history/",
        views_home.deployment_history,
        name="deployment_history",
    ),
    path("tickets/new/", views.ticket_new, name="ticket_new"),
    path("tickets/<int:pk>/", views.ticket_detail, name="ticket_detail"),
    path("tickets/<int:pk>/plan/", views.ticket_plan, name="ticket_plan"),
    path("tickets/<int:pk>/cancel/", views.ticket_cancel, name="ticket_cancel"),
    path("tickets/<int:pk>/approve/", views.ticket_approve, name="ticket_approve"),
    path("tickets/<int:pk>/reject/", views.ticket_reject, name="ticket_reject"),
    path("tickets/<int:pk>/deploy/", views.ticket_deploy, name="ticket_deploy"),
    path("tickets/<int:pk>/rollback/", views_rollback.ticket_rollback, name="ticket_rollback"),
    path("tickets/<int:pk>/schedule/", views_calendar.ticket_schedule, name="ticket_schedule"),
    path(
        "tickets/<int:pk>/unschedule/", views_calendar.ticket_unschedule, name="ticket_unschedule"
    ),
    path("calendar/", views_calendar.calendar_view, name="calendar"),
    path("calendar/feed-token/", views_calendar.calendar_token_rotate, name="calendar_token"),
    path("calendar/<slug:env>.ics", views_calendar.calendar_feed, name="calendar_feed"),
    path("tickets/<int:pk>/evidence/", evidence_views.evidence_upload, name="evidence_upload"),
    path(
        "tickets/<int:pk>/evidence/<int:eid>/withdraw/",
        evidence_views.evidence_withdraw,
        name="evidence_withdraw",
    ),
    path(
        "tickets/<int:pk>/evidence/<int:eid>/signoff/",
        evidence_views.evidence_signoff,
        name="evidence_signoff",
    ),
    path(
        "tickets/<int:pk>/checklist/<slug:key>/sign/",
        views_monitoring.checklist_sign,
        name="checklist_sign",
    ),
    path(
        "tickets/<int:pk>/monitoring/acknowledge/",
        views_monitoring.alarm_acknowledge,
        name="alarm_acknowledge",
    ),
    path("tickets/<int:pk>/complete/", views_monitoring.ticket_complete, name="ticket_complete"),
    path("runs/<int:pk>/log/", views.run_log, name="run_log"),
    path("environments/", views.environment_list, name="environment_list"),
    path(
        "environments/<slug:name>/freezes/",
        views_calendar.freeze_declare,
        name="freeze_declare",
    ),
    path(
        "environments/<slug:name>/freezes/<int:fid>/lift/",
        views_calendar.freeze_lift,
        name="freeze_lift",
    ),
    path("metrics/", views_metrics.metrics_dashboard, name="metrics"),
    path("audit/", views_audit.audit_list, name="audit_list"),
    path(
        "tickets/<int:pk>/follow-ups/<int:fid>/complete/",
        views_followups.follow_up_complete,
        name="follow_up_complete",
    ),
    path("notifications/", views_notifications.notification_log, name="notification_log"),
    path(
        "notifications/<int:pk>/retry/",
        views_notifications.notification_retry,
        name="notification_retry",
    ),
    path("settings/", views_followups.preferences, name="preferences"),
    path("settings/timezone/", views_followups.timezone_guess, name="timezone_guess"),
    path("settings/tokens/", views_tokens.token_list, name="token_list"),
    path("settings/tokens/new/", views_tokens.token_new, name="token_new"),
    path("settings/tokens/<int:pk>/revoke/", views_tokens.token_revoke, name="token_revoke"),
]
