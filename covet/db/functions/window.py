"""Window functions and :class:`Window`: RowNumber, Rank, Lag, frames..."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from covet.db.compiler.functions import FuncNode, WindowNode, int_converter
from covet.db.exceptions import FieldError
from covet.db.expressions import Aggregate, Expression
from covet.db.functions.base import _FLOAT, _INT, Func, _expression, _int_option, order_term

if TYPE_CHECKING:
    from collections.abc import Sequence

    from covet.db.compiler import Node, Query
    from covet.db.compiler.nodes import Converter
    from covet.db.fields import Field


__all__ = (
    "CumeDist",
    "DenseRank",
    "FirstValue",
    "Lag",
    "LastValue",
    "Lead",
    "NthValue",
    "Ntile",
    "PercentRank",
    "Rank",
    "RowNumber",
    "RowRange",
    "ValueRange",
    "Window",
    "WindowFunction",
)

# -- windows ---------------------------------------------------------------------------------


class WindowFunction(Func):
    """A function only valid inside :class:`Window` (RowNumber, Rank, Lag...)."""

    def resolve(self, query: Query, *, allow_joins: bool = True) -> Node:
        """Refuse use outside a window.

        Raises:
            FieldError: Always: wrap the function in ``Window(...)``.
        """
        raise FieldError(
            f"{type(self).__name__}() is a window function. Use it inside Window(...), e.g. "
            f"annotate(n=Window({type(self).__name__}(), order_by='-id'))."
        )

    def resolve_in_window(self, query: Query) -> Node:
        """Resolve as the expression of a window."""
        return super().resolve(query)

    def converter(self, args: tuple[Node, ...]) -> Converter | Node | None:
        """Read back by the first argument, or as an int for the ranking functions."""
        if self.output_field is not None:
            return None
        return args[0] if args else int_converter

    def output(self, args: tuple[Node, ...]) -> Field[Any] | None:
        """Return the first argument's field, or an integer for the ranking functions."""
        return super().output(args) or _INT


class RowNumber(WindowFunction):
    """The row's number in its partition, from 1."""

    function = "ROW_NUMBER"
    arity = 0


class Rank(WindowFunction):
    """The rank with gaps (1, 1, 3)."""

    function = "RANK"
    arity = 0


class DenseRank(WindowFunction):
    """The rank without gaps (1, 1, 2)."""

    function = "DENSE_RANK"
    arity = 0


class PercentRank(WindowFunction):
    """The relative rank, ``(rank - 1) / (rows - 1)``, a float from 0 to 1."""

    function = "PERCENT_RANK"
    arity = 0

    def output(self, args: tuple[Node, ...]) -> Field[Any] | None:
        """Return a float field."""
        return _FLOAT

    def converter(self, args: tuple[Node, ...]) -> Converter | Node | None:
        """Read back a float."""
        return float


class CumeDist(PercentRank):
    """The cumulative distribution: rows up to this one's peers / rows, a float."""

    function = "CUME_DIST"


class Ntile(WindowFunction):
    """The bucket number (1 to ``num_buckets``) of the row."""

    key = "ntile"

    def __init__(self, num_buckets: int = 1) -> None:
        super().__init__()
        self.num_buckets = _int_option(num_buckets, "Ntile() num_buckets", 1)

    def options(self, args: tuple[Node, ...]) -> tuple[Any, ...]:
        """Return the bucket count."""
        return (self.num_buckets,)


class Lag(WindowFunction):
    """The value ``offset`` rows before in the partition, else ``default`` (or NULL)."""

    key = "lag"

    def __init__(self, expression: Any, offset: int = 1, default: Any = None) -> None:
        super().__init__(expression)
        self.offset = _int_option(offset, f"{type(self).__name__}() offset", 0)
        self.default = default

    def options(self, args: tuple[Node, ...]) -> tuple[Any, ...]:
        """Return the offset."""
        return (self.offset,)

    def resolve_in_window(self, query: Query) -> Node:
        """Resolve, binding ``default`` with the type of the expression."""
        from covet.db.compiler import Param

        source = self.source_expressions[0].resolve(query)
        args: tuple[Node, ...] = (source,)
        if self.default is not None:
            args = (source, Param(self.default, source.output_field))
        return FuncNode(self.key, args, self.options(args), self.output(args), source)


