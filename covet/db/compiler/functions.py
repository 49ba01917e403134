"""SQL nodes of database functions, ORDER BY terms and window expressions.

A :class:`FuncNode` holds its arguments and a key into the backend's
function templates (``ops.function_template()``, see
:mod:`covet.db.backends.base.functions`); the template decides where, and
how many times, each argument appears, and :meth:`FuncNode.collect` walks
the same template so that a cached query shape gets its parameters in the
order the SQL has them.
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING, Any, Final

from covet.db.compiler.nodes import Node
from covet.db.exceptions import NotSupportedError

if TYPE_CHECKING:
    from covet.db.compiler.nodes import Converter
    from covet.db.compiler.select import SQLCompiler
    from covet.db.fields import Field

__all__ = ("FuncNode", "OrderByNode", "WindowNode", "int_converter")

_FORMATTER: Final = string.Formatter()
#: Parsed templates: (literal text, argument index or None) pairs, by template.
_PARSED: dict[str, tuple[tuple[str, int | None], ...]] = {}


def _parse(template: str) -> tuple[tuple[str, int | None], ...]:
    parsed = _PARSED.get(template)
    if parsed is None:
        parsed = tuple(
            (literal, None if field is None else int(field))
            for literal, field, _spec, _conv in _FORMATTER.parse(template)
        )
        if len(_PARSED) > 4096:
            _PARSED.clear()
        _PARSED[template] = parsed
    return parsed


def int_converter(value: Any) -> Any:
    """Return ``value`` as an int (MySQL returns some integer results as Decimal)."""
    return None if value is None else int(value)


class FuncNode(Node):
    """A database function over argument nodes, rendered through the backend's template.

    Args:
        key: The template key (``"coalesce"``, ``"trunc"``...).
        args: The argument nodes, ``{0}``, ``{1}``... in the template.
        options: Hashable, validated options of the template (part of the shape).
        output_field: The field typing the result (converters, filter values).
        converter: A converter for results read back, overriding the output field's;
            a :class:`Node` means "convert as that argument does".
    """

    __slots__ = (
        "args",
        "contains_aggregate",
        "contains_over_clause",
        "conv",
        "key",
        "options",
        "output_field",
        "shape",
    )

    def __init__(
        self,
        key: str,
        args: tuple[Node, ...],
        options: tuple[Any, ...],
        output_field: Field[Any] | None,
        converter: Converter | Node | None = None,
    ) -> None:
        self.key, self.args, self.options = key, args, options
        self.output_field = output_field
        self.conv = converter
        self.contains_aggregate = any(a.contains_aggregate for a in args)
        self.contains_over_clause = any(getattr(a, "contains_over_clause", False) for a in args)
        #: The structural cache key of this node.
        self.shape: Any = ("fn", key, options, tuple([a.shape for a in args]))

    def _parts(self, ops: Any) -> tuple[tuple[str, int | None], ...]:
        return _parse(ops.function_template(self.key, len(self.args), self.options))

    def as_sql(self, c: SQLCompiler) -> str:
        """Render the template, each argument where it appears."""
        out = []
        for literal, index in self._parts(c.ops):
            out.append(literal)
            if index is not None:
                out.append(self.args[index].as_sql(c))
        return "".join(out)

    def collect(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters that as_sql() renders, in order."""
        for _literal, index in self._parts(ops):
            if index is not None:
                self.args[index].collect(ops, out)

    def converter(self, ops: Any) -> Converter | None:
        """Return the converter for values of this node read back."""
        conv = self.conv
        if isinstance(conv, Node):
            return conv.converter(ops)
        if conv is not None:
            return conv
        return super().converter(ops)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and getattr(other, "shape", None) == self.shape

    def __hash__(self) -> int:
        return hash(self.shape)


class OrderByNode(FuncNode):
    """An ORDER BY term: ``expr ASC|DESC`` with NULLS FIRST/LAST (emulated where missing).

    Equal (and hashed) by shape, so a query's ``order_by`` tuple holding one
    stays a valid part of the compiled-SQL cache key.
    """

    __slots__ = ()

    def __init__(self, expression: Node, descending: bool, nulls: str | None) -> None:
        super().__init__("order", (expression,), (descending, nulls), expression.output_field)

    @property
    def expression(self) -> Node:
        """Return the ordered expression."""
        return self.args[0]

    @property
    def descending(self) -> bool:
        """Return whether the order is descending."""
        return bool(self.options[0])

    def reversed(self) -> OrderByNode:
        """Return the opposite order (NULLs move to the other end too)."""
        nulls = self.options[1]
        flipped = {"first": "last", "last": "first"}.get(nulls) if nulls else None
        return OrderByNode(self.args[0], not self.descending, flipped)


class WindowNode(Node):
    """``expr OVER (PARTITION BY ... ORDER BY ... frame)``.

    Not an aggregate for GROUP BY and HAVING even over one (``SUM(x) OVER
    (...)`` is computed per row); ``contains_over_clause`` tells filter() to
    refuse it, since SQL evaluates WHERE before any window.
    """

    __slots__ = ("expression", "frame", "order_by", "output_field", "partition_by", "shape")
    contains_over_clause = True

    def __init__(
        self,
        expression: Node,
        partition_by: tuple[Node, ...],
        order_by: tuple[OrderByNode, ...],
        frame: str | None,
    ) -> None:
        self.expression, self.partition_by, self.order_by = expression, partition_by, order_by
        self.frame = frame
        self.output_field = expression.output_field
        #: The structural cache key of this node.
        self.shape: Any = (
            "over",
            expression.shape,
            tuple([p.shape for p in partition_by]),
            tuple([o.shape for o in order_by]),
            frame,
        )

    def as_sql(self, c: SQLCompiler) -> str:
        """Render the window expression."""
        if not c.features.supports_over_clause:
            raise NotSupportedError(
                f"Window functions (OVER) are not supported on {c.ops.telemetry_name} at this "
                "version (SQLite needs 3.25+). Upgrade the database or compute in Python."
            )
        expression = self.expression.as_sql(c)  # first: its parameters come first
        parts = []
        if self.partition_by:
            parts.append("PARTITION BY " + ", ".join(p.as_sql(c) for p in self.partition_by))
        if self.order_by:
            parts.append("ORDER BY " + ", ".join(o.as_sql(c) for o in self.order_by))
        if self.frame:
            parts.append(self.frame)
        return f"{expression} OVER ({' '.join(parts)})"

    def collect(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters that as_sql() renders, in order."""
        self.expression.collect(ops, out)
        for p in self.partition_by:
            p.collect(ops, out)
        for o in self.order_by:
            o.collect(ops, out)

    def converter(self, ops: Any) -> Converter | None:
        """Return the converter of the windowed expression."""
        return self.expression.converter(ops)
