"""Filter inputs and ordering: GraphQL arguments compiled to ORM lookups.

Each scalar kind has one lookup input (``StringFilter``, ``IntFilter``...),
and each model type a ``<Type>Filter`` input holding one per filterable
field; every condition given is ANDed into one ``QuerySet.filter()`` call,
so a filter is a ``WHERE`` clause with bound parameters, never Python-side
filtering. ``<Type>Order`` enums list ``FIELD_ASC``/``FIELD_DESC`` for the
non-null fields; the primary key is always appended as the tie-breaker, so
orderings (and the keyset cursors built on them) are total.
"""

from __future__ import annotations

import datetime
import decimal
import enum
from typing import TYPE_CHECKING, Any

import strawberry

from covet.db.fields import DateField, DateTimeField, EnumField, Field, ForeignKey, TimeField

if TYPE_CHECKING:
    from covet.db.queryset import QuerySet
    from covet.graphql.models import ModelTypeInfo

__all__ = (
    "BooleanFilter",
    "DateTimeFilter",
    "FloatFilter",
    "IDFilter",
    "IntFilter",
    "StringFilter",
    "apply_filter",
    "enum_filter",
    "ordering",
    "to_python",
)

# --- lookup inputs -------------------------------------------------------------------------
# One input per scalar kind; each entry maps to an ORM lookup of the same meaning.


@strawberry.input(description="Conditions on a text field (all given must hold).")
class StringFilter:
    """Conditions on a text field."""

    eq: str | None = None
    in_: list[str] | None = strawberry.field(default=None, name="in")
    contains: str | None = None
    i_contains: str | None = None
    starts_with: str | None = None
    is_null: bool | None = None


@strawberry.input(description="Conditions on an integer field (all given must hold).")
class IntFilter:
    """Conditions on an integer field."""

    eq: int | None = None
    in_: list[int] | None = strawberry.field(default=None, name="in")
    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None
    is_null: bool | None = None


@strawberry.input(description="Conditions on a floating-point or decimal field.")
class FloatFilter:
    """Conditions on a floating-point or decimal field."""

    eq: float | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    is_null: bool | None = None


@strawberry.input(description="Conditions on a boolean field.")
class BooleanFilter:
    """Conditions on a boolean field."""

    eq: bool | None = None
    is_null: bool | None = None


@strawberry.input(description="Conditions on a date, time or date-time field.")
class DateTimeFilter:
    """Conditions on a date, time or date-time field (ISO 8601 strings)."""

    eq: str | None = None
    gt: str | None = None
    gte: str | None = None
    lt: str | None = None
    lte: str | None = None
    is_null: bool | None = None


@strawberry.input(description="Conditions on a key (a primary key or a foreign key).")
class IDFilter:
    """Conditions on a primary key or foreign key."""

    eq: strawberry.ID | None = None
    in_: list[strawberry.ID] | None = strawberry.field(default=None, name="in")
    is_null: bool | None = None


_LOOKUPS = {
    "eq": "exact",
    "in_": "in",
    "contains": "contains",
    "i_contains": "icontains",
    "starts_with": "startswith",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
    "is_null": "isnull",
}


def apply_filter(queryset: QuerySet[Any], type_info: ModelTypeInfo, given: Any) -> QuerySet[Any]:
    """Return ``queryset`` narrowed by a ``<Type>Filter`` input value (every condition ANDed)."""
    if given is None:
        return queryset
    conditions: dict[str, Any] = {}
    for name, (column, field) in type_info.filterable.items():
        lookups = getattr(given, name, None)
        if lookups is None:
            continue
        for attribute, lookup in _LOOKUPS.items():
            value = getattr(lookups, attribute, None)
            if value is None:
                continue
            if lookup == "in":
                value = [to_python(field, item, name) for item in value]
            elif lookup != "isnull":
                value = to_python(field, value, name)
            conditions[f"{column}__{lookup}"] = value
    return queryset.filter(**conditions)


_ENUM_FILTERS: dict[type[enum.Enum], type] = {}


def enum_filter(enum_cls: type[enum.Enum]) -> type:
    """Return the ``<Enum>Filter`` input (``eq``, ``in``) of a GraphQL enum, made once per enum."""
    cached = _ENUM_FILTERS.get(enum_cls)
    if cached is None:
        annotations = {"eq": enum_cls | None, "in_": list[enum_cls] | None}  # type: ignore[valid-type]
        namespace: dict[str, Any] = {
            "__annotations__": annotations,
            "eq": None,
            "in_": strawberry.field(default=None, name="in"),
        }
        graphql_name = getattr(enum_cls, "__strawberry_definition__", None)
        name = getattr(graphql_name, "name", None) or enum_cls.__name__
        cached = strawberry.input(
            type(f"{name}Filter", (), namespace), description=f"Conditions on a {name} field."
        )
        _ENUM_FILTERS[enum_cls] = cached
    return cached


def to_python(field: Field[Any], value: Any, name: str) -> Any:
    """Convert an argument value to the field's Python type, or fail with a field error."""
    target = field.target_field if isinstance(field, ForeignKey) else field
    if isinstance(value, enum.Enum) and not isinstance(target, EnumField):
        value = value.value  # a choices enum stands for the stored value
    try:
        if isinstance(target, DateTimeField | DateField | TimeField) and isinstance(value, str):
            parsed = _parse_temporal(target, value)
            return target.to_python(parsed)
        return target.to_python(value)
    except (ValueError, TypeError, decimal.InvalidOperation) as exc:
        raise ValueError(f"Invalid value {value!r} for filter {name!r}: {exc}") from None


def _parse_temporal(field: Field[Any], value: str) -> Any:
    if isinstance(field, DateTimeField):
        return datetime.datetime.fromisoformat(value)
    if isinstance(field, DateField):
        return datetime.date.fromisoformat(value)
    return datetime.time.fromisoformat(value)


def ordering(type_info: ModelTypeInfo, order_by: Any) -> list[str]:
    """Return ORM ordering keys: the requested ones, then the primary key as tie-breaker."""
    keys = [member.value for member in order_by or ()]
    if not keys:
        keys = list(type_info.model._meta.ordering)
    pk = type_info.model._meta.pk.name
    if not any(key.lstrip("-") in (pk, "pk") for key in keys):
        keys.append(pk)
    return keys
