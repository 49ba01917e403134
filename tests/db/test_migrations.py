"""Migrations end to end on every backend: a models module lives through its schema changes.

Each backend gets a throw-away project directory (pyproject with ``[tool.covet]``)
and a private database: a SQLite file, a PostgreSQL schema (``search_path``)
or a MySQL database. The CLI commands run in-process through ``CliRunner``,
except the concurrency test, which starts two real ``covet migrate`` processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import textwrap
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from click.testing import CliRunner, Result

from covet import Covet
from covet.cli.migrate import makemigrations_command, migrate_command, migrations_group
from covet.config import load_settings
from covet.db import migrations
from covet.db.database import Database
from covet.exceptions import ImproperlyConfigured
from covet.health import health_router
from covet.testing import TestClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator

    from covet.db.backends.base import BaseCreation, BaseFeatures

T = TypeVar("T")
BACKENDS = ("sqlite", "postgres", "mysql")
ENV_VARS = {"postgres": "COVET_TEST_POSTGRES_URL", "mysql": "COVET_TEST_MYSQL_URL"}
REPO = Path(__file__).resolve().parents[2]


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a fresh loop in a thread (the tests here are synchronous)."""
    box: dict[str, Any] = {}

    def main() -> None:
        try:
            box["value"] = asyncio.run(factory())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=main)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def _unavailable(message: str) -> None:
    if os.environ.get("COVET_TEST_REQUIRE_ALL") == "1":
        pytest.fail(f"{message} (COVET_TEST_REQUIRE_ALL=1 makes this a failure)", pytrace=False)
    pytest.skip(message)


# -- one private database per test ----------------------------------------------------------


