"""Sans-IO query compiler: query state in, ``(sql, params)`` out.

:class:`Query` is the immutable-by-convention state behind a queryset. Names
are resolved against the model when the user calls ``filter()``/``order_by()``
and so on, into the SQL nodes defined here (:class:`Col`, :class:`Param`,
:class:`Lookup`, :class:`WhereNode`...). :class:`SQLCompiler` renders them;
every dialect decision (quoting, placeholders, operators, LIKE escaping,
LIMIT, RETURNING, random ordering, FOR UPDATE) comes from the database's
``ops``/``features``.

Compiled SELECTs are cached per query *shape*: the structure of the query
with the values abstracted (``filter(id=1)`` and ``filter(id=2)`` share one
SQL string). On a cache hit only the parameters are recomputed, by a
traversal (``collect``) that mirrors the rendering order exactly.

Filters across multi-valued relations (reverse foreign keys, many-to-many)
compile to ``pk IN (SELECT ...)`` subqueries, so a filter never duplicates
rows and ``exclude()`` means "no related row matches". Ordering, ``values()``
and aggregates across such relations use LEFT JOINs.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

from covet.db.exceptions import FieldError
from covet.db.expressions import Expression, F, Q
from covet.db.fields import IDENTIFIER, DecimalField, Field, ForeignKey, ManyToManyField
from covet.db.models import Model, _resolved_paths

if TYPE_CHECKING:
    from covet.db.queryset import QuerySet

_queryset_class: list[type[QuerySet[Any]]] = []


def _queryset_type() -> type[QuerySet[Any]]:
    # covet.db.queryset imports this module, so its class is looked up once, lazily.
    if not _queryset_class:
        from covet.db.queryset import QuerySet

        _queryset_class.append(QuerySet)
    return _queryset_class[0]


__all__ = (
    "LOOKUPS",
    "AggregateNode",
    "Col",
    "CombinedNode",
    "CompiledSelect",
    "JoinStep",
    "Lookup",
    "Node",
    "Param",
    "PathInfo",
    "Query",
    "SQLCompiler",
    "WhereNode",
    "check_identifier",
    "compile_delete",
    "compile_insert",
    "compile_select",
    "compile_update",
    "resolve_path",
)

LOOKUPS: Final = frozenset(
    {
        "exact", "iexact", "contains", "icontains", "startswith", "istartswith", "endswith",
        "iendswith", "gt", "gte", "lt", "lte", "in", "isnull", "range",
    }
)  # fmt: skip
_PATTERN_LOOKUPS: Final = frozenset(
    {"iexact", "contains", "icontains", "startswith", "istartswith", "endswith", "iendswith"}
)
_SORTED_LOOKUPS: Final = ", ".join(sorted(LOOKUPS))
_CACHE_LIMIT: Final = 4096
_select_cache: dict[tuple[Any, ...], CompiledSelect] = {}
# INSERT statements by (ops, model, columns, row count, returning): a bulk_create() of
# 1,000 rows renders thousands of placeholders, the same ones every time.
_INSERT_CACHE_LIMIT: Final = 256
_insert_cache: dict[tuple[Any, ...], str] = {}

Converter = Callable[[Any], Any]


def check_identifier(name: object, what: str) -> str:
    """Return ``name`` if it is a plain identifier, else raise FieldError.

    Raises:
        FieldError: ``name`` does not match ``^[A-Za-z_][A-Za-z0-9_]*$``.
    """
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise FieldError(
            f"Invalid {what} {name!r}. Use letters, digits and underscores, "
            "starting with a letter or underscore."
        )
    return name


# -- paths ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinStep:
    """One table joined on the way along a relation path."""

    key: tuple[str, ...]
    model: type[Model]
    lhs_column: str
    rhs_column: str
    nullable: bool
    multi: bool


@dataclass(frozen=True, slots=True)
class PathInfo:
    """A resolved ``a__b__c`` path: the joins to walk and the field at the end."""

    key: tuple[str, ...]
    steps: tuple[JoinStep, ...]
    field: Field[Any]
    multi_index: int | None
    ends_on_relation: bool

    @property
    def nullable(self) -> bool:
        """Return whether the column can be NULL (nullable field or LEFT-joined table)."""
        return self.field.null or any(s.nullable for s in self.steps)


def _is_field_name(model: type[Model], name: str) -> bool:
    meta = model._meta
    return name == "pk" or name in meta.fields_map or name in meta.reverse


def resolve_path(
    model: type[Model], parts: Sequence[str], *, allow_lookup: bool = True
) -> tuple[PathInfo, str]:
    """Resolve ``parts`` (a ``__``-split name) to a :class:`PathInfo` and a lookup.

    Successful resolutions are cached (``filter(id=...)`` in a request handler
    resolves the same path every time); errors are not.

    Raises:
        FieldError: A part is not a field, relation or lookup of the model reached;
            the message lists the valid choices.
    """
    key = (model, tuple(parts), allow_lookup)
    hit = _resolved_paths.get(key)
    if hit is None:
        hit = _resolve_path(model, parts, allow_lookup)
        # Relation cycles (author__posts__author...) make valid paths unbounded: cap it.
        if len(_resolved_paths) >= _CACHE_LIMIT:
            _resolved_paths.clear()
        _resolved_paths[key] = hit
    return hit


def _resolve_path(
    model: type[Model], parts: Sequence[str], allow_lookup: bool
) -> tuple[PathInfo, str]:
    n = len(parts)

    def tail(j: int, target: type[Model]) -> bool:
        # parts[j:] is nothing, or only a lookup name that is not also a field of target.
        return j >= n or (
            j == n - 1 and parts[j] in LOOKUPS and not _is_field_name(target, parts[j])
        )

    def pk_tail(j: int, target: type[Model]) -> bool:
        # parts[j:] names the target's primary key, optionally followed by a lookup.
        return j < n and parts[j] in ("pk", target._meta.pk.name) and tail(j + 1, target)

    steps: list[JoinStep] = []
    key: tuple[str, ...] = ()
    cur = model
    nullable = False
    field: Field[Any] | None = None
    ends_on_relation = False
    i = 0
    while i < n and field is None:
        name = check_identifier(parts[i], "field name")
        meta = cur._meta
        rel = meta.reverse.get(name) if name not in meta.fields_map else None
        if rel is not None and not rel.many_to_many:
            fk = rel.field
            assert isinstance(fk, ForeignKey)  # noqa: S101 - internal invariant
            key = (*key, name)
            nullable = True
            steps.append(
                JoinStep(key, fk.model, fk.target_field.column, fk.column, True, not fk.one_to_one)
            )
            cur = fk.model
            i += 1
            if tail(i, cur):
                field, ends_on_relation = cur._meta.pk, True
            continue
        if rel is not None:
            m2m = cast("ManyToManyField", rel.field)
            near, far, far_model = m2m.target_fk, m2m.source_fk, m2m.model
        else:
            f = meta.get_field(name)
            if not f.is_relation:
                field = f
                i += 1
                break
            if isinstance(f, ManyToManyField):
                m2m = f
                near, far, far_model = f.source_fk, f.target_fk, f.related_model
            else:
                assert isinstance(f, ForeignKey)  # noqa: S101 - internal invariant
                target = f.related_model
                if name != f.name or tail(i + 1, target):
                    field = f
                    i += 1
                elif pk_tail(i + 1, target):
                    # "author__id" compares the local author_id column: no join needed.
                    field = f
                    i += 2
                else:
                    key = (*key, name)
                    nullable = nullable or f.null
                    steps.append(
                        JoinStep(key, target, f.column, target._meta.pk.column, nullable, False)
                    )
                    cur = target
                    i += 1
                continue
        assert isinstance(m2m, ManyToManyField)  # noqa: S101 - internal invariant
        key = (*key, name)
        nullable = True
        steps.append(
            JoinStep((*key, "#"), m2m.through_model, meta.pk.column, near.column, True, True)
        )
        if tail(i + 1, far_model) or pk_tail(i + 1, far_model):
            field, ends_on_relation = far, True
            i += 1 if tail(i + 1, far_model) else 2
            continue
        steps.append(JoinStep(key, far_model, far.column, far_model._meta.pk.column, True, True))
        cur = far_model
        i += 1
    if field is None:
        raise FieldError(
            f"Path {'__'.join(parts)!r} on {model.__name__} does not name a field. "
            "Name one, e.g. 'author__name'."
        )
    rest = parts[i:]
    lookup = "exact"
    if rest:
        owner = field.model.__name__
        if len(rest) > 1 or rest[0] not in LOOKUPS or not allow_lookup:
            if field.is_relation or ends_on_relation:
                raise FieldError(
                    f"Cannot resolve {'__'.join(parts)!r} on {model.__name__}: "
                    f"{rest[0]!r} is not a field of the related model. Choices are: "
                    f"{', '.join(cur._meta.field_names())}."
                )
            raise FieldError(
                f"Unsupported lookup {'__'.join(rest)!r} on {owner}.{field.name}. "
                + (
                    f"Use one of: {_SORTED_LOOKUPS}."
                    if allow_lookup
                    else "Lookups are not allowed here."
                )
            )
        lookup = rest[0]
    multi_index = next((k for k, s in enumerate(steps) if s.multi), None)
    return PathInfo((*key, field.name), tuple(steps), field, multi_index, ends_on_relation), lookup


# -- nodes ---------------------------------------------------------------------------------------

_TYPE_FOR_PYTHON: Final[tuple[tuple[type, str], ...]] = (
    (bool, "bool"),
    (int, "int"),
    (float, "float"),
    (decimal.Decimal, "decimal"),
    (str, "str"),
    (datetime.datetime, "datetime"),
    (datetime.date, "date"),
    (datetime.time, "time"),
    (uuid.UUID, "uuid"),
    (bytes, "bytes"),
)


def _adapt_plain(value: Any, ops: Any) -> Any:
    """Adapt a value that has no field, by its Python type."""
    for cls, internal in _TYPE_FOR_PYTHON:
        if isinstance(value, cls):
            adapter = ops.get_adapter(internal)
            return adapter(value) if adapter is not None else value
    return value


class Node:
    """A resolved SQL expression."""

    __slots__ = ()
    contains_aggregate: bool = False
    output_field: Field[Any] | None = None

    @property
    def shape(self) -> Any:
        """Return a hashable description of the SQL this node renders (no values)."""
        raise NotImplementedError

    def as_sql(self, c: SQLCompiler) -> str:
        """Render the node, appending its parameters to ``c``."""
        raise NotImplementedError

    def collect(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters :meth:`as_sql` would, in the same order."""

    def converter(self, ops: Any) -> Converter | None:
        """Return the converter for values of this node read from the database."""
        f = self.output_field
        return f.from_db_converter(ops) if f is not None else None


