"""GraphQL object types from covet.db models, with filters, ordering and Relay connections.

::

    @model_type(Author, exclude=["email"])
    class AuthorType:
        pass

    @model_type(Post, rename={"body": "content"})
    class PostType:
        @strawberry.field
        def excerpt(self) -> str:          # extra fields sit beside the generated ones
            return self.body[:80]

    @strawberry.type
    class Query:
        posts: Connection[PostType] = connection_field(PostType)   # the annotation is optional
        post: PostType | None = object_field(PostType)

The decorator reads the model's fields once: scalars keep their type and
nullability, ``choices`` and ``EnumField`` become GraphQL enums, foreign
keys become object fields, reverse foreign keys and many-to-many fields list
fields (with ``filter`` and ``orderBy`` arguments). Relations resolve through
the request's batched loaders (:mod:`covet.graphql.loaders`), so a page of
posts with their authors and comments costs one query per level.

Root fields compile their arguments to one ORM query:
``posts(filter: {title: {iContains: "orm"}}, orderBy: [VIEWS_DESC], first: 10,
after: "...")`` is a ``filter().order_by()[:11]`` with a keyset condition for
the cursor (the extra row tells ``hasNextPage``). ``totalCount`` is a
``COUNT(*)``, run only when asked for.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import enum
import inspect
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import strawberry
from strawberry.annotation import StrawberryAnnotation
from strawberry.scalars import JSON
from strawberry.types.arguments import StrawberryArgument
from strawberry.types.lazy_type import LazyType

from covet.db.expressions import Q
from covet.db.fields import (
    AutoField,
    BigIntegerField,
    BinaryField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    DecimalField,
    EnumField,
    Field,
    FloatField,
    ForeignKey,
    IntegerField,
    JSONField,
    ManyToManyField,
    SmallIntegerField,
    TextField,
    TimeField,
    UUIDField,
)
from covet.exceptions import ImproperlyConfigured
from covet.graphql.context import loaders_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from covet.db.models import Model
    from covet.db.queryset import QuerySet

__all__ = (
    "BooleanFilter",
    "Connection",
    "DateTimeFilter",
    "Edge",
    "FloatFilter",
    "IDFilter",
    "IntFilter",
    "PageInfo",
    "StringFilter",
    "connection_field",
    "list_field",
    "model_type",
    "object_field",
)

T = TypeVar("T")
_C = TypeVar("_C", bound=type)


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


# --- connections ---------------------------------------------------------------------------


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


# --- model types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelTypeInfo:
    """What :func:`model_type` derived from a model, kept on the type as ``__covet_graphql__``."""

    model: type[Model]
    filter_input: type | None
    order_enum: type[enum.Enum] | None
    orderable: Mapping[str, str]
    filterable: Mapping[str, tuple[str, Field[Any]]]


class _TypeRegistry(dict[str, Any]):
    """The namespace relation annotations resolve in: model label -> its GraphQL type."""

    def __missing__(self, key: str) -> Any:
        raise ImproperlyConfigured(
            f"A GraphQL type refers to the model {key!r}, which has no GraphQL type. "
            f"Declare one with @model_type({key.rsplit('.', 1)[-1]}), or exclude the relation "
            "with model_type(..., exclude=[...])."
        )


_TYPES = _TypeRegistry()
_ENUMS: dict[Any, Any] = {}


def _label(model: type[Model]) -> str:
    return f"{model.__module__}.{model.__qualname__}"


@dataclass(frozen=True)
class _ModelTypePart(LazyType[str, str]):
    """A strawberry lazy type naming a part (filter input, order enum) of a model type.

    Resolved when the schema is built, so a type may list children whose
    model type is declared after it.
    """

    part: str = ""

    def resolve_type(self) -> type[Any]:
        model_type_cls = _TYPES[self.module]
        if not self.part:
            return cast("type[Any]", model_type_cls)
        resolved: type[Any] = getattr(_info_of(model_type_cls), self.part)
        return resolved


def _lazy(model: type[Model], *, many: bool, null: bool) -> StrawberryAnnotation:
    """Return an annotation naming ``model``'s GraphQL type, resolved when the schema is built."""
    ref: Any = _ModelTypePart(model.__name__, _label(model), None, "")
    if many:
        ref = list[ref]
    if null:
        ref = ref | None
    return StrawberryAnnotation(ref)


