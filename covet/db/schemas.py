"""Model schemas: pydantic models or msgspec Structs derived from ORM models.

(Not to be confused with :mod:`covet.db.schema`, which builds SQLAlchemy
tables for migrations.) A typed API reads and writes ORM rows through schemas::

    PostCreate = model_schema(Post, "create")   # what a client may send
    PostUpdate = model_schema(Post, "update")   # every field optional (PATCH)
    PostRead = model_schema(Post, "read", exclude=["secret"])  # what a client sees

The three kinds differ in the fields they hold and their defaults:

- ``"read"``: every concrete field, foreign keys as ``<name>_id``; built from
  ORM instances by attribute (pydantic ``from_attributes``), unknown input
  keys ignored.
- ``"create"``: leaves out what the server sets (the automatic primary key,
  ``auto_now``/``auto_now_add`` date-times); a field is optional when it has a
  default or allows NULL. Unknown keys are refused (a typo is a 422, not data
  silently dropped).
- ``"update"``: the ``create`` fields, all optional: a field the client leaves
  out stays unset (pydantic's ``model_fields_set``, msgspec's ``UNSET``), so
  ``exclude_unset`` gives exactly what to write.

Field types carry over with their checks: ``CharField(max_length=...)`` gets
``max_length``, integer fields their column range, ``DecimalField`` its digits
(pydantic), ``choices`` a ``Literal``, ``EnumField`` its enum,
``DateTimeField`` requires a time zone, ``help_text`` becomes the description.
Many-to-many fields and custom ``validators`` are left out: ``full_clean()``
still runs them when the row is saved.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

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
    SmallIntegerField,
    TextField,
    TimeField,
    UUIDField,
)
from covet.exceptions import ImproperlyConfigured, MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from covet.db.models import Model

__all__ = ("SCHEMA_KINDS", "model_schema")

#: The kinds of schema :func:`model_schema` builds.
SCHEMA_KINDS = ("read", "create", "update")
_LIBRARIES = ("pydantic", "msgspec")


def _server_set(field: Field[Any]) -> bool:
    """Return whether the database or ``save()`` fills the field in, never the client."""
    if isinstance(field, AutoField) or (field.primary_key and field.auto_created):
        return True
    return isinstance(field, DateTimeField) and (field.auto_now or field.auto_now_add)


def _value_type(field: Field[Any]) -> tuple[Any, dict[str, Any]]:
    """Return the Python type of ``field`` and its constraints (library-neutral keywords)."""
    if isinstance(field, ForeignKey):
        return _value_type(field.target_field)[0], {}
    if isinstance(field, ArrayField):
        inner = _value_type(field.base_field)[0]
        return list[inner], {"max_length": field.size} if field.size is not None else {}  # type: ignore[valid-type]
    if field.choices is not None and not isinstance(field, EnumField):
        return Literal[field.choices], {}
    if isinstance(field, IntegerField | BigIntegerField | SmallIntegerField):
        return int, {"ge": field.min_value, "le": field.max_value}
    if isinstance(field, CharField):
        return str, {"max_length": field.max_length}
    if isinstance(field, DecimalField):
        return decimal.Decimal, {
            "max_digits": field.max_digits,
            "decimal_places": field.decimal_places,
        }
    simple: list[tuple[type[Field[Any]], Any]] = [
        (BooleanField, bool),
        (FloatField, float),
        (TextField, str),
        (DateTimeField, datetime.datetime),
        (DateField, datetime.date),
        (TimeField, datetime.time),
        (UUIDField, uuid.UUID),
        (BinaryField, bytes),
        (JSONField, Any),
    ]
    for field_class, python_type in simple:
        if isinstance(field, field_class):
            return python_type, {"tz": True} if python_type is datetime.datetime else {}
    if isinstance(field, EnumField):
        return field.enum_cls, {}
    return Any, {}


def _fields(
    model: type[Model], kind: str, include: frozenset[str] | None, exclude: frozenset[str]
) -> list[Field[Any]]:
    meta = model._meta
    names = {f.name for f in meta.concrete_fields} | {f.attname for f in meta.concrete_fields}
    unknown = sorted((include or frozenset()) - names) + sorted(exclude - names)
    if unknown:
        raise ImproperlyConfigured(
            f"model_schema({model.__name__}) got unknown field(s) {unknown!r}. "
            f"Choose from: {', '.join(sorted(names))}."
        )
    chosen = []
    for field in meta.concrete_fields:
        if kind != "read" and _server_set(field):
            continue
        wanted = {field.name, field.attname}
        if include is not None and not wanted & include:
            continue
        if wanted & exclude:
            continue
        chosen.append(field)
    return chosen


def _pydantic(model: type[Model], kind: str, fields: list[Field[Any]], name: str) -> type[Any]:
    try:
        import pydantic
    except ImportError:
        raise MissingDependencyError("pydantic", extra="validation") from None
    definitions: dict[str, Any] = {}
    for field in fields:
        python_type, constraints = _value_type(field)
        tz = constraints.pop("tz", False)
        if tz:
            python_type = pydantic.AwareDatetime
        annotation: Any = python_type | None if field.null else python_type
        info: dict[str, Any] = {"description": field.help_text or None}
        if kind == "update" or (kind == "create" and field.null and not field.has_default()):
            info["default"] = None
        elif kind == "create" and field.has_default():
            default = field.default
            info["default_factory" if callable(default) else "default"] = default
        if constraints and not isinstance(field, ForeignKey):
            info.update(constraints)
        definitions[field.attname] = (annotation, pydantic.Field(**info))
    config = pydantic.ConfigDict(
        from_attributes=True, extra="ignore" if kind == "read" else "forbid"
    )
    return pydantic.create_model(  # type: ignore[no-any-return]
        name, __config__=config, __module__=model.__module__, **definitions
    )


def _msgspec(model: type[Model], kind: str, fields: list[Field[Any]], name: str) -> type[Any]:
    try:
        import msgspec
    except ImportError:
        raise MissingDependencyError("msgspec", extra="validation") from None
    definitions: list[tuple[str, Any, Any]] = []
    for field in fields:
        python_type, constraints = _value_type(field)
        # msgspec's Meta has no digit counts: full_clean() checks them when saving.
        meta = {k: v for k, v in constraints.items() if k not in ("max_digits", "decimal_places")}
        if isinstance(field, ForeignKey):
            meta = {}
        if field.help_text:
            meta["description"] = field.help_text
        annotation: Any = Annotated[python_type, msgspec.Meta(**meta)] if meta else python_type
        if field.null:
            annotation = annotation | None
        if kind == "update":
            definitions.append((field.attname, annotation | msgspec.UnsetType, msgspec.UNSET))
        elif kind == "create" and field.has_default():
            default = field.default
            value = msgspec.field(default_factory=default) if callable(default) else default
            definitions.append((field.attname, annotation, value))
        elif kind == "create" and field.null:
            definitions.append((field.attname, annotation, None))
        else:
            definitions.append((field.attname, annotation, msgspec.NODEFAULT))
    # kw_only: required fields may follow optional ones, so the model's order is kept.
    return msgspec.defstruct(
        name,
        [(n, t) if d is msgspec.NODEFAULT else (n, t, d) for n, t, d in definitions],
        kw_only=True,
        forbid_unknown_fields=kind != "read",
        module=model.__module__,
    )


#: Built schemas by arguments: the same call returns the same class.
_built: dict[tuple[Any, ...], type[Any]] = {}


def model_schema(
    model: type[Model],
    kind: str = "read",
    *,
    library: str = "pydantic",
    include: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    name: str | None = None,
) -> type[Any]:
    """Return a pydantic model (or msgspec Struct) mirroring ``model``'s fields for ``kind``.

    The same arguments return the same class, so schemas can be built where
    they are used.

    Args:
        model: The ORM model class.
        kind: ``"read"``, ``"create"`` or ``"update"`` (see the module docs).
        library: ``"pydantic"`` (a ``BaseModel``) or ``"msgspec"`` (a ``Struct``).
        include: Only these fields (names or ``<fk>_id`` names).
        exclude: Leave these fields out (``["password"]``).
        name: The class name; default ``<Model><Kind>`` (``PostCreate``).

    Returns:
        The schema class.

    Raises:
        ImproperlyConfigured: For an unknown kind, library or field name.
        covet.exceptions.MissingDependencyError: When the library is not installed.
    """
    if kind not in SCHEMA_KINDS:
        raise ImproperlyConfigured(
            f"model_schema() got kind={kind!r}. Use one of: {', '.join(SCHEMA_KINDS)}."
        )
    if library not in _LIBRARIES:
        raise ImproperlyConfigured(
            f"model_schema() got library={library!r}. Use 'pydantic' or 'msgspec'."
        )
    if isinstance(include, str) or isinstance(exclude, str):
        raise ImproperlyConfigured(
            "model_schema() include/exclude must be lists of field names, not a string."
        )
    chosen = None if include is None else frozenset(include)
    left_out = frozenset(exclude)
    class_name = name or f"{model.__name__}{kind.capitalize()}"
    key = (model, kind, library, chosen, left_out, class_name)
    schema = _built.get(key)
    if schema is None:
        fields = _fields(model, kind, chosen, left_out)
        build = _pydantic if library == "pydantic" else _msgspec
        schema = _built[key] = build(model, kind, fields, class_name)
    return schema
