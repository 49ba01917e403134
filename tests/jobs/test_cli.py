"""`covet makemigrations` creates the job tables; `covet worker --burst` and `covet jobs ...`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from covet.db import Database
from covet.jobs.backends.database import DatabaseBackend
from tests.cli.conftest import run_covet
from tests.jobs import jobs as test_jobs

if TYPE_CHECKING:
    from pathlib import Path

PROJECT = """\
[project]
name = "jobsite"
version = "0"

[tool.covet]
models = ["covet.jobs.models"]
database_url = "sqlite:///site.sqlite3"

[tool.covet.jobs]
modules = ["tests.jobs.jobs"]
"""


def enqueue(root: Path, *labels: str) -> list[str]:
    async def main() -> list[str]:
        database = Database(f"sqlite:///{root / 'site.sqlite3'}", alias="jobs_cli")
        await database.connect()
        try:
            backend = DatabaseBackend(database)
            broken = test_jobs.broken.options(backend=backend)
            return [await broken.enqueue(label) for label in labels]
        finally:
            await database.disconnect()

    return asyncio.run(main())


def test_failed_jobs_are_listed_shown_retried_and_purged(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PROJECT, "utf-8")
    made = run_covet("makemigrations", "-m", "jobs", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    revision = next((tmp_path / "migrations" / "versions").glob("*.py")).read_text("utf-8")
    assert "covet_jobs" in revision
    assert "covet_job_schedules" in revision
    assert run_covet("migrate", cwd=tmp_path).returncode == 0

    first, second = enqueue(tmp_path, "one", "two")
    worker = run_covet("worker", "--burst", cwd=tmp_path)
    assert worker.returncode == 0, worker.stderr
    assert "failed on attempt 1 of 1 (ValueError: broken one); kept as failed" in worker.stderr

    listed = run_covet("jobs", "list", "--status", "failed", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "STATUS",
        "QUEUE",
        "NAME",
        "TRIES",
        "DUE",
        "(UTC)",
        "LAST",
        "ERROR",
    ]
    assert first in lines[1]
    assert "tests.jobs.jobs:broken  1/1" in lines[1]
    assert lines[1].endswith("ValueError: broken one")
    assert lines[-1] == "In all: 0 queued, 0 running, 2 failed."

    shown = run_covet("jobs", "show", second, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert 'arguments: {"args":[],"kwargs":{"label":"two"}}' in shown.stdout
    assert 'raise ValueError(f"broken {label}")' in shown.stdout

    retried = run_covet("jobs", "retry", first, cwd=tmp_path)
    assert (retried.returncode, retried.stdout.strip()) == (0, "Requeued 1 failed job(s).")
    again = run_covet("jobs", "retry", first, cwd=tmp_path)
    assert again.returncode == 1
    assert "Requeued 0 of 1 job(s): the others are not failed jobs" in again.stderr
    nothing = run_covet("jobs", "retry", cwd=tmp_path)
    assert nothing.returncode == 1
    assert (
        "Name the failed jobs to retry (`covet jobs retry ID...`), or pass --all." in nothing.stderr
    )

    purged = run_covet("jobs", "purge", cwd=tmp_path)
    assert purged.stdout.strip() == "Deleted 1 failed job(s)."
    queued = run_covet("jobs", "list", cwd=tmp_path)
    assert first in queued.stdout
    assert "queued" in queued.stdout
    assert queued.stdout.splitlines()[-1] == "In all: 1 queued, 0 running, 0 failed."

    bad = run_covet("jobs", "purge", "--older-than", "3 weeks", cwd=tmp_path)
    assert bad.returncode == 2
    assert "'3 weeks' is not a duration. Write 90, 90s, 15m, 2h or 7d." in bad.stderr
    missing = run_covet("jobs", "show", "0" * 32, cwd=tmp_path)
    assert missing.returncode == 1
    assert "No job '00000000000000000000000000000000': it succeeded" in missing.stderr


def test_missing_tables_say_how_to_create_them(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PROJECT, "utf-8")
    listed = run_covet("jobs", "list", cwd=tmp_path)
    assert listed.returncode == 1
    assert 'Add "covet.jobs.models" to models in [tool.covet]' in listed.stderr
    assert "covet makemigrations -m jobs" in listed.stderr


def test_worker_refuses_to_start_without_the_tables(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PROJECT, "utf-8")
    worker = run_covet("worker", cwd=tmp_path, timeout=30)
    assert worker.returncode == 1
    assert "The job tables are missing" in worker.stderr
    assert "covet makemigrations -m jobs" in worker.stderr