def _scalar(model: type[Model], field: Field[Any]) -> Any:
    """Return the GraphQL (strawberry) type of a concrete, non-relation field, or None to skip."""
    if field.primary_key:
        return strawberry.ID
    if isinstance(field, EnumField):
        return _enum(field.enum_cls)
    if field.choices is not None:
        return _choices_enum(model, field)
    table: list[tuple[Any, Any]] = [
        (BooleanField, bool),
        (IntegerField | BigIntegerField | SmallIntegerField | AutoField, int),
        (FloatField, float),
        (DecimalField, decimal.Decimal),
        (CharField | TextField, str),
        (DateTimeField, datetime.datetime),
        (DateField, datetime.date),
        (TimeField, datetime.time),
        (UUIDField, uuid.UUID),
        (JSONField, JSON),
    ]
    for field_class, python_type in table:
        if isinstance(field, field_class):
            return python_type
    # BinaryField and unknown custom fields have no faithful GraphQL scalar.
    return None


def _enum(enum_cls: type[enum.Enum]) -> Any:
    cached = _ENUMS.get(enum_cls)
    if cached is None:
        cached = _ENUMS[enum_cls] = strawberry.enum(enum_cls)
    return cached


def _choices_enum(model: type[Model], field: Field[Any]) -> Any:
    """Build an enum for a ``choices`` field whose values make valid GraphQL names."""
    choices = field.choices or ()
    names = {str(value).upper(): value for value in choices}
    if not all(isinstance(v, str) and name.isidentifier() for name, v in names.items()):
        # Non-text choices (numbers) stay their scalar type.
        return {int: int, float: float}.get(type(choices[0]), str) if choices else str
    key = (model, field.name)
    if key not in _ENUMS:
        members = enum.Enum(f"{model.__name__}{_camel(field.name)}Choice", names)  # type: ignore[misc]
        _ENUMS[key] = strawberry.enum(members)
    return _ENUMS[key]


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _filter_input_for(python_type: Any) -> type | None:
    if python_type is strawberry.ID:
        return IDFilter
    if python_type is bool:
        return BooleanFilter
    if python_type is int:
        return IntFilter
    if python_type in (float, decimal.Decimal):
        return FloatFilter
    if python_type is str:
        return StringFilter
    if python_type in (datetime.datetime, datetime.date, datetime.time):
        return DateTimeFilter
    return None


def model_type(
    model: type[Model],
    *,
    name: str | None = None,
    fields: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    rename: Mapping[str, str] | None = None,
    description: str | None = None,
) -> Callable[[_C], _C]:
    """Turn a class into a strawberry type exposing the fields of ``model``.

    Fields and annotations written on the class win over generated ones of
    the same name, so one field can be retyped or given a resolver.

    Args:
        model: The covet.db model.
        name: The GraphQL type name (default: the model's class name).
        fields: Expose only these model fields (Python names); default all.
        exclude: Model fields not to expose (secrets, internal columns).
        rename: Python field name -> GraphQL field name.
        description: The type's description (default: the model's docstring).

    Returns:
        The class decorator.

    Raises:
        ImproperlyConfigured: A name in ``fields``, ``exclude`` or ``rename`` is
            not a field of ``model``.
    """
    meta = model._meta
    known = {f.name for f in meta.fields} | set(meta.reverse) | {m.name for m in meta.many_to_many}
    include = set(fields) if fields is not None else None
    excluded = set(exclude)
    renames = dict(rename or {})
    unknown = sorted(((include or set()) | excluded | set(renames)) - known)
    if unknown:
        raise ImproperlyConfigured(
            f"model_type({model.__name__}) got unknown field name(s) {unknown!r}. "
            f"Choose from: {', '.join(sorted(known))}."
        )

    def wanted(field_name: str) -> bool:
        return field_name not in excluded and (include is None or field_name in include)

    def decorator(cls: _C) -> _C:
        annotations: dict[str, Any] = dict(inspect.get_annotations(cls))
        own = set(annotations) | set(cls.__dict__)
        type_name = name or model.__name__
        filterable: dict[str, tuple[str, Field[Any]]] = {}
        orderable: dict[str, str] = {}
        filter_annotations: dict[str, Any] = {}
        for field in meta.fields:
            if not wanted(field.name) or field.name in own:
                continue
            graphql_name = renames.get(field.name)
            if isinstance(field, ForeignKey):
                setattr(cls, field.name, _forward_field(field, graphql_name))
                filterable[field.name] = (field.attname, field)
                filter_annotations[field.name] = IDFilter | None
                continue
            python_type = _scalar(model, field)
            if python_type is None:
                continue
            annotations[field.name] = python_type | None if field.null else python_type
            setattr(
                cls,
                field.name,
                strawberry.field(name=graphql_name, description=field.help_text or None),
            )
            lookup_input = _filter_input_for(python_type)
            if lookup_input is not None:
                filterable[field.name] = (field.name, field)
                filter_annotations[field.name] = lookup_input | None
            if not field.null and not isinstance(field, JSONField | BinaryField):
                orderable[field.name] = field.name
        for rel_name, rel in meta.reverse.items():
            if not wanted(rel_name) or rel_name in own:
                continue
            setattr(cls, rel_name, _reverse_field(rel, renames.get(rel_name)))
        for m2m in meta.many_to_many:
            if wanted(m2m.name) and m2m.name not in own:
                setattr(cls, m2m.name, _m2m_field(m2m, renames.get(m2m.name)))
        cls.__annotations__ = annotations
        order_enum = _order_enum(type_name, orderable)
        filter_input = _filter_input(type_name, filter_annotations)
        typed = strawberry.type(cls, name=type_name, description=description or model.__doc__)
        typed.__covet_graphql__ = ModelTypeInfo(  # type: ignore[attr-defined]
            model, filter_input, order_enum, orderable, filterable
        )
        _TYPES[_label(model)] = typed
        return typed

    return decorator


