"""Query expressions: ``Q`` filters, ``F`` column references, ``Value`` and aggregates.

These are the *unresolved* objects users write. A queryset resolves them
against its model (checking every name, so a typo raises
:class:`~covet.db.exceptions.FieldError` at ``filter()`` time, not at
execution) into the SQL nodes of :mod:`covet.db.compiler`.

``F`` supports ``+ - * /`` with other expressions or plain values. ``+``
between text becomes the dialect's string concatenation (``||`` or
``CONCAT``): the type of the ``F`` field decides, so ``F("title") + "!"``
appends and ``F("views") + 1`` adds.

A plain number is typed by its Python type, never by the column beside it:
``F("quantity") * Decimal("2.5")`` multiplies by an exact 2.5 on every
backend (PostgreSQL would otherwise infer an integer parameter and truncate
it), and the result promotes as in SQL: int < Decimal < float.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import uuid
from typing import TYPE_CHECKING, Any, Final

from covet.db.exceptions import FieldError

if TYPE_CHECKING:
    from covet.db.compiler import Node, Query
    from covet.db.fields import Field

__all__ = (
    "Avg",
    "Case",
    "Combined",
    "Count",
    "Exists",
    "Expression",
    "F",
    "Max",
    "Min",
    "OrderBy",
    "OuterRef",
    "Q",
    "Subquery",
    "Sum",
    "Value",
    "When",
)

_OPERATORS: Final = frozenset({"+", "-", "*", "/"})


class Expression:
    """Base of ``F``, ``Value``, combinations and aggregates."""

    contains_aggregate: bool = False

    def resolve(self, query: Query, *, allow_joins: bool = True) -> Node:
        """Return the SQL node for this expression against ``query``'s model."""
        raise NotImplementedError(f"{type(self).__name__} must implement resolve().")

    def _combine(self, other: Any, op: str, reverse: bool) -> Combined:
        rhs = other if isinstance(other, Expression) else Value(other)
        return Combined(rhs, op, self) if reverse else Combined(self, op, rhs)

    def __add__(self, other: Any) -> Combined:
        return self._combine(other, "+", False)

    def __sub__(self, other: Any) -> Combined:
        return self._combine(other, "-", False)

    def __mul__(self, other: Any) -> Combined:
        return self._combine(other, "*", False)

    def __truediv__(self, other: Any) -> Combined:
        return self._combine(other, "/", False)

    def __radd__(self, other: Any) -> Combined:
        return self._combine(other, "+", True)

    def __rsub__(self, other: Any) -> Combined:
        return self._combine(other, "-", True)

    def __rmul__(self, other: Any) -> Combined:
        return self._combine(other, "*", True)

    def __rtruediv__(self, other: Any) -> Combined:
        return self._combine(other, "/", True)

    def asc(self) -> OrderBy:
        """Order by this expression, ascending: ``order_by(Subquery(...).asc())``."""
        return OrderBy(self, descending=False)

    def desc(self) -> OrderBy:
        """Order by this expression, descending: ``order_by(F("views").desc())``."""
        return OrderBy(self, descending=True)


class OrderBy:
    """An expression with a direction, for ``order_by()`` (made by ``.asc()``/``.desc()``).

    Args:
        expression: What to order by.
        descending: Largest first.
    """

    def __init__(self, expression: Expression, *, descending: bool = False) -> None:
        if not isinstance(expression, Expression):
            raise FieldError(f"OrderBy() takes an expression, not {expression!r}.")
        self.expression, self.descending = expression, descending

    def __repr__(self) -> str:
        return f"{self.expression!r}.{'desc' if self.descending else 'asc'}()"


