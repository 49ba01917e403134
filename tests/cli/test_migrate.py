"""The migration commands: options, messages and errors (SQLite, in-process).

The behaviour on every backend is covered by tests/db/test_migrations.py;
this file pins what the commands say and how they fail.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

from covet.cli import migrate as migrate_cli
from covet.cli.migrate import makemigrations_command, migrate_command, migrations_group
from covet.config import load_settings
from covet.db import migrations
from tests.cli.conftest import run_covet

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator
    from pathlib import Path


class Env:
    """A small SQLite project in a temp directory, with the CLI pointed at it."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.monkeypatch = monkeypatch
        self.prefix = f"climodels_{secrets.token_hex(3)}"
        self.count = 0
        self.db = root / "app.db"
        self.runner = CliRunner()
        monkeypatch.chdir(root)
        monkeypatch.syspath_prepend(str(root))
        monkeypatch.setenv("DATABASE_URL", f"sqlite:///{self.db}")

    def models(self, body: str) -> None:
        self.count += 1
        module = f"{self.prefix}_{self.count}"
        source = "from covet.db import Model, fields\n\n" + textwrap.dedent(body)
        (self.root / f"{module}.py").write_text(source, encoding="utf-8")
        (self.root / "pyproject.toml").write_text(
            f'[tool.covet]\nmodels = ["{module}"]\n', encoding="utf-8"
        )

    def run(self, command: object, *args: str, code: int = 0, stdin: str | None = None) -> Result:
        result = self.runner.invoke(command, list(args), input=stdin)  # type: ignore[arg-type]
        assert result.exit_code == code, (result.output, result.stderr, result.exception)
        return result

    def scripts(self) -> list[Path]:
        found = (self.root / "migrations" / "versions").glob("*.py")
        return sorted(found, key=lambda path: path.stat().st_mtime_ns)