def _order_enum(type_name: str, orderable: Mapping[str, str]) -> type[enum.Enum] | None:
    if not orderable:
        return None
    members: dict[str, str] = {}
    for field_name in orderable:
        members[f"{field_name.upper()}_ASC"] = field_name
        members[f"{field_name.upper()}_DESC"] = f"-{field_name}"
    order = enum.Enum(f"{type_name}Order", members)  # type: ignore[misc]
    return cast("type[enum.Enum]", strawberry.enum(order, description=f"Orderings of {type_name}."))


def _filter_input(type_name: str, annotations: dict[str, Any]) -> type | None:
    if not annotations:
        return None
    namespace: dict[str, Any] = {"__annotations__": annotations}
    namespace.update(dict.fromkeys(annotations))
    cls = type(f"{type_name}Filter", (), namespace)
    filter_input: type = strawberry.input(
        cls, description=f"Conditions on {type_name} (all given must hold)."
    )
    return filter_input


def _info_of(type_cls: Any) -> ModelTypeInfo:
    info = getattr(type_cls, "__covet_graphql__", None)
    if not isinstance(info, ModelTypeInfo):
        raise ImproperlyConfigured(
            f"{type_cls!r} is not a model type. Decorate it with @model_type(Model) first."
        )
    return info


# --- relation fields -----------------------------------------------------------------------


def _forward_field(field: ForeignKey[Any], graphql_name: str | None) -> Any:
    attname, name = field.attname, field.name

    async def resolve(root: Any, info: strawberry.Info) -> Any:
        value = root.__dict__.get(attname)
        if value is None:
            return None
        cached = root._state.cache.get(name)
        if cached is not None:  # loaded by select_related() in a custom queryset
            return cached
        return await loaders_of(info).forward(field, value)

    resolved = strawberry.field(
        resolver=resolve, name=graphql_name, description=field.help_text or None
    )
    resolved.type_annotation = _lazy(field.related_model, many=False, null=field.null)
    return resolved