class F(Expression):
    """Reference a column by field name or ``relation__field`` path.

    Args:
        name: A field name, ``pk``, an annotation alias, or a path across relations.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def resolve(self, query: Query, *, allow_joins: bool = True) -> Node:
        """Resolve to a column (or an annotation already on the query)."""
        return query.resolve_ref(self.name, allow_joins=allow_joins)

    def __repr__(self) -> str:
        return f"F({self.name!r})"


class Value(Expression):
    """A literal value, always sent as a bound parameter.

    An ``int``, ``float`` or ``Decimal`` keeps the SQL type of its Python
    type (BIGINT, DOUBLE PRECISION, NUMERIC); other values are bound as they
    are, unless ``output_field`` types them.

    Args:
        value: Any value the database adapter accepts (str, int, Decimal...).
        output_field: The field whose type the value is bound with and read back as
            (``Value(True, output_field=fields.BooleanField())``).
    """

    def __init__(self, value: Any, *, output_field: Field[Any] | None = None) -> None:
        self.value = value
        self.output_field = output_field

    def resolve(self, query: Query, *, allow_joins: bool = True) -> Node:
        """Resolve to a parameter node, typed by the value's Python type if it is a number."""
        from covet.db.compiler import Param, TypedParam
        from covet.db.compiler.nodes import FieldParam
        from covet.db.compiler.numeric import numeric_value

        if self.output_field is not None:
            return FieldParam(_prepared(self.output_field, self.value), self.output_field)
        number = numeric_value(self.value)
        if number is not None:
            return TypedParam(number[1], number[0])
        return Param(self.value, None)

    def __repr__(self) -> str:
        return f"Value({self.value!r})"


class Combined(Expression):
    """``lhs <op> rhs`` for ``+ - * /``; ``+`` on text concatenates."""

    def __init__(self, lhs: Expression, op: str, rhs: Expression) -> None:
        if op not in _OPERATORS:
            raise FieldError(f"Unsupported operator {op!r}. Use one of: + - * /.")
        self.lhs, self.op, self.rhs = lhs, op, rhs
        self.contains_aggregate = lhs.contains_aggregate or rhs.contains_aggregate

    def resolve(self, query: Query, *, allow_joins: bool = True) -> Node:
        """Resolve both sides into a combined node."""
        from covet.db.compiler import CombinedNode

        return CombinedNode(
            self.lhs.resolve(query, allow_joins=allow_joins),
            self.op,
            self.rhs.resolve(query, allow_joins=allow_joins),
        )

    def __repr__(self) -> str:
        return f"({self.lhs!r} {self.op} {self.rhs!r})"


class Aggregate(Expression):
    """Base of the aggregate functions.

    Args:
        expression: A field path (``"posts"``, ``"price"``) or an expression.
        distinct: Aggregate distinct values only.
        filter: A :class:`Q` (or a boolean expression such as ``Exists()``)
            restricting the rows aggregated: ``FILTER (WHERE ...)`` where the
            database has it, else ``CASE WHEN ... THEN expr END`` inside the function.
    """

    function: str = ""
    contains_aggregate = True

    def __init__(
        self,
        expression: str | Expression,
        *,
        distinct: bool = False,
        filter: Q | Expression | None = None,
    ) -> None:
        self.expression = F(expression) if isinstance(expression, str) else expression
        self.distinct = distinct
        if isinstance(filter, Expression):
            filter = Q(filter)
        elif filter is not None and not isinstance(filter, Q):
            raise FieldError(
                f"{type(self).__name__}(filter=...) takes a Q() or a boolean expression, "
                f"not {filter!r}."
            )
        self.filter = filter

    def resolve(self, query: Query, *, allow_joins: bool = True) -> Node:
        """Resolve to an aggregate node; relation paths join (LEFT) and group."""
        from covet.db.compiler import AggregateNode

        if self.expression.contains_aggregate:
            raise FieldError(f"Cannot nest aggregates: {self!r}. Aggregate a column instead.")
        source = query.resolve_aggregate_source(self.expression)
        condition = query.resolve_q(self.filter, joins=True) if self.filter is not None else None
        return AggregateNode(self.function, source, self.distinct, condition)

    def __repr__(self) -> str:
        extra = ", distinct=True" if self.distinct else ""
        extra += f", filter={self.filter!r}" if self.filter is not None else ""
        return f"{type(self).__name__}({self.expression!r}{extra})"


