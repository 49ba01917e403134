"""Transforms in filter paths: JSON keys, date/time parts, array lengths and indexes.

``filter(data__owner__name="x")``, ``filter(created__year__gte=2024)`` and
``filter(tags__len=2)`` name a field, then transforms, then a lookup. A name
that :func:`~covet.db.compiler.paths.resolve_path` refuses is tried here: the
longest prefix naming a field that has transforms (JSONField, DateField,
DateTimeField, TimeField, ArrayField) is the column, the rest its transforms.
The SQL of each transform comes from the dialect's operations; keys and part
names are checked here and belong to the query's shape.
"""

from __future__ import annotations

import datetime
import decimal
from typing import TYPE_CHECKING, Any, Final

from covet.db.backends.base.lookups import DATE_PARTS, TIME_PARTS, JSONPath, check_json_key
from covet.db.compiler.functions import OrderByNode
from covet.db.compiler.nodes import Col, Lookup, Node, Transform
from covet.db.compiler.paths import CACHE_LIMIT, LOOKUPS, PathInfo, resolve_path
from covet.db.exceptions import FieldError
from covet.db.expressions import Expression
from covet.db.fields import (
    BooleanField,
    DateField,
    Field,
    IntegerField,
    JSONField,
    TextField,
    TimeField,
)
from covet.db.models import Model, resolved_paths

if TYPE_CHECKING:
    from collections.abc import Sequence

    from covet.db.compiler.query import Query
    from covet.db.compiler.select import SQLCompiler

__all__ = (
    "ARRAY_LOOKUPS",
    "JSON_LOOKUPS",
    "ArrayIndex",
    "ArrayLength",
    "DateCast",
    "DatePart",
    "JSONKey",
    "JSONLookup",
    "JSONValue",
    "build_transform_lookup",
    "container_lookup",
    "json_ordering",
    "resolve_transform",
    "value_node",
)

#: Lookups of a JSONField (or one of its keys) beyond the comparisons.
JSON_LOOKUPS: Final = frozenset({"contains", "contained_by", "has_key", "has_keys", "has_any_keys"})
#: Lookups of an ArrayField beyond the comparisons.
ARRAY_LOOKUPS: Final = frozenset({"contains", "contained_by", "overlap"})
#: Lookups a date part, a date/time cast or an array length or element can end with.
_VALUE_LOOKUPS: Final = frozenset({"exact", "gt", "gte", "lt", "lte", "in", "range", "isnull"})
_ORDERED: Final = ("exact", "gt", "gte", "lt", "lte")

_INTEGER: Final[Field[Any]] = IntegerField()
_TEXT: Final[Field[Any]] = TextField()
_DATE: Final[Field[Any]] = DateField()
_TIME: Final[Field[Any]] = TimeField()
_BOOLEAN: Final[Field[Any]] = BooleanField()
_JSON: Final[Field[Any]] = JSONField()


def _is_index(step: str) -> bool:
    # ASCII digits only: "²".isdigit() is True, but int("²") fails.
    return step.isascii() and step.isdigit()


def _transforms_of(field: Field[Any]) -> tuple[str, ...] | None:
    """Return the transform names ``field`` takes (``()``: free-form JSON keys), or None."""
    kind = field.internal_type
    if kind == "date":
        return DATE_PARTS
    if kind == "time":
        return TIME_PARTS
    if kind == "datetime":
        return (*DATE_PARTS, *TIME_PARTS, "date", "time")
    if kind in ("json", "array"):
        return ()
    return None


def resolve_transform(
    model: type[Model], parts: Sequence[str]
) -> tuple[PathInfo, tuple[str, ...], str] | None:
    """Split ``parts`` into a field path, transforms and a lookup, or return None.

    Returns None when no prefix of ``parts`` names a field with transforms (the
    caller then reports its own error). Results are cached like resolve_path()'s.

    Raises:
        FieldError: The field has transforms but ``parts`` names an unknown one, or
            an unknown lookup after it; the message lists the choices.
    """
    key = ("transform", model, tuple(parts))
    hit: tuple[PathInfo, tuple[str, ...], str] | None = resolved_paths.get(key)
    if hit is None:
        hit = _resolve_transform(model, parts)
        if hit is None:
            return None
        if len(resolved_paths) >= CACHE_LIMIT:
            resolved_paths.clear()
        resolved_paths[key] = hit
    return hit


