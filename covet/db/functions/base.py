"""The generic :class:`Func`, argument helpers and ORDER BY terms."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Final

from covet.db.compiler.functions import FuncNode, OrderByNode
from covet.db.exceptions import FieldError
from covet.db.expressions import Expression, F, Value
from covet.db.fields import (
    BigIntegerField,
    DateField,
    DateTimeField,
    Field,
    FloatField,
    TextField,
)

if TYPE_CHECKING:
    from covet.db.compiler import Node, Query
    from covet.db.compiler.nodes import Converter


__all__ = (
    "Func",
    "OrderBy",
    "order_term",
)

_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INT: Final = BigIntegerField(null=True)
_FLOAT: Final = FloatField(null=True)
_TEXT: Final = TextField(null=True)
_DATE: Final = DateField(null=True)
_DATETIME: Final = DateTimeField(null=True)


def _expression(value: Any) -> Expression:
    """Return ``value`` as an expression: a string names a field, other values are bound."""
    if isinstance(value, Expression):
        return value
    if isinstance(value, str):
        return F(value)
    return Value(value)


def _literal(value: Any) -> Expression:
    """Return ``value`` as an expression where a plain string is text, not a field name."""
    return value if isinstance(value, Expression) else Value(value)


def _int_option(value: Any, what: str, minimum: int) -> int:
    """Check an integer that is written into the SQL (never a parameter)."""
    if type(value) is not int or value < minimum:
        raise FieldError(f"{what} must be an int >= {minimum}, got {value!r}.")
    return value


class Func(Expression):
    """A SQL function call: ``Func(F("name"), function="LOWER")`` is ``LOWER(name)``.

    Subclasses name their function by ``key`` (a template of the backend's
    ``ops``), so that each database spells it its own way.

    Args:
        *expressions: Arguments: expressions, field names (strings) or plain values.
        function: The SQL function's name (letters, digits and ``_``), for ``Func`` itself.
        output_field: The field typing the result (default: the first argument's).

    Raises:
        FieldError: The function name is not an identifier, or the arity is wrong.
    """

    key: ClassVar[str] = "func"
    function: str = ""
    #: The exact number of arguments, or None; ``min_arity`` bounds variadic functions.
    arity: ClassVar[int | None] = None
    min_arity: ClassVar[int] = 0

    def __init__(
        self, *expressions: Any, function: str | None = None, output_field: Field[Any] | None = None
    ) -> None:
        if function is not None:
            self.function = function
        if self.key == "func" and not _IDENTIFIER.match(self.function or ""):
            raise FieldError(
                f"Invalid SQL function name {self.function!r}. Use letters, digits and _ only."
            )
        count = len(expressions)
        if (self.arity is not None and count != self.arity) or count < self.min_arity:
            wanted = self.arity if self.arity is not None else f"at least {self.min_arity}"
            raise FieldError(f"{type(self).__name__}() takes {wanted} arguments, got {count}.")
        self.source_expressions = [self.wrap(e) for e in expressions]
        self.output_field = output_field
        self.contains_aggregate = any(e.contains_aggregate for e in self.source_expressions)

    def wrap(self, value: Any) -> Expression:
        """Turn one argument into an expression (a string is a field name)."""
        return _expression(value)

    def options(self, args: tuple[Node, ...]) -> tuple[Any, ...]:
        """Return the template options (part of the query shape)."""
        return (self.function,) if self.key == "func" else ()

    def output(self, args: tuple[Node, ...]) -> Field[Any] | None:
        """Return the result's field: ``output_field`` or the first typed argument's."""
        if self.output_field is not None:
            return self.output_field
        return next((a.output_field for a in args if a.output_field is not None), None)

    def converter(self, args: tuple[Node, ...]) -> Converter | Node | None:
        """Return how results are read back (None: by the output field)."""
        return args[0] if args and self.output_field is None else None

    def resolve(self, query: Query, *, allow_joins: bool = True) -> Node:
        """Resolve the arguments and return the function node."""
        args = tuple(e.resolve(query, allow_joins=allow_joins) for e in self.source_expressions)
        return FuncNode(self.key, args, self.options(args), self.output(args), self.converter(args))

    def __repr__(self) -> str:
        args = ", ".join(repr(e) for e in self.source_expressions)
        name = f", function={self.function!r}" if self.key == "func" else ""
        return f"{type(self).__name__}({args}{name})"


# -- ordering --------------------------------------------------------------------------------


class OrderBy(Expression):
    """An ORDER BY term: ``F("x").desc(nulls_last=True)``, ``Lower("name").asc()``.

    NULLS FIRST/LAST is native on PostgreSQL and SQLite and emulated on
    MySQL/MariaDB (an ``expr IS NULL`` key sorted first).

    Raises:
        FieldError: Both ``nulls_first`` and ``nulls_last`` were set.
    """

    def __init__(
        self,
        expression: Expression,
        *,
        descending: bool = False,
        nulls_first: bool | None = None,
        nulls_last: bool | None = None,
    ) -> None:
        if nulls_first and nulls_last:
            raise FieldError("Set nulls_first or nulls_last, not both.")
        self.expression = expression
        self.descending = descending
        self.nulls = "first" if nulls_first else "last" if nulls_last else None
        self.contains_aggregate = expression.contains_aggregate

    def resolve(self, query: Query, *, allow_joins: bool = True) -> Node:
        """Resolve into an ORDER BY node."""
        node = self.expression.resolve(query, allow_joins=allow_joins)
        return OrderByNode(node, self.descending, self.nulls)

    def __repr__(self) -> str:
        nulls = f", nulls_{self.nulls}=True" if self.nulls else ""
        return f"OrderBy({self.expression!r}, descending={self.descending}{nulls})"


def order_term(query: Query, term: Any) -> OrderByNode:
    """Resolve ``"-field"``, an :class:`OrderBy` or another expression into an ORDER BY node.

    Raises:
        FieldError: The term is not a string or an expression, or names no field.
    """
    if isinstance(term, str):
        desc = term.startswith("-")
        return OrderByNode(query.resolve_ref(term.lstrip("-")), desc, None)
    if isinstance(term, OrderBy):
        node = term.resolve(query)
        assert isinstance(node, OrderByNode)  # noqa: S101 - OrderBy.resolve() returns one
        return node
    if isinstance(term, Expression):
        return OrderByNode(term.resolve(query), False, None)
    raise FieldError(f"Invalid ordering term {term!r}. Use 'field', '-field' or an expression.")