class Count(Aggregate):
    """``COUNT``: the number of non-null values (``"*"`` or a relation counts rows); an int."""

    function = "COUNT"

    def __init__(
        self,
        expression: str | Expression = "*",
        *,
        distinct: bool = False,
        filter: Q | Expression | None = None,
    ) -> None:
        super().__init__(expression, distinct=distinct, filter=filter)


class Sum(Aggregate):
    """``SUM``: typed like the summed field (Decimal for DecimalField); None on no rows."""

    function = "SUM"


class Avg(Aggregate):
    """``AVG``: a float (a Decimal for DecimalField); None on no rows."""

    function = "AVG"


class Min(Aggregate):
    """``MIN``: typed like the field; None on no rows."""

    function = "MIN"


class Max(Aggregate):
    """``MAX``: typed like the field; None on no rows."""

    function = "MAX"


class Q:
    """A filter condition combinable with ``&``, ``|`` and ``~``.

    ``Q(title="a") | Q(title__startswith="b")`` holds keyword lookups exactly
    like ``filter()`` takes them; positional arguments are nested ``Q`` or
    boolean expressions (``Q(Exists(...))``).
    """

    AND: Final = "AND"
    OR: Final = "OR"

    def __init__(self, *args: Q | Expression, **kwargs: Any) -> None:
        for arg in args:
            if not isinstance(arg, Q | Expression):
                raise TypeError(
                    f"Q() positional arguments must be Q objects or boolean expressions "
                    f"(Exists(...)), got {arg!r}."
                )
        self.children: list[Q | Expression | tuple[str, Any]] = [*args, *sorted(kwargs.items())]
        self.connector: str = self.AND
        self.negated = False

    def _new(
        self, connector: str, children: list[Q | Expression | tuple[str, Any]], negated: bool
    ) -> Q:
        q = Q()
        q.connector, q.children, q.negated = connector, children, negated
        return q

    def _combine(self, other: object, connector: str) -> Q:
        if not isinstance(other, Q):
            return NotImplemented  # type: ignore[no-any-return]
        if not other.children:
            return self._new(self.connector, list(self.children), self.negated)
        if not self.children:
            return other._new(other.connector, list(other.children), other.negated)
        return self._new(connector, [self, other], False)

    def __and__(self, other: object) -> Q:
        return self._combine(other, self.AND)

    def __or__(self, other: object) -> Q:
        return self._combine(other, self.OR)

    def __invert__(self) -> Q:
        return self._new(self.AND, [self], True)

    def __repr__(self) -> str:
        inner = f" {self.connector} ".join(
            f"{c[0]}={c[1]!r}" if isinstance(c, tuple) else repr(c) for c in self.children
        )
        return f"{'~' if self.negated else ''}Q({inner})"


def _prepared(field: Field[Any], value: Any) -> Any:
    """Check ``value`` against ``field`` now (a clear error at the call), keep it as given."""
    if value is not None:
        field.get_prep_value(value)
    return value


# -- subqueries ----------------------------------------------------------------------------------