def _reverse_field(rel: Any, graphql_name: str | None) -> Any:
    child: type[Model] = rel.model
    if rel.many_to_many:
        return _m2m_field(rel.field, graphql_name, reverse=True)
    fk: ForeignKey[Any] = rel.field
    target_attname = fk.target_field.attname

    if not rel.multiple:

        async def resolve_one(root: Any, info: strawberry.Info) -> Any:
            return await loaders_of(info).reverse(fk, getattr(root, target_attname))

        one = strawberry.field(resolver=resolve_one, name=graphql_name)
        one.type_annotation = _lazy(child, many=False, null=True)
        return one

    label = _label(child)

    async def resolve_many(
        root: Any, info: strawberry.Info, filter: Any = None, order_by: Any = None
    ) -> Any:
        type_info = _info_of(_TYPES[label])

        def refine(queryset: QuerySet[Any]) -> QuerySet[Any]:
            return _apply_filter(queryset, type_info, filter).order_by(
                *_ordering(type_info, order_by)
            )

        return await loaders_of(info).reverse(
            fk,
            getattr(root, target_attname),
            refine=refine,
            refine_key=(repr(filter), repr(order_by)),
        )

    many = strawberry.field(
        resolver=resolve_many,
        name=graphql_name,
        description=f"The {child.__name__} rows pointing here (one batched query per level).",
    )
    # The child's filter input and order enum exist once its model_type ran, which
    # may be after this one: name them lazily, resolved when the schema is built.
    many.arguments = _list_arguments(label)
    many.type_annotation = _lazy(child, many=True, null=False)
    return many


def _list_arguments(label: str) -> list[StrawberryArgument]:
    """Return the ``filter`` and ``orderBy`` arguments of a list of ``label``'s type."""
    filter_input = _ModelTypePart("Filter", label, None, "filter_input")
    order_enum = _ModelTypePart("Order", label, None, "order_enum")
    return [
        StrawberryArgument(
            "filter", "filter", StrawberryAnnotation(filter_input | None), default=None
        ),
        StrawberryArgument(
            "order_by",
            "orderBy",
            StrawberryAnnotation(list[order_enum] | None),  # type: ignore[valid-type]
            default=None,
            description="Sort keys, first one first; the primary key breaks ties.",
        ),
    ]


def _m2m_field(field: ManyToManyField, graphql_name: str | None, *, reverse: bool = False) -> Any:
    target = field.model if reverse else field.related_model

    async def resolve(root: Any, info: strawberry.Info) -> Any:
        return await loaders_of(info).many_to_many(field, root.pk, reverse=reverse)

    resolved = strawberry.field(resolver=resolve, name=graphql_name)
    resolved.type_annotation = _lazy(target, many=True, null=False)
    return resolved


# --- filters, ordering and cursors -------------------------------------------------------


def _apply_filter(queryset: QuerySet[Any], type_info: ModelTypeInfo, given: Any) -> QuerySet[Any]:
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
                value = [_to_python(field, item, name) for item in value]
            elif lookup != "isnull":
                value = _to_python(field, value, name)
            conditions[f"{column}__{lookup}"] = value
    return queryset.filter(**conditions)


def _to_python(field: Field[Any], value: Any, name: str) -> Any:
    """Convert an argument value to the field's Python type, or fail with a field error."""
    target = field.target_field if isinstance(field, ForeignKey) else field
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


def _ordering(type_info: ModelTypeInfo, order_by: Any) -> list[str]:
    """Return ORM ordering keys: the requested ones, then the primary key as tie-breaker."""
    keys = [member.value for member in order_by or ()]
    if not keys:
        keys = list(type_info.model._meta.ordering)
    pk = type_info.model._meta.pk.name
    if not any(key.lstrip("-") in (pk, "pk") for key in keys):
        keys.append(pk)
    return keys


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
        result.append(_to_python(field, value, key.lstrip("-")) if value is not None else None)
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
    type_info = _info_of(type_cls)
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
        queryset = _apply_filter(_base_queryset(type_info, get_queryset, info), type_info, filter)
        count_queryset = queryset
        keys = _ordering(type_info, order_by)
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
    type_info = _info_of(type_cls)

    async def resolve(
        info: strawberry.Info, filter: Any = None, order_by: Any = None, first: int | None = None
    ) -> Any:
        _check_count("first", first, max_items)
        queryset = _apply_filter(_base_queryset(type_info, get_queryset, info), type_info, filter)
        limit = max_items if first is None else first
        return list(await queryset.order_by(*_ordering(type_info, order_by))[:limit])

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
    type_info = _info_of(type_cls)
    pk = type_info.model._meta.pk

    async def resolve(info: strawberry.Info, id: strawberry.ID) -> Any:
        queryset = _base_queryset(type_info, get_queryset, info)
        return await queryset.filter(**{pk.name: _to_python(pk, id, "id")}).first()

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
