"""Root fields: Relay connections, plain lists and single objects of a model type.

A connection page is one ORM query: the filter, the ordering (with the
primary key as tie-breaker), a keyset condition for ``after``/``before`` and
a ``LIMIT`` of one more row than asked (that row tells whether there is a
next page). Cursors hold the row's ordering values, so a page stays right
while rows are inserted before it and costs the same wherever it is.
``totalCount`` is a ``COUNT(*)``, run only when asked for. Only non-null
fields are orderable, so NULL ordering (which differs between databases)
never affects a cursor.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import enum
import json
import uuid
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import strawberry

from covet.db.expressions import Q
from covet.graphql.filters import apply_filter, ordering, to_python
from covet.graphql.models import ModelTypeInfo, info_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from covet.db.models import Model
    from covet.db.queryset import QuerySet

__all__ = ("Connection", "Edge", "PageInfo", "connection_field", "list_field", "object_field")

T = TypeVar("T")


@strawberry.type(description="Where a page of a connection sits in the whole list.")
class PageInfo:
    """The Relay ``PageInfo``."""

    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="One item of a connection and its cursor.")
class Edge(Generic[T]):
    """A Relay edge."""

    node: T
    cursor: str


@strawberry.type(description="A page of items with Relay cursors.")
class Connection(Generic[T]):
    """A Relay connection: ``edges``, ``pageInfo`` and, on demand, ``totalCount``."""

    edges: list[Edge[T]]
    page_info: PageInfo
    _count_queryset: strawberry.Private[Any]

    @strawberry.field(description="The number of items matching the filter (one COUNT query).")  # type: ignore[untyped-decorator]
    async def total_count(self) -> int:
        """Count the items matching the filter, ignoring the page (asked for only when needed)."""
        count: int = await self._count_queryset.count()
        return count


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime.date | datetime.time | decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _encode_cursor(row: Any, keys: list[str]) -> str:
    values = [_jsonable(getattr(row, key.lstrip("-"))) for key in keys]
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(model: type[Model], cursor: str, keys: list[str]) -> list[Any]:
    """Return the ordering values a cursor holds, or raise ValueError naming the problem."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError):
        values = None
    if not isinstance(values, list) or len(values) != len(keys):
        raise ValueError(
            f"Invalid cursor {cursor!r}: pass a cursor from this connection, with the same orderBy."
        )
    result = []
    for key, value in zip(keys, values, strict=True):
        field = model._meta.get_field(key.lstrip("-"))
        result.append(to_python(field, value, key.lstrip("-")) if value is not None else None)
    return result


def _keyset(keys: list[str], values: list[Any], *, forward: bool) -> Q:
    """Return the condition "strictly after (forward) or before the row with ``values``".

    For keys (a, -b, pk) after (x, y, z): a > x OR (a = x AND b < y) OR
    (a = x AND b = y AND pk > z). Only non-null fields are orderable, so
    three-valued NULL comparisons never arise.
    """
    condition: Q | None = None
    equal: dict[str, Any] = {}
    for key, value in zip(keys, values, strict=True):
        name = key.lstrip("-")
        ascending = not key.startswith("-")
        operator = "gt" if ascending == forward else "lt"
        branch = Q(**equal, **{f"{name}__{operator}": value})
        condition = branch if condition is None else condition | branch
        equal[name] = value
    assert condition is not None  # noqa: S101 - keys always hold the primary key
    return condition


def _reverse_keys(keys: list[str]) -> list[str]:
    return [key[1:] if key.startswith("-") else f"-{key}" for key in keys]


def _check_count(name: str, value: int | None, maximum: int) -> None:
    if value is None:
        return
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}.")
    if value > maximum:
        raise ValueError(f"{name}={value} is over the limit of {maximum} items per page.")


# --- root fields ---------------------------------------------------------------------------


def _base_queryset(
    type_info: ModelTypeInfo,
    get_queryset: Callable[[strawberry.Info], QuerySet[Any]] | None,
    info: Any,
) -> QuerySet[Any]:
    if get_queryset is not None:
        return get_queryset(info)
    return type_info.model.objects.all()