class OuterRef(F):
    """Reference a field of the enclosing query from inside a subquery.

    ``Comment.objects.filter(post=OuterRef("pk"))`` inside ``Subquery()`` or
    ``Exists()`` compares each comment's post with the outer row's key.
    ``OuterRef(OuterRef("pk"))`` reaches two levels out. The name is checked
    against the outer model when the subquery is used, and must be a column of
    it or of a forward foreign key (no multi-valued relation, which would
    multiply the outer rows).

    Args:
        name: A field name or ``relation__field`` path of the outer model, or an
            ``OuterRef`` to reach one level further out.
    """

    depth: int

    def __init__(self, name: str | OuterRef) -> None:
        depth = 1
        target: object = name
        if isinstance(target, OuterRef):
            depth += target.depth
            target = target.name
        if not isinstance(target, str) or not target:
            raise FieldError(f"OuterRef() takes a field name, not {name!r}.")
        super().__init__(target)
        self.depth = depth

    def resolve(self, query: Query, *, allow_joins: bool = True) -> Node:
        """Resolve to a reference the compiler renders in the enclosing query."""
        from covet.db.compiler.nodes import OuterRefNode

        return OuterRefNode(self.name, self.depth)

    def __repr__(self) -> str:
        inner = repr(self.name)
        for _ in range(self.depth):
            inner = f"OuterRef({inner})"
        return inner


def _inner_query(queryset: Any, what: str) -> Query:
    from covet.db.compiler import Query

    query = getattr(queryset, "query", None)
    if not isinstance(query, Query):
        raise FieldError(
            f"{what}() takes a queryset (Model.objects.filter(...)), not {queryset!r}."
        )
    return query


class Subquery(Expression):
    """A query whose single value is used in another (a correlated scalar subquery).

    ``Subquery(Comment.objects.filter(post=OuterRef("pk")).order_by("-id")
    .values("text")[:1])`` annotates each post with its latest comment's text
    (None where there is none). The queryset must select one column, with
    ``values("field")`` or ``values_list("field")``, and should return at most
    one row per outer row (slice it with ``[:1]``); as a ``field__in=`` value it
    may return many.

    Args:
        queryset: The inner queryset.
        output_field: The type of the value, when the selected column's type is
            not the one wanted.

    Raises:
        FieldError: ``queryset`` is not a queryset.
    """

    def __init__(self, queryset: Any, *, output_field: Field[Any] | None = None) -> None:
        self.queryset = queryset
        self.query = _inner_query(queryset, "Subquery")
        self.output_field = output_field

    def resolve(self, query: Query, *, allow_joins: bool = True) -> Node:
        """Resolve to a scalar subquery node, checking its ``OuterRef`` names.

        Raises:
            FieldError: The inner query selects other than one column, or an
                ``OuterRef`` names no usable field of ``query``'s model.
        """
        from covet.db.compiler.nodes import SubqueryNode
        from covet.db.compiler.paths import resolve_path
        from covet.db.compiler.query import check_outer_refs

        inner = self.query
        names = inner.values_fields
        if names is None or len(names) != 1:
            selected = "every column" if names is None else f"{list(names)!r}"
            raise FieldError(
                f"Subquery() must select exactly one column; the {inner.model.__name__} "
                f"queryset selects {selected}. Call values('field') or "
                "values_list('field', flat=True) on it."
            )
        check_outer_refs(inner, query.model, allow_joins=allow_joins)
        field = self.output_field
        if field is None:
            node = inner.annotations.get(names[0])
            if node is not None:
                field = node.output_field
            else:
                field = resolve_path(inner.model, names[0].split("__"), allow_lookup=False)[0].field
        return SubqueryNode(inner, "scalar", field)

    def __repr__(self) -> str:
        return f"Subquery(<{self.query.model.__name__} queryset>)"


