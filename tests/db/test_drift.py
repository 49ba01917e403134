"""Start-up check in debug mode: models edited without a migration are named, on every backend."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import secrets
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from covet.db import migrations
from covet.db.database import Database
from covet.db.migrations import drift as drift_check
from covet.db.migrations.runtime import model_drift
from covet.exceptions import ImproperlyConfigured
from tests.db.test_migrations import BACKENDS, Project, models_source, project_on, run_async

if TYPE_CHECKING:
    from collections.abc import Iterator

    from covet.config import Settings


@pytest.fixture(params=BACKENDS)
def project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """A project on each backend (see tests/db/test_migrations.py)."""
    yield from project_on(request.param, tmp_path, monkeypatch)


def start(project: Project, settings: Settings, *, debug: bool, wait: bool = True) -> list[str]:
    """Run the app's start-up check; with ``wait``, also wait for the comparison's line."""

    async def main() -> list[str]:
        db = Database(project.store.url, alias=f"app_{secrets.token_hex(3)}")
        await db.connect()
        try:
            pending = await migrations.ensure_migrated(db, settings, debug=debug)
            if wait:
                # The debug comparison runs in the background: wait for what it logs.
                await drift_check.wait_for_drift_checks()
            return pending
        finally:
            await db.disconnect()

    return run_async(main)


def drift(project: Project, settings: Settings) -> list[tuple[str, str]]:
    async def main() -> list[tuple[str, str]]:
        db = Database(project.store.url, alias=f"drift_{secrets.token_hex(3)}")
        await db.connect()
        try:
            return await model_drift(db, settings)
        finally:
            await db.disconnect()

    return run_async(main)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "covet.db.migrations"]


def test_a_field_added_without_makemigrations_is_named(project, where, caplog):
    project.write_models(models_source(2))
    project.makemigrations("-m", "initial")
    project.migrate()
    settings = project.settings()
    assert drift(project, settings) == []
    with caplog.at_level(logging.WARNING, logger="covet.db.migrations"):
        assert start(project, settings, debug=True) == []
    assert warnings_of(caplog) == []

    # The model gains a field; nobody ran makemigrations.
    project.write_models(models_source(3))
    settings = project.settings()
    assert drift(project, settings) == [("Post", "field 'views' has no column post.views")]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="covet.db.migrations"):
        assert start(project, settings, debug=True) == []
    assert warnings_of(caplog) == [
        "Model Post differs from the database: field 'views' has no column post.views. "
        'Run `covet makemigrations -m "..."` then `covet migrate`.'
    ]
    # Production does not pay for the comparison (and starts: nothing is pending).
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="covet.db.migrations"):
        assert start(project, settings, debug=False) == []
    assert warnings_of(caplog) == []

    # Once the revision exists but is not applied, `covet migrate` alone is the fix.
    project.makemigrations("-m", "views")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="covet.db.migrations"):
        pending = start(project, settings, debug=True)
    assert len(pending) == 1
    # The pending line comes at once; the comparison's, naming the fix, a moment later.
    assert warnings_of(caplog) == [
        f"1 migration is pending: {pending[0]}; run `covet migrate`.",
        "Model Post differs from the database: field 'views' has no column post.views, and "
        f"1 migration is pending: {pending[0]}; run `covet migrate`.",
    ]
    with pytest.raises(ImproperlyConfigured, match="1 migration is pending"):
        start(project, settings, debug=False)
    project.migrate()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="covet.db.migrations"):
        assert start(project, settings, debug=True) == []
    assert warnings_of(caplog) == []


def test_new_model_and_dropped_field_are_described(project):
    project.write_models(models_source(3))
    project.makemigrations("-m", "initial")
    project.migrate()
    # Step 6 adds Tag, the post->author key and the tags join table; step 9 drops subtitle.
    source = models_source(6).replace(
        "    subtitle = fields.CharField(max_length=200, null=True)\n", ""
    )
    project.write_models(source)
    found = drift(project, project.settings())
    assert ("Tag", "has no table 'tag' in the database") in found
    assert ("Post", "field 'author' has no column post.author_id") in found
    assert ("Post", "the database has column post.subtitle, which no field maps") in found
    # What names a model comes before what does not.
    named = [bool(model) for model, _ in found]
    assert named == sorted(named, reverse=True)


@pytest.fixture(params=["in process", "in a child"])
def where(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Compare in this process (it holds SQLAlchemy and alembic already) or in a child."""
    if request.param == "in a child":
        monkeypatch.setattr(drift_check, "_HEAVY", frozenset({"covet_no_such_module"}))
    return str(request.param)