class Lead(Lag):
    """The value ``offset`` rows after in the partition, else ``default`` (or NULL)."""

    key = "lead"


class FirstValue(WindowFunction):
    """The expression's value on the first row of the window frame."""

    function = "FIRST_VALUE"
    arity = 1


class LastValue(WindowFunction):
    """The expression's value on the last row of the frame (mind the default frame)."""

    function = "LAST_VALUE"
    arity = 1


class NthValue(WindowFunction):
    """The expression's value on the ``nth`` row (from 1) of the frame, else NULL."""

    key = "nth_value"

    def __init__(self, expression: Any, nth: int = 1) -> None:
        super().__init__(expression)
        self.nth = _int_option(nth, "NthValue() nth", 1)

    def options(self, args: tuple[Node, ...]) -> tuple[Any, ...]:
        """Return the row number."""
        return (self.nth,)


class _Frame:
    """A window frame: ``start``/``end`` None (unbounded), 0 (current row), -n / +n rows."""

    unit: ClassVar[str] = ""

    def __init__(self, start: int | None = None, end: int | None = None) -> None:
        for value in (start, end):
            if value is not None and type(value) is not int:
                raise FieldError(f"A window frame bound is an int or None, not {value!r}.")
        self.start, self.end = start, end

    @staticmethod
    def _bound(value: int | None, unbounded: str) -> str:
        if value is None:
            return f"UNBOUNDED {unbounded}"
        if value == 0:
            return "CURRENT ROW"
        return f"{abs(value)} {'PRECEDING' if value < 0 else 'FOLLOWING'}"

    def sql(self) -> str:
        """Render ``ROWS|RANGE BETWEEN ... AND ...``."""
        start = self._bound(self.start, "PRECEDING")
        return f"{self.unit} BETWEEN {start} AND {self._bound(self.end, 'FOLLOWING')}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(start={self.start!r}, end={self.end!r})"


class RowRange(_Frame):
    """A ROWS frame: ``RowRange(start=-2, end=0)`` is the row and the two before it."""

    unit = "ROWS"


class ValueRange(_Frame):
    """A RANGE frame over the ORDER BY value (``ValueRange(start=None, end=0)``)."""

    unit = "RANGE"


class Window(Expression):
    """``expression OVER (PARTITION BY ... ORDER BY ... frame)``, computed per row.

    Args:
        expression: A window function (RowNumber(), Lag("x")...) or an aggregate
            (Sum, Avg, Count, Min, Max) computed over the window.
        partition_by: A field name, expression, or a list of them.
        order_by: ``"-field"``, an expression or :class:`OrderBy`, or a list of them.
        frame: A :class:`RowRange` or :class:`ValueRange`.

    Raises:
        FieldError: ``expression`` cannot be windowed, or a name is unknown.
    """

    def __init__(
        self,
        expression: Expression,
        partition_by: Any = None,
        order_by: Any = None,
        frame: _Frame | None = None,
    ) -> None:
        if not isinstance(expression, WindowFunction | Aggregate):
            raise FieldError(
                f"Window() takes a window function or an aggregate, not {expression!r}."
            )
        if frame is not None and not isinstance(frame, _Frame):
            raise FieldError(f"Window(frame=...) takes RowRange or ValueRange, not {frame!r}.")
        self.expression = expression
        self.partition_by = self._listed(partition_by)
        self.order_by = self._listed(order_by)
        self.frame = frame

    @staticmethod
    def _listed(value: Any) -> Sequence[Any]:
        if value is None:
            return ()
        return tuple(value) if isinstance(value, list | tuple) else (value,)

    def resolve(self, query: Query, *, allow_joins: bool = True) -> Node:
        """Resolve into a window node."""
        expression = self.expression
        if isinstance(expression, WindowFunction):
            node = expression.resolve_in_window(query)
        else:
            node = expression.resolve(query)
        partition = tuple(_expression(p).resolve(query) for p in self.partition_by)
        order = tuple(order_term(query, o) for o in self.order_by)
        return WindowNode(node, partition, order, self.frame.sql() if self.frame else None)

    def __repr__(self) -> str:
        return (
            f"Window({self.expression!r}, partition_by={list(self.partition_by)!r}, "
            f"order_by={list(self.order_by)!r}, frame={self.frame!r})"
        )
