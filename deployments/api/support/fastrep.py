"""A serializer's output for many rows, without DRF's per-field machinery.

DRF resolves every field of every row through the same generic path (attribute lookup,
time-zone lookup, type dispatch): at 50 tickets a page that was most of the list's time.
``compile_rows`` looks at a serializer's fields once and builds one small function per
field; fields it does not recognise go through DRF itself, so the output is the same
dictionary DRF would give, in the same order (tests/selectors/test_query_budgets.py compares them on
seeded history). Output only: input validation stays with the serializers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from rest_framework import ISO_8601
from rest_framework import fields as f
from rest_framework import relations as r
from rest_framework import serializers as s
from rest_framework.settings import api_settings

Getter = Callable[[Any], Any]


def _walk(attrs: list[str]) -> Getter:
    """The attribute a field's ``source`` names (``a.b.c``), None when a link is missing."""

    def get(instance: Any) -> Any:
        value = instance
        for attr in attrs:
            try:
                value = getattr(value, attr)
            except ObjectDoesNotExist:
                return None
            if value is None:
                return None
        return value

    if len(attrs) == 1:
        name = attrs[0]
        return lambda instance: getattr(instance, name)
    return get


def _datetime(field: f.DateTimeField) -> Callable[[Any], Any] | None:
    output = getattr(field, "format", api_settings.DATETIME_FORMAT)
    if output is None or str(output).lower() != ISO_8601:
        return None
    zone = field.timezone if hasattr(field, "timezone") else field.default_timezone()

    def rep(value: Any) -> Any:
        if isinstance(value, str):
            return value
        if zone is not None and value.tzinfo is not None:
            value = value.astimezone(zone)
        elif zone is None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        else:
            return field.to_representation(value)
        text: str = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return rep


def _field(name: str, field: f.Field) -> Getter:
    """A function from a row to this field's output."""
    if isinstance(field, f.SerializerMethodField):
        method = getattr(field.parent, field.method_name)
        return lambda instance: method(instance)
    if field.source == "*" or isinstance(field, f.HiddenField):
        return _generic(field)
    get = _walk(list(field.source_attrs))
    if isinstance(field, s.BaseSerializer) and not isinstance(field, s.ListSerializer):
        nested = compile_row(field)
        return lambda instance: None if (v := get(instance)) is None else nested(v)
    if isinstance(field, r.PrimaryKeyRelatedField) and field.use_pk_only_optimization():
        model_field = field.source_attrs[-1]
        parent = _walk(list(field.source_attrs[:-1])) if len(field.source_attrs) > 1 else None

        def pk(instance: Any) -> Any:
            owner = parent(instance) if parent else instance
            return None if owner is None else owner.serializable_value(model_field)

        return pk
    if isinstance(field, r.SlugRelatedField):
        slug = field.slug_field
        return lambda instance: None if (v := get(instance)) is None else getattr(v, slug)
    if isinstance(field, f.ChoiceField) and not isinstance(field, f.MultipleChoiceField):
        choices = field.choice_strings_to_values
        return lambda instance: v if (v := get(instance)) in ("", None) else choices.get(str(v), v)
    if isinstance(field, f.DateTimeField):
        rep = _datetime(field)
        if rep is not None:
            return lambda instance: None if (v := get(instance)) is None else rep(v)
    if type(field) in (f.CharField, f.URLField, f.EmailField, f.SlugField, f.RegexField):
        return lambda instance: None if (v := get(instance)) is None else str(v)
    if type(field) is f.IntegerField:
        return lambda instance: None if (v := get(instance)) is None else int(v)
    if type(field) is f.BooleanField:
        return lambda instance: None if (v := get(instance)) is None else bool(v)
    return _generic(field)


def _generic(field: f.Field) -> Getter:
    """DRF's own path, as Serializer.to_representation takes it."""

    def rep(instance: Any) -> Any:
        attribute = field.get_attribute(instance)
        check = attribute.pk if isinstance(attribute, r.PKOnlyObject) else attribute
        return None if check is None else field.to_representation(attribute)

    return rep


def compile_row(serializer: Any) -> Callable[[Any], dict[str, Any]]:
    """A function from one instance to what ``serializer.to_representation`` returns."""
    parts = [
        (name, _field(name, field))
        for name, field in serializer.fields.items()
        if not field.write_only
    ]

    def row(instance: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, get in parts:
            try:
                out[name] = get(instance)
            except f.SkipField:
                continue
        return out

    return row


def compile_rows(serializer: Any) -> Callable[[list[Any]], list[Any]]:
    row = compile_row(serializer)
    return lambda instances: [row(instance) for instance in instances]