ONE = """
class Item(Model):
    name = fields.CharField(max_length=50)
"""
RENAMED = """
class Item(Model):
    label = fields.CharField(max_length=50)
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    project = Env(tmp_path, monkeypatch)
    yield project
    for name in [m for m in sys.modules if m.startswith(project.prefix)]:
        del sys.modules[name]


def test_first_makemigrations_creates_the_directory(env: Env) -> None:
    env.models(ONE)
    result = env.run(makemigrations_command, "-m", "create items")
    assert "Created the migrations directory" in result.output
    assert "Created " in result.output
    assert {p.name for p in (env.root / "migrations").iterdir()} >= {
        "env.py",
        "script.py.mako",
        "README",
        "versions",
    }
    [script] = env.scripts()
    assert script.name.endswith("_create_items.py")
    text = script.read_text()
    assert "op.create_table('item'" in text
    compile(text, str(script), "exec")


def test_migrate_upgrades_and_reports_where_it_is(env: Env) -> None:
    env.models(ONE)
    env.run(makemigrations_command, "-m", "create items")
    result = env.run(migrate_command)
    assert "Applied" in result.output
    assert "Database at" in result.output
    again = env.run(migrate_command)
    assert "Applied" not in again.output
    current = env.run(migrations_group, "current").output
    assert "Up to date." in current


def test_migrate_to_a_revision_and_down(env: Env) -> None:
    env.models(ONE)
    env.run(makemigrations_command, "-m", "one")
    env.run(migrate_command)
    env.run(makemigrations_command, "-m", "data", "--empty")
    first, second = (s.name.split("-", 1)[1].split("_", 1)[0] for s in env.scripts())
    env.run(migrate_command)
    down = env.run(migrate_command, "--down", first)
    assert f"Reverted {second}" in down.output
    assert f"Database at {first}." in down.output
    up = env.run(migrate_command, second)
    assert f"Applied {second}" in up.output
    assert "Database at base" in env.run(migrate_command, "--down", "base").output


@pytest.mark.parametrize(
    "args", [["nonexist"], ["--down", "nonexist"], ["--down", "nonexist", "--sql"], ["+5"]]
)
def test_unknown_revision_is_not_a_failed_revision(env: Env, args: list[str]) -> None:
    env.models(ONE)
    env.run(makemigrations_command, "-m", "one")
    env.run(migrate_command)
    result = env.run(migrate_command, *args, code=1)
    assert "covet migrations history" in result.stderr
    assert "rolled back" not in result.stderr
    assert "failed" not in result.stderr
    assert result.stdout == ""


def test_current_lists_pending_revisions(env: Env) -> None:
    env.models(ONE)
    env.run(makemigrations_command, "-m", "one")
    result = env.run(migrations_group, "current")
    assert "base (no revision applied)" in result.output
    assert "1 pending" in result.output
    assert "covet migrate" in result.output


def test_sql_prints_without_touching_the_database(env: Env) -> None:
    env.models(ONE)
    env.run(makemigrations_command, "-m", "one")
    env.db.unlink()
    result = env.run(migrate_command, "--sql")
    assert "CREATE TABLE item" in result.stdout
    assert "Applied" not in result.stdout
    assert not env.db.exists()


def test_interactive_rename_is_asked(env: Env) -> None:
    env.models(ONE)
    env.run(makemigrations_command, "-m", "one")
    env.run(migrate_command)
    env.models(RENAMED)
    env.monkeypatch.setattr(migrate_cli, "_interactive", lambda: True)
    result = env.run(makemigrations_command, "-m", "rename", stdin="y\n")
    assert "Did you rename item.name to item.label?" in result.output
    text = env.scripts()[-1].read_text()
    assert "new_column_name='label'" in text
    assert "batch_alter_table('item'" in text  # SQLite renames through batch mode
    env.run(migrate_command)
    assert "No changes" in env.run(migrate_command, "--check").output


def test_interactive_no_means_drop_and_add(env: Env) -> None:
    env.models(ONE)
    env.run(makemigrations_command, "-m", "one")
    env.run(migrate_command)
    env.models(RENAMED)
    env.monkeypatch.setattr(migrate_cli, "_interactive", lambda: True)
    env.run(makemigrations_command, "-m", "replace", stdin="n\n")
    text = env.scripts()[-1].read_text()
    assert "drop_column('name')" in text
    assert "add_column(sa.Column('label'" in text


def test_non_interactive_rename_is_refused_naming_the_flag(env: Env) -> None:
    env.models(ONE)
    env.run(makemigrations_command, "-m", "one")
    env.run(migrate_command)
    env.models(RENAMED)
    result = env.run(makemigrations_command, "-m", "rename", code=1)
    assert "--rename item.name=label" in result.stderr
    assert "--no-rename item.name" in result.stderr
    assert "Traceback" not in result.output
    result = env.run(makemigrations_command, "-m", "rename", "--rename", "item.name=label")
    assert "new_column_name='label'" in env.scripts()[-1].read_text()


@pytest.mark.parametrize("value", ["item.name", "=label", "item.name=", "a=b.c"])
def test_malformed_rename_is_a_usage_error(env: Env, value: str) -> None:
    env.models(ONE)
    result = env.run(makemigrations_command, "--rename", value, code=2)
    assert "OLD=NEW" in result.stderr


def test_conflicting_migrate_options(env: Env) -> None:
    env.models(ONE)
    assert "not both" in env.run(migrate_command, "abc", "--down", "base", code=2).stderr
    assert "--check takes" in env.run(migrate_command, "--check", "--sql", code=2).stderr


def test_outside_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(migrate_command, [])
    assert result.exit_code == 1
    assert "No pyproject.toml with a [tool.covet] table" in result.stderr


def test_missing_database_url(env: Env) -> None:
    env.models(ONE)
    env.monkeypatch.delenv("DATABASE_URL")
    result = env.run(makemigrations_command, "-m", "one", code=1)
    assert "Set DATABASE_URL" in result.stderr


def test_commands_need_the_migrations_directory(env: Env) -> None:
    env.models(ONE)
    for args in (["history"], ["heads"]):
        result = env.run(migrations_group, *args, code=1)
        assert "covet makemigrations" in result.stderr
    assert "There is no migrations directory" in env.run(migrate_command, code=1).stderr


def test_merge_with_one_head_is_refused(env: Env) -> None:
    env.models(ONE)
    env.run(makemigrations_command, "-m", "one")
    result = env.run(migrations_group, "merge", code=1)
    assert "only one head" in result.stderr


def test_bad_models_module_is_reported(env: Env) -> None:
    (env.root / "pyproject.toml").write_text(
        '[tool.covet]\nmodels = ["no_such_models_module"]\n', encoding="utf-8"
    )
    result = env.run(makemigrations_command, "-m", "x", code=1)
    assert "Could not import the models module 'no_such_models_module'" in result.stderr


def test_registered_in_the_covet_group(env: Env) -> None:
    from covet.cli import main

    env.models(ONE)
    result = env.run(main, "makemigrations", "-m", "one")
    assert "Created" in result.output
    assert "Applied" in env.run(main, "migrate").output
    assert "one" in env.run(main, "migrations", "history").output


def test_init_project_migrations_needs_no_database(env: Env) -> None:
    env.models(ONE)
    env.monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    created = migrations.init_project_migrations(env.root, message="create items")
    names = {path.as_posix() for path in created}
    assert {"migrations/env.py", "migrations/script.py.mako", "migrations/README"} <= names
    [revision] = [p for p in created if p.parent.name == "versions"]
    assert "op.create_table('item'" in (env.root / revision).read_text()
    assert not env.db.exists()


def test_template_is_shipped() -> None:
    directory = migrations.template_directory()
    assert (
        "from covet.db.migrations import run_env\n\nrun_env()" in (directory / "env.py").read_text()
    )
    readme = (directory / "README").read_text().splitlines()
    assert readme[0].startswith("Database migrations of a covet project")


def test_check_pending_without_migrations(env: Env) -> None:
    env.models(ONE)
    assert migrations.check_pending(load_settings(env.root)) == []


def test_unreachable_database_is_one_line(env: Env) -> None:
    env.models(ONE)
    env.run(makemigrations_command, "-m", "one")
    env.monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    result = env.run(migrate_command, code=1)
    assert "Cannot connect to PostgreSQL at 127.0.0.1:1: connection refused." in result.stderr
    assert "fix the host and port in the database URL (DATABASE_URL)" in result.stderr


def test_makemigrations_needs_an_up_to_date_database(env: Env) -> None:
    env.models(ONE)
    env.run(makemigrations_command, "-m", "one")
    result = env.run(makemigrations_command, "-m", "two", code=1)
    assert "Run `covet migrate` first" in result.stderr


# -- destructive revisions, end to end in a subprocess ----------------------------------------

SHOP = """
from covet.db import Model, fields

