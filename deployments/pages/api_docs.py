"""The browsable API documentation: Swagger UI from drf-spectacular-sidecar's static files.

Served under the portal's Content-Security-Policy unchanged (script-src/style-src 'self'):
drf-spectacular's own Swagger template has an inline <style> and, unless split, an inline
<script>; this page loads Swagger UI's bundle and our static/api_docs.js instead. Redoc
was not chosen: it injects <style> elements at run time (styled-components), which the
policy blocks.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET


@require_GET
@ensure_csrf_cookie
def api_docs(request: HttpRequest) -> HttpResponse:
    """The API reference; "Try it out" calls the API with the session (CSRF) or a token."""
    return render(
        request, "deployments/api_docs.html", {"schema_url": reverse("api:schema") + "?format=json"}
    )
