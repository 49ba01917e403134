"""Find the operations of a revision that destroy data: dropped tables and columns, narrowed types.

Two views of the same question:

* :func:`scan_revision` reads a revision *file* (its Python syntax tree, so a
  hand-edited revision counts as much as a generated one) and lists the
  ``drop_table``, ``drop_column`` (``op.`` or ``batch_op.``), type-narrowing
  ``alter_column`` calls and ``op.execute()`` of literal ``DROP``/``TRUNCATE``
  SQL outside ``downgrade()``. ``covet migrate --no-destructive`` refuses the
  revisions it finds something in.
* :func:`describe_operations` reads alembic's autogenerate operations, so that
  ``covet makemigrations`` can put a warning comment at the top of the new
  revision's ``upgrade()``.

A type change narrows when the new type holds less than the old one: a
shorter string, text or JSON to a bounded string, a smaller integer, fewer
numeric digits, a date and time to a date, or a change of kind (text to a
number, say), which converts every value or fails. Changes towards text, a
bigger integer, a number from an integer or a boolean, or a date and time
from a date keep every value.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from covet.db.migrations.config import MigrationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

__all__ = (
    "DestructiveMigrationError",
    "DestructiveOperation",
    "describe_operations",
    "narrowing",
    "scan_revision",
    "warning_lines",
)

#: SQL in ``op.execute()`` that removes a table, a column or every row.
_DESTRUCTIVE_SQL: Final = re.compile(
    r"\b(?:DROP\s+(?:TABLE|COLUMN)\b"
    r"|TRUNCATE\b"
    r"|ALTER\s+TABLE\s+\S+\s+DROP\s+(?!CONSTRAINT\b|INDEX\b|KEY\b|PRIMARY\b|FOREIGN\b|CHECK\b"
    r"|DEFAULT\b|UNIQUE\b|PARTITION\b|NOT\b|IDENTITY\b|EXPRESSION\b))",
    re.IGNORECASE,
)

#: The modules whose names a revision's type expressions may use (see :func:`_namespace`).
_TYPE_MODULES: Final = ("sqlalchemy", "covet")


@dataclass(frozen=True, slots=True)
class DestructiveOperation:
    """One operation of a revision that loses data when it runs.

    Attributes:
        operation: The alembic operation: ``drop_table``, ``drop_column``,
            ``alter_column`` or ``execute``.
        table: The table it changes (the expression's source when it is not a
            string literal).
        column: The column, for ``drop_column`` and ``alter_column``.
        detail: What is lost, in words.
        line: The line of the call in the revision file (0 when unknown).
    """

    operation: str
    table: str
    column: str | None
    detail: str
    line: int = 0

    @property
    def target(self) -> str:
        """Return ``table.column``, or ``table`` for a table operation."""
        return f"{self.table}.{self.column}" if self.column else self.table

    def __str__(self) -> str:
        return f"{self.operation} {self.target} ({self.detail})"


# -- revision files ---------------------------------------------------------------------------


def scan_revision(path: Path, *, function: str = "upgrade") -> list[DestructiveOperation]:
    """Return the destructive operations of the revision file ``path``.

    Everything outside the other function (``downgrade()`` when ``function``
    is ``"upgrade"``) is read, so helpers that ``upgrade()`` calls count too.

    Args:
        path: A revision script.
        function: ``"upgrade"`` or ``"downgrade"``: the direction to check.

    Returns:
        The operations in source order (empty when the revision loses no data).

    Raises:
        SyntaxError: The file is not valid Python.
    """
    source = Path(path).read_text("utf-8")
    tree = ast.parse(source, filename=str(path))
    other = "downgrade" if function == "upgrade" else "upgrade"
    tree.body = [
        node
        for node in tree.body
        if not (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == other)
    ]
    scanner = _Scanner(_namespace(tree))
    scanner.visit(tree)
    return sorted(scanner.found, key=lambda item: item.line)


def _namespace(tree: ast.Module) -> dict[str, Any]:
    """Return the names the revision imports from SQLAlchemy and covet, to read its types.

    Only those imports run: they are what autogenerate writes for column
    types, and importing them has no side effect on the project.
    """
    statements: list[ast.stmt] = []
    for node in tree.body:
        if (
            isinstance(node, ast.Import)
            and all(alias.name.split(".")[0] in _TYPE_MODULES for alias in node.names)
        ) or (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] in _TYPE_MODULES
        ):
            statements.append(node)
    namespace: dict[str, Any] = {}
    for statement in statements:
        module = ast.Module(body=[statement], type_ignores=[])
        try:
            exec(compile(module, "<revision imports>", "exec"), namespace)  # noqa: S102 - imports only
        except ImportError:
            continue  # an optional dialect module that is not installed: its types stay unknown
    namespace.pop("__builtins__", None)
    return namespace


def _evaluate_type(node: ast.expr | None, namespace: dict[str, Any]) -> Any:
    """Return the SQLAlchemy type an expression like ``sa.String(length=100)`` builds, or None."""
    import sqlalchemy as sa

    if node is None:
        return None
    names = {item.id for item in ast.walk(node) if isinstance(item, ast.Name)}
    if not names <= set(namespace):
        return None
    code = compile(ast.Expression(body=node), "<revision type>", "eval")
    try:
        # The expression comes from the project's own revision, which migrate is
        # about to run anyway; only the imported type modules are in scope.
        value = eval(code, {"__builtins__": {}}, dict(namespace))  # noqa: S307 - see above
    except (TypeError, ValueError, AttributeError, NameError, KeyError, IndexError):
        return None
    if isinstance(value, type) and issubclass(value, sa.types.TypeEngine):
        value = value()
    return value if isinstance(value, sa.types.TypeEngine) else None


def _text(node: ast.expr | None) -> str | None:
    """Return a string literal's value, another expression's source, or None."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ast.unparse(node)


