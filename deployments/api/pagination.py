"""List pagination with documented bounds: a bad limit or offset is a 400, never a 500."""

from __future__ import annotations

import re
from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 1_000_000_000
# `count` is exact up to this many rows past the page; beyond, counting stops there
# (`count_exact: false`) so that a list never makes the database count a huge table.
COUNT_LIMIT = 10_000

_DIGITS = re.compile(r"[0-9]{1,12}")


def _bounded(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # Only plain ASCII digits: int() would also take "1_000", " 5" and other scripts' digits.
    value = int(raw) if _DIGITS.fullmatch(raw) else None
    if value is None or not low <= value <= high:
        raise ValidationError({name: [f"{name} must be an integer from {low} to {high}"]})
    return value


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """?limit= (1..200, default 50) and ?offset= (0..1,000,000,000); a bounded count."""

    default_limit = DEFAULT_LIMIT
    max_limit = MAX_LIMIT

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        self.request = request
        self.limit = self.get_limit(request)
        self.offset = self.get_offset(request)
        self.count_bound = max(COUNT_LIMIT, self.offset + self.limit)
        # COUNT(*) over a LIMITed subquery: the database stops after bound + 1 rows.
        self.count = queryset.order_by()[: self.count_bound + 1].count()
        if self.count == 0 or self.offset > self.count:
            return []
        return list(queryset[self.offset : self.offset + self.limit])

    def get_paginated_response(self, data: Any) -> Response:
        counted = self.count or 0
        return Response(
            {
                "count": min(counted, self.count_bound),
                "count_exact": counted <= self.count_bound,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: Any) -> dict[str, Any]:
        result = super().get_paginated_response_schema(schema)
        result["properties"]["count"]["description"] = (
            f"Matching objects, exact up to {COUNT_LIMIT:,} (or offset + limit when larger); "
            "beyond that counting stops: count_exact is false and count is a lower bound."
        )
        result["properties"]["count_exact"] = {"type": "boolean"}
        result["required"] = ["count", "count_exact", "results"]
        return result

    def get_limit(self, request: Request) -> int:
        return _bounded(request, self.limit_query_param, DEFAULT_LIMIT, 1, MAX_LIMIT)

    def get_offset(self, request: Request) -> int:
        return _bounded(request, self.offset_query_param, 0, 0, MAX_OFFSET)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.limit_query_param,
                "required": False,
                "in": "query",
                "description": f"Number of results per page (default {DEFAULT_LIMIT}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            },
            {
                "name": self.offset_query_param,
                "required": False,
                "in": "query",
                "description": "Index of the first result to return.",
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
            },
        ]
