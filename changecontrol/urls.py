"""URL configuration: pages, the v1 API, sign-in and health."""

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from deployments.pages.api_docs import api_docs
from deployments.pages.health import healthz

# The admin signs in through allauth like everyone else, so its rate limits, MFA and
# sign-in audit hold there too (the admin's own password form is never served).
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("deployments.api.urls")),
    path("api/docs/", api_docs, name="api_docs"),
    path("", include("deployments.pages.urls")),
]

# Under /api/ these answer JSON; elsewhere Django's own pages.
handler400 = "deployments.api.support.exceptions.handler400"
handler403 = "deployments.api.support.exceptions.handler403"
handler404 = "deployments.api.support.exceptions.handler404"
handler500 = "deployments.api.support.exceptions.handler500"