def _keyword(call: ast.Call, keyword: str) -> ast.expr | None:
    for item in call.keywords:
        if item.arg == keyword:
            return item.value
    return None


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    found = _keyword(call, keyword)
    if found is not None:
        return found
    if position < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args):
        return call.args[position]
    return None


def _sql_literal(node: ast.expr | None) -> str | None:
    """Return the SQL of ``"..."`` or ``sa.text("...")``, or None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if (
        isinstance(node, ast.Call)
        and node.args
        and isinstance(node.func, ast.Attribute | ast.Name)
        and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "text"
    ):
        return _sql_literal(node.args[0])
    return None


class _Scanner(ast.NodeVisitor):
    """Collect the destructive calls, knowing which ``batch_op`` names which table."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.found: list[DestructiveOperation] = []
        self.batches: list[dict[str, str]] = [{}]

    def visit_With(self, node: ast.With) -> None:
        self._with(node)

    def visit_AsyncWith(self, node: ast.AsyncWith) -> None:
        self._with(node)

    def _with(self, node: ast.With | ast.AsyncWith) -> None:
        scope = dict(self.batches[-1])
        for item in node.items:
            self.visit(item.context_expr)
            call = item.context_expr
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "batch_alter_table"
                and isinstance(item.optional_vars, ast.Name)
            ):
                scope[item.optional_vars.id] = _text(_argument(call, 0, "table_name")) or "?"
        self.batches.append(scope)
        try:
            for statement in node.body:
                self.visit(statement)
        finally:
            self.batches.pop()

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        if not isinstance(node.func, ast.Attribute):
            return
        name = node.func.attr
        receiver = node.func.value
        batch_table = self.batches[-1].get(receiver.id) if isinstance(receiver, ast.Name) else None
        line = node.lineno
        if name == "drop_table":
            table = _text(_argument(node, 0, "table_name")) or "?"
            self.found.append(
                DestructiveOperation(
                    "drop_table", table, None, "drops the table and every row in it", line
                )
            )
        elif name == "drop_column":
            if batch_table is not None:
                table, column = batch_table, _text(_argument(node, 0, "column_name"))
            else:
                table = _text(_argument(node, 0, "table_name")) or "?"
                column = _text(_argument(node, 1, "column_name"))
            self.found.append(
                DestructiveOperation(
                    "drop_column", table, column or "?", "drops the column and its data", line
                )
            )
        elif name == "alter_column":
            self._alter_column(node, batch_table)
        elif name == "execute":
            sql = _sql_literal(_argument(node, 0, "sqltext"))
            if sql is not None and _DESTRUCTIVE_SQL.search(sql):
                statement = " ".join(sql.split())
                if len(statement) > 80:
                    statement = statement[:77] + "..."
                self.found.append(
                    DestructiveOperation(
                        "execute", "?", None, f"runs SQL that removes data: {statement!r}", line
                    )
                )

    def _alter_column(self, node: ast.Call, batch_table: str | None) -> None:
        new_node = _keyword(node, "type_")
        if new_node is None or (isinstance(new_node, ast.Constant) and new_node.value is None):
            return  # no type change: renames and NULL changes keep the data
        if batch_table is not None:
            table, column = batch_table, _text(_argument(node, 0, "column_name")) or "?"
        else:
            table = _text(_argument(node, 0, "table_name")) or "?"
            column = _text(_argument(node, 1, "column_name")) or "?"
        old_node = _keyword(node, "existing_type")
        new = _evaluate_type(new_node, self.namespace)
        old = _evaluate_type(old_node, self.namespace)
        if old_node is None:
            detail = (
                f"changes the type to {ast.unparse(new_node)} without existing_type=, so "
                "covet cannot tell whether values are cut; give existing_type= to let it check"
            )
        elif old is None or new is None:
            detail = (
                f"changes the type from {ast.unparse(old_node)} to {ast.unparse(new_node)}, "
                "which covet cannot read, so values may be cut"
            )
        else:
            reason = narrowing(old, new)
            if reason is None:
                return
            detail = reason
        self.found.append(DestructiveOperation("alter_column", table, column, detail, node.lineno))


# -- type narrowing ---------------------------------------------------------------------------


def _base(kind: Any) -> Any:
    """Return the type without its dialect variants (``with_variant``), and TypeDecorator's impl."""
    import sqlalchemy as sa

    if isinstance(kind, sa.types.TypeDecorator):
        kind = kind.impl_instance
    return kind


