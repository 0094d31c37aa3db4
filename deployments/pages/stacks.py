"""The stacks page (docs/stacks.md): the dependency graph in deployment order, with each
stack's last deployment in each environment the viewer may see."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from deployments import selectors
from deployments.selectors.stacks import stack_layers


@login_required
@require_GET
def stack_graph(request: HttpRequest) -> HttpResponse:
    stacks = selectors.stacks_list(request.user)
    rows = {row.stack.pk: row for row in selectors.stack_rows(request.user, stacks)}
    layers = [[rows[s.pk] for s in layer] for layer in stack_layers(stacks)]
    environments = selectors.environments_visible_to(request.user)
    return render(
        request,
        "deployments/stacks/graph.html",
        {"layers": layers, "environments": environments},
    )
