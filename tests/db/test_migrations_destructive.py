"""Finding the revision operations that destroy data (covet.db.migrations.destructive).

The file scanner reads hand-written revisions as well as generated ones; the
narrowing rules decide which type changes can cut values. The commands that
use them are tested end to end in tests/cli/test_migrate.py, and on every
backend at the end of this file.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from covet.db.migrations import DestructiveOperation, scan_revision
from covet.db.migrations.destructive import narrowing
from tests.db.test_migrations import BACKENDS, Project, project_on

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

HEADER = """\
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "abc123"
down_revision = None
"""


def scan(tmp_path: Path, body: str, *, function: str = "upgrade") -> list[DestructiveOperation]:
    path = tmp_path / "revision.py"
    path.write_text(HEADER + textwrap.dedent(body), "utf-8")
    return scan_revision(path, function=function)


def targets(found: list[DestructiveOperation]) -> list[tuple[str, str]]:
    return [(item.operation, item.target) for item in found]


def test_generated_drops_in_batch_mode(tmp_path: Path) -> None:
    found = scan(
        tmp_path,
        """
        def upgrade():
            with op.batch_alter_table('notes', schema=None) as batch_op:
                batch_op.drop_column('priority')
            with op.batch_alter_table('users', schema=None) as batch_op:
                batch_op.drop_index('ix_users_email')
                batch_op.drop_column('nickname')
            op.drop_table('tags')

        def downgrade():
            op.drop_table('never_counted')
            op.drop_column('notes', 'never_counted')
        """,
    )
    assert targets(found) == [
        ("drop_column", "notes.priority"),
        ("drop_column", "users.nickname"),
        ("drop_table", "tags"),
    ]
    assert found[0].line == 10  # 6 header lines, a blank line, then the body
    assert str(found[0]) == "drop_column notes.priority (drops the column and its data)"


def test_hand_written_forms(tmp_path: Path) -> None:
    found = scan(
        tmp_path,
        """
        TABLE = "archive"

        def _cleanup():
            op.drop_column(table_name="posts", column_name="legacy")

        def upgrade():
            op.drop_column("posts", "body")
            _cleanup()
            op.drop_table(TABLE)
            op.execute("DROP TABLE old_posts")
            op.execute(sa.text("ALTER TABLE posts DROP summary"))
            op.execute("truncate table sessions")
            # Not data loss: constraints, indexes, reads and inserts.
            op.execute("ALTER TABLE posts DROP CONSTRAINT uq_posts_slug")
            op.execute("DROP INDEX ix_posts_slug")
            op.execute("UPDATE posts SET body = ''")
            op.drop_index("ix_posts_body", table_name="posts")
            op.rename_table("posts", "articles")
        """,
    )
    assert targets(found) == [
        ("drop_column", "posts.legacy"),
        ("drop_column", "posts.body"),
        ("drop_table", "TABLE"),
        ("execute", "?"),
        ("execute", "?"),
        ("execute", "?"),
    ]
    assert "DROP TABLE old_posts" in found[3].detail


def test_downgrade_direction(tmp_path: Path) -> None:
    body = """
    def upgrade():
        op.create_table("posts", sa.Column("id", sa.Integer()))

    def downgrade():
        op.drop_table("posts")
    """
    assert scan(tmp_path, body) == []
    assert targets(scan(tmp_path, body, function="downgrade")) == [("drop_table", "posts")]


def test_type_changes(tmp_path: Path) -> None:
    found = scan(
        tmp_path,
        """
        def upgrade():
            with op.batch_alter_table('notes') as batch_op:
                batch_op.alter_column('title', existing_type=sa.VARCHAR(length=200),
                                      type_=sa.String(length=100), existing_nullable=False)
                batch_op.alter_column('body', existing_type=sa.String(length=100),
                                      type_=sa.Text())
                batch_op.alter_column('views', existing_type=sa.Integer(),
                                      type_=sa.BigInteger())
                batch_op.alter_column('slug', nullable=True)
            op.alter_column('notes', 'rank', existing_type=sa.BigInteger(),
                            type_=sa.SmallInteger())
            op.alter_column('notes', 'blob', existing_type=mysql.LONGTEXT(),
                            type_=sa.String(length=10))
            op.alter_column('notes', 'mystery', type_=sa.String(length=10))
        """,
    )
    assert targets(found) == [
        ("alter_column", "notes.title"),
        ("alter_column", "notes.rank"),
        ("alter_column", "notes.blob"),
        ("alter_column", "notes.mystery"),
    ]
    assert "from VARCHAR(200) to VARCHAR(100)" in found[0].detail
    assert "existing_type=" in found[3].detail


def test_invalid_python_is_a_syntax_error(tmp_path: Path) -> None:
    with pytest.raises(SyntaxError):
        scan(tmp_path, "def upgrade(:\n")


@pytest.mark.parametrize(
    ("old", "new", "narrows"),
    [
        (sa.String(200), sa.String(100), True),
        (sa.String(100), sa.String(200), False),
        (sa.String(), sa.String(100), True),
        (sa.Text(), sa.String(100), True),
        (sa.String(100), sa.Text(), False),
        (mysql.LONGTEXT(), sa.Text(), False),
        (sa.JSON(), sa.Text(), False),
        (sa.JSON(), sa.String(100), True),
        (sa.Text(), sa.JSON(), True),
        (postgresql.JSONB(), sa.JSON(), False),
        (sa.Integer(), sa.String(20), False),
        (sa.Integer(), sa.String(5), True),
        (sa.BigInteger(), sa.Integer(), True),
        (sa.Integer(), sa.SmallInteger(), True),
        (sa.Integer(), sa.BigInteger(), False),
        (sa.Boolean(), sa.Integer(), False),
        (sa.Integer(), sa.Boolean(), True),
        (sa.String(10), sa.Integer(), True),
        (sa.Integer(), sa.Numeric(10, 2), False),
        (sa.Numeric(10, 2), sa.Numeric(8, 2), True),
        (sa.Numeric(10, 2), sa.Numeric(10, 1), True),
        (sa.Numeric(10, 2), sa.Numeric(12, 3), False),
        (sa.Numeric(10, 2), sa.Integer(), True),
        (sa.Float(), sa.Numeric(10, 2), True),
        (sa.Integer(), sa.Float(), False),
        (sa.Float(), sa.Double(), False),
        (sa.Double(), sa.Float(), True),
        (sa.Numeric(10, 2), sa.Float(), True),
        (sa.Numeric(10, 2), sa.Numeric(), False),
        (sa.Numeric(), sa.Numeric(10, 2), True),
        (sa.Date(), sa.DateTime(), False),
        (sa.DateTime(), sa.Date(), True),
        (sa.DateTime(), sa.DateTime(timezone=True), False),
        (sa.String(30), sa.DateTime(), True),
        (sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), sa.String(50), True),
        (sa.LargeBinary(), sa.LargeBinary(), False),
    ],
)
def test_narrowing(old: Any, new: Any, narrows: bool) -> None:
    assert (narrowing(old, new) is not None) is narrows


# -- generated revisions on every backend -----------------------------------------------------

BEFORE = """
class Item(Model):
    name = fields.CharField(max_length=200)
    notes = fields.TextField(default="")
    class Meta:
        table = "item"
