"""End to end in subprocesses: ``covet new``, ``migrate``, ``run``, requests, ``pytest``."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from click.testing import CliRunner

from covet.cli import main
from covet.db import Database
from tests.cli.conftest import (
    free_port,
    run_covet,
    start_covet,
    stop_server,
    subprocess_env,
    wait_for_server,
    write_project,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

_CSRF_INPUT = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project made by ``covet new demo`` and migrated by ``covet migrate``."""
    where = tmp_path_factory.mktemp("e2e")
    created = run_covet("new", "demo", cwd=where)
    assert created.returncode == 0, created.stderr
    assert "covet migrate" in created.stdout
    root = where / "demo"
    migrated = run_covet("migrate", cwd=root)
    assert migrated.returncode == 0, migrated.stderr
    checked = run_covet("migrate", "--check", cwd=root)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return root


def test_serve_create_list_and_stop(project: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_covet("run", "--port", str(port), cwd=project)
    try:
        home = wait_for_server(f"{base}/", process)
        assert home.status_code == 200
        assert home.headers["content-type"].startswith("text/html")
        with httpx.Client(base_url=base, cookies=home.cookies) as client:
            # Notes belong to their author: visitors are sent to the log-in page.
            token = _csrf(client, "/login")
            anonymous = client.post("/notes", data={"title": "x", "csrf_token": token})
            assert anonymous.status_code == 303
            assert anonymous.headers["location"] == "/login?next=/notes"
            signed_up = client.post(
                "/signup",
                data={
                    "email": "writer@example.com",
                    "password": "a long and fine password",
                    "password_confirmation": "a long and fine password",
                    "csrf_token": _csrf(client, "/signup"),
                },
            )
            assert signed_up.status_code == 303, signed_up.text
            page = client.get("/")
            match = _CSRF_INPUT.search(page.text)
            assert match is not None, page.text
            created = client.post(
                "/notes",
                data={"title": "End to end", "body": "made by a test", "csrf_token": match[1]},
                headers={"Origin": base},
            )
            assert created.status_code == 303, created.text
            assert created.headers["location"].startswith(f"{base}/notes/")
            listing = client.get("/")
            assert "End to end" in listing.text
            notes = client.get("/api/notes").json()
            assert [(n["title"], n["body"]) for n in notes] == [("End to end", "made by a test")]
            detail = client.get(f"/api/notes/{notes[0]['id']}")
            assert detail.json() == notes[0]
            assert client.get("/api/notes/987654").status_code == 404
            assert client.get("/static/style.css").status_code == 200
            forged = client.post("/notes", data={"title": "no token"})
            assert forged.status_code == 403
    finally:
        code, _, err = stop_server(process, signal.SIGTERM)
    assert code == 0, err


def _csrf(client: httpx.Client, path: str) -> str:
    match = _CSRF_INPUT.search(client.get(path).text)
    assert match is not None, path
    return match[1]


def test_accounts_on_a_live_server_with_two_workers(project: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_covet("run", "--port", str(port), "--workers", "2", cwd=project)
    password = "a long and fine password"
    try:
        wait_for_server(f"{base}/login", process)
        with httpx.Client(base_url=base, headers={"Origin": base}) as client:
            signed_up = client.post(
                "/signup?next=/account",
                data={
                    "email": "e2e@example.com",
                    "password": password,
                    "password_confirmation": password,
                    "csrf_token": _csrf(client, "/signup"),
                    "next": "/account",
                },
            )
            assert signed_up.status_code == 303, signed_up.text
            assert signed_up.headers["location"] == "/account"
            assert "e2e@example.com</a>" in client.get("/").text
            logged_out = client.post("/logout", data={"csrf_token": _csrf(client, "/")})
            assert logged_out.status_code == 303
            assert client.get("/account").status_code == 303
            # Log-in attempts are counted in the database: both workers share the count,
            # whichever of them answers each attempt (a new connection every time).
            statuses = []
            for _ in range(6):
                token = _csrf(client, "/login")
                with httpx.Client(base_url=base, cookies=client.cookies) as single:
                    attempt = single.post(
                        "/login",
                        data={"email": "e2e@example.com", "password": "wrong", "csrf_token": token},
                        headers={"Origin": base, "Connection": "close"},
                    )
                statuses.append(attempt.status_code)
            assert statuses == [400, 400, 400, 400, 400, 429]
    finally:
        code, _, err = stop_server(process, signal.SIGTERM)
    assert code == 0, err
    assert err.count("Started server process") == 2, err


def test_generated_project_tests_pass(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_routes_of_the_generated_project(project: Path) -> None:
    result = run_covet("routes", cwd=project)
    assert result.returncode == 0, result.stderr
    rows = [line.split()[:3] for line in result.stdout.splitlines()[1:]]
    assert ["GET", "/", "note_list"] in rows
    assert ["POST", "/notes", "note_create"] in rows
    assert ["GET", "/notes/{note_id:int}/edit", "note_edit"] in rows
    assert ["GET", "/notes/{note_id:int}/delete", "note_confirm_delete"] in rows
    assert ["PATCH", "/api/notes/{note_id:int}", "api_note_update"] in rows
    assert ["POST", "/account/tokens", "token_create"] in rows
    assert ["DELETE", "/api/notes/{note_id:int}", "api_note_delete"] in rows
    assert ["*", "/static/{path}", "static"] in rows


def test_shell_of_the_generated_project(project: Path) -> None:
    result = run_covet(
        "shell", "-c", "print(sorted(k for k in dir() if k[0].isupper()), db.vendor)", cwd=project
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "['APIToken', 'AdminLogEntry', 'DatabaseSession', 'Note', 'RateLimitCounter', 'User'] "
        "sqlite"
    )


def test_run_with_unreachable_database(project: Path) -> None:
    result = run_covet(
        "run",
        "--port",
        str(free_port()),
        cwd=project,
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing?timeout=2",
    )
    assert result.returncode == 1
    assert result.stderr == (
        "Error: Cannot connect to PostgreSQL at 127.0.0.1:1: connection refused. Start the "
        "database server, or fix the host and port in the database URL (DATABASE_URL).\n"
    )


def test_migrate_with_unreachable_database(project: Path) -> None:
    result = run_covet(
        "migrate", cwd=project, DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing?timeout=2"
    )
    assert result.returncode != 0
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1, result.stderr


def test_run_refuses_pending_migrations_outside_debug(project: Path, tmp_path: Path) -> None:
    result = run_covet(
        "run",
        "--port",
        str(free_port()),
        cwd=project,
        DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        COVET_DEBUG="0",
    )
    assert result.returncode == 1
    assert "1 migration is not applied" in result.stderr
    assert "covet migrate" in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


PREFLIGHT = """
import sys
from covet.cli._common import load_settings
from covet.cli.run import preflight
preflight(load_settings())
print(sorted({name.partition(".")[0] for name in sys.modules} & {"alembic", "mako", "sqlalchemy"}))
"""


def test_run_checks_migrations_without_loading_alembic(project: Path) -> None:
    # `covet run` serves in the process that checked; alembic, Mako and SQLAlchemy
    # loaded there stayed in the worker for good (about 35 MB).
    result = subprocess.run(
        [sys.executable, "-c", PREFLIGHT],
        cwd=project,
        env=subprocess_env(COVET_DEBUG="0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_new_in_existing_project_directory_fails(project: Path) -> None:
    result = run_covet("new", "demo", cwd=project.parent)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Directory 'demo' is not empty.")


PROJECT_COMMAND_APP = """
import click
from covet import Covet

app = Covet()


@click.command("seed")
@click.option("--count", default=3)
def seed(count):
    \"\"\"Fill the database with sample rows.\"\"\"
    click.echo(f"seeded {count}")
"""


def test_project_commands_show_in_help_and_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_imports: None
) -> None:
    write_project(tmp_path, "cmd_site", PROJECT_COMMAND_APP, 'commands = ["cmd_site.app:seed"]')
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    help_text = runner.invoke(main, ["--help"]).output
    assert "seed" in help_text
    assert "Fill the database with sample rows." in help_text
    result = runner.invoke(main, ["seed", "--count", "5"])
    assert result.exit_code == 0, result.output
    assert result.output == "seeded 5\n"


def test_broken_project_command_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_imports: None
) -> None:
    write_project(
        tmp_path,
        "bad_cmd_site",
        "app = None\nnot_a_command = 1\n",
        'commands = ["bad_cmd_site.app:not_a_command", "bad_cmd_site.nowhere:cmd"]',
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert (
        "Project command 'bad_cmd_site.app:not_a_command' is 1, not a click command"
        in result.output
    )
    assert "Project command 'bad_cmd_site.nowhere:cmd' was not loaded" in result.output


_SERVERS = {"postgres": "COVET_TEST_POSTGRES_URL", "mysql": "COVET_TEST_MYSQL_URL"}


async def _admin(url: str, sql: str) -> None:
    async with Database(url, alias=f"e2e_admin_{secrets.token_hex(4)}") as database:
        await database.execute(sql)


@pytest.mark.parametrize("backend", sorted(_SERVERS))
def test_server_database_project_migrates_and_passes_its_tests(
    backend: str, tmp_path: Path
) -> None:
    server = os.environ.get(_SERVERS[backend], "")
    if not server:
        message = f"{_SERVERS[backend]} is not set; the {backend} project test is skipped"
        if os.environ.get("COVET_TEST_REQUIRE_ALL") == "1":
            pytest.fail(f"{message} (COVET_TEST_REQUIRE_ALL=1 makes this a failure)")
        pytest.skip(message)
    created = run_covet("new", "srvsite", "--db", backend, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    root = tmp_path / "srvsite"
    # Like the user following the README: create the project's database first.
    name = f"covet_e2e_{secrets.token_hex(4)}"
    url = urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    if backend == "postgres":
        create, drop = f'CREATE DATABASE "{name}"', f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    else:
        create = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
        drop = f"DROP DATABASE IF EXISTS `{name}`"
    asyncio.run(_admin(server, create))
    try:
        migrated = run_covet("migrate", cwd=root, DATABASE_URL=url)
        assert migrated.returncode == 0, migrated.stderr
        checked = run_covet("migrate", "--check", cwd=root, DATABASE_URL=url)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=root,
            env=subprocess_env(DATABASE_URL=url),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert " passed" in result.stdout and "skipped" not in result.stdout
    finally:
        asyncio.run(_admin(server, drop))
