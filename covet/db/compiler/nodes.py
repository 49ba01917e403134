"""The resolved SQL expression nodes a query is built from.

Each node renders itself with :meth:`Node.as_sql` and, for a cached query
shape, re-collects its parameters with :meth:`Node.collect` in exactly the
same order.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

from covet.db.compiler.numeric import (
    ExpressionDecimalField,
    arithmetic_field,
    is_integer,
    numeric_field,
)
from covet.db.compiler.paths import _COMPARISONS, _PATTERN_LOOKUPS, _REGEX_LOOKUPS
from covet.db.exceptions import FieldError, ValidationError
from covet.db.fields import DecimalField, Field

if TYPE_CHECKING:
    from covet.db.compiler.paths import PathInfo
    from covet.db.compiler.query import Query
    from covet.db.compiler.select import SQLCompiler
    from covet.db.models import Model

__all__ = (
    "EMPTY_WHERE",
    "AggregateNode",
    "CaseNode",
    "Col",
    "CombinedNode",
    "Converter",
    "FieldParam",
    "Lookup",
    "Node",
    "OuterRefNode",
    "Param",
    "SubqueryNode",
    "Transform",
    "TypedParam",
    "WhereNode",
    "field_shape",
)


Converter = Callable[[Any], Any]


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
    """Adapt a value that has no field, by its Python type.

    Raises:
        ValidationError: The backend's adapter refused the value because the database
            would not store it exactly (keyed ``"value"``, as there is no field to name).
    """
    for cls, internal in _TYPE_FOR_PYTHON:
        if isinstance(value, cls):
            adapter = ops.get_adapter(internal)
            if adapter is None:
                return value
            try:
                return adapter(value)
            except ValueError as exc:
                raise ValidationError({"value": [str(exc)]}) from None
    return value


def field_shape(field: Field[Any] | None) -> Any:
    """Return what the SQL and converters of a value typed by ``field`` depend on.

    Part of a node's cache key: a model's field by identity, a free-standing one
    (``output_field=DecimalField(...)``) by its type and scale, so equal
    declarations share the cached SQL and different ones never do.
    """
    if field is None or getattr(field, "model", None) is not None:
        return field
    return (type(field), field.internal_type, getattr(field, "decimal_places", None),
            getattr(field, "scale", None))  # fmt: skip


class Node:
    """A resolved SQL expression."""

    __slots__ = ()
    contains_aggregate: bool = False
    output_field: Field[Any] | None = None

    @property
    def shape(self) -> Any:
        """Return a hashable description of the SQL this node renders (no values)."""
        raise NotImplementedError(f"{type(self).__name__} must implement shape.")

    def as_sql(self, c: SQLCompiler) -> str:
        """Render the node, appending its parameters to ``c``."""
        raise NotImplementedError(f"{type(self).__name__} must implement as_sql().")

    def collect(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters :meth:`as_sql` would, in the same order."""

    def converter(self, ops: Any) -> Converter | None:
        """Return the converter for values of this node read from the database."""
        f = self.output_field
        return f.from_db_converter(ops) if f is not None else None

    def get_children(self) -> Iterator[Node]:
        """Yield the nodes this one is built from (to find ``OuterRef`` inside a subquery).

        The default finds every node (or tuple of nodes) held in a slot, so a new node
        class needs no override unless it keeps its children elsewhere.
        """
        for cls in type(self).__mro__:
            for name in getattr(cls, "__slots__", ()):
                value = getattr(self, name, None)
                if isinstance(value, Node):
                    yield value
                elif isinstance(value, tuple | list):
                    yield from (v for v in value if isinstance(v, Node))


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


class Transform(Node):
    """A column turned into another value (a JSON key, a date part) before a lookup.

    Subclasses render through :meth:`apply`, so the same transform also wraps a
    column of a subquery (filters across many-valued relations). A transform holds
    no parameters: what it needs (keys, part names) is checked and in its shape.
    """

    __slots__ = ("lhs", "output_field")
    #: Can the result be NULL for a non-NULL column (a missing JSON key)?
    nullable: bool = False

    def __init__(self, lhs: Col, output_field: Field[Any] | None) -> None:
        self.lhs = lhs
        self.output_field = output_field

    @property
    def shape(self) -> Any:
        """Return the structural cache key of this node."""
        return (type(self).__name__, self.lhs.shape, self.details())

    def details(self) -> Any:
        """Return what, besides the column, decides the SQL (part of the shape)."""
        raise NotImplementedError(f"{type(self).__name__} must implement details().")

    def apply(self, c: SQLCompiler, sql: str) -> str:
        """Render the transform of the already-rendered column ``sql``."""
        raise NotImplementedError(f"{type(self).__name__} must implement apply().")

    def as_sql(self, c: SQLCompiler) -> str:
        """Render the node (the column, then the transform)."""
        return self.apply(c, self.lhs.as_sql(c))


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


