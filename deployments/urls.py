from django.urls import path

from . import views, views_tokens

urlpatterns = [
    path("", views.ticket_list, name="ticket_list"),
    path("tickets/new/", views.ticket_new, name="ticket_new"),
    path("tickets/<int:pk>/", views.ticket_detail, name="ticket_detail"),
    path("tickets/<int:pk>/plan/", views.ticket_plan, name="ticket_plan"),
    path("tickets/<int:pk>/cancel/", views.ticket_cancel, name="ticket_cancel"),
    path("tickets/<int:pk>/approve/", views.ticket_approve, name="ticket_approve"),
    path("tickets/<int:pk>/reject/", views.ticket_reject, name="ticket_reject"),
    path("tickets/<int:pk>/deploy/", views.ticket_deploy, name="ticket_deploy"),
    path("runs/<int:pk>/log/", views.run_log, name="run_log"),
    path("environments/", views.environment_list, name="environment_list"),
    path("settings/tokens/", views_tokens.token_list, name="token_list"),
    path("settings/tokens/new/", views_tokens.token_new, name="token_new"),
    path("settings/tokens/<int:pk>/revoke/", views_tokens.token_revoke, name="token_revoke"),
]