class Item(Model):
    name = fields.CharField(max_length=50)
    notes = fields.TextField(default="")
"""
SHOP_WITHOUT_NOTES = """
from covet.db import Model, fields

class Item(Model):
    name = fields.CharField(max_length=50)
"""


def _shop(root: Path, models: str) -> None:
    (root / "pyproject.toml").write_text('[tool.covet]\nmodels = ["shop_models"]\n', "utf-8")
    (root / "shop_models.py").write_text(textwrap.dedent(models), "utf-8")


def _covet(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_covet(*args, cwd=root, DATABASE_URL=f"sqlite:///{root / 'shop.db'}")


def _rows(root: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(root / "shop.db")) as connection:
        return connection.execute(sql).fetchall()


def _revision_id(path: Path) -> str:
    return path.name.split("-", 1)[1].split("_", 1)[0]


def test_makemigrations_warns_about_a_dropped_column(tmp_path: Path) -> None:
    _shop(tmp_path, SHOP)
    assert _covet(tmp_path, "makemigrations", "-m", "one").returncode == 0
    assert _covet(tmp_path, "migrate").returncode == 0
    (tmp_path / "shop_models.py").write_text(SHOP_WITHOUT_NOTES, "utf-8")
    result = _covet(tmp_path, "makemigrations", "-m", "drop notes")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "Warning: the revision destroys data: drop_column item.notes "
        "(drops the column and its data)."
    ]
    [script] = (tmp_path / "migrations" / "versions").glob("*_drop_notes.py")
    assert "#   - drop_column item.notes (drops the column and its data)" in script.read_text()


def test_migrate_no_destructive_refuses_and_applies_nothing(tmp_path: Path) -> None:
    _shop(tmp_path, SHOP)
    _covet(tmp_path, "makemigrations", "-m", "one")
    _covet(tmp_path, "migrate")
    with contextlib.closing(sqlite3.connect(tmp_path / "shop.db")) as connection:
        connection.execute("INSERT INTO item (name, notes) VALUES ('lamp', 'fragile')")
        connection.commit()
    [first] = (tmp_path / "migrations" / "versions").glob("*_one.py")
    # A harmless revision, then a hand-written one that drops the column.
    _covet(tmp_path, "makemigrations", "-m", "harmless", "--empty")
    _covet(tmp_path, "makemigrations", "-m", "by hand", "--empty")
    [harmless] = (tmp_path / "migrations" / "versions").glob("*_harmless.py")
    [by_hand] = (tmp_path / "migrations" / "versions").glob("*_by_hand.py")
    source = by_hand.read_text("utf-8")
    by_hand.write_text(
        source.replace(
            '    """Apply this revision."""\n    pass',
            '    """Apply this revision."""\n'
            '    with op.batch_alter_table("item") as batch_op:\n'
            '        batch_op.drop_column("notes")',
        ),
        "utf-8",
    )

    refused = _covet(tmp_path, "migrate", "--no-destructive")
    assert refused.returncode == 1
    assert refused.stderr == (
        "Error: 1 revision would destroy data, so nothing was applied: revision "
        f"{_revision_id(by_hand)!r}: drop_column item.notes (drops the column and its data) "
        "on line 25. Back the database up and copy what you need to keep, then run "
        "`covet migrate` without --no-destructive.\n"
    )
    assert _rows(tmp_path, "SELECT version_num FROM alembic_version") == [(_revision_id(first),)]
    assert _rows(tmp_path, "SELECT notes FROM item") == [("fragile",)]

    # Up to the harmless revision is fine; the SQL of a range is checked too.
    harmless_id = _revision_id(harmless)
    applied = _covet(tmp_path, "migrate", harmless_id, "--no-destructive")
    assert applied.returncode == 0, applied.stderr
    assert f"Database at {harmless_id}." in applied.stdout
    sql = _covet(tmp_path, "migrate", "--sql", "--no-destructive", f"{harmless_id}:head")
    assert sql.returncode == 1
    assert sql.stdout == ""
    assert "drop_column item.notes" in sql.stderr

    # Without the flag the revision runs.
    assert _covet(tmp_path, "migrate").returncode == 0
    assert "notes" not in {row[1] for row in _rows(tmp_path, "PRAGMA table_info(item)")}


def test_no_destructive_is_for_upgrades(tmp_path: Path) -> None:
    _shop(tmp_path, SHOP)
    for args in (["--check"], ["--down", "base"]):
        result = _covet(tmp_path, "migrate", "--no-destructive", *args)
        assert result.returncode == 2
        assert "--no-destructive checks the revisions an upgrade applies" in result.stderr