def _resolve_transform(
    model: type[Model], parts: Sequence[str]
) -> tuple[PathInfo, tuple[str, ...], str] | None:
    for j in range(1, len(parts)):
        try:
            path, _ = resolve_path(model, parts[:j], allow_lookup=False)
        except FieldError:
            continue
        field = path.field
        names = _transforms_of(field)
        if names is None or path.ends_on_relation or field.is_relation:
            continue
        rest = tuple(parts[j:])
        where = f"{field.model.__name__}.{field.name}"
        if field.internal_type == "json":
            if rest[-1] in JSON_LOOKUPS or (rest[-1] in LOOKUPS and len(rest) > 1):
                return path, rest[:-1], rest[-1]
            return path, rest, "exact"
        name = rest[0]
        if field.internal_type == "array":
            if rest == (name,) and name in ARRAY_LOOKUPS:
                return path, (), name
            if name != "len" and not _is_index(name):
                raise FieldError(
                    f"Unsupported lookup {'__'.join(rest)!r} on {where}. Use an index "
                    f"('tags__0'), len, or one of: {', '.join(sorted(ARRAY_LOOKUPS))}."
                )
        elif name not in names:
            raise FieldError(
                f"Unsupported transform or lookup {name!r} on {where}. Use a lookup, or "
                f"one of: {', '.join(names)}."
            )
        if len(rest) == 1:
            return path, (name,), "exact"
        if len(rest) == 2 and rest[1] in _VALUE_LOOKUPS:
            return path, (name,), rest[1]
        raise FieldError(
            f"Unsupported lookup {'__'.join(rest[1:])!r} after {name!r} on {where}. "
            f"Use one of: {', '.join(sorted(_VALUE_LOOKUPS))}."
        )
    return None


def container_lookup(field: Field[Any], lookup: str) -> bool:
    """Tell whether ``field__lookup`` is a JSON/array containment rather than LIKE."""
    kind = field.internal_type
    return (kind == "json" and lookup in JSON_LOOKUPS) or (
        kind == "array" and lookup in ARRAY_LOOKUPS
    )


# -- nodes --------------------------------------------------------------------------------------


class JSONKey(Transform):
    """The value at a key path, as text, a number or a boolean when it has that JSON type."""

    __slots__ = ("kind", "path")
    nullable = True

    def __init__(
        self, lhs: Col, path: JSONPath, kind: str, output_field: Field[Any] | None
    ) -> None:
        super().__init__(lhs, output_field)
        self.path, self.kind = path, kind

    def details(self) -> Any:
        """Return the key path and the JSON type compared."""
        return (self.path, self.kind)

    def apply(self, c: SQLCompiler, sql: str) -> str:
        """Render the typed value at the key path."""
        return str(c.ops.json_typed_sql(sql, self.path, self.kind))


class JSONValue(Transform):
    """The value at a key path as JSON (``values("data__owner__name")``), any type."""

    __slots__ = ("path",)
    nullable = True

    def __init__(self, lhs: Col, path: JSONPath) -> None:
        super().__init__(lhs, _JSON)
        self.path = path

    def details(self) -> Any:
        """Return the key path."""
        return self.path

    def apply(self, c: SQLCompiler, sql: str) -> str:
        """Render the JSON value at the key path."""
        return str(c.ops.json_value_sql(sql, self.path))


def value_node(model: type[Model], name: str) -> Node:
    """Resolve a ``values()`` name: a field path, or a JSON key path under a JSONField.

    Raises:
        FieldError: ``name`` names neither.
    """
    parts = name.split("__")
    try:
        return Col(resolve_path(model, parts, allow_lookup=False)[0])
    except FieldError:
        found = resolve_transform(model, parts)
        if found is None or found[0].field.internal_type != "json" or found[2] != "exact":
            raise
        path, transforms, _ = found
        return JSONValue(Col(path), _json_path(transforms))


#: The JSON types a key path orders by, in ascending order (the rest sort after them).
_ORDERED_KINDS: Final = ("number", "string", "boolean")