class Col(Node):
    """A column reached through ``path`` (joins are added when rendered)."""

    __slots__ = ("output_field", "path")

    def __init__(self, path: PathInfo) -> None:
        self.path = path
        self.output_field = path.field

    @property
    def shape(self) -> Any:
        """Return the structural cache key of this node."""
        return self.path.key

    def as_sql(self, c: SQLCompiler) -> str:
        """Render the node, appending its parameters to the compiler."""
        return c.column(self.path)


class Param(Node):
    """A bound parameter, adapted by ``field`` (or by its Python type)."""

    __slots__ = ("field", "output_field", "value")

    def __init__(self, value: Any, field: Field[Any] | None) -> None:
        self.value = value
        self.field = field
        self.output_field = field

    @property
    def shape(self) -> Any:
        """Return the structural cache key of this node."""
        return "%"

    def prepared(self, ops: Any) -> Any:
        """Return the adapted parameter value."""
        if self.field is not None:
            return self.field.get_db_prep_value(self.value, ops)
        return _adapt_plain(self.value, ops)

    def as_sql(self, c: SQLCompiler) -> str:
        """Render the node, appending its parameters to the compiler."""
        return c.param(self.prepared(c.ops))

    def collect(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters that as_sql() renders, in order."""
        out.append(self.prepared(ops))


class CombinedNode(Node):
    """``lhs op rhs``; ``+`` on a text field uses the dialect's concatenation."""

    __slots__ = ("contains_aggregate", "lhs", "op", "output_field", "rhs")

    def __init__(self, lhs: Node, op: str, rhs: Node) -> None:
        out = lhs.output_field or rhs.output_field
        if op in "+-" and out is not None:
            # A bare value takes the type of the column it is combined with.
            if isinstance(rhs, Param) and rhs.field is None:
                rhs = Param(rhs.value, out)
            if isinstance(lhs, Param) and lhs.field is None:
                lhs = Param(lhs.value, out)
        self.lhs, self.op, self.rhs = lhs, op, rhs
        self.output_field = out
        self.contains_aggregate = lhs.contains_aggregate or rhs.contains_aggregate

    @property
    def is_concat(self) -> bool:
        """Return whether this is a text concatenation."""
        f = self.output_field
        return self.op == "+" and f is not None and f.internal_type == "str"

    @property
    def shape(self) -> Any:
        """Return the structural cache key of this node."""
        return ("op", self.op, self.lhs.shape, self.rhs.shape)

    def as_sql(self, c: SQLCompiler) -> str:
        """Render the node, appending its parameters to the compiler."""
        lhs = self.lhs.as_sql(c)
        rhs = self.rhs.as_sql(c)
        if self.is_concat:
            return str(c.ops.concat(lhs, rhs))
        return f"({lhs} {self.op} {rhs})"

    def collect(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters that as_sql() renders, in order."""
        self.lhs.collect(ops, out)
        self.rhs.collect(ops, out)


class AggregateNode(Node):
    """``FUNC([DISTINCT] expr)``, optionally over ``CASE WHEN condition THEN expr END``."""

    __slots__ = ("condition", "distinct", "function", "output_field", "source")
    contains_aggregate = True

    def __init__(
        self, function: str, source: Node | None, distinct: bool, condition: WhereNode | None
    ) -> None:
        self.function, self.source, self.distinct = function, source, distinct
        self.condition = condition
        self.output_field = source.output_field if source is not None else None

    @property
    def shape(self) -> Any:
        """Return the structural cache key of this node."""
        cond = self.condition.shape if self.condition is not None else None
        src = self.source.shape if self.source is not None else "*"
        return ("agg", self.function, src, self.distinct, cond)

    def as_sql(self, c: SQLCompiler) -> str:
        """Render the node, appending its parameters to the compiler."""
        inner = self.source.as_sql(c) if self.source is not None else "*"
        if self.condition is not None:
            c.join_filters += 1
            try:
                cond = c.where_sql(self.condition)
            finally:
                c.join_filters -= 1
            inner = f"CASE WHEN {cond} THEN {'1' if inner == '*' else inner} END"
        return f"{self.function}({'DISTINCT ' if self.distinct else ''}{inner})"

    def collect(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters that as_sql() renders, in order."""
        if self.source is not None:
            self.source.collect(ops, out)
        if self.condition is not None:
            self.condition.collect(ops, out)

    def converter(self, ops: Any) -> Converter | None:
        """Return the converter for values of this node read back."""
        if self.function == "COUNT":
            return int
        f = self.output_field
        if self.function == "AVG":
            if isinstance(f, DecimalField):
                return lambda v: decimal.Decimal(str(v)).quantize(f._quantum)
            return float
        if self.function == "SUM" and f is not None and f.internal_type == "bool":
            return int
        if self.function == "SUM" and isinstance(f, DecimalField):
            return lambda v: decimal.Decimal(str(v)).quantize(f._quantum)
        if self.function == "SUM" and f is not None and f.internal_type == "int":
            return int
        return super().converter(ops)


class Subquery(Node):
    """A nested SELECT (``field__in=queryset``)."""

    __slots__ = ("query",)

    def __init__(self, query: Query) -> None:
        self.query = query

    @property
    def shape(self) -> Any:
        """Return the structural cache key of this node."""
        return ("sub", self.query.shape())

    def as_sql(self, c: SQLCompiler) -> str:
        """Render the node, appending its parameters to the compiler."""
        sub = SQLCompiler(self.query, c.ops, c.features, parent=c)
        return sub.select_sql()

    def collect(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters that as_sql() renders, in order."""
        self.query.collect_params(ops, out)


class Lookup(Node):
    """A leaf condition ``lhs <lookup> value``."""

    __slots__ = ("contains_aggregate", "field", "lhs", "lookup", "path", "rhs", "value")

    def __init__(
        self,
        lhs: Node,
        lookup: str,
        value: Any,
        field: Field[Any] | None,
        path: PathInfo | None,
        rhs: Node | None = None,
    ) -> None:
        self.lhs, self.lookup, self.value, self.field, self.path = lhs, lookup, value, field, path
        self.rhs = rhs
        self.contains_aggregate = lhs.contains_aggregate or (
            rhs is not None and rhs.contains_aggregate
        )

    @property
    def shape(self) -> Any:
        """Return the structural cache key of this node."""
        if self.rhs is not None:
            vshape: Any = self.rhs.shape
        elif isinstance(self.value, Subquery):
            vshape = self.value.shape
        elif self.lookup == "in":
            vshape = len(self.value)
        elif self.lookup == "isnull":
            vshape = bool(self.value)
        else:
            vshape = "%"
        return ("lk", self.lhs.shape, self.lookup, vshape)

    def values(self, ops: Any) -> list[Any]:
        """Return the adapted parameters of this lookup, in rendering order."""
        lookup = self.lookup
        if lookup == "isnull":
            return []
        field = self.field
        if lookup in ("in", "range"):
            if field is None:
                return [_adapt_plain(v, ops) for v in self.value]
            return [field.get_db_prep_value(v, ops) for v in self.value]
        if lookup in _PATTERN_LOOKUPS:
            return [ops.prepare_lookup_value(lookup, self.value)]
        if field is None:
            return [_adapt_plain(self.value, ops)]
        return [field.get_db_prep_value(self.value, ops)]

    def render(self, c: SQLCompiler, lhs: str) -> str:
        """Render the condition for the already-rendered ``lhs``."""
        ops = c.ops
        lookup = self.lookup
        if lookup == "isnull":
            return str(ops.isnull_sql(lhs, bool(self.value)))
        if self.rhs is not None:
            return str(ops.lookup_sql(lookup, lhs, self.rhs.as_sql(c)))
        if lookup == "in" and isinstance(self.value, Subquery):
            return f"{lhs} IN ({self.value.as_sql(c)})"
        values = self.values(ops)
        if lookup == "in":
            return str(ops.in_sql(lhs, [c.param(v) for v in values]))
        if lookup == "range":
            return str(ops.range_sql(lhs, c.param(values[0]), c.param(values[1])))
        return str(ops.lookup_sql(lookup, lhs, c.param(values[0])))

    def collect(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters that as_sql() renders, in order."""
        self.lhs.collect(ops, out)
        if self.rhs is not None:
            self.rhs.collect(ops, out)
        elif self.lookup == "in" and isinstance(self.value, Subquery):
            self.value.collect(ops, out)
        else:
            out.extend(self.values(ops))


class WhereNode(Node):
    """AND/OR of children, possibly negated."""

    __slots__ = ("children", "connector", "contains_aggregate", "negated")

    def __init__(self, connector: str, negated: bool, children: tuple[Node, ...]) -> None:
        self.connector, self.negated, self.children = connector, negated, children
        self.contains_aggregate = any(ch.contains_aggregate for ch in children)

    @property
    def shape(self) -> Any:
        """Return the structural cache key of this node."""
        return (self.connector, self.negated, tuple(ch.shape for ch in self.children))

    def collect(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters that as_sql() renders, in order."""
        for child in self.children:
            child.collect(ops, out)

    def add(self, node: Node) -> WhereNode:
        """Return a new AND node with ``node`` appended."""
        if self.connector == "AND" and not self.negated:
            return WhereNode("AND", False, (*self.children, node))
        return WhereNode("AND", False, (self, node))


EMPTY_WHERE: Final = WhereNode("AND", False, ())


# -- query state ---------------------------------------------------------------------------------


class Query:
    """The structural state of a queryset; cloned, never mutated once shared."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.where: WhereNode = EMPTY_WHERE
        self.having: WhereNode = EMPTY_WHERE
        self.order_by: tuple[str, ...] | None = None
        self.low = 0
        self.high: int | None = None
        self.distinct = False
        self.select_related: tuple[str, ...] = ()
        self.only: tuple[str, ...] | None = None
        self.defer: tuple[str, ...] = ()
        self.annotations: dict[str, Node] = {}
        self.values_fields: tuple[str, ...] | None = None
        self.group_by_values = False
        self.for_update: tuple[bool, bool, tuple[str, ...]] | None = None
        self.empty = False
        self._shape: tuple[Any, ...] | None = None

    def clone(self) -> Query:
        """Return a copy that can be changed without affecting this query."""
        new = object.__new__(Query)
        new.__dict__.update(self.__dict__)
        new.annotations = dict(self.annotations)
        new._shape = None
        return new

    def shape(self) -> tuple[Any, ...]:
        """Return the cache key for this query's SQL (its structure without values)."""
        if self._shape is None:
            self._shape = (
                self.model,
                self.where.shape,
                self.having.shape,
                self.order_by,
                self.low,
                self.high,
                self.distinct,
                self.select_related,
                self.only,
                self.defer,
                tuple((k, v.shape) for k, v in self.annotations.items()),
                self.values_fields,
                self.group_by_values,
                self.for_update,
            )
        return self._shape

    @property
    def is_sliced(self) -> bool:
        """Return whether LIMIT/OFFSET applies."""
        return self.low != 0 or self.high is not None

    # -- resolution ----------------------------------------------------------------------------

    def resolve_ref(self, name: str, *, allow_joins: bool = True) -> Node:
        """Resolve an ``F()`` name: an annotation alias or a field path.

        Raises:
            FieldError: Unknown name, or a join where joins are not allowed.
        """
        if name in self.annotations:
            return self.annotations[name]
        path, _ = resolve_path(self.model, name.split("__"), allow_lookup=False)
        if not allow_joins and path.steps:
            raise FieldError(
                f"Cannot reference {name!r} across a relation here (update() writes one "
                "table). Use a field of the model itself."
            )
        return Col(path)

    def resolve_aggregate_source(self, expression: Expression) -> Node | None:
        """Resolve an aggregate's argument; ``F("*")`` (COUNT(*)) gives None."""
        if isinstance(expression, F) and expression.name == "*":
            return None
        return expression.resolve(self)

    def resolve_q(self, q: Q, *, joins: bool = False) -> WhereNode:
        """Resolve a ``Q`` tree into a :class:`WhereNode`."""
        children: list[Node] = []
        for child in q.children:
            if isinstance(child, Q):
                node = self.resolve_q(child, joins=joins)
                if node.children:
                    children.append(node)
            else:
                children.append(self.build_lookup(child[0], child[1]))
        return WhereNode(q.connector, q.negated, tuple(children))

    def build_lookup(self, key: str, value: Any) -> Lookup:
        """Resolve one ``field__lookup=value`` condition, checking names and the value.

        Raises:
            FieldError: Unknown field or lookup, or a value the lookup cannot take.
            ValidationError: The value does not fit the field (e.g. ``id="1 OR 1=1"``).
        """
        if not isinstance(key, str):
            raise FieldError(f"Invalid filter keyword {key!r}.")
        parts = key.split("__")
        path: PathInfo | None
        if parts[0] in self.annotations:
            lhs: Node = self.annotations[parts[0]]
            if len(parts) > 2 or (len(parts) == 2 and parts[1] not in LOOKUPS):
                raise FieldError(
                    f"Unsupported lookup {'__'.join(parts[1:])!r} on annotation "
                    f"{parts[0]!r}. Use one of: {_SORTED_LOOKUPS}."
                )
            lookup = parts[1] if len(parts) == 2 else "exact"
            path, field = None, lhs.output_field
            if isinstance(lhs, AggregateNode) and lhs.function == "COUNT":
                field = None
        else:
            path, lookup = resolve_path(self.model, parts)
            lhs = Col(path)
            field = path.field
        if isinstance(value, Expression):
            if lookup in ("in", "range", "isnull") or lookup in _PATTERN_LOOKUPS:
                raise FieldError(
                    f"Lookup {lookup!r} in {key!r} cannot take an expression ({value!r}). "
                    "Use exact, gt, gte, lt or lte."
                )
            return Lookup(lhs, lookup, None, field, path, rhs=value.resolve(self))
        if isinstance(value, _queryset_type()):
            if lookup not in ("in", "exact"):
                raise FieldError(f"A queryset can only be used with 'in', not {lookup!r}.")
            sub = value.query
            if sub.values_fields is None:
                sub = sub.clone()
                sub.values_fields = ("pk",)
            elif len(sub.values_fields) != 1:
                raise FieldError(
                    f"The subquery for {key!r} must select exactly one column; it selects "
                    f"{list(sub.values_fields)!r}. Use values('field')."
                )
            return Lookup(lhs, "in", Subquery(sub), field, path)
        if value is None:
            if lookup != "exact":
                raise FieldError(
                    f"Cannot compare {key!r} with None. Use '{parts[0]}__isnull=True' instead."
                )
            return Lookup(lhs, "isnull", True, field, path)
        prep = (lambda v: v) if field is None else field.get_prep_value
        if lookup == "isnull":
            if not isinstance(value, bool):
                raise FieldError(f"Lookup 'isnull' in {key!r} takes True or False, not {value!r}.")
            return Lookup(lhs, "isnull", value, field, path)
        if lookup in ("in", "range"):
            if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
                raise FieldError(
                    f"Lookup {lookup!r} in {key!r} takes a list of values, not {value!r}."
                )
            items = [v.pk if isinstance(v, Model) and not (field and field.is_relation) else v
                     for v in value]  # fmt: skip
            if lookup == "range" and len(items) != 2:
                raise FieldError(f"Lookup 'range' in {key!r} takes (low, high), got {value!r}.")
            if any(v is None for v in items):
                raise FieldError(f"Lookup {lookup!r} in {key!r} cannot contain None.")
            return Lookup(lhs, lookup, tuple(prep(v) for v in items), field, path)
        if lookup in _PATTERN_LOOKUPS:
            if field is not None and field.internal_type == "str":
                value = prep(value)
            if not isinstance(value, str):
                raise FieldError(f"Lookup {lookup!r} in {key!r} takes a string, not {value!r}.")
            return Lookup(lhs, lookup, value, field, path)
        if isinstance(value, Model) and field is not None and not field.is_relation:
            value = value.pk
        return Lookup(lhs, lookup, prep(value), field, path)

    # -- parameters for a cached shape ---------------------------------------------------------

    def selected_annotations(self) -> list[tuple[str, Node]]:
        """Return the annotations that appear in the SELECT list, in order."""
        if self.values_fields is None:
            return list(self.annotations.items())
        return [(n, self.annotations[n]) for n in self.values_fields if n in self.annotations]

    def order_nodes(self) -> list[tuple[str, Node | None, bool]]:
        """Return ``(name, annotation node or None, descending)`` per ORDER BY term."""
        terms = self.order_by if self.order_by is not None else self.model._meta.ordering
        out: list[tuple[str, Node | None, bool]] = []
        for term in terms:
            desc = term.startswith("-")
            name = term[1:] if desc else term
            out.append((name, self.annotations.get(name), desc))
        return out

    def collect_params(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters of :meth:`SQLCompiler.select_sql`, in rendering order."""
        for _, node in self.selected_annotations():
            node.collect(ops, out)
        self.where.collect(ops, out)
        self.having.collect(ops, out)
        for _, order_node, _desc in self.order_nodes():
            if order_node is not None:
                order_node.collect(ops, out)


# -- rendering -----------------------------------------------------------------------------------


@dataclass(slots=True)
class ModelLayout:
    """Where one model's columns sit in a row, and how to build the instance."""

    model: type[Model]
    attnames: tuple[str, ...]
    converters: tuple[tuple[int, Converter], ...]
    start: int
    end: int
    cache_name: str | None
    children: list[ModelLayout]


@dataclass(slots=True)
class CompiledSelect:
    """A compiled SELECT: SQL, parameters and the row layout."""

    sql: str
    params: list[Any]
    layout: ModelLayout | None
    names: tuple[str, ...]
    converters: tuple[tuple[int, Converter], ...]
    names_start: int
    builders: dict[Any, Any]


class SQLCompiler:
    """Render one :class:`Query` for one database's ``ops``/``features``.

    Args:
        query: The query to render.
        ops: The database's operations object.
        features: The database's feature flags.
        parent: The enclosing compiler, for subqueries (shares parameters and numbering).
    """

    def __init__(
        self, query: Query, ops: Any, features: Any, *, parent: SQLCompiler | None = None
    ) -> None:
        self.query = query
        self.ops = ops
        self.features = features
        self.quote: Callable[[str], str] = ops.quote_name
        if parent is None:
            self.params: list[Any] = []
            self.counter = [0]
            self.sub_counter = [0]
        else:
            self.params, self.counter, self.sub_counter = (
                parent.params, parent.counter, parent.sub_counter,
            )  # fmt: skip
        self.base = self.quote(query.model._meta.table)
        self.joins: dict[tuple[str, ...], str] = {}
        self.join_sql: list[str] = []
        self.join_filters = 0
        self.base_alias_prefix = "T" if parent is None else f"S{self._next_sub()}_"

    def _next_sub(self) -> int:
        self.sub_counter[0] += 1
        return self.sub_counter[0]

    def param(self, value: Any) -> str:
        """Append ``value`` as a parameter and return its placeholder."""
        self.params.append(value)
        self.counter[0] += 1
        return str(self.ops.placeholder(self.counter[0]))

    def join(self, steps: Sequence[JoinStep]) -> str:
        """Add the joins for ``steps`` (reusing existing ones) and return the last alias."""
        alias = self.base
        left = False
        for step in steps:
            left = left or step.nullable or step.multi
            existing = self.joins.get(step.key)
            if existing is None:
                new = self.quote(f"{self.base_alias_prefix}{len(self.joins) + 1}")
                kind = "LEFT OUTER JOIN" if left else "INNER JOIN"
                self.join_sql.append(
                    f"{kind} {self.quote(step.model._meta.table)} AS {new} ON "
                    f"{new}.{self.quote(step.rhs_column)} = {alias}.{self.quote(step.lhs_column)}"
                )
                self.joins[step.key] = existing = new
            alias = existing
        return str(alias)

    def column(self, path: PathInfo) -> str:
        """Render the column at the end of ``path``, joining as needed."""
        alias = self.join(path.steps) if path.steps else self.base
        return f"{alias}.{self.quote(path.field.column)}"

    # -- WHERE ---------------------------------------------------------------------------------

    def where_sql(self, node: Node, negated: bool = False) -> str:
        """Render a condition tree (``negated`` tracks the NOT parity for NULL handling)."""
        if isinstance(node, WhereNode):
            parity = negated ^ node.negated
            parts = [self.where_sql(ch, parity) for ch in node.children]
            parts = [p for p in parts if p]
            if not parts:
                return ""
            sql = parts[0] if len(parts) == 1 else "(" + f" {node.connector} ".join(parts) + ")"
            return f"NOT ({sql})" if node.negated else sql
        assert isinstance(node, Lookup)  # noqa: S101 - internal invariant
        path = node.path
        if path is not None and path.multi_index is not None and not self.join_filters:
            return self._multi_lookup(node, path)
        lhs = node.lhs.as_sql(self)
        sql = node.render(self, lhs)
        if negated and node.lookup != "isnull" and path is not None and path.nullable:
            # NOT (col = x) is NULL, not TRUE, when col is NULL: keep such rows out of the
            # condition so that exclude() returns them (Django semantics). lhs is a bare
            # column here, so repeating it repeats no parameter.
            sql = f"({sql} AND {lhs} IS NOT NULL)"
        return sql

    def _multi_lookup(self, node: Lookup, path: PathInfo) -> str:
        k = path.multi_index
        assert k is not None  # noqa: S101 - internal invariant
        q = self.quote
        outer_alias = self.join(path.steps[:k]) if k else self.base
        step = path.steps[k]
        n = self._next_sub()
        first = q(f"U{n}")
        alias = first
        joins = []
        for i, inner in enumerate(path.steps[k + 1 :], start=1):
            a = q(f"U{n}_{i}")
            joins.append(
                f" INNER JOIN {q(inner.model._meta.table)} AS {a} ON "
                f"{a}.{q(inner.rhs_column)} = {alias}.{q(inner.lhs_column)}"
            )
            alias = a
        col = f"{alias}.{q(path.field.column)}"
        link = f"{first}.{q(step.rhs_column)}"
        existence = node.lookup == "isnull" and path.ends_on_relation
        cond = f"{col} IS NOT NULL" if existence else node.render(self, col)
        sub = (
            f"SELECT {link} FROM {q(step.model._meta.table)} AS {first}{''.join(joins)} "
            f"WHERE {cond} AND {link} IS NOT NULL"
        )
        sql = f"{outer_alias}.{q(step.lhs_column)} IN ({sub})"
        return f"NOT ({sql})" if existence and node.value else sql

    # -- SELECT --------------------------------------------------------------------------------

    def _model_fields(self) -> list[Field[Any]]:
        q = self.query
        meta = q.model._meta
        fields = meta.concrete_fields
        if q.only is not None:
            wanted = {meta.get_field(n).name for n in q.only} | {meta.pk.name}
            fields = [f for f in fields if f.name in wanted]
        if q.defer:
            skip = {meta.get_field(n).name for n in q.defer} - {meta.pk.name}
            fields = [f for f in fields if f.name not in skip]
        return fields

    def _layout(
        self, model: type[Model], fields: Sequence[Field[Any]], start: int, name: str | None
    ) -> ModelLayout:
        convs = []
        for i, f in enumerate(fields):
            conv = f.from_db_converter(self.ops)
            if conv is not None:
                convs.append((i, conv))
        return ModelLayout(
            model, tuple(f.attname for f in fields), tuple(convs), start,
            start + len(fields), name, [],
        )  # fmt: skip

    def select_sql(self) -> str:
        """Render the SELECT (for subqueries: the values columns only)."""
        return self._select()[0]

    def _select(
        self,
    ) -> tuple[str, ModelLayout | None, tuple[str, ...], tuple[tuple[int, Converter], ...], int]:
        q = self.query
        qn = self.quote
        cols: list[str] = []
        group: list[str] = []
        layout: ModelLayout | None = None
        names: list[str] = []
        convs: list[tuple[int, Converter]] = []
        if q.values_fields is None:
            fields = self._model_fields()
            cols.extend(f"{self.base}.{qn(f.column)}" for f in fields)
            layout = self._layout(q.model, fields, 0, None)
            layouts: dict[tuple[str, ...], ModelLayout] = {(): layout}
            for rel in q.select_related:
                parts = rel.split("__")
                model = q.model
                for depth in range(1, len(parts) + 1):
                    prefix = tuple(parts[:depth])
                    fk = model._meta.get_field(parts[depth - 1])
                    assert isinstance(fk, ForeignKey)  # noqa: S101 - internal invariant
                    model = fk.related_model
                    if prefix in layouts:
                        continue
                    path, _ = resolve_path(q.model, [*prefix, model._meta.pk.name])
                    # resolve_path short-cuts "fk__id" to the local column: join explicitly.
                    nullable = fk.null or any(s.nullable for s in path.steps)
                    steps = (
                        *path.steps,
                        JoinStep(prefix, model, fk.column, model._meta.pk.column, nullable, False),
                    )
                    alias = self.join(steps)
                    rfields = model._meta.concrete_fields
                    child = self._layout(model, rfields, len(cols), fk.name)
                    cols.extend(f"{alias}.{qn(f.column)}" for f in rfields)
                    layouts[prefix[:-1]].children.append(child)
                    layouts[prefix] = child
            group.extend(cols)
            names_start = len(cols)
            for name, node in q.selected_annotations():
                if not node.contains_aggregate:
                    sql = node.as_sql(self)
                    if isinstance(node, Col):
                        group.append(sql)
                else:
                    sql = node.as_sql(self)
                conv = node.converter(self.ops)
                if conv is not None:
                    convs.append((len(cols), conv))
                cols.append(f"{sql} AS {qn(name)}")
                names.append(name)
        else:
            names_start = 0
            for name in q.values_fields:
                found = q.annotations.get(name)
                vnode = (
                    found
                    if found is not None
                    else Col(resolve_path(q.model, name.split("__"), allow_lookup=False)[0])
                )
                sql = vnode.as_sql(self)
                if not vnode.contains_aggregate and (
                    isinstance(vnode, Col) or not q.group_by_values
                ):
                    group.append(sql)
                conv = vnode.converter(self.ops)
                if conv is not None:
                    convs.append((len(cols), conv))
                cols.append(f"{sql} AS {qn(name)}" if name in q.annotations else sql)
                names.append(name)
        where = self.where_sql(q.where)
        having = self.where_sql(q.having)
        order: list[str] = []
        for name, annotation, desc in q.order_nodes():
            if name == "?":
                order.append(str(self.ops.random_function()))
                continue
            node = (
                annotation
                if annotation is not None
                else Col(resolve_path(q.model, name.split("__"), allow_lookup=False)[0])
            )
            sql = node.as_sql(self)
            if q.distinct and not node.contains_aggregate and sql not in cols:
                cols.append(sql)
            if not node.contains_aggregate and isinstance(node, Col):
                group.append(sql)
            order.append(f"{sql} DESC" if desc else f"{sql} ASC")
        aggregated = any(n.contains_aggregate for n in q.annotations.values()) or bool(having)
        if aggregated and (q.values_fields is None or not q.group_by_values):
            # annotate() before values(): one group per model row, as Django does.
            pk = f"{self.base}.{qn(q.model._meta.pk.column)}"
            if pk not in group:
                group.insert(0, pk)
        out = ["SELECT "]
        if q.distinct:
            out.append(f"{self.ops.distinct_sql()} ")
        out.append(", ".join(cols))
        out.append(f" FROM {self.base}")
        for j in self.join_sql:
            out.append(f" {j}")
        if where:
            out.append(f" WHERE {where}")
        if aggregated and group:
            out.append(" GROUP BY " + ", ".join(dict.fromkeys(group)))
        if having:
            out.append(f" HAVING {having}")
        if order:
            out.append(" ORDER BY " + ", ".join(order))
        limit = None if q.high is None else q.high - q.low
        lo = str(self.ops.limit_offset(limit, q.low or None))
        if lo:
            out.append(f" {lo}")
        if q.for_update is not None and self.features.supports_select_for_update:
            nowait, skip_locked, of = q.for_update
            out.append(f" {self.ops.for_update_sql(nowait=nowait, skip_locked=skip_locked, of=of)}")
        return "".join(out), layout, tuple(names), tuple(convs), names_start

    def count_sql(self) -> str:
        """Render ``SELECT COUNT(*)`` for the query (wrapping sliced/distinct/grouped ones)."""
        q = self.query
        if q.is_sliced or q.distinct or q.annotations or q.values_fields is not None:
            inner = self.select_sql()
            return f"SELECT COUNT(*) FROM ({inner}) {self.quote('subquery')}"
        where = self.where_sql(q.where)
        joins = "".join(f" {j}" for j in self.join_sql)
        return f"SELECT COUNT(*) FROM {self.base}{joins}" + (f" WHERE {where}" if where else "")

    def aggregate_sql(self, aggregates: dict[str, Node]) -> str:
        """Render ``SELECT agg AS name, ...`` over the filtered rows."""
        cols = [f"{node.as_sql(self)} AS {self.quote(name)}" for name, node in aggregates.items()]
        where = self.where_sql(self.query.where)
        joins = "".join(f" {j}" for j in self.join_sql)
        sql = f"SELECT {', '.join(cols)} FROM {self.base}{joins}"
        return sql + (f" WHERE {where}" if where else "")

    def exists_sql(self) -> str:
        """Render a one-row existence probe."""
        q = self.query
        where = self.where_sql(q.where)
        having = self.where_sql(q.having)
        joins = "".join(f" {j}" for j in self.join_sql)
        sql = f"SELECT 1 FROM {self.base}{joins}" + (f" WHERE {where}" if where else "")
        if having:
            pk = f"{self.base}.{self.quote(q.model._meta.pk.column)}"
            sql += f" GROUP BY {pk} HAVING {having}"
        return f"{sql} {self.ops.limit_offset(1, None)}"


def compile_select(query: Query, ops: Any, features: Any) -> CompiledSelect:
    """Compile a SELECT, reusing the cached SQL for a query of the same shape."""
    key = (ops, query.shape())
    hit = _select_cache.get(key)
    if hit is not None:
        params: list[Any] = []
        query.collect_params(ops, params)
        return CompiledSelect(hit.sql, params, hit.layout, hit.names, hit.converters,
                              hit.names_start, hit.builders)  # fmt: skip
    c = SQLCompiler(query, ops, features)
    sql, layout, names, convs, names_start = c._select()
    if len(_select_cache) >= _CACHE_LIMIT:
        _select_cache.clear()
    result = CompiledSelect(sql, c.params, layout, names, convs, names_start, {})
    _select_cache[key] = result
    return result


def compile_insert(
    model: type[Model],
    fields: Sequence[Field[Any]],
    rows: Sequence[Sequence[Any]],
    ops: Any,
    *,
    returning: bool,
) -> str:
    """Render a (multi-row) INSERT; the values in ``rows`` are only counted here."""
    key = (ops, model, tuple(f.column for f in fields), len(rows), returning)
    sql = _insert_cache.get(key)
    if sql is None:
        sql = _render_insert(model, fields, len(rows), ops, returning)
        if len(_insert_cache) >= _INSERT_CACHE_LIMIT:
            _insert_cache.clear()
        _insert_cache[key] = sql
    return sql


def _render_insert(
    model: type[Model], fields: Sequence[Field[Any]], n_rows: int, ops: Any, returning: bool
) -> str:
    q = ops.quote_name
    table = q(model._meta.table)
    counter = 0
    if not fields:
        sql = str(ops.insert_default_values(table))
    else:
        groups = []
        for _ in range(n_rows):
            phs = []
            for _f in fields:
                counter += 1
                phs.append(str(ops.placeholder(counter)))
            groups.append(f"({', '.join(phs)})")
        cols = ", ".join(q(f.column) for f in fields)
        sql = f"INSERT INTO {table} ({cols}) VALUES {', '.join(groups)}"
    if returning:
        sql += f" {ops.returning([model._meta.pk.column])}"
    return sql


def compile_update(
    query: Query, values: Sequence[tuple[Field[Any], Node]], ops: Any, features: Any
) -> tuple[str, list[Any], bool]:
    """Render ``UPDATE table SET ... WHERE ...``.

    Returns:
        The SQL, its parameters, and whether the WHERE needed joins (then the
        caller must select the primary keys first and update by key).
    """
    c = SQLCompiler(query, ops, features)
    sets = [f"{c.quote(f.column)} = {node.as_sql(c)}" for f, node in values]
    where = c.where_sql(query.where)
    sql = f"UPDATE {c.base} SET {', '.join(sets)}" + (f" WHERE {where}" if where else "")
    return sql, c.params, bool(c.join_sql)


def compile_delete(query: Query, ops: Any, features: Any) -> tuple[str, list[Any], bool]:
    """Render ``DELETE FROM table WHERE ...`` (see :func:`compile_update` for the flag)."""
    c = SQLCompiler(query, ops, features)
    where = c.where_sql(query.where)
    sql = f"DELETE FROM {c.base}" + (f" WHERE {where}" if where else "")
    return sql, c.params, bool(c.join_sql)
