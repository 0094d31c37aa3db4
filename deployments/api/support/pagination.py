"""List pagination with documented bounds: a bad limit or offset is a 400, never a 500.

Lists ordered newest first (``-created_at, -id``, e.g. tickets) also take ``?cursor=``, the
``next_cursor`` of the previous page: the page after a given row, found through the index
however deep (``?offset=90000`` makes the database step over 90,000 rows first). Every
page names its ``next_cursor``; cursor pages link forward only (``previous`` is null).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Any

from django.db.models import Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from deployments.selectors import rows_at

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 1_000_000_000
# `count` is exact up to this many rows past the page; beyond, counting stops there
# (`count_exact: false`) so that a list never makes the database count a huge table.
COUNT_LIMIT = 10_000

_DIGITS = re.compile(r"[0-9]{1,12}")
# The order a cursor continues: newest first, ties by id.
CURSOR_ORDERING = ("-created_at", "-id")


def encode_cursor(created_at: dt.datetime, pk: int) -> str:
    raw = f"{created_at.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[dt.datetime, int]:
    """The row a cursor names; ValidationError for anything that is not one of ours."""
    try:
        if len(token) > 200:
            raise ValueError
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        when, _, pk = raw.partition("|")
        moment = dt.datetime.fromisoformat(when)
        if moment.tzinfo is None or not _DIGITS.fullmatch(pk):
            raise ValueError
        return moment, int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(
            {"cursor": ["cursor must be a next_cursor from a previous page"]}
        ) from None


def _ordering(queryset: Any) -> tuple[str, ...]:
    return tuple(queryset.query.order_by or queryset.model._meta.ordering or ())


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
        self.cursor: tuple[dt.datetime, int] | None = None
        self.next_cursor: str | None = None
        self.keyset = isinstance(queryset, QuerySet) and _ordering(queryset) == CURSOR_ORDERING
        token = request.query_params.get("cursor")
        if token is not None:
            if not self.keyset:
                raise ValidationError({"cursor": ["this list does not page by cursor"]})
            if self.offset:
                raise ValidationError({"cursor": ["cursor and offset cannot be combined"]})
            self.cursor = decode_cursor(token)
        self.count_bound = max(COUNT_LIMIT, self.offset + self.limit)
        if self.cursor is not None:
            moment, pk = self.cursor
            page = list(
                queryset.filter(Q(created_at__lt=moment) | Q(created_at=moment, id__lt=pk))[
                    : self.limit + 1
                ]
            )
        else:
            page = rows_at(queryset, self.offset, self.limit + 1)
        more, page = len(page) > self.limit, page[: self.limit]
        if self.offset > COUNT_LIMIT and (page or not self.offset):
            # Past the counted range the page itself says how far the list goes: counting
            # up to the offset would step over every row before it a second time.
            self.count = self.offset + len(page) + (1 if more else 0)
            self.count_bound = self.offset + len(page)
        else:
            # COUNT(*) over a LIMITed subquery: the database stops after bound + 1 rows.
            self.count = queryset.order_by()[: self.count_bound + 1].count()
        if self.count == 0 or self.offset > self.count:
            return []
        if self.keyset and more and page:
            self.next_cursor = encode_cursor(page[-1].created_at, page[-1].pk)
        return page

    def get_next_link(self) -> str | None:
        if self.cursor is None:
            return super().get_next_link()
        if self.next_cursor is None or self.request is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, "cursor", self.next_cursor)

    def get_previous_link(self) -> str | None:
        return None if self.cursor is not None else super().get_previous_link()

    def get_paginated_response(self, data: Any) -> Response:
        counted = self.count or 0
        return Response(
            {
                "count": min(counted, self.count_bound),
                "count_exact": counted <= self.count_bound,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "next_cursor": self.next_cursor,
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
        result["properties"]["next_cursor"] = {
            "type": "string",
            "nullable": True,
            "description": "Pass as ?cursor= for the next page (lists ordered newest first); "
            "null on the last page and on lists that do not page by cursor.",
        }
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
            {
                "name": "cursor",
                "required": False,
                "in": "query",
                "description": "The next_cursor of the previous page: the page after it, as "
                "fast however deep (lists ordered newest first; not with offset).",
                "schema": {"type": "string", "maxLength": 200},
            },
        ]