class Exists(Expression):
    """``EXISTS (subquery)``: a boolean, usable in ``filter()`` and ``annotate()``.

    ``Post.objects.filter(Exists(Comment.objects.filter(post=OuterRef("pk"))))``
    keeps posts with a comment; ``~Exists(...)`` keeps those without. As an
    annotation the value is a ``bool`` on every database.

    Args:
        queryset: The inner queryset (what it selects does not matter).
        negated: ``NOT EXISTS`` (what ``~Exists(...)`` builds).
    """

    def __init__(self, queryset: Any, *, negated: bool = False) -> None:
        self.queryset = queryset
        self.query = _inner_query(queryset, "Exists")
        self.negated = negated

    def __invert__(self) -> Exists:
        return Exists(self.queryset, negated=not self.negated)

    def resolve(self, query: Query, *, allow_joins: bool = True) -> Node:
        """Resolve to an ``EXISTS`` node, checking the inner ``OuterRef`` names.

        Raises:
            FieldError: An ``OuterRef`` names no usable field of ``query``'s model.
        """
        from covet.db.compiler.nodes import SubqueryNode
        from covet.db.compiler.query import check_outer_refs

        inner = self.query
        check_outer_refs(inner, query.model, allow_joins=allow_joins)
        # Selecting the key alone, unordered, is the cheapest probe with the same rows.
        inner = inner.clone()
        if not inner.is_sliced:
            inner.order_by, inner.order_has_nodes = (), False
        inner.select_related = ()
        if inner.values_fields is None:
            inner.values_fields = ("pk",)
        return SubqueryNode(inner, "exists", _boolean_field(), negated=self.negated)

    def __repr__(self) -> str:
        return f"{'~' if self.negated else ''}Exists(<{self.query.model.__name__} queryset>)"


@functools.cache
def _boolean_field() -> Field[Any]:
    from covet.db.fields import BooleanField

    return BooleanField(null=True)


# -- conditional expressions ---------------------------------------------------------------------


class When:
    """One branch of :class:`Case`: a condition and the value it gives.

    The condition is a ``Q``, a boolean expression (``Exists(...)``) or
    keyword lookups as ``filter()`` takes them, AND-ed together:
    ``When(views__gte=100, then=Value("hot"))``.

    Args:
        condition: A ``Q`` or a boolean expression.
        then: The branch's value: an expression, or a plain value (bound as a
            parameter, typed like the ``Case``).
        lookups: ``field__lookup=value`` conditions.

    Raises:
        TypeError: No condition was given.
    """

    def __init__(self, condition: Q | Expression | None = None, *, then: Any = None,
                 **lookups: Any) -> None:  # fmt: skip
        parts: list[Q | Expression] = [] if condition is None else [condition]
        if lookups:
            parts.append(Q(**lookups))
        q = Q(*parts)
        if not q.children:
            raise TypeError(
                "When() needs a condition: a Q(), a boolean expression or field lookups, "
                "e.g. When(views__gte=100, then=...)."
            )
        self.condition, self.then = q, then

    def __repr__(self) -> str:
        return f"When({self.condition!r}, then={self.then!r})"


class Case(Expression):
    """``CASE WHEN ... THEN ... ELSE ... END``: the value of the first matching branch.

    Usable in ``annotate()``, ``filter()`` (as a value, or as a condition when
    boolean), ``order_by()`` and ``update()``. The result type is
    ``output_field`` when given, else the branches' common type (numbers
    promote as in arithmetic); plain values in branches are bound with that
    type, so they read back the same on every database.

    Args:
        whens: The branches, tried in order.
        default: The value when no branch matches (NULL when omitted).
        output_field: The type of the result (``fields.CharField()``...).

    Raises:
        TypeError: No branch, or a branch that is not a ``When``.
    """

    def __init__(self, *whens: When, default: Any = None,
                 output_field: Field[Any] | None = None) -> None:  # fmt: skip
        if not whens:
            raise TypeError("Case() needs at least one When(...) branch.")
        for when in whens:
            if not isinstance(when, When):
                raise TypeError(f"Case() takes When(...) branches, not {when!r}.")
        self.whens, self.default, self.output_field = whens, default, output_field
        self.contains_aggregate = any(
            isinstance(v, Expression) and v.contains_aggregate
            for v in (*(w.then for w in whens), default)
        )

    def resolve(self, query: Query, *, allow_joins: bool = True) -> Node:
        """Resolve conditions and values, and type the plain values.

        Raises:
            FieldError: Branches of different types without ``output_field``, no type
                to infer, or a relation crossed where joins are not allowed.
        """
        from covet.db.compiler.nodes import CaseNode, FieldParam, Param

        values = [*(w.then for w in self.whens), self.default]
        nodes: list[Node | None] = []
        for value in values:
            node = value.resolve(query, allow_joins=allow_joins) if isinstance(
                value, Expression) else None  # fmt: skip
            if isinstance(node, Param) and not isinstance(node, FieldParam):
                node = None  # a Value(): typed below like a plain value
            nodes.append(node)
        plain = [v.value if isinstance(v, Value) else v for v in values]
        field = self.output_field or _common_field(self, nodes, plain)
        resolved: list[Node] = [
            node if node is not None else FieldParam(_prepared(field, value), field)
            for node, value in zip(nodes, plain, strict=True)
        ]
        conditions = [query.resolve_q(w.condition) for w in self.whens]
        if not allow_joins:
            for condition in conditions:
                _refuse_joins(condition, self)
        last = resolved.pop()
        default = last if self.default is not None else None
        return CaseNode(tuple(zip(conditions, resolved, strict=True)), default, field)

    def __repr__(self) -> str:
        return f"Case({', '.join(map(repr, self.whens))}, default={self.default!r})"


