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

from typing import TYPE_CHECKING, Any, Final

from covet.db.exceptions import FieldError

if TYPE_CHECKING:
    from covet.db.compiler import Node, Query

__all__ = ("Avg", "Combined", "Count", "Expression", "F", "Max", "Min", "Q", "Sum", "Value")

_OPERATORS: Final = frozenset({"+", "-", "*", "/"})


class Expression:
    """Base of ``F``, ``Value``, combinations and aggregates."""

    contains_aggregate: bool = False

    def resolve(self, query: Query, *, allow_joins: bool = True) -> Node:
        """Return the SQL node for this expression against ``query``'s model."""
        raise NotImplementedError(f"{type(self).__name__} must implement resolve().")

    def asc(self, *, nulls_first: bool | None = None, nulls_last: bool | None = None) -> Expression:
        """Return an ascending ORDER BY term (see :class:`covet.db.functions.OrderBy`)."""
        from covet.db.functions import OrderBy

        return OrderBy(self, nulls_first=nulls_first, nulls_last=nulls_last)

    def desc(
        self, *, nulls_first: bool | None = None, nulls_last: bool | None = None
    ) -> Expression:
        """Return a descending ORDER BY term (see :class:`covet.db.functions.OrderBy`)."""
        from covet.db.functions import OrderBy

        return OrderBy(self, descending=True, nulls_first=nulls_first, nulls_last=nulls_last)

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
    type (BIGINT, DOUBLE PRECISION, NUMERIC); other values are bound as they are.

    Args:
        value: Any value the database adapter accepts (str, int, Decimal...).
    """

    def __init__(self, value: Any) -> None:
        self.value = value

    def resolve(self, query: Query, *, allow_joins: bool = True) -> Node:
        """Resolve to a parameter node, typed by the value's Python type if it is a number."""
        from covet.db.compiler import Param, TypedParam
        from covet.db.compiler.numeric import numeric_value

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
        filter: A :class:`Q` restricting the rows aggregated (``CASE WHEN``, portable).
    """

    function: str = ""
    contains_aggregate = True

    def __init__(
        self, expression: str | Expression, *, distinct: bool = False, filter: Q | None = None
    ) -> None:
        self.expression = F(expression) if isinstance(expression, str) else expression
        self.distinct = distinct
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
        self, expression: str | Expression = "*", *, distinct: bool = False, filter: Q | None = None
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
    like ``filter()`` takes them; positional arguments are nested ``Q``.
    """

    AND: Final = "AND"
    OR: Final = "OR"

    def __init__(self, *args: Q, **kwargs: Any) -> None:
        for arg in args:
            if not isinstance(arg, Q):
                raise TypeError(f"Q() positional arguments must be Q objects, got {arg!r}.")
        self.children: list[Q | tuple[str, Any]] = [*args, *sorted(kwargs.items())]
        self.connector: str = self.AND
        self.negated = False

    def _new(self, connector: str, children: list[Q | tuple[str, Any]], negated: bool) -> Q:
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
            repr(c) if isinstance(c, Q) else f"{c[0]}={c[1]!r}" for c in self.children
        )
        return f"{'~' if self.negated else ''}Q({inner})"