@dataclass
class Store:
    """A private database on one backend: its URL, and how to create and drop it."""

    backend: str
    url: str
    admin_url: str = ""
    name: str = ""
    sqlite_path: Path | None = None

    @property
    def features(self) -> BaseFeatures:
        """The backend's capability flags (from an unconnected Database)."""
        return Database(self.url, alias=f"features_{secrets.token_hex(4)}").features

    async def _admin(self, statements: Callable[[BaseCreation], tuple[str, ...]]) -> None:
        # The backend's own test-database DDL, built once connected (MySQL's collation).
        db = Database(self.admin_url, alias=f"admin_{secrets.token_hex(4)}", min_size=1)
        await db.connect()
        try:
            for sql in statements(db.backend.creation):
                await db.execute(sql)
        finally:
            await db.disconnect()

    def create(self) -> None:
        if self.admin_url:
            run_async(lambda: self._admin(lambda c: c.create_test_database_sql(self.name)))

    def drop(self) -> None:
        if self.admin_url:
            run_async(lambda: self._admin(lambda c: c.drop_test_database_sql(self.name)))

    async def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        db = Database(self.url, alias=f"check_{secrets.token_hex(4)}", min_size=1, max_size=1)
        await db.connect()
        try:
            return [tuple(row) for row in await db.fetch_all(sql)]
        finally:
            await db.disconnect()

    async def execute(self, *statements: str) -> None:
        db = Database(self.url, alias=f"exec_{secrets.token_hex(4)}", min_size=1, max_size=1)
        await db.connect()
        try:
            for sql in statements:
                await db.execute(sql)
        finally:
            await db.disconnect()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return run_async(lambda: self.fetch(sql))

    def run(self, *statements: str) -> None:
        run_async(lambda: self.execute(*statements))

    def snapshot(self) -> dict[str, Any]:
        """Reflect the schema with SQLAlchemy's inspector (alembic_version left out)."""
        return run_async(self._snapshot)

    async def _snapshot(self) -> dict[str, Any]:
        import sqlalchemy as sa

        # The engine `covet migrate` itself uses (search_path, charset, sql_mode included).
        database = Database(self.url, alias=f"snapshot_{secrets.token_hex(4)}")
        engine = database.backend.creation.migration_engine()

        def reflect(connection: Any) -> dict[str, Any]:
            inspector = sa.inspect(connection)
            out: dict[str, Any] = {}
            for table in sorted(inspector.get_table_names()):
                if table == "alembic_version":
                    continue
                uniques = sorted(
                    (u["name"], tuple(u["column_names"]))
                    for u in inspector.get_unique_constraints(table)
                )
                unique_names = {name for name, _ in uniques}
                out[table] = {
                    "columns": [
                        (c["name"], str(c["type"]), c["nullable"])
                        for c in inspector.get_columns(table)
                    ],
                    "pk": tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
                    "fks": sorted(
                        (
                            tuple(f["constrained_columns"]),
                            f["referred_table"],
                            tuple(f["referred_columns"]),
                            (f.get("options") or {}).get("ondelete"),
                        )
                        for f in inspector.get_foreign_keys(table)
                    ),
                    "indexes": sorted(
                        (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                        for i in inspector.get_indexes(table)
                        if i["name"] not in unique_names
                    ),
                    "uniques": uniques,
                    # MySQL: engine, charset and collation; empty elsewhere.
                    "options": inspector.get_table_options(table),
                }
            return out

        try:
            async with engine.connect() as connection:
                snapshot: dict[str, Any] = await connection.run_sync(reflect)
                return snapshot
        finally:
            await engine.dispose()


def make_store(backend: str, directory: Path) -> Store:
    name = f"covet_m_{secrets.token_hex(5)}"
    if backend == "sqlite":
        path = directory / f"{name}.db"
        return Store(backend, f"sqlite:///{path}", name=name, sqlite_path=path)
    admin = os.environ.get(ENV_VARS[backend], "")
    if not admin:
        _unavailable(f"{ENV_VARS[backend]} is not set; {backend} migration tests are skipped")
    creation = Database(admin, alias=f"store_{secrets.token_hex(4)}").backend.creation
    store = Store(backend, creation.test_database_url(admin, name), admin_url=admin, name=name)
    try:
        store.create()
    except Exception as exc:  # noqa: BLE001 - any failure means the server is unusable
        _unavailable(f"Cannot prepare a {backend} database at {admin}: {exc}")
    return store


# -- a project directory driven through the CLI ----------------------------------------------


MODEL_HEADER = "from covet.db import Model, fields\n"


@dataclass
class Project:
    """A throw-away covet project whose models change step by step."""

    root: Path
    store: Store
    prefix: str
    monkeypatch: pytest.MonkeyPatch
    step: int = 0
    runner: CliRunner = field(default_factory=CliRunner)

    def write_models(self, source: str) -> None:
        """Write the models as a new module (a fresh import) and point pyproject at it."""
        self.step += 1
        module = f"{self.prefix}_{self.step}"
        (self.root / f"{module}.py").write_text(
            MODEL_HEADER + textwrap.dedent(source), encoding="utf-8"
        )
        (self.root / "pyproject.toml").write_text(
            f'[project]\nname = "life"\n\n[tool.covet]\nmodels = ["{module}"]\n',
            encoding="utf-8",
        )

    def invoke(self, command: Any, *args: str, code: int = 0) -> Result:
        self.monkeypatch.chdir(self.root)
        result = self.runner.invoke(
            command, list(args), env={"DATABASE_URL": self.store.url}, catch_exceptions=False
        )
        assert result.exit_code == code, (args, result.output, result.stderr)
        return result

    def makemigrations(self, *args: str, code: int = 0) -> Result:
        return self.invoke(makemigrations_command, *args, code=code)

    def migrate(self, *args: str, code: int = 0) -> Result:
        return self.invoke(migrate_command, *args, code=code)

    def settings(self) -> Any:
        self.monkeypatch.setenv("DATABASE_URL", self.store.url)
        return load_settings(self.root)

    def revisions(self) -> list[Path]:
        """Return the revision scripts, oldest first."""
        found = (self.root / "migrations" / "versions").glob("*.py")
        return sorted(found, key=lambda path: path.stat().st_mtime_ns)


def project_on(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Generator[Project, None, None]:
    """Yield a project directory on a fresh ``backend`` database; drop both afterwards."""
    store = make_store(backend, tmp_path)
    root = tmp_path / "project"
    root.mkdir()
    prefix = f"life_{backend}_{secrets.token_hex(3)}"
    monkeypatch.syspath_prepend(str(root))
    try:
        yield Project(root, store, prefix, monkeypatch)
    finally:
        for name in [m for m in sys.modules if m.startswith(prefix)]:
            del sys.modules[name]
        store.drop()


@pytest.fixture(params=BACKENDS)
def project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """A project on each backend."""
    yield from project_on(request.param, tmp_path, monkeypatch)


@pytest.fixture
def sqlite_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """A project on SQLite only (for SQLite's batch mode)."""
    yield from project_on("sqlite", tmp_path, monkeypatch)


def models_source(step: int) -> str:
    """Return the life-test models after ``step`` changes (1 = the initial tables)."""
    post: list[str] = []
    author = ["name = fields.CharField(max_length=100%s)" % (", unique=True" if step >= 4 else "")]
    title = "headline" if step >= 7 else "title"
    post.append(f"{title} = fields.CharField(max_length=200{', index=True' if step >= 4 else ''})")
    if 2 <= step < 9:
        post.append("subtitle = fields.CharField(max_length=200, null=True)")
    if step >= 3:
        post.append("views = fields.IntegerField(default=0)")
    if step >= 5:
        post.append('author = fields.ForeignKey(Author, null=True, on_delete="SET_NULL")')
    if step >= 6:
        post.append('tags = fields.ManyToManyField("Tag", related_name="posts")')
    author_meta = ["class Meta:", '    table = "writer"'] if step >= 8 else []
    lines = ["class Author(Model):", *(f"    {x}" for x in author + author_meta), ""]
    if step >= 6:
        lines += ["class Tag(Model):", "    label = fields.CharField(max_length=50)", ""]
    lines += ["class Post(Model):", *(f"    {x}" for x in post)]
    lines += ["    class Meta:", '        table = "post"', ""]
    return "\n".join(lines)


def live_through(project: Project) -> None:
    """Take the models through every change, checking data and --check after each."""
    store = project.store
    flags = {7: ("--rename", "post.title=headline"), 8: ("--rename", "author=writer")}
    for step in range(1, 10):
        project.write_models(models_source(step))
        result = project.makemigrations("-m", f"step {step}", *flags.get(step, ()))
        assert "Created" in result.output
        script = project.revisions()[-1].read_text()
        if step == 7:  # a real rename, not a drop and an add
            assert "new_column_name='headline'" in script
            assert "drop_column" not in script
        elif step == 8:
            assert "op.rename_table('author', 'writer')" in script
            assert "drop_table" not in script
        project.migrate()
        assert "No changes" in project.migrate("--check").output
        if step > 1:  # the rows of step 1 survive every change
            post_query = "SELECT headline FROM post" if step >= 7 else "SELECT title FROM post"
            author_query = "SELECT name FROM writer" if step >= 8 else "SELECT name FROM author"
            assert store.rows(post_query) == [("hello",)]
            assert store.rows(author_query) == [("ann",)]
        if step == 1:
            store.run(
                "INSERT INTO author (name) VALUES ('ann')",
                "INSERT INTO post (title) VALUES ('hello')",
            )
        elif step == 2:
            store.run("UPDATE post SET subtitle = 'sub'")
        elif step == 3:
            assert store.rows("SELECT title, subtitle, views FROM post") == [("hello", "sub", 0)]
        elif step == 5:
            store.run("UPDATE post SET author_id = (SELECT id FROM author)")
        elif step == 6:
            store.run(
                "INSERT INTO tag (label) VALUES ('news')",
                "INSERT INTO post_tags (post_id, tag_id) SELECT post.id, tag.id FROM post, tag",
            )
        elif step == 7:
            assert store.rows("SELECT headline, subtitle FROM post") == [("hello", "sub")]
        elif step == 8:
            assert store.rows(
                "SELECT writer.name, post.headline FROM post JOIN writer "
                "ON writer.id = post.author_id"
            ) == [("ann", "hello")]
    assert store.rows(
        "SELECT post.headline, post.views, writer.name, tag.label FROM post "
        "JOIN writer ON writer.id = post.author_id "
        "JOIN post_tags ON post_tags.post_id = post.id JOIN tag ON tag.id = post_tags.tag_id"
    ) == [("hello", 0, "ann", "news")]
    columns = {c[0] for c in store.snapshot()["post"]["columns"]}
    assert columns == {"id", "headline", "views", "author_id"}


def create_all_snapshot(project: Project, tmp_path: Path) -> dict[str, Any]:
    """Return the schema that create_all makes from the project's models, on a fresh database."""
    fresh = make_store(project.store.backend, tmp_path)
    try:
        models = migrations.project_models(project.settings())

        async def create() -> None:
            from covet.db.schema import create_all

            db = Database(fresh.url, alias=f"fresh_{secrets.token_hex(3)}")
            await db.connect()
            try:
                await create_all(db, models)
            finally:
                await db.disconnect()

        run_async(create)
        return fresh.snapshot()
    finally:
        fresh.drop()


def test_models_live_through_schema_changes(project: Project, tmp_path: Path) -> None:
    live_through(project)
    store = project.store
    migrated = store.snapshot()
    assert set(migrated) == {"writer", "post", "tag", "post_tags"}
    assert ("ix_post_headline", ("headline",), False) in migrated["post"]["indexes"]

    # The same models through create_all give exactly the same tables.
    assert create_all_snapshot(project, tmp_path) == migrated

    # Down to base leaves no covet tables; up again restores the same schema.
    project.migrate("--down", "base")
    assert store.snapshot() == {}
    assert store.rows("SELECT COUNT(*) FROM alembic_version") == [(0,)]
    project.migrate()
    assert store.snapshot() == migrated


def test_no_changes_writes_nothing(project: Project) -> None:
    project.write_models(models_source(1))
    project.makemigrations("-m", "initial")
    project.migrate()
    result = project.makemigrations("-m", "again")
    assert "No changes detected" in result.output
    assert len(project.revisions()) == 1


def test_check_fails_on_uncovered_changes(project: Project) -> None:
    project.write_models(models_source(1))
    project.makemigrations("-m", "initial")
    project.migrate()
    project.write_models(models_source(2))
    result = project.migrate("--check", code=1)
    assert "subtitle" in result.stderr
    assert "covet makemigrations" in result.stderr


def test_rename_needs_an_answer_when_not_interactive(project: Project) -> None:
    project.write_models(models_source(6))
    project.makemigrations("-m", "initial")
    project.migrate()
    project.write_models(models_source(7))
    result = project.makemigrations("-m", "rename", code=1)
    assert "--rename post.title=headline" in result.stderr
    assert len(project.revisions()) == 1
    # An explicit "not a rename" drops the column and adds the new one.
    project.makemigrations("-m", "replace", "--no-rename", "post.title")
    text = project.revisions()[-1].read_text()
    assert re.search(r"drop_column\((?:'post', )?'title'\)", text)
    assert "new_column_name" not in text


def test_renaming_a_boolean_field_is_a_rename(project: Project) -> None:
    # MariaDB/MySQL reflect BOOLEAN as TINYINT(1): still the same data, so a rename.
    boolean = "class Flag(Model):\n    {} = fields.BooleanField(default=False)\n"
    project.write_models(boolean.format("active"))
    project.makemigrations("-m", "initial")
    project.migrate()
    run_async(lambda: project.store.execute("INSERT INTO flag (active) VALUES (TRUE)"))
    project.write_models(boolean.format("enabled"))
    project.makemigrations("-m", "rename", "--rename", "flag.active=enabled")
    text = project.revisions()[-1].read_text()
    assert "new_column_name='enabled'" in text
    assert "drop_column" not in text
    project.migrate()
    rows = run_async(lambda: project.store.fetch("SELECT enabled FROM flag"))
    assert [bool(r[0]) for r in rows] == [True]
    project.migrate("--check")  # nothing left to migrate: the column matches the model


def test_unmatched_rename_is_refused(project: Project) -> None:
    project.write_models(models_source(1))
    project.makemigrations("-m", "initial")
    project.migrate()
    project.write_models(models_source(2))
    result = project.makemigrations("-m", "x", "--rename", "post.nope=other", code=1)
    assert "post.nope=other matches no" in result.stderr


def test_failing_revision_reports_it(project: Project) -> None:
    project.write_models(models_source(1))
    project.makemigrations("-m", "initial")
    project.migrate()
    first = migrations.current(migrations.make_config(project.settings()))
    project.makemigrations("-m", "broken", "--empty")
    script = project.revisions()[-1]
    broken_id = re.search(r"revision: str = '(\w+)'", script.read_text())
    assert broken_id is not None
    script.write_text(
        script.read_text().replace(
            '    """Apply this revision."""\n    pass',
            '    """Apply this revision."""\n'
            '    op.create_table("half", sa.Column("id", sa.Integer(), primary_key=True))\n'
            '    op.execute("UPDATE no_such_table SET x = 1")',
        )
    )
    result = project.migrate(code=1)
    assert f"Revision {broken_id.group(1)!r} failed" in result.stderr
    assert "on the statement 'UPDATE no_such_table SET x = 1'" in result.stderr
    now = migrations.current(migrations.make_config(project.settings()))
    assert now == first
    tables = set(project.store.snapshot())
    if not project.store.features.supports_transactional_ddl:
        assert "MySQL cannot roll back DDL" in result.stderr
        assert "half" in tables
    else:
        assert "rolled back" in result.stderr
        assert "half" not in tables


def test_mysql_prints_the_ddl_warning(project: Project) -> None:
    project.write_models(models_source(1))
    project.makemigrations("-m", "initial")
    result = project.migrate()
    warned = "MySQL cannot roll back DDL" in result.output
    assert warned == (not project.store.features.supports_transactional_ddl)


def test_sql_output_applied_by_hand_matches_migrate(project: Project, tmp_path: Path) -> None:
    store = project.store
    for step in range(1, 10):
        project.write_models(models_source(step))
        flags = {7: ("--rename", "post.title=headline"), 8: ("--rename", "author=writer")}
        project.makemigrations("-m", f"step {step}", *flags.get(step, ()))
        project.migrate()
    migrated = store.snapshot()
    sql = project.migrate("--sql").output
    assert "CREATE TABLE" in sql
    assert store.snapshot() == migrated  # --sql touched nothing
    by_hand = make_store(store.backend, tmp_path)
    try:
        apply_sql(by_hand, sql)
        assert by_hand.snapshot() == migrated
        assert by_hand.rows("SELECT version_num FROM alembic_version") == store.rows(
            "SELECT version_num FROM alembic_version"
        )
    finally:
        by_hand.drop()


def apply_sql(store: Store, sql: str) -> None:
    """Feed SQL to the backend's own command-line client."""
    if store.backend == "sqlite":
        command = [shutil.which("sqlite3") or "sqlite3", "-bail", str(store.sqlite_path)]
    elif store.backend == "postgres":
        parts = urllib.parse.urlsplit(store.admin_url)
        sql = f'SET search_path TO "{store.name}";\n{sql}'
        command = [
            "psql",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-h",
            parts.hostname or "127.0.0.1",
            "-p",
            str(parts.port or 5432),
            "-U",
            parts.username or "postgres",
            parts.path.lstrip("/") or "postgres",
        ]
    else:
        parts = urllib.parse.urlsplit(store.admin_url)
        command = [
            "mysql",
            "-h",
            parts.hostname or "127.0.0.1",
            "-P",
            str(parts.port or 3306),
            "-u",
            parts.username or "root",
            store.name,
        ]
        if parts.password:
            command.insert(1, f"-p{parts.password}")
    if shutil.which(command[0]) is None:
        _unavailable(f"The {command[0]} client is not installed")
    done = subprocess.run(command, input=sql, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_sql_ranges_and_downgrades_apply_by_hand(project: Project, tmp_path: Path) -> None:
    store = project.store
    for step in (1, 2, 3, 4):
        project.write_models(models_source(step))
        project.makemigrations("-m", f"step {step}")
        project.migrate()
    # Rows with quotes, question marks, NULL and bytes go into the script as literals.
    project.makemigrations("-m", "rows", "--empty")
    script = project.revisions()[-1]
    script.write_text(
        script.read_text().replace(
            '    """Apply this revision."""\n    pass',
            '    """Apply this revision."""\n'
            '    post = sa.table("post", sa.column("title", sa.String), '
            'sa.column("subtitle", sa.String), sa.column("views", sa.Integer))\n'
            "    op.bulk_insert(post, [\n"
            '        {"title": "it\'s ?", "subtitle": None, "views": 3},\n'
            '        {"title": "a \\"b\\" -- c", "subtitle": "x", "views": -1},\n'
            "    ])",
        )
    )
    project.migrate()
    migrated = store.snapshot()
    rows = store.rows("SELECT title, subtitle, views FROM post ORDER BY views")
    assert rows == [('a "b" -- c', "x", -1), ("it's ?", None, 3)]
    revs = [path.name.split("-", 1)[1].split("_", 1)[0] for path in project.revisions()]
    by_hand = make_store(store.backend, tmp_path)
    try:
        # Up to the second revision, then the rest as a FROM:TO range.
        apply_sql(by_hand, project.migrate(revs[1], "--sql").output)
        assert by_hand.rows("SELECT version_num FROM alembic_version") == [(revs[1],)]
        apply_sql(by_hand, project.migrate(f"{revs[1]}:head", "--sql").output)
        assert by_hand.snapshot() == migrated
        assert by_hand.rows("SELECT title, subtitle, views FROM post ORDER BY views") == rows
        # Down one revision, then to the base: no covet tables are left.
        apply_sql(by_hand, project.migrate("--down", revs[-2], "--sql").output)
        assert by_hand.rows("SELECT version_num FROM alembic_version") == [(revs[-2],)]
        apply_sql(by_hand, project.migrate("--down", f"{revs[-2]}:base", "--sql").output)
        assert by_hand.snapshot() == {}
        assert by_hand.rows("SELECT COUNT(*) FROM alembic_version") == [(0,)]
    finally:
        by_hand.drop()
    assert store.snapshot() == migrated  # --sql never touched the project's database
    assert store.rows("SELECT version_num FROM alembic_version") == [(revs[-1],)]


def test_sql_on_sqlite_never_opens_the_database(sqlite_project: Project) -> None:
    project = sqlite_project
    for step in (1, 2, 3):
        project.write_models(models_source(step))
        project.makemigrations("-m", f"step {step}")
        project.migrate()
    database = project.store.sqlite_path
    assert database is not None
    database.rename(database.with_suffix(".moved"))
    sql = project.migrate("--sql").output
    assert "CREATE TABLE _alembic_tmp_post" in sql  # a batch-mode rebuild, recorded
    assert sql.count("BEGIN;") == sql.count("COMMIT;") == 3
    assert "PRAGMA" not in sql
    assert not database.exists()


def test_concurrent_migrate_runs_apply_each_revision_once(project: Project) -> None:
    for step in (1, 2, 3, 4):
        project.write_models(models_source(step))
        project.makemigrations("-m", f"step {step}")
        project.migrate()
    project.migrate("--down", "base")
    # Make the run slow enough that the two processes overlap.
    script = project.revisions()[0]
    script.write_text(
        script.read_text().replace(
            '    """Apply this revision."""\n',
            '    """Apply this revision."""\n    import time\n\n    time.sleep(1)\n',
        )
    )
    env = {
        **os.environ,
        "DATABASE_URL": project.store.url,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(project.root)]),
    }
    code = "from covet.cli.migrate import migrate_command; migrate_command()"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=project.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    applied = "".join(out for out, _ in outputs)
    for path in project.revisions():
        rev = path.name.split("-", 1)[1].split("_", 1)[0]
        assert applied.count(f"Applied {rev}") == 1
    # The lock held: one run applied all four, the other waited and found nothing to do.
    assert sorted(out.count("Applied ") for out, _ in outputs) == [0, 4], outputs
    assert "No changes" in project.migrate("--check").output


def test_heads_and_merge(project: Project) -> None:
    project.write_models(models_source(1))
    project.makemigrations("-m", "initial")
    base = migrations.heads(migrations.make_config(project.settings()))[0].revision
    project.migrate()
    # Two developers branch from the same revision.
    for label in ("left", "right"):
        project.makemigrations("-m", label, "--empty")
        script = project.revisions()[-1]
        text = script.read_text()
        own = re.search(r"down_revision: .* = '(\w+)'", text)
        assert own is not None
        script.write_text(text.replace(f"'{own.group(1)}'", f"'{base}'"))
    result = project.invoke(migrations_group, "heads")
    assert 'covet migrations merge -m "merge"' in result.stderr
    failed = project.migrate(code=1)
    assert 'covet migrations merge -m "merge"' in failed.stderr
    project.invoke(migrations_group, "merge", "-m", "merge")
    project.migrate()
    assert len(project.invoke(migrations_group, "heads").output.strip().splitlines()) == 1
    history = project.invoke(migrations_group, "history").output
    assert "(merge)" in history
    assert "(branchpoint)" in history
    current = project.invoke(migrations_group, "current").output
    assert "Up to date" in current


def test_pending_revisions_block_production_start(project: Project) -> None:
    project.write_models(models_source(1))
    project.makemigrations("-m", "initial")
    settings = project.settings()
    pending = migrations.check_pending(settings)
    assert len(pending) == 1

    async def start(debug: bool) -> list[str]:
        db = Database(project.store.url, alias=f"app_{secrets.token_hex(3)}")
        await db.connect()
        try:
            return await migrations.ensure_migrated(db, settings, debug=debug)
        finally:
            await db.disconnect()

    with pytest.raises(ImproperlyConfigured, match=r"1 migration is pending: .*covet migrate"):
        run_async(lambda: start(False))
    assert run_async(lambda: start(True)) == pending
    project.migrate()
    assert migrations.check_pending(settings) == []
    assert run_async(lambda: start(False)) == []


def test_ready_fails_while_migrations_are_pending(project: Project) -> None:
    project.write_models(models_source(1))
    project.makemigrations("-m", "initial")
    database = Database(project.store.url, alias=f"ready_{secrets.token_hex(3)}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Covet) -> AsyncIterator[None]:
        # Another database, connected first, that is not the project's.
        decoy = Database(
            f"sqlite:///{project.root / 'decoy.sqlite3'}", alias=f"decoy_{secrets.token_hex(3)}"
        )
        await decoy.connect()
        await database.connect()
        try:
            yield
        finally:
            await database.disconnect()
            await decoy.disconnect()

    app = Covet(lifespan=lifespan)
    settings = project.settings()
    assert str(database.url) == settings.database_url  # the database the check must pick
    # One router for both probes: the scripts are read at the first one only.
    # Only the migrations check: databases other tests left connected are not ours to ping.
    app.include_router(health_router(migrations=settings, redis=False, databases=False))
    with TestClient(app) as client:
        behind = client.get("/ready")
        assert behind.status_code == 503, behind.text
        check = behind.json()["checks"]["migrations"]
        assert check["ok"] is False
        assert "1 pending: " in check["error"] and "run `covet migrate`" in check["error"]
        project.migrate()
        current = client.get("/ready")
        assert current.status_code == 200, current.text
        assert current.json()["checks"]["migrations"]["ok"] is True


def test_data_migration_backfills_a_column(project: Project) -> None:
    project.write_models(models_source(2))
    project.makemigrations("-m", "initial")
    project.migrate()
    project.store.run("INSERT INTO post (title) VALUES ('a'), ('b')")
    project.makemigrations("-m", "backfill", "--empty")
    script = project.revisions()[-1]
    script.write_text(
        script.read_text().replace(
            '    """Apply this revision."""\n    pass',
            '    """Apply this revision."""\n'
            '    post = sa.table("post", sa.column("title", sa.String), '
            'sa.column("subtitle", sa.String))\n'
            '    op.execute(post.update().values(subtitle="about " + post.c.title))\n'
            '    op.bulk_insert(post, [{"title": "c", "subtitle": "new"}])',
        )
    )
    project.migrate()
    assert project.store.rows("SELECT title, subtitle FROM post ORDER BY title") == [
        ("a", "about a"),
        ("b", "about b"),
        ("c", "new"),
    ]


EVERY_FIELD = """
import enum


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Sample(Model):
    small = fields.SmallIntegerField(default=1)
    big = fields.BigIntegerField(null=True)
    ratio = fields.FloatField(default=0.5)
    price = fields.DecimalField(max_digits=10, decimal_places=2, null=True)
    active = fields.BooleanField(default=True)
    code = fields.CharField(max_length=20, unique=True)
    body = fields.TextField(default="")
    day = fields.DateField(null=True)
    at = fields.TimeField(null=True)
    stamp = fields.DateTimeField(null=True, index=True)
    key = fields.UUIDField(null=True)
    data = fields.JSONField(null=True)
    blob = fields.BinaryField(null=True)
    color = fields.EnumField(Color, default=Color.RED)

    class Meta:
        unique_together = [("small", "big")]
        indexes = [("ratio", "active")]


class Child(Model):
    parent = fields.OneToOneField(Sample, on_delete="CASCADE")
"""


def test_every_field_type_round_trips_cleanly(project: Project, tmp_path: Path) -> None:
    project.write_models(EVERY_FIELD)
    project.makemigrations("-m", "every field")
    project.migrate()
    assert "No changes" in project.migrate("--check").output
    assert project.store.snapshot() == create_all_snapshot(project, tmp_path)
    assert "No changes detected" in project.makemigrations("-m", "again").output
    # A new NOT NULL boolean with a default is filled in on existing rows.
    project.store.run(
        "INSERT INTO sample (small, ratio, active, code, body, color) "
        "VALUES (1, 0.5, TRUE, 'a', '', 'red')"
    )
    project.write_models(
        EVERY_FIELD.replace(
            "    color = fields.EnumField(Color, default=Color.RED)\n",
            "    color = fields.EnumField(Color, default=Color.RED)\n"
            "    archived = fields.BooleanField(default=False)\n"
            '    label = fields.CharField(max_length=10, default="new")\n',
        )
    )
    project.makemigrations("-m", "flags")
    project.migrate()
    assert project.store.rows("SELECT code, label FROM sample") == [("a", "new")]
    assert project.store.rows("SELECT COUNT(*) FROM sample WHERE archived = FALSE") == [(1,)]
    assert "No changes" in project.migrate("--check").output
