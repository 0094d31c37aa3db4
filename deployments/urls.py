from django.urls import path

from . import evidence_views, views

urlpatterns = [
    path("", views.ticket_list, name="ticket_list"),
    path("tickets/new/", views.ticket_new, name="ticket_new"),
    path("tickets/<int:pk>/", views.ticket_detail, name="ticket_detail"),
    path("tickets/<int:pk>/plan/", views.ticket_plan, name="ticket_plan"),
    path("tickets/<int:pk>/cancel/", views.ticket_cancel, name="ticket_cancel"),
    path("tickets/<int:pk>/approve/", views.ticket_approve, name="ticket_approve"),
    path("tickets/<int:pk>/reject/", views.ticket_reject, name="ticket_reject"),
    path("tickets/<int:pk>/deploy/", views.ticket_deploy, name="ticket_deploy"),
    path("tickets/<int:pk>/evidence/", evidence_views.evidence_upload, name="evidence_upload"),
    path(
        "tickets/<int:pk>/evidence/<int:eid>/signoff/",
        evidence_views.evidence_signoff,
        name="evidence_signoff",
    ),
    path("runs/<int:pk>/log/", views.run_log, name="run_log"),
    path("environments/", views.environment_list, name="environment_list"),
]
