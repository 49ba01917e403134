"""`covet makemigrations` for ArrayField: the array column and its GIN index (PostgreSQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.db.test_migrations import Project, project_on

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MODELS = """
class Shirt(Model):
    name = fields.CharField(max_length=20)
    tags = fields.ArrayField(fields.CharField(max_length=10), index=True)
    sizes = fields.ArrayField(fields.IntegerField(), null=True)

    class Meta:
        table = "shirt"
"""


@pytest.fixture(params=("postgres", "sqlite", "mysql"))
def any_project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """A project on each backend (test_migrations' own)."""
    yield from project_on(request.param, tmp_path, monkeypatch)


def test_array_column_and_gin_index_autogenerate(any_project: Project) -> None:
    project = any_project
    project.write_models(MODELS)
    if not project.store.features.supports_array_field:
        # Refused when the revision is made, naming the field and what to use instead.
        result = project.makemigrations("-m", "shirts", code=1)
        assert "Shirt.tags is an ArrayField, which only PostgreSQL supports" in result.output
        assert project.revisions() == []
        return
    project.makemigrations("-m", "shirts")
    script = project.revisions()[-1].read_text()
    assert "postgresql.ARRAY(sa.String(length=10))" in script
    assert "postgresql_using='gin'" in script
    project.migrate()
    snapshot = project.store.snapshot()["shirt"]
    assert ("tags", "ARRAY", False) in snapshot["columns"]
    assert ("sizes", "ARRAY", True) in snapshot["columns"]
    assert ("ix_shirt_tags", ("tags",), False) in snapshot["indexes"]
    gin = project.store.rows("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_shirt_tags'")
    assert "USING gin (tags)" in gin[0][0]
    types = project.store.rows(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'shirt'::regclass AND attname IN ('tags', 'sizes') ORDER BY attname"
    )
    assert types == [("sizes", "integer[]"), ("tags", "character varying(10)[]")]
    # The models and the migrated schema agree: nothing more to generate.
    result = project.makemigrations("-m", "again")
    assert "No changes detected" in result.output
    project.migrate("--down", "base")
    assert project.store.snapshot() == {}