def json_ordering(model: type[Model], name: str, descending: bool) -> tuple[OrderByNode, ...]:
    """Return the ORDER BY terms of ``order_by("data__price")`` (``descending``: ``"-..."``).

    Databases order JSON values their own way (PostgreSQL by JSON type, then value;
    MariaDB as text, so ``10`` before ``9``), so a key path orders by typed values,
    one term per JSON type: numbers (numerically), then strings (in the column's
    collation), then booleans (false first), then everything else (missing key, JSON
    null, objects, arrays) in no defined order. Descending is the exact reverse. The
    same on every database.

    Raises:
        FieldError: ``name`` is not a key path under a JSONField.
    """
    node = value_node(model, name)
    if not isinstance(node, JSONValue):
        raise FieldError(f"Cannot resolve {name!r} into a JSON key path.")
    col = node.lhs
    assert isinstance(col, Col)  # noqa: S101 - value_node() builds JSONValue(Col(...))
    terms = []
    for kind in _ORDERED_KINDS:
        output = _TEXT if kind == "string" else _BOOLEAN if kind == "boolean" else None
        term = OrderByNode(JSONKey(col, node.path, kind, output), False, "last")
        terms.append(term.reversed() if descending else term)
    return tuple(terms)


class DatePart(Transform):
    """An integer part (year, week_day, hour, ...) of a date, time or datetime column."""

    __slots__ = ("part",)

    def __init__(self, lhs: Col, part: str) -> None:
        super().__init__(lhs, _INTEGER)
        self.part = part

    def details(self) -> Any:
        """Return the part's name."""
        return self.part

    def apply(self, c: SQLCompiler, sql: str) -> str:
        """Render the extraction."""
        field = self.lhs.path.field
        return str(c.ops.datetime_extract_sql(self.part, sql, field.internal_type))


class DateCast(Transform):
    """The UTC date or time of day of a datetime column (``__date``, ``__time``)."""

    __slots__ = ("target",)

    def __init__(self, lhs: Col, target: str) -> None:
        super().__init__(lhs, _DATE if target == "date" else _TIME)
        self.target = target

    def details(self) -> Any:
        """Return ``"date"`` or ``"time"``."""
        return self.target

    def apply(self, c: SQLCompiler, sql: str) -> str:
        """Render the cast."""
        return str(c.ops.datetime_cast_sql(self.target, sql))


class ArrayLength(Transform):
    """The number of elements of an array column."""

    __slots__ = ()

    def __init__(self, lhs: Col) -> None:
        super().__init__(lhs, _INTEGER)

    def details(self) -> Any:
        """Return the transform's name."""
        return "len"

    def apply(self, c: SQLCompiler, sql: str) -> str:
        """Render the length."""
        return str(c.ops.array_length_sql(sql))


class ArrayIndex(Transform):
    """The element at a 0-based index of an array column (NULL past the end)."""

    __slots__ = ("index",)
    nullable = True

    def __init__(self, lhs: Col, index: int, output_field: Field[Any]) -> None:
        super().__init__(lhs, output_field)
        self.index = index

    def details(self) -> Any:
        """Return the index."""
        return self.index

    def apply(self, c: SQLCompiler, sql: str) -> str:
        """Render the element."""
        return str(c.ops.array_index_sql(sql, self.index))