def _integer_rank(kind: Any) -> int:
    import sqlalchemy as sa

    if isinstance(kind, sa.SmallInteger):
        return 0
    if isinstance(kind, sa.BigInteger):
        return 2
    return 1


def _render(kind: Any) -> str:
    try:
        return str(kind.compile())
    except Exception:  # noqa: BLE001 - any compile failure just means "show the class name"
        return type(kind).__name__


def narrowing(old: Any, new: Any) -> str | None:
    """Return why changing a column from type ``old`` to ``new`` may lose data, or None.

    Args:
        old: The column's SQLAlchemy type before the change.
        new: Its type after the change.

    Returns:
        A phrase like ``"narrows the type from VARCHAR(200) to VARCHAR(100)"``,
        or None when every old value fits the new type unchanged.
    """
    import sqlalchemy as sa

    old, new = _base(old), _base(new)
    message = f"narrows the type from {_render(old)} to {_render(new)}, which can cut values"
    if isinstance(new, sa.JSON):
        return None if isinstance(old, sa.JSON) else message
    if isinstance(new, sa.String):
        if new.length is None:
            return None  # unbounded text holds anything
        if isinstance(old, sa.String) and old.length is not None:
            return message if new.length < old.length else None
        if isinstance(old, sa.Boolean | sa.Integer):
            # 20 characters hold any BIGINT, sign included.
            return None if new.length >= 20 else message
        return message  # unbounded text, JSON or another kind into a bounded string
    if isinstance(new, sa.Boolean):
        return None if isinstance(old, sa.Boolean) else message
    if isinstance(new, sa.Integer):
        if isinstance(old, sa.Boolean):
            return None
        if isinstance(old, sa.Integer):
            return message if _integer_rank(new) < _integer_rank(old) else None
        return message
    # Float is not a Numeric subclass in SQLAlchemy 2.1 (both are NumericCommon).
    if isinstance(new, sa.Float):
        if isinstance(old, sa.Double):
            return None if isinstance(new, sa.Double) else message
        return None if isinstance(old, sa.Boolean | sa.Integer | sa.Float) else message
    if isinstance(new, sa.Numeric):
        if isinstance(old, sa.Boolean | sa.Integer):
            return None
        if not isinstance(old, sa.Numeric) or isinstance(old, sa.Float):
            return message
        if new.precision is None:
            return None
        if old.precision is None:
            return message
        old_scale, new_scale = old.scale or 0, new.scale or 0
        integral = (new.precision - new_scale) < (old.precision - old_scale)
        return message if integral or new_scale < old_scale else None
    if isinstance(new, sa.DateTime):
        return None if isinstance(old, sa.DateTime | sa.Date) else message
    if isinstance(new, sa.Date):
        return message if not isinstance(old, sa.Date) or isinstance(old, sa.DateTime) else None
    if old._type_affinity is new._type_affinity:
        return None
    return message


# -- autogenerate operations ------------------------------------------------------------------


def describe_operations(items: Iterable[Any]) -> list[DestructiveOperation]:
    """Return the destructive operations among alembic autogenerate operations.

    Args:
        items: ``upgrade_ops.ops`` of a generated revision (``ModifyTableOps``
            containers are looked into).
    """
    return list(_walk_operations(items))


def _walk_operations(items: Iterable[Any]) -> Iterator[DestructiveOperation]:
    from alembic.operations import ops

    for item in items:
        if isinstance(item, ops.ModifyTableOps):
            yield from _walk_operations(item.ops)
        elif isinstance(item, ops.DropTableOp):
            yield DestructiveOperation(
                "drop_table", item.table_name, None, "drops the table and every row in it"
            )
        elif isinstance(item, ops.DropColumnOp):
            yield DestructiveOperation(
                "drop_column", item.table_name, item.column_name, "drops the column and its data"
            )
        elif isinstance(item, ops.AlterColumnOp) and item.modify_type is not None:
            reason = (
                narrowing(item.existing_type, item.modify_type)
                if item.existing_type is not None
                else "changes the type without knowing the old one, so values may be cut"
            )
            if reason is not None:
                yield DestructiveOperation(
                    "alter_column", item.table_name, item.column_name, reason
                )


def warning_lines(found: Sequence[DestructiveOperation]) -> list[str]:
    """Return the comment lines a generated revision starts ``upgrade()`` with."""
    lines = [
        "# WARNING: this revision destroys data. Back the database up before applying it,",
        "# and copy what you need to keep in an earlier revision.",
        "# `covet migrate --no-destructive` refuses to apply it.",
    ]
    lines += [f"#   - {item}" for item in found]
    return lines


class DestructiveMigrationError(MigrationError):
    """``--no-destructive`` refused revisions that would destroy data.

    Attributes:
        operations: The destructive operations, by revision id, in the order
            the revisions would run.
    """

    def __init__(self, message: str, operations: dict[str, list[DestructiveOperation]]) -> None:
        super().__init__(message)
        self.operations = operations
