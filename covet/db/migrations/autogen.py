"""Autogenerate rewriting: renames instead of drop + add, NOT NULL backfills, data-loss warnings.

Alembic sees a renamed column (or table) as one dropped and another added,
which loses the data. :class:`_Rewriter` (the ``process_revision_directives``
hook of :func:`covet.db.migrations.revision`) turns such pairs into real
renames when told so (``--rename``, or a "Did you rename ...?" answer) and
refuses to guess otherwise. It also adds NOT NULL columns that have a
constant default as nullable, fills them, then tightens them, so existing
rows get the default. A revision that drops a table or a column, or narrows
a column's type, starts its ``upgrade()`` with a warning comment naming each
such operation (see :mod:`covet.db.migrations.destructive`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from covet.db.migrations.config import (
    _MODELS,
    MigrationError,
    RenameRequiredError,
    _echo,
)
from covet.db.migrations.destructive import describe_operations, warning_lines

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from alembic.config import Config
    from alembic.operations import ops as alembic_ops
    from alembic.runtime.migration import MigrationContext

    from covet.db.models import Model

__all__ = ()

# -- autogenerate rewriting: renames and NOT NULL backfills ---------------------------------


class _Rewriter:
    """The ``process_revision_directives`` hook of :func:`revision`."""

    def __init__(
        self,
        config: Config,
        renames: dict[str, str],
        not_renamed: set[str],
        confirm: Callable[[str], bool] | None,
    ) -> None:
        self.config = config
        self.renames = renames
        self.not_renamed = not_renamed
        self.confirm = confirm
        self.used: set[str] = set()
        self.unanswered: list[tuple[str, str]] = []

    def __call__(self, context: MigrationContext, rev: Any, directives: list[Any]) -> None:
        from alembic.operations import ops

        _extensions()
        script = directives[0]
        upgrade_ops = script.upgrade_ops
        if upgrade_ops.is_empty():
            directives[:] = []
            _echo(self.config, "No changes detected.")
            return
        import sqlalchemy as sa

        inspector = sa.inspect(context.connection)
        new_ops = self._tables(upgrade_ops.ops, inspector)
        new_ops = [
            part
            for op in new_ops
            for part in (self._columns(op) if isinstance(op, ops.ModifyTableOps) else [op])
        ]
        self._finish()
        new_ops = _backfills(new_ops, self.config.attributes.get(_MODELS, []))
        upgrade_ops.ops[:] = _prune_table_drops(new_ops)
        script.downgrade_ops.ops[:] = _prune_table_drops(_reverse_all(new_ops))
        _drop_autoincrement_hints(context, [*upgrade_ops.ops, *script.downgrade_ops.ops])
        found = describe_operations(upgrade_ops.ops)
        if found:
            upgrade_ops.ops.insert(0, _make_comment(warning_lines(found)))

    def _answer(self, key: str, new: str, question: str) -> bool:
        if self.renames.get(key) == new:
            self.used.add(key)
            return True
        if key in self.renames:
            return False
        if key in self.not_renamed:
            self.used.add(key)
            return False
        if self.confirm is not None:
            return self.confirm(question)
        self.unanswered.append((key, new))
        return False

    def _tables(self, items: list[Any], inspector: Any) -> list[Any]:
        from alembic.operations import ops

        drops = [op for op in items if isinstance(op, ops.DropTableOp)]
        creates = [op for op in items if isinstance(op, ops.CreateTableOp)]
        replaced: dict[int, list[Any]] = {}
        removed: set[int] = set()
        for create in creates:
            new_table = create.to_table()
            for drop in drops:
                if id(drop) in removed or not _like_tables(inspector, drop.table_name, new_table):
                    continue
                old, new = drop.table_name, create.table_name
                question = f"Did you rename the table {old} to {new}?"
                if self._answer(old, new, question):
                    removed.add(id(drop))
                    replaced[id(create)] = [
                        ops.RenameTableOp(old, new, schema=drop.schema),
                        *_renamed_table_fixups(inspector, old, new_table),
                    ]
                    break
        if not replaced:
            return items
        renamed = {drop.table_name for drop in drops if id(drop) in removed}
        out: list[Any] = []
        hoisted: list[Any] = []
        for op in items:
            if id(op) in removed:
                continue
            if isinstance(op, ops.ModifyTableOps):
                if op.table_name in renamed:
                    # What alembic would remove from the old table (MySQL lists its
                    # unique indexes) is handled by the rename's own fixups.
                    continue
                # Foreign keys to the old name go before the rename, so that the
                # downgrade (the reverse order) recreates them after renaming back.
                fk_drops = [
                    sub
                    for sub in op.ops
                    if isinstance(sub, ops.DropConstraintOp) and sub.constraint_type == "foreignkey"
                ]
                if fk_drops:
                    hoisted.append(ops.ModifyTableOps(op.table_name, fk_drops, schema=op.schema))
                    kept = [sub for sub in op.ops if sub not in fk_drops]
                    if not kept:
                        continue
                    op = ops.ModifyTableOps(op.table_name, kept, schema=op.schema)
            out.extend(replaced.get(id(op), [op]))
        return [*hoisted, *out]

    def _columns(self, container: Any) -> list[Any]:
        """Return ``container`` split so that its renames become real renames."""
        from alembic.operations import ops

        table = container.table_name
        items = list(container.ops)
        drops = [op for op in items if isinstance(op, ops.DropColumnOp)]
        adds = [op for op in items if isinstance(op, ops.AddColumnOp)]
        renames: list[Any] = []
        removed: set[int] = set()
        for add in adds:
            for drop in drops:
                if id(drop) in removed:
                    continue
                old_column = drop.to_column()
                if not _compatible(old_column.type, add.column.type):
                    continue
                key = f"{table}.{drop.column_name}"
                question = (
                    f"Did you rename {table}.{drop.column_name} to {table}.{add.column.name}?"
                )
                if self._answer(key, add.column.name, question):
                    removed.update((id(drop), id(add)))
                    renames.append(
                        ops.AlterColumnOp(
                            table,
                            drop.column_name,
                            schema=container.schema,
                            modify_name=add.column.name,
                            existing_type=old_column.type,
                            existing_nullable=old_column.nullable,
                            modify_nullable=add.column.nullable
                            if add.column.nullable != old_column.nullable
                            else None,
                        )
                    )
                    break
        rest = [op for op in items if id(op) not in removed]
        if not renames:
            return [container]
        # Three steps, so that each index or constraint operation names columns that
        # exist at that moment (and the downgrade, their reverse, does too): drop what
        # names the old columns, rename, then add and create the rest.
        removals = [op for op in rest if isinstance(op, ops.DropIndexOp | ops.DropConstraintOp)]
        others = [op for op in rest if op not in removals]
        steps = [removals, renames, others]
        return [ops.ModifyTableOps(table, step, schema=container.schema) for step in steps if step]

    def _finish(self) -> None:
        unused = sorted(set(self.renames) - self.used)
        if unused:
            raise MigrationError(
                f"--rename {', '.join(f'{k}={self.renames[k]}' for k in unused)} matches no "
                "dropped and added column (table.old=new) or table (old=new) of compatible "
                "type in this change. Check the names against the models."
            )
        if self.unanswered:
            lines = "; ".join(
                f"{key} -> {new!r} (--rename {key}={new} or --no-rename {key})"
                for key, new in self.unanswered
            )
            raise RenameRequiredError(
                f"The models drop and add columns or tables that may be renames: {lines}. "
                "covet does not guess: run makemigrations in a terminal to be asked, or pass "
                "--rename OLD=NEW for a rename and --no-rename OLD for a real drop."
            )


def _drop_autoincrement_hints(context: MigrationContext, items: list[Any]) -> None:
    """Leave ``autoincrement=`` out of ``alter_column`` where the database ignores it.

    Only MySQL's alter_column reads it; alembic's other implementations
    (PostgreSQL; SQLite outside batch mode) warn "autoincrement and
    existing_autoincrement only make sense for MySQL" each time the revision
    runs, and autogenerate writes it for every covet column.
    """
    from alembic.ddl.mysql import MySQLImpl
    from alembic.operations import ops

    if isinstance(context.impl, MySQLImpl):  # MariaDB's implementation subclasses it
        return
    for item in items:
        if isinstance(item, ops.ModifyTableOps):
            _drop_autoincrement_hints(context, item.ops)
        elif isinstance(item, ops.AlterColumnOp):
            item.kw.pop("autoincrement", None)
            item.kw.pop("existing_autoincrement", None)


def _compatible(old: Any, new: Any) -> bool:
    """Tell whether data in a column of type ``old`` fits one of type ``new`` unchanged."""
    affinity_old = getattr(old, "_type_affinity", type(old))
    affinity_new = getattr(new, "_type_affinity", type(new))
    if affinity_old is None or affinity_new is None:
        return False
    if issubclass(affinity_old, affinity_new) or issubclass(affinity_new, affinity_old):
        return True
    # MySQL/MariaDB store BOOLEAN as TINYINT(1), and reflect it so: the same 0/1 data.
    return _is_tinyint_boolean(old, affinity_old, affinity_new) or _is_tinyint_boolean(
        new, affinity_new, affinity_old
    )


def _is_tinyint_boolean(column_type: Any, affinity: Any, other_affinity: Any) -> bool:
    """Tell whether ``column_type`` is a reflected ``TINYINT(1)`` facing a Boolean."""
    from sqlalchemy.types import Boolean, Integer

    return (
        issubclass(affinity, Integer)
        and issubclass(other_affinity, Boolean)
        and getattr(column_type, "display_width", None) == 1
    )


def _like_tables(inspector: Any, old: str, new_table: Any) -> bool:
    """Tell whether the database table ``old`` has the columns of ``new_table``."""
    columns = {column["name"]: column["type"] for column in inspector.get_columns(old)}
    if set(columns) != {column.name for column in new_table.columns}:
        return False
    return all(_compatible(columns[column.name], column.type) for column in new_table.columns)


def _renamed_table_fixups(inspector: Any, old: str, new_table: Any) -> list[Any]:
    """Return the index/unique operations that give a renamed table its new names.

    Index and constraint names contain the table name (NAMING_CONVENTION), so
    the old ones are dropped and the new ones created after the rename.
    """
    import sqlalchemy as sa
    from alembic.operations import ops

    new = new_table.name
    reflected_uniques = {
        item["name"]: item["column_names"]
        for item in inspector.get_unique_constraints(old)
        if item["name"]
    }
    reflected_indexes = {
        item["name"]: (item["column_names"], bool(item["unique"]))
        for item in inspector.get_indexes(old)
        if item["name"]
        and item["name"] not in reflected_uniques
        and not item.get("duplicates_constraint")
    }
    wanted_indexes = {str(index.name): index for index in new_table.indexes}
    wanted_uniques = {
        str(constraint.name): constraint
        for constraint in new_table.constraints
        if isinstance(constraint, sa.UniqueConstraint)
    }
    # The old index and constraint objects, on the table's new name, so the
    # operations can be reversed for the downgrade.
    scratch = sa.Table(new, sa.MetaData(), *(sa.Column(c.name, c.type) for c in new_table.c))
    creates: list[Any] = [
        ops.CreateIndexOp.from_index(index)
        for name, index in sorted(wanted_indexes.items())
        if name not in reflected_indexes
    ]
    creates += [
        ops.AddConstraintOp.from_constraint(constraint)
        for name, constraint in sorted(wanted_uniques.items())
        if name not in reflected_uniques
    ]
    drops: list[Any] = []
    for name, (columns, unique) in sorted(reflected_indexes.items()):
        if name not in wanted_indexes:
            index = sa.Index(name, *(scratch.c[c] for c in columns), unique=unique)
            drops.append(ops.DropIndexOp.from_index(index))
    for name, columns in sorted(reflected_uniques.items()):
        if name not in wanted_uniques:
            constraint = sa.UniqueConstraint(*(scratch.c[c] for c in columns), name=name)
            drops.append(ops.DropConstraintOp.from_constraint(constraint))
    if not creates and not drops:
        return []
    return [ops.ModifyTableOps(new, [*creates, *drops])]


def _backfills(items: list[Any], models: Sequence[type[Model]]) -> list[Any]:
    """Add NOT NULL columns that have a constant default as nullable, fill them, then tighten.

    An existing table may hold rows, and covet's defaults live in Python, so
    a plain ``ADD COLUMN ... NOT NULL`` would fail there.
    """
    import sqlalchemy as sa
    from alembic.operations import ops

    defaults: dict[tuple[str, str], Any] = {}
    for model in models:
        for item in model._meta.concrete_fields:
            if item.has_default() and not callable(item.default):
                value = item.get_default()
                if type(value) in (bool, int, float, str):
                    defaults[(model._meta.table, item.column)] = value
    out: list[Any] = []
    for op in items:
        if not isinstance(op, ops.ModifyTableOps):
            out.append(op)
            continue
        fills = [
            sub
            for sub in op.ops
            if isinstance(sub, ops.AddColumnOp)
            and not sub.column.nullable
            and sub.column.server_default is None
            and (op.table_name, sub.column.name) in defaults
        ]
        if not fills:
            out.append(op)
            continue
        first: list[Any] = []
        for sub in op.ops:
            if sub in fills:
                column = sa.Column(sub.column.name, sub.column.type, nullable=True)
                first.append(ops.AddColumnOp(op.table_name, column, schema=op.schema))
            else:
                first.append(sub)
        out.append(ops.ModifyTableOps(op.table_name, first, schema=op.schema))
        for sub in fills:
            value = defaults[(op.table_name, sub.column.name)]
            out.append(_make_backfill(op.table_name, sub.column.name, value))
        out.append(
            ops.ModifyTableOps(
                op.table_name,
                [
                    ops.AlterColumnOp(
                        op.table_name,
                        sub.column.name,
                        schema=op.schema,
                        existing_type=sub.column.type,
                        existing_nullable=True,
                        modify_nullable=False,
                    )
                    for sub in fills
                ],
                schema=op.schema,
            )
        )
    return out


def _prune_table_drops(items: list[Any]) -> list[Any]:
    """Leave out index and unique drops on tables that are dropped anyway.

    Dropping a table drops its indexes; dropping them one by one first fails
    on MySQL, which refuses to drop the index a foreign key uses.
    """
    from alembic.operations import ops

    dropped = {op.table_name for op in items if isinstance(op, ops.DropTableOp)}
    if not dropped:
        return items

    def doomed(op: Any) -> bool:
        if isinstance(op, ops.DropIndexOp):
            return op.table_name in dropped
        return (
            isinstance(op, ops.DropConstraintOp)
            and op.constraint_type == "unique"
            and op.table_name in dropped
        )

    out: list[Any] = []
    for op in items:
        if doomed(op):
            continue
        if isinstance(op, ops.ModifyTableOps) and op.table_name in dropped:
            kept = [sub for sub in op.ops if not doomed(sub)]
            if not kept:
                continue
            op = ops.ModifyTableOps(op.table_name, kept, schema=op.schema)
        out.append(op)
    return out


def _reverse_all(items: Sequence[Any]) -> list[Any]:
    """Return the downgrade of ``items`` (renames reverse to renames; backfills vanish)."""
    from alembic.operations import ops

    out: list[Any] = []
    for op in reversed(items):
        if _is_backfill(op):
            continue
        if isinstance(op, ops.RenameTableOp):
            out.append(ops.RenameTableOp(op.new_table_name, op.table_name, schema=op.schema))
        elif isinstance(op, ops.ModifyTableOps):
            out.append(ops.ModifyTableOps(op.table_name, _reverse_all(op.ops), schema=op.schema))
        elif isinstance(op, ops.AlterColumnOp) and op.modify_name:
            out.append(
                ops.AlterColumnOp(
                    op.table_name,
                    op.modify_name,
                    schema=op.schema,
                    modify_name=op.column_name,
                    existing_type=op.existing_type,
                    existing_nullable=op.existing_nullable
                    if op.modify_nullable is None
                    else op.modify_nullable,
                    modify_nullable=None if op.modify_nullable is None else op.existing_nullable,
                )
            )
        else:
            out.append(op.reverse())
    return out


def _operation_classes() -> tuple[
    type[alembic_ops.MigrateOperation], type[alembic_ops.MigrateOperation]
]:
    from alembic.autogenerate import renderers
    from alembic.operations import ops

    class BackfillOp(ops.MigrateOperation):
        """Set a new column to its default in every existing row."""

        def __init__(self, table_name: str, column_name: str, value: Any) -> None:
            self.table_name = table_name
            self.column_name = column_name
            self.value = value

        def reverse(self) -> ops.MigrateOperation:
            """Return itself: the column it fills is dropped by the downgrade anyway."""
            return self

        def to_diff_tuple(self) -> tuple[Any, ...]:
            """Describe the backfill for alembic's diff listings."""
            return ("backfill_column", self.table_name, self.column_name, self.value)

    class CommentOp(ops.MigrateOperation):
        """Comment lines at the top of a generated function (a data-loss warning)."""

        def __init__(self, lines: list[str]) -> None:
            self.lines = lines

        def reverse(self) -> ops.MigrateOperation:
            """Return itself: the downgrade is generated separately and has no comment."""
            return self

        def to_diff_tuple(self) -> tuple[Any, ...]:
            """Describe the comment for alembic's diff listings."""
            return ("comment", *self.lines)

    @renderers.dispatch_for(CommentOp)
    def render_comment(autogen_context: Any, op: CommentOp) -> str:
        return "\n".join(op.lines)

    @renderers.dispatch_for(ops.RenameTableOp)
    def render_rename_table(autogen_context: Any, op: ops.RenameTableOp) -> str:
        # alembic can run rename_table but has no autogenerate renderer for it.
        schema = f", schema={op.schema!r}" if op.schema else ""
        return f"op.rename_table({op.table_name!r}, {op.new_table_name!r}{schema})"

    @renderers.dispatch_for(BackfillOp)
    def render(autogen_context: Any, op: BackfillOp) -> str:
        table, column = op.table_name, op.column_name
        # A typed column, so that --sql can render the value as a literal.
        kind = {bool: "Boolean", int: "Integer", float: "Float"}.get(type(op.value), "String")
        return (
            f"op.execute(\n    sa.table({table!r}, sa.column({column!r}, sa.{kind}()))\n"
            f"    .update()\n    .values({{{column!r}: {op.value!r}}})\n)"
        )

    return BackfillOp, CommentOp


_BACKFILL_CLASS: list[type[Any]] = []
_COMMENT_CLASS: list[type[Any]] = []


def _extensions() -> type[Any]:
    """Register covet's autogenerate renderers once and return the backfill op class."""
    if not _BACKFILL_CLASS:
        backfill, comment = _operation_classes()
        _BACKFILL_CLASS.append(backfill)
        _COMMENT_CLASS.append(comment)
    return _BACKFILL_CLASS[0]


def _make_backfill(table_name: str, column_name: str, value: Any) -> Any:
    return _extensions()(table_name, column_name, value)


def _make_comment(lines: list[str]) -> Any:
    _extensions()
    return _COMMENT_CLASS[0](lines)


def _is_backfill(op: Any) -> bool:
    return bool(_BACKFILL_CLASS) and isinstance(op, _BACKFILL_CLASS[0])