class JSONLookup(Lookup):
    """A condition no comparison operator spells: JSON keys, null, equality, containment.

    Also the array operators (``array_contains``, ``array_contained_by``,
    ``array_overlap``). ``value`` is the JSON path (``()`` for the whole column),
    ``keys`` the keys of has_key/has_keys/has_any_keys, and ``rhs_value`` the document
    or list bound for equality and containment (else None).
    """

    __slots__ = ("keys", "rhs_value")

    def __init__(
        self,
        lhs: Col,
        lookup: str,
        path: JSONPath,
        keys: tuple[str, ...],
        rhs_value: Any,
        info: PathInfo,
    ) -> None:
        self.keys, self.rhs_value = keys, rhs_value
        has_rhs = lookup in ("contains", "contained_by", "equal", "array_contains",
                             "array_contained_by", "array_overlap")  # fmt: skip
        shape = ("json", lhs.shape, lookup, path, keys, has_rhs)
        super().__init__(lhs, lookup, path, None, info, shape=shape)

    def values(self, ops: Any) -> list[Any]:
        """Return the bound document, if any."""
        if self.rhs_value is None:
            return []
        if self.lookup.startswith("array_"):
            return [self.rhs_value]
        adapter = ops.get_adapter("json")
        return [adapter(self.rhs_value) if adapter is not None else self.rhs_value]

    def render(self, c: SQLCompiler, lhs: str) -> str:
        """Render the condition for the column ``lhs``."""
        ops = c.ops
        path: JSONPath = self.value
        lookup = self.lookup
        if lookup.startswith("array_"):
            return str(ops.array_lookup_sql(lookup[6:], lhs, c.param(self.values(ops)[0])))
        if lookup in ("has_key", "has_keys", "has_any_keys"):
            parts = [str(ops.json_has_path_sql(lhs, (*path, key))) for key in self.keys]
            sql = parts[0] if len(parts) == 1 else (
                "(" + (" OR " if lookup == "has_any_keys" else " AND ").join(parts) + ")"
            )  # fmt: skip
        elif lookup == "missing":
            # isnull=True on a key: the key is absent (or the column NULL); JSON null is
            # a value, matched by key=None.
            return f"NOT COALESCE({ops.json_has_path_sql(lhs, path)}, FALSE)"
        elif lookup == "present":
            sql = str(ops.json_has_path_sql(lhs, path))
        elif lookup == "null":
            sql = str(ops.json_is_null_sql(lhs, path))
        elif lookup == "equal":
            sql = str(ops.json_equal_sql(lhs, path, c.param(self.values(ops)[0])))
        else:
            rhs = c.param(self.values(ops)[0])
            sql = str(ops.json_contains_sql(lhs, path, rhs, reverse=lookup == "contained_by"))
        # A missing key gives NULL: make it FALSE, so exclude() keeps such rows. On the
        # whole document the condition stays bare, for a GIN index on PostgreSQL.
        return f"COALESCE({sql}, FALSE)" if path else sql

    def collect(self, ops: Any, out: list[Any]) -> None:
        """Append the bound document, if any."""
        out.extend(self.values(ops))


# -- building lookups ---------------------------------------------------------------------------


def build_transform_lookup(
    query: Query, key: str, path: PathInfo, transforms: tuple[str, ...], lookup: str, value: Any
) -> Node:
    """Build the condition for ``key`` = ``value`` once resolve_transform() split it.

    Raises:
        FieldError: The value does not fit the lookup (the message says what would).
    """
    col = Col(path)
    kind = path.field.internal_type
    if kind == "json":
        return _json_lookup(query, key, col, path, transforms, lookup, value)
    if kind == "array":
        return _array_lookup(query, key, col, path, transforms, lookup, value)
    return _date_lookup(query, key, col, path, transforms[0], lookup, value)


def _json_path(transforms: tuple[str, ...]) -> JSONPath:
    # A step of digits only is an array index, as in Django ("tags__0").
    return tuple(check_json_key(int(t) if _is_index(t) else t) for t in transforms)


def _json_document(key: str, lookup: str, value: Any) -> Any:
    if value is None or isinstance(value, Expression | Model):
        raise FieldError(
            f"Lookup {lookup!r} in {key!r} takes a JSON value (dict, list, str, number, "
            f"bool), not {value!r}."
        )
    return value


