"""Start-up check in debug mode: models edited without a migration are named, on every backend."""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

import pytest

from covet.db import migrations
from covet.db.database import Database
from covet.db.migrations.runtime import model_drift
from covet.exceptions import ImproperlyConfigured
from tests.db.test_migrations import BACKENDS, Project, models_source, project_on, run_async

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from covet.config import Settings


@pytest.fixture(params=BACKENDS)
def project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """A project on each backend (see tests/db/test_migrations.py)."""
    yield from project_on(request.param, tmp_path, monkeypatch)


def start(project: Project, settings: Settings, *, debug: bool) -> list[str]:
    async def main() -> list[str]:
        db = Database(project.store.url, alias=f"app_{secrets.token_hex(3)}")
        await db.connect()
        try:
            return await migrations.ensure_migrated(db, settings, debug=debug)
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


def test_a_field_added_without_makemigrations_is_named(project, caplog):
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
    (message,) = warnings_of(caplog)
    assert message == (
        "Model Post differs from the database: field 'views' has no column post.views, and "
        f"1 migration is pending: {pending[0]}; run `covet migrate`."
    )
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


def test_a_failing_comparison_does_not_stop_the_start(project, caplog, monkeypatch):
    project.write_models(models_source(1))
    project.makemigrations("-m", "initial")
    project.migrate()
    settings = project.settings()

    async def broken(database: Database, settings: Settings) -> list[tuple[str, str]]:
        raise OSError("reflection failed")

    monkeypatch.setattr("covet.db.migrations.runtime.model_drift", broken)
    with caplog.at_level(logging.WARNING, logger="covet.db.migrations"):
        assert start(project, settings, debug=True) == []
    assert warnings_of(caplog) == [
        "Could not compare the models with the database: OSError: reflection failed"
    ]