def test_a_failing_comparison_does_not_stop_the_start(project, where, caplog):
    project.write_models(models_source(1))
    project.makemigrations("-m", "initial")
    project.migrate()
    # The models module breaks after the migration: only the comparison imports it.
    project.write_models(models_source(1) + '\nraise OSError("reflection failed")\n')
    settings = project.settings()
    with caplog.at_level(logging.WARNING, logger="covet.db.migrations"):
        assert start(project, settings, debug=True) == []
    assert warnings_of(caplog) == [
        "Could not compare the models with the database: OSError: reflection failed"
    ]


WORKER = """
import asyncio, logging, pickle, sys
from covet.db.database import Database
from covet.db.migrations import drift, ensure_migrated

settings = pickle.loads(sys.stdin.buffer.read())
logging.basicConfig(format="%(message)s", stream=sys.stdout)

async def main():
    db = Database(settings.database_url, alias="worker")
    await db.connect()
    try:
        await ensure_migrated(db, settings, debug=True)
        await drift.wait_for_drift_checks()
    finally:
        await db.disconnect()

asyncio.run(main())
print(sorted({name.partition(".")[0] for name in sys.modules} & {"alembic", "sqlalchemy"}))
"""


def test_the_worker_never_loads_sqlalchemy(project):
    # The comparison runs in a child process: SQLAlchemy and alembic (27 MB) stay
    # out of the worker, which serves on covet's own adapters.
    project.write_models(models_source(2))
    project.makemigrations("-m", "initial")
    project.migrate()
    project.write_models(models_source(3))
    settings = project.settings()
    result = subprocess.run(
        [sys.executable, "-c", WORKER],
        input=pickle.dumps(settings),
        capture_output=True,
        cwd=project.root,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines() == [
        "Model Post differs from the database: field 'views' has no column post.views. "
        'Run `covet makemigrations -m "..."` then `covet migrate`.',
        "[]",
    ]


def checking_children() -> list[int]:
    """Return the pids of this process's children that run the comparison."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if ppid == os.getpid() and b"run_child" in command:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_check_stops_with_the_app(project, caplog, monkeypatch):
    project.write_models(models_source(1))
    project.makemigrations("-m", "initial")
    project.migrate()
    settings = project.settings()
    monkeypatch.setattr(drift_check, "_HEAVY", frozenset({"covet_no_such_module"}))

    async def main() -> list[int]:
        db = Database(project.store.url, alias=f"stop_{secrets.token_hex(3)}")
        await db.connect()
        try:
            await migrations.ensure_migrated(db, settings, debug=True)
            loop = asyncio.get_running_loop()
            (task,) = [t for t in drift_check._RUNNING if t.get_loop() is loop]
            while not checking_children():
                await asyncio.sleep(0.005)
            task.cancel()  # what the server's shutdown does to a task still running
            with pytest.raises(asyncio.CancelledError):
                await task
            return checking_children()
        finally:
            await db.disconnect()

    with caplog.at_level(logging.WARNING, logger="covet.db.migrations"):
        assert run_async(main) == []  # the child was killed and reaped
    assert warnings_of(caplog) == []
    # A server stopping before the comparison started: asyncio.run() cancels the task.
    assert start(project, settings, debug=True, wait=False) == []
    assert checking_children() == []


def test_one_worker_of_a_server_compares(project, caplog, tmp_path, monkeypatch):
    """`covet run --workers N` names a directory: the first start claims it, later ones skip."""
    project.write_models(models_source(2))
    project.makemigrations("-m", "initial")
    project.migrate()
    project.write_models(models_source(3))
    settings = project.settings()
    claims = tmp_path / "claims"
    claims.mkdir()
    monkeypatch.setenv(drift_check.CLAIM_VARIABLE, str(claims))
    message = (
        "Model Post differs from the database: field 'views' has no column post.views. "
        'Run `covet makemigrations -m "..."` then `covet migrate`.'
    )
    with caplog.at_level(logging.WARNING, logger="covet.db.migrations"):
        start(project, settings, debug=True)  # the first worker
        start(project, settings, debug=True)  # the second
    assert warnings_of(caplog) == [message]
    assert (claims / "claimed").is_file()

    # A directory that is gone (the server's own was removed) does not silence the check.
    caplog.clear()
    monkeypatch.setenv(drift_check.CLAIM_VARIABLE, str(tmp_path / "gone"))
    with caplog.at_level(logging.WARNING, logger="covet.db.migrations"):
        start(project, settings, debug=True)
    assert warnings_of(caplog) == [message]
