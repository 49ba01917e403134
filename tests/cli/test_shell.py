"""Tests of ``covet shell``: namespace, top-level await, database, errors."""

from __future__ import annotations

import importlib.util
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.cli.conftest import covet_argv, run_covet, subprocess_env, write_project

if TYPE_CHECKING:
    from pathlib import Path

APP = """
import contextlib

from covet import Covet
from covet.config import load_settings
from covet.db import Database, create_all

settings = load_settings()


@contextlib.asynccontextmanager
async def lifespan(app):
    database = Database(settings.database_url)
    await database.connect()
    from shell_site.models import Item
    await create_all([Item])
    yield
    await database.disconnect()


app = Covet(lifespan=lifespan, allowed_hosts=["localhost"])
"""

MODELS = """
from covet.db import Model, fields


class Item(Model):
    name = fields.CharField(max_length=50)

    class Meta:
        table = "shell_items"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_project(tmp_path, "shell_site", APP, 'models = ["shell_site.models"]')
    (tmp_path / "shell_site" / "models.py").write_text(MODELS, "utf-8")
    (tmp_path / ".env").write_text(f"DATABASE_URL=sqlite:///{tmp_path / 'shell.sqlite3'}\n")
    return tmp_path


def test_shell_command_runs_top_level_await_with_models_and_db(project: Path) -> None:
    code = (
        "await Item.objects.create(name='first')\n"
        "print(await Item.objects.count(), db.vendor, type(app).__name__)"
    )
    result = run_covet("shell", "-c", code, cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 sqlite Covet"


def test_interactive_shell_reads_statements_from_stdin(project: Path) -> None:
    process = subprocess.run(
        covet_argv("shell", "--interface", "python"),
        cwd=project,
        env=subprocess_env(),
        input=(
            "item = await Item.objects.create(name='typed')\n"
            "print('count', await Item.objects.count())\n"
            "1 / 0\n"
            "print('still alive', item.name)\n"
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    assert "count 1" in process.stdout
    assert "still alive typed" in process.stdout
    assert "ZeroDivisionError" in process.stderr
    assert "Loaded: app, settings, db, Item." in process.stderr


def test_shell_command_error_shows_traceback_and_fails(project: Path) -> None:
    code = "await asyncio.sleep(0)\nraise LookupError('no such thing')"
    result = run_covet("shell", "-c", code, cwd=project)
    assert result.returncode == 1
    assert "LookupError: no such thing" in result.stderr
    assert "Traceback" in result.stderr


def test_shell_without_project_or_app(tmp_path: Path) -> None:
    result = run_covet("shell", "-c", "print(1)", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: No pyproject.toml with a [tool.covet] table")
    assert result.stderr.count("\n") == 1


def test_shell_with_unreachable_database_is_one_line_error(project: Path) -> None:
    result = run_covet(
        "shell",
        "-c",
        "print(1)",
        cwd=project,
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing?timeout=2",
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_shell_missing_database_directory_is_one_line_error(project: Path) -> None:
    result = run_covet(
        "shell", "-c", "print(1)", cwd=project, DATABASE_URL="sqlite:////nonexistent/dir/x.db"
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1, result.stderr


@pytest.mark.skipif(importlib.util.find_spec("IPython") is not None, reason="IPython is installed")
def test_shell_ipython_interface_needs_ipython(project: Path) -> None:
    result = run_covet("shell", "--interface", "ipython", cwd=project)
    assert result.returncode == 1
    assert "needs IPython" in result.stderr
