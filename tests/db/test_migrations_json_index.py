"""`covet makemigrations` for JSONField(index=True).

A GIN index on PostgreSQL, a plain one on SQLite, refused on MySQL/MariaDB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.db.test_migrations import Project, project_on

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MODELS = """
class Doc(Model):
    name = fields.CharField(max_length=20)
    data = fields.JSONField(index=True)
    extra = fields.JSONField(null=True)

    class Meta:
        table = "doc"
"""


@pytest.fixture(params=("postgres", "sqlite", "mysql"))
def any_project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """A project on each backend (test_migrations' own)."""
    yield from project_on(request.param, tmp_path, monkeypatch)


def test_json_index_autogenerates(any_project: Project) -> None:
    project = any_project
    project.write_models(MODELS)
    if not project.store.features.can_index_json_field:
        # Refused when the revision is made, naming the field and the way out.
        result = project.makemigrations("-m", "docs", code=1)
        assert "Doc.data is a JSONField with index=True" in result.output
        assert "Remove index=True" in result.output
        assert project.revisions() == []
        return
    project.makemigrations("-m", "docs")
    script = project.revisions()[-1].read_text()
    # (SQLite's revision creates it inside batch_alter_table: no table name argument.)
    assert "create_index('ix_doc_data'," in script
    assert "['data'], unique=False" in script
    # The options only PostgreSQL reads; SQLite makes a plain index of the same name.
    assert "postgresql_using='gin'" in script
    assert "postgresql_ops={'data': 'jsonb_path_ops'}" in script
    project.migrate()
    snapshot = project.store.snapshot()["doc"]
    assert ("ix_doc_data", ("data",), False) in snapshot["indexes"]
    # The models and the migrated schema agree: nothing more to generate.
    result = project.makemigrations("-m", "again")
    assert "No changes detected" in result.output
    project.migrate("--down", "base")
    assert project.store.snapshot() == {}


def test_postgres_json_index_is_gin_with_jsonb_path_ops(tmp_path: Path, monkeypatch) -> None:
    projects = project_on("postgres", tmp_path, monkeypatch)
    project = next(projects)
    try:
        project.write_models(MODELS)
        project.makemigrations("-m", "docs")
        project.migrate()
        rows = project.store.rows("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_doc_data'")
        assert "USING gin (data jsonb_path_ops)" in rows[0][0]
    finally:
        projects.close()  # drops the database and forgets the project's modules


def test_adding_and_removing_the_index_later(any_project: Project) -> None:
    project = any_project
    if not project.store.features.can_index_json_field:
        pytest.skip("MySQL/MariaDB refuse JSONField(index=True) (see the test above)")
    project.write_models(MODELS.replace("JSONField(index=True)", "JSONField()"))
    project.makemigrations("-m", "plain")
    project.migrate()
    assert project.store.snapshot()["doc"]["indexes"] == []
    project.write_models(MODELS)
    project.makemigrations("-m", "index")
    script = project.revisions()[-1].read_text()
    assert "create_index(" in script
    assert "'ix_doc_data'" in script
    assert "postgresql_ops={'data': 'jsonb_path_ops'}" in script
    project.migrate()
    assert ("ix_doc_data", ("data",), False) in project.store.snapshot()["doc"]["indexes"]
    assert "No changes detected" in project.makemigrations("-m", "again").output
    project.write_models(MODELS.replace("JSONField(index=True)", "JSONField()"))
    project.makemigrations("-m", "unindex")
    upgrade = project.revisions()[-1].read_text().split("def downgrade", 1)[0]
    assert "drop_index(" in upgrade
    assert "'ix_doc_data'" in upgrade
    project.migrate()
    assert project.store.snapshot()["doc"]["indexes"] == []
