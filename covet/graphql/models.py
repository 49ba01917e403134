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

Filters and ordering live in :mod:`covet.graphql.filters`, root fields and
Relay connections in :mod:`covet.graphql.connections`.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import inspect
import uuid
from dataclasses import dataclass
from types import GenericAlias
from typing import TYPE_CHECKING, Any, TypeVar, cast

import strawberry
from strawberry.annotation import StrawberryAnnotation
from strawberry.scalars import JSON
from strawberry.types.arguments import StrawberryArgument
from strawberry.types.lazy_type import LazyType

from covet.db.fields import (
    ArrayField,
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
from covet.graphql.filters import (
    BooleanFilter,
    DateTimeFilter,
    FloatFilter,
    IDFilter,
    IntFilter,
    StringFilter,
    apply_filter,
    enum_filter,
    ordering,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from covet.db.models import Model
    from covet.db.queryset import QuerySet

__all__ = ("ModelTypeInfo", "info_of", "model_type")

_C = TypeVar("_C", bound=type)


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
        resolved: type[Any] = getattr(info_of(model_type_cls), self.part)
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
    if isinstance(field, ArrayField):
        # A list of the element's type ([String!]!); elements of a null=True base may be null.
        base = field.base_field
        # An element's choices make no enum: the enum is named after a field, and the
        # element has none of its own. EnumField elements do become the enum.
        element = _enum(base.enum_cls) if isinstance(base, EnumField) else _plain(base)
        if element is None:
            return None
        # Built at run time, so spelled as a GenericAlias (mypy cannot check list[var]).
        return GenericAlias(list, (element | None if base.null else element,))
    if field.choices is not None:
        return _choices_enum(model, field)
    return _plain(field)


def _plain(field: Field[Any]) -> Any:
    """Return the GraphQL type of a scalar field's values, or None if there is none."""
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
    if isinstance(python_type, type) and issubclass(python_type, enum.Enum):
        return enum_filter(python_type)
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
            if not field.null and not isinstance(field, JSONField | BinaryField | ArrayField):
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


def info_of(type_cls: Any) -> ModelTypeInfo:
    """Return what :func:`model_type` derived for ``type_cls``, or fail naming the fix."""
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
        type_info = info_of(_TYPES[label])

        def refine(queryset: QuerySet[Any]) -> QuerySet[Any]:
            return apply_filter(queryset, type_info, filter).order_by(
                *ordering(type_info, order_by)
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