def connection_field(
    type_cls: Any,
    *,
    get_queryset: Callable[[strawberry.Info], QuerySet[Any]] | None = None,
    default_page_size: int = 20,
    max_page_size: int = 100,
    permission_classes: list[type[Any]] | None = None,
    description: str | None = None,
) -> Any:
    """Return a root field listing ``type_cls`` as a Relay connection.

    Arguments: ``filter``, ``orderBy``, ``first``/``after`` (forward) and
    ``last``/``before`` (backward). Cursors are keyset cursors (the row's
    ordering values), so a page stays correct while rows are inserted before
    it, and a page costs one query whatever its position.

    Args:
        type_cls: A :func:`model_type` class.
        get_queryset: ``(info) -> QuerySet`` to start from (scope rows to the
            user, add ``select_related``); default ``Model.objects.all()``.
        default_page_size: Items returned when neither ``first`` nor ``last`` is given.
        max_page_size: The largest ``first``/``last`` accepted.
        permission_classes: strawberry permission classes guarding the field.
        description: The field's description.
    """
    type_info = info_of(type_cls)
    model = type_info.model

    async def resolve(
        info: strawberry.Info,
        filter: Any = None,
        order_by: Any = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Any:
        _check_count("first", first, max_page_size)
        _check_count("last", last, max_page_size)
        if first is not None and last is not None:
            raise ValueError("Pass first (with after) or last (with before), not both.")
        queryset = apply_filter(_base_queryset(type_info, get_queryset, info), type_info, filter)
        count_queryset = queryset
        keys = ordering(type_info, order_by)
        if after is not None:
            queryset = queryset.filter(
                _keyset(keys, _decode_cursor(model, after, keys), forward=True)
            )
        if before is not None:
            queryset = queryset.filter(
                _keyset(keys, _decode_cursor(model, before, keys), forward=False)
            )
        if last is not None:
            rows = list(await queryset.order_by(*_reverse_keys(keys))[: last + 1])
            has_previous, has_next = len(rows) > last, before is not None
            rows = rows[:last][::-1]
        else:
            size = default_page_size if first is None else first
            rows = list(await queryset.order_by(*keys)[: size + 1])
            has_next, has_previous = len(rows) > size, after is not None
            rows = rows[:size]
        edges = [Edge(node=row, cursor=_encode_cursor(row, keys)) for row in rows]
        page_info = PageInfo(
            has_next_page=has_next,
            has_previous_page=has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )
        return Connection(edges=edges, page_info=page_info, _count_queryset=count_queryset)

    resolve.__annotations__ = {
        "info": strawberry.Info,
        "filter": type_info.filter_input | None,  # type: ignore[operator]
        "order_by": list[type_info.order_enum] | None,  # type: ignore[name-defined]
        "first": int | None,
        "after": str | None,
        "last": int | None,
        "before": str | None,
        "return": Connection[type_cls],
    }
    return strawberry.field(
        resolver=resolve,
        permission_classes=permission_classes,
        description=description or f"{model.__name__} rows, a page at a time (Relay connection).",
    )


def list_field(
    type_cls: Any,
    *,
    get_queryset: Callable[[strawberry.Info], QuerySet[Any]] | None = None,
    max_items: int = 100,
    permission_classes: list[type[Any]] | None = None,
    description: str | None = None,
) -> Any:
    """Return a root field listing ``type_cls`` with ``filter``, ``orderBy`` and ``first``.

    One query; at most ``max_items`` rows (``first`` defaults to it).
    """
    type_info = info_of(type_cls)

    async def resolve(
        info: strawberry.Info, filter: Any = None, order_by: Any = None, first: int | None = None
    ) -> Any:
        _check_count("first", first, max_items)
        queryset = apply_filter(_base_queryset(type_info, get_queryset, info), type_info, filter)
        limit = max_items if first is None else first
        return list(await queryset.order_by(*ordering(type_info, order_by))[:limit])

    resolve.__annotations__ = {
        "info": strawberry.Info,
        "filter": type_info.filter_input | None,  # type: ignore[operator]
        "order_by": list[type_info.order_enum] | None,  # type: ignore[name-defined]
        "first": int | None,
        "return": list[type_cls],
    }
    return strawberry.field(
        resolver=resolve,
        permission_classes=permission_classes,
        description=description or f"{type_info.model.__name__} rows (at most {max_items}).",
    )


def object_field(
    type_cls: Any,
    *,
    get_queryset: Callable[[strawberry.Info], QuerySet[Any]] | None = None,
    permission_classes: list[type[Any]] | None = None,
    description: str | None = None,
) -> Any:
    """Return a root field fetching one ``type_cls`` by ``id`` (null when absent)."""
    type_info = info_of(type_cls)
    pk = type_info.model._meta.pk

    async def resolve(info: strawberry.Info, id: strawberry.ID) -> Any:
        queryset = _base_queryset(type_info, get_queryset, info)
        return await queryset.filter(**{pk.name: to_python(pk, id, "id")}).first()

    resolve.__annotations__ = {
        "info": strawberry.Info,
        "id": strawberry.ID,
        "return": type_cls | None,
    }
    return strawberry.field(
        resolver=resolve,
        permission_classes=permission_classes,
        description=description or f"One {type_info.model.__name__} by id, or null.",
    )