class TypedParam(Param):
    """A plain number bound with the SQL type of its Python type (see :mod:`.numeric`).

    The type is part of the shape: SQL cached for an ``int`` value (``CAST($1
    AS BIGINT)`` on PostgreSQL) is never reused for a ``Decimal``.
    """

    __slots__ = ("internal_type",)

    def __init__(self, value: Any, internal_type: str) -> None:
        super().__init__(value, None)
        self.internal_type = internal_type
        self.output_field = numeric_field(internal_type)

    @property
    def shape(self) -> Any:
        """Return the structural cache key of this node."""
        return ("%", self.internal_type)

    def as_sql(self, c: SQLCompiler) -> str:
        """Render the node, appending its parameters to the compiler."""
        return str(c.ops.cast_param(c.param(self.prepared(c.ops)), self.internal_type))


class FieldParam(Param):
    """A value bound with the SQL type of ``field`` (``ops.cast_param()``).

    Used where nothing beside the parameter types it, as in the branches of a
    ``CASE``: PostgreSQL would read an untyped ``$1`` there as text.
    """

    __slots__ = ()

    def __init__(self, value: Any, field: Field[Any]) -> None:
        super().__init__(value, field)

    @property
    def shape(self) -> Any:
        """Return the structural cache key of this node."""
        return ("%", field_shape(self.field))

    def as_sql(self, c: SQLCompiler) -> str:
        """Render the node, appending its parameters to the compiler."""
        assert self.field is not None  # noqa: S101 - set in __init__
        placeholder = c.param(self.prepared(c.ops))
        return str(c.ops.cast_param(placeholder, self.field.internal_type))