_PYTHON_FIELDS: Final[tuple[tuple[type, str], ...]] = (
    (bool, "BooleanField"),
    (int, "BigIntegerField"),
    (float, "FloatField"),
    (str, "TextField"),
    (datetime.datetime, "DateTimeField"),
    (datetime.date, "DateField"),
    (datetime.time, "TimeField"),
    (uuid.UUID, "UUIDField"),
    (bytes, "BinaryField"),
)


def _value_field(value: Any) -> Field[Any] | None:
    """Return the field typing a plain value by its Python type (None: unknown)."""
    from covet.db.compiler.numeric import numeric_field

    if isinstance(value, decimal.Decimal):
        return numeric_field("decimal")
    for cls, name in _PYTHON_FIELDS:
        if isinstance(value, cls):
            return _plain_field(name)
    return None


@functools.cache
def _plain_field(name: str) -> Field[Any]:
    # One instance per type: a field is part of the compiled-SQL cache key (field_shape()).
    from covet.db import fields

    field: Field[Any] = getattr(fields, name)(null=True)
    return field


def _common_field(case: Case, nodes: list[Node | None], plain: list[Any]) -> Field[Any]:
    """Return the type shared by the branches of ``case`` (numbers promote)."""
    from covet.db.compiler.numeric import arithmetic_field

    found: list[Field[Any]] = []
    for node, value in zip(nodes, plain, strict=True):
        field = node.output_field if node is not None else _value_field(value)
        if field is not None:
            found.append(field)
    if not found:
        raise FieldError(f"Cannot infer the type of {case!r}. Pass output_field=.")
    result = found[0]
    for field in found[1:]:
        if field.internal_type == result.internal_type:
            continue
        promoted = arithmetic_field(result, "+", field)
        if promoted is None:
            raise FieldError(
                f"{case!r} mixes types ({result.internal_type}, {field.internal_type}). "
                "Pass output_field= to say which type the result has."
            )
        result = promoted
    return result


def _refuse_joins(node: Node, expression: Expression) -> None:
    """Raise if a condition of ``expression`` crosses a relation (update() writes one table)."""
    from covet.db.compiler import Lookup

    stack = [node]
    while stack:
        current = stack.pop()
        path = current.path if isinstance(current, Lookup) else None
        # A lookup across a multi-valued relation of the model itself is an IN (subquery)
        # on its key, which needs no join; any other relation would join.
        if path is not None and path.steps and path.multi_index != 0:
            raise FieldError(
                f"Cannot filter across the relation {'__'.join(path.key)!r} in "
                f"{expression!r} here (update() writes one table). Use a field of the "
                "model itself, or Exists() with OuterRef()."
            )
        stack.extend(current.get_children())