def _json_kind(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | decimal.Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    raise FieldError(
        f"Cannot compare the JSON key in {key!r} with {value!r}. Use a str, a number or "
        "a bool (or None for JSON null, a dict or list with exact)."
    )


def _json_lookup(
    query: Query,
    key: str,
    col: Col,
    info: PathInfo,
    transforms: tuple[str, ...],
    lookup: str,
    value: Any,
) -> Node:
    path = _json_path(transforms)
    if lookup in ("has_key", "has_keys", "has_any_keys"):
        many = lookup != "has_key"
        items = value if many else [value]
        if isinstance(items, str) or not isinstance(items, list | tuple) or not items:
            raise FieldError(
                f"Lookup {lookup!r} in {key!r} takes "
                + ("a non-empty list of keys" if many else "a key")
                + f", not {value!r}."
            )
        keys = []
        for item in items:
            if not isinstance(item, str):
                raise FieldError(f"Lookup {lookup!r} in {key!r} takes string keys, not {item!r}.")
            keys.append(str(check_json_key(item)))
        return JSONLookup(col, lookup, path, tuple(keys), None, info)
    if lookup in ("contains", "contained_by"):
        return JSONLookup(col, lookup, path, (), _json_document(key, lookup, value), info)
    if not path:
        raise FieldError(f"Lookup {lookup!r} in {key!r} needs a key, e.g. 'data__owner__{lookup}'.")
    if lookup == "isnull":
        if not isinstance(value, bool):
            raise FieldError(f"Lookup 'isnull' in {key!r} takes True or False, not {value!r}.")
        return JSONLookup(col, "missing" if value else "present", path, (), None, info)
    if lookup == "exact" and value is None:
        return JSONLookup(col, "null", path, (), None, info)
    if lookup == "exact" and isinstance(value, dict | list):
        return JSONLookup(col, "equal", path, (), value, info)
    if isinstance(value, Expression):
        raise FieldError(
            f"A JSON key in {key!r} cannot be compared with an expression ({value!r})."
        )
    if lookup in ("in", "range"):
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
            raise FieldError(f"Lookup {lookup!r} in {key!r} takes a list of values, not {value!r}.")
        kinds = {_json_kind(key, v) for v in value}
        if len(kinds) > 1:
            raise FieldError(
                f"Lookup {lookup!r} in {key!r} takes values of one JSON type, got {value!r}."
            )
        kind = kinds.pop() if kinds else "string"
    elif lookup in _ORDERED:
        kind = _json_kind(key, value)
    else:  # iexact, icontains, startswith, regex, ...: text lookups
        kind = "string"
    if kind == "boolean" and lookup not in ("exact", "in"):
        raise FieldError(f"Lookup {lookup!r} in {key!r} cannot take a bool. Use exact.")
    field = _TEXT if kind == "string" else _BOOLEAN if kind == "boolean" else None
    lhs = JSONKey(col, path, kind, field)
    return query.build_transformed(key, value, lhs, lookup, field, info)


def _date_lookup(
    query: Query, key: str, col: Col, info: PathInfo, part: str, lookup: str, value: Any
) -> Node:
    field = info.field
    if part in ("date", "time"):
        cast = DateCast(col, part)
        return query.build_transformed(key, value, cast, lookup, cast.output_field, info)
    if (
        part == "year"
        and lookup in _ORDERED
        and isinstance(value, int)
        and not isinstance(value, bool)
    ):
        # Compare the column with the year's bounds, as Django does: an index on the
        # column serves it, where EXTRACT(YEAR ...) would scan every row.
        if not 1 <= value <= 9999:
            raise FieldError(f"Year {value!r} in {key!r} is out of range. Use 1 to 9999.")
        first: datetime.date = datetime.date(value, 1, 1)
        last: datetime.date = datetime.date(value, 12, 31)
        if field.internal_type == "datetime":
            first = datetime.datetime(value, 1, 1, tzinfo=datetime.UTC)
            last = datetime.datetime(value, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.UTC)
        prep = field.get_prep_value
        if lookup == "exact":
            return Lookup(col, "range", (prep(first), prep(last)), field, info)
        bound = {
            "gt": ("gt", last),
            "gte": ("gte", first),
            "lt": ("lt", first),
            "lte": ("lte", last),
        }
        op, edge = bound[lookup]
        return Lookup(col, op, prep(edge), field, info)
    return query.build_transformed(key, value, DatePart(col, part), lookup, _INTEGER, info)


def _array_lookup(
    query: Query,
    key: str,
    col: Col,
    info: PathInfo,
    transforms: tuple[str, ...],
    lookup: str,
    value: Any,
) -> Node:
    array_field: Any = info.field
    if not transforms:
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
            raise FieldError(f"Lookup {lookup!r} in {key!r} takes a list of values, not {value!r}.")
        prepared = array_field.get_prep_value(list(value))
        return JSONLookup(col, f"array_{lookup}", (), (), prepared, info)
    name = transforms[0]
    if name == "len":
        return query.build_transformed(key, value, ArrayLength(col), lookup, _INTEGER, info)
    base = array_field.base_field
    return query.build_transformed(key, value, ArrayIndex(col, int(name), base), lookup, base, info)