class CombinedNode(Node):
    """``lhs op rhs``; ``+`` on a text field uses the dialect's concatenation."""

    __slots__ = ("contains_aggregate", "lhs", "op", "output_field", "rhs")

    def __init__(self, lhs: Node, op: str, rhs: Node) -> None:
        # Numbers on both sides promote as in SQL, and a plain number keeps its own type.
        out = arithmetic_field(lhs.output_field, op, rhs.output_field)
        if out is None:
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
        op = self.op
        if op == "/" and is_integer(self.lhs.output_field) and is_integer(self.rhs.output_field):
            op = c.ops.integer_division_operator
        return f"({lhs} {op} {rhs})"

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
        """Render the node, appending its parameters to the compiler.

        A ``filter=`` condition becomes ``FUNC(expr) FILTER (WHERE condition)``
        where ``features.supports_aggregate_filter_clause``, else
        ``FUNC(CASE WHEN condition THEN expr END)``: the same rows either way, as
        every aggregate skips NULL. The parameters follow the SQL text's order.
        """
        distinct = "DISTINCT " if self.distinct else ""
        condition = self.condition
        if condition is None:
            inner = self.source.as_sql(c) if self.source is not None else "*"
            return f"{self.function}({distinct}{inner})"
        if c.features.supports_aggregate_filter_clause:
            inner = self.source.as_sql(c) if self.source is not None else "*"
            return f"{self.function}({distinct}{inner}) FILTER (WHERE {self._condition(c)})"
        cond = self._condition(c)
        inner = self.source.as_sql(c) if self.source is not None else "1"
        return f"{self.function}({distinct}CASE WHEN {cond} THEN {inner} END)"

    def _condition(self, c: SQLCompiler) -> str:
        # A filter across a relation reads the rows of the aggregate's own join.
        assert self.condition is not None  # noqa: S101 - checked by the caller
        c.join_filters += 1
        try:
            return c.where_sql(self.condition)
        finally:
            c.join_filters -= 1

    def collect(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters that as_sql() renders, in order."""
        condition = self.condition
        if condition is not None and not ops.features.supports_aggregate_filter_clause:
            condition.collect(ops, out)
            condition = None
        if self.source is not None:
            self.source.collect(ops, out)
        if condition is not None:
            condition.collect(ops, out)

    def converter(self, ops: Any) -> Converter | None:
        """Return the converter for values of this node read back."""
        if self.function == "COUNT":
            return int
        f = self.output_field
        if self.function == "AVG":
            if isinstance(f, DecimalField):
                return lambda v: decimal.Decimal(str(v)).quantize(f._quantum)
            if isinstance(f, ExpressionDecimalField):
                return super().converter(ops)
            return float
        if self.function == "SUM" and f is not None and f.internal_type == "bool":
            return int
        if self.function == "SUM" and isinstance(f, DecimalField):
            return lambda v: decimal.Decimal(str(v)).quantize(f._quantum)
        if self.function == "SUM" and f is not None and f.internal_type == "int":
            return int
        return super().converter(ops)


class SubqueryNode(Node):
    """A nested SELECT: ``field__in=queryset``, a scalar ``(SELECT ...)`` or ``EXISTS``.

    ``kind`` is ``"in"`` (the bare SELECT, which the ``IN`` lookup wraps),
    ``"scalar"`` (one value: ``Subquery()``) or ``"exists"`` (``Exists()``,
    ``NOT EXISTS`` when ``negated``). The inner query renders with its own
    compiler whose parent is the enclosing one, so ``OuterRef`` columns name the
    enclosing query's table.
    """

    __slots__ = ("kind", "negated", "output_field", "query")

    def __init__(
        self,
        query: Query,
        kind: str = "in",
        output_field: Field[Any] | None = None,
        *,
        negated: bool = False,
    ) -> None:
        if query.empty:
            # .none() never queries on its own; as a subquery it must still match nothing.
            query = query.clone()
            query.where = query.where.add(query.build_lookup("pk__in", ()))
        self.query, self.kind, self.output_field, self.negated = query, kind, output_field, negated

    @property
    def shape(self) -> Any:
        """Return the structural cache key of this node."""
        return ("sub", self.kind, self.negated, field_shape(self.output_field), self.query.shape())

    def as_sql(self, c: SQLCompiler) -> str:
        """Render the node, appending its parameters to the compiler."""
        # type(c) is SQLCompiler: naming it would make this module import select.py,
        # which imports this one.
        sql = type(c)(self.query, c.ops, c.features, parent=c).select_sql()
        if self.kind == "scalar":
            return f"({sql})"
        if self.kind == "exists":
            return f"{'NOT ' if self.negated else ''}EXISTS({sql})"
        return sql

    def collect(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters that as_sql() renders, in order."""
        self.query.collect_params(ops, out)

    def get_children(self) -> Iterator[Node]:
        """Yield nothing: the inner query's nodes belong to another level (see walk_query())."""
        return iter(())


class OuterRefNode(Node):
    """A column of the query ``depth`` levels out (``OuterRef("pk")`` in a subquery).

    It renders through the enclosing compiler, so the column carries that
    query's table (and joins there). The name was checked against the outer
    model when the subquery was resolved (see :func:`bind_outer_refs`).
    """

    __slots__ = ("depth", "name")

    def __init__(self, name: str, depth: int) -> None:
        self.name, self.depth = name, depth

    @property
    def shape(self) -> Any:
        """Return the structural cache key of this node."""
        return ("outer", self.name, self.depth)

    def as_sql(self, c: SQLCompiler) -> str:
        """Render the outer column through the enclosing compiler."""
        target: SQLCompiler | None = c
        for _ in range(self.depth):
            target = target.parent if target is not None else None
        if target is None:
            raise FieldError(
                f"OuterRef({self.name!r}) is used outside a subquery. Put the queryset in "
                "Subquery(), Exists() or a field__in= filter of another query."
            )
        return target.column(outer_path(target.query.model, self.name, allow_joins=True))


def outer_path(model: type[Model], name: str, *, allow_joins: bool) -> PathInfo:
    """Resolve ``OuterRef(name)`` against the outer ``model``.

    Raises:
        FieldError: ``name`` is not a field path of ``model``, crosses a
            multi-valued relation, or crosses any relation where joins are not allowed.
    """
    from covet.db.compiler.paths import resolve_path

    try:
        path, _ = resolve_path(model, name.split("__"), allow_lookup=False)
    except FieldError as exc:
        raise FieldError(
            f"OuterRef({name!r}) does not name a field of {model.__name__}: {exc}"
        ) from None
    multi = path.multi_index is not None
    if multi or (path.steps and not allow_joins):
        raise FieldError(
            f"OuterRef({name!r}) crosses a {'multi-valued ' if multi else ''}"
            f"relation of {model.__name__}, which is not allowed here. Reference a column of "
            f"{model.__name__} itself (or a forward foreign key's column)."
        )
    return path


class Lookup(Node):
    """A leaf condition ``lhs <lookup> value``.

    ``shape`` is an attribute set once here (a property costs a call at every
    compile): a lookup never changes after it is built.
    """

    __slots__ = ("contains_aggregate", "field", "lhs", "lookup", "path", "rhs", "shape", "value")

    def __init__(
        self,
        lhs: Node,
        lookup: str,
        value: Any,
        field: Field[Any] | None,
        path: PathInfo | None,
        rhs: Node | None = None,
        *,
        shape: Any = None,
    ) -> None:
        """Build the condition; ``shape`` is the caller's precomputed :attr:`shape`, if any."""
        self.lhs, self.lookup, self.value, self.field, self.path = lhs, lookup, value, field, path
        self.rhs = rhs
        self.contains_aggregate = lhs.contains_aggregate or (
            rhs is not None and rhs.contains_aggregate
        )
        if shape is None:
            if rhs is not None:
                vshape: Any = rhs.shape
            elif isinstance(value, SubqueryNode):
                vshape = value.shape
            elif lookup == "in":
                vshape = len(value)
            elif lookup == "isnull":
                vshape = bool(value)
            else:
                vshape = "%"
            shape = ("lk", lhs.shape, lookup, vshape)
        #: The structural cache key of this node.
        self.shape: Any = shape

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
            if lookup in _REGEX_LOOKUPS:
                rhs = self.rhs.as_sql(c)
                return str(ops.regex_sql(lhs, rhs, insensitive=lookup == "iregex"))
            return str(ops.lookup_sql(lookup, lhs, self.rhs.as_sql(c)))
        if lookup == "in" and isinstance(self.value, SubqueryNode):
            return f"{lhs} IN ({self.value.as_sql(c)})"
        values = self.values(ops)
        if lookup == "in":
            return str(ops.in_sql(lhs, [c.param(v) for v in values]))
        if lookup == "range":
            return str(ops.range_sql(lhs, c.param(values[0]), c.param(values[1])))
        if lookup in _REGEX_LOOKUPS:
            return str(ops.regex_sql(lhs, c.param(values[0]), insensitive=lookup == "iregex"))
        return str(ops.lookup_sql(lookup, lhs, c.param(values[0])))

    def collect(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters that as_sql() renders, in order."""
        lhs = self.lhs
        if type(lhs) is not Col:  # a column has no parameters
            lhs.collect(ops, out)
        if self.rhs is not None:
            self.rhs.collect(ops, out)
        elif self.lookup in _COMPARISONS and self.field is not None:
            # The common case (filter(pk=...)): one value adapted by its field.
            out.append(self.field.get_db_prep_value(self.value, ops))
        elif self.lookup == "in" and isinstance(self.value, SubqueryNode):
            self.value.collect(ops, out)
        else:
            out.extend(self.values(ops))


class WhereNode(Node):
    """AND/OR of children, possibly negated.

    Immutable, so ``shape`` and ``contains_aggregate`` are attributes computed
    once here rather than properties walking the children at every compile.
    """

    __slots__ = ("children", "connector", "contains_aggregate", "negated", "shape")

    def __init__(self, connector: str, negated: bool, children: tuple[Node, ...]) -> None:
        self.connector, self.negated, self.children = connector, negated, children
        if len(children) == 1:  # the usual case, without building a generator
            child = children[0]
            self.contains_aggregate = child.contains_aggregate
            shapes: tuple[Any, ...] = (child.shape,)
        else:
            self.contains_aggregate = any(child.contains_aggregate for child in children)
            shapes = tuple([child.shape for child in children])
        #: The structural cache key of this node.
        self.shape: Any = (connector, negated, shapes)

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


class CaseNode(Node):
    """``CASE WHEN condition THEN value ... [ELSE default] END``."""

    __slots__ = ("contains_aggregate", "default", "output_field", "shape", "whens")

    def __init__(
        self,
        whens: tuple[tuple[WhereNode, Node], ...],
        default: Node | None,
        output_field: Field[Any],
    ) -> None:
        self.whens, self.default, self.output_field = whens, default, output_field
        self.contains_aggregate = any(
            c.contains_aggregate or v.contains_aggregate for c, v in whens
        ) or (default is not None and default.contains_aggregate)
        #: The structural cache key of this node.
        self.shape: Any = (
            "case",
            tuple([(c.shape, v.shape) for c, v in whens]),
            default.shape if default is not None else None,
            field_shape(output_field),
        )

    def as_sql(self, c: SQLCompiler) -> str:
        """Render the node, appending its parameters to the compiler."""
        parts = ["CASE"]
        for condition, value in self.whens:
            cond = c.where_sql(condition)
            parts.append(f"WHEN {cond} THEN {value.as_sql(c)}")
        if self.default is not None:
            parts.append(f"ELSE {self.default.as_sql(c)}")
        parts.append("END")
        return " ".join(parts)

    def collect(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters that as_sql() renders, in order."""
        for condition, value in self.whens:
            condition.collect(ops, out)
            value.collect(ops, out)
        if self.default is not None:
            self.default.collect(ops, out)

    def get_children(self) -> Iterator[Node]:
        """Yield the conditions and values."""
        for condition, value in self.whens:
            yield condition
            yield value
        if self.default is not None:
            yield self.default