"""
AFTER = """
class Item(Model):
    name = fields.CharField(max_length=100)
    class Meta:
        table = "item"
"""


@pytest.fixture(params=BACKENDS)
def project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    yield from project_on(request.param, tmp_path, monkeypatch)


def test_generated_revision_warns_and_no_destructive_refuses_it(project: Project) -> None:
    project.write_models(BEFORE)
    project.makemigrations("-m", "initial")
    project.migrate()
    project.store.run("INSERT INTO item (name, notes) VALUES ('kept', 'precious')")
    project.write_models(AFTER)
    result = project.makemigrations("-m", "shrink")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert sorted(warnings) == [
        "Warning: the revision destroys data: alter_column item.name (narrows the type from "
        "VARCHAR(200) to VARCHAR(100), which can cut values).",
        "Warning: the revision destroys data: drop_column item.notes "
        "(drops the column and its data).",
    ]
    script = project.revisions()[-1]
    text = script.read_text("utf-8")
    upgrade = text[text.index("def upgrade") : text.index("def downgrade")]
    assert "# WARNING: this revision destroys data." in upgrade
    assert "#   - drop_column item.notes (drops the column and its data)" in upgrade
    assert "#   - alter_column item.name (narrows the type" in upgrade
    assert "WARNING" not in text[text.index("def downgrade") :]
    revision = script.name.split("-", 1)[1].split("_", 1)[0]

    refused = project.migrate("--no-destructive", code=1)
    assert f"revision {revision!r}: " in refused.stderr
    assert "drop_column item.notes (drops the column and its data) on line" in refused.stderr
    assert "alter_column item.name (narrows the type" in refused.stderr
    assert "nothing was applied" in refused.stderr
    assert project.store.rows("SELECT name, notes FROM item") == [("kept", "precious")]

    project.migrate()
    assert project.store.rows("SELECT name FROM item") == [("kept",)]
