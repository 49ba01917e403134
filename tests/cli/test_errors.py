"""Dead ends of the CLI, end to end: one exact line on stderr and exit status 1 per cause.

Every fault is real: a port held by another socket, a closed port on
127.0.0.1 for an unreachable server, a database name the server does not
have, a user it does not know, a directory that does not exist, a driver
that cannot be imported.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import urllib.parse
from typing import TYPE_CHECKING

import pytest

from tests.cli.conftest import REPO, free_port, run_covet, write_project

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

APP = """\
from covet import Covet

app = Covet(allowed_hosts=["127.0.0.1"])
"""
# An app whose import takes the port: `covet run` checked it before importing the app, so
# uvicorn's own bind is the one that fails (the port taken between check and bind).
RACING_APP = """\
import os
import socket

from covet import Covet

_taken = socket.socket()
_taken.bind(("127.0.0.1", int(os.environ["TAKE_PORT"])))
_taken.listen()

app = Covet(allowed_hosts=["127.0.0.1"])
"""
URL_HINT = "the database URL (DATABASE_URL)"
SERVER_URLS = {
    "postgres": os.environ.get("COVET_TEST_POSTGRES_URL", ""),
    "mysql": os.environ.get("COVET_TEST_MYSQL_URL", ""),
}
DISPLAY = {"postgres": "PostgreSQL", "mysql": "MySQL"}
# The commands that connect to the database: `run` checks it before serving, `shell`
# connects it, `migrate` reads its revision.
DB_COMMANDS = {
    "run": ("run", "--port", "0"),
    "shell": ("shell", "-c", "print(1)"),
    "migrate": ("migrate",),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path, "errsite", APP)


@pytest.fixture
def migrated_project(tmp_path: Path) -> Path:
    """A project with a migrations directory, so that `covet migrate` connects."""
    root = write_project(tmp_path, "errsite", APP)
    made = run_covet(
        "makemigrations", "-m", "initial", cwd=root, DATABASE_URL="sqlite:///db.sqlite3"
    )
    assert made.returncode == 0, made.stderr
    assert (root / "migrations" / "env.py").is_file()
    return root


def _server_url(backend: str) -> str:
    url = SERVER_URLS[backend]
    if not url:
        if os.environ.get("COVET_TEST_REQUIRE_ALL") == "1":
            pytest.fail(f"COVET_TEST_{backend.upper()}_URL is not set")
        pytest.skip(f"COVET_TEST_{backend.upper()}_URL is not set")
    return url


def _replace(
    url: str, *, port: int | None = None, user: str | None = None, database: str | None = None
) -> str:
    parts = urllib.parse.urlsplit(url)
    netloc = f"{user or parts.username}@{parts.hostname}:{port or parts.port}"
    path = "/" + (database if database is not None else parts.path.lstrip("/"))
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Return the single ``Error: ...`` line of a failed run, checking there is nothing else."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    stderr = result.stderr
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("Error: "), stderr
    line = stderr[len("Error: ") : -1]
    assert "Error:" not in line
    assert ".." not in line
    assert "Traceback" not in stderr
    return line


# -- the port -------------------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 held by another listening socket."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


_IN_USE = re.compile(
    r"Cannot serve on 127\.0\.0\.1:(\d+): the address is already in use by another program\. "
    r"Stop that program, or choose another port, e\.g\. --port (\d+)\."
)


@pytest.mark.parametrize(
    "extra", [(), ("--workers", "2"), ("--reload",)], ids=["one", "workers", "reload"]
)
def test_port_in_use_is_reported_before_starting(
    project: Path, taken_port: int, extra: tuple[str, ...]
) -> None:
    result = run_covet("run", "--port", str(taken_port), *extra, cwd=project)
    match = _IN_USE.fullmatch(_one_error_line(result))
    assert match is not None, result.stderr
    assert int(match[1]) == taken_port
    suggested = int(match[2])
    assert suggested > taken_port
    # The suggested port is free indeed.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", suggested))
    assert result.stdout == ""


@pytest.mark.parametrize(
    "extra", [(), ("--workers", "2"), ("--reload",)], ids=["one", "workers", "reload"]
)
def test_port_taken_after_the_check_is_translated(tmp_path: Path, extra: tuple[str, ...]) -> None:
    root = write_project(tmp_path, "racer", RACING_APP)
    port = free_port()
    result = run_covet("run", "--port", str(port), *extra, cwd=root, TAKE_PORT=str(port))
    assert result.returncode == 1, result.stderr
    assert "Errno" not in result.stderr
    last = result.stderr.splitlines()[-1]
    match = _IN_USE.fullmatch(last.removeprefix("Error: "))
    assert last.startswith("Error: ") and match is not None, result.stderr
    assert int(match[1]) == port


def test_unknown_host_is_one_line(project: Path) -> None:
    result = run_covet("run", "--host", "covet-no-such-host.invalid", "--port", "8000", cwd=project)
    assert _one_error_line(result) == (
        "Cannot serve on covet-no-such-host.invalid:8000: the host name "
        "'covet-no-such-host.invalid' is unknown. Pass --host 127.0.0.1 (this machine only) or "
        "--host 0.0.0.0 (every interface)."
    )


# -- outside a project -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [("run",), ("routes",), ("shell", "-c", "print(1)"), ("migrate",)], ids=lambda a: a[0]
)
def test_outside_a_project_every_command_says_the_same(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = run_covet(*args, cwd=tmp_path)
    assert _one_error_line(result) == (
        f"No pyproject.toml with a [tool.covet] table was found in {str(tmp_path.resolve())!r} "
        "or its parents. Run the command inside a covet project, or create one with "
        "`covet new NAME`."
    )


# -- the database ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", DB_COMMANDS)
@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgres://ann:s3cret@127.0.0.1:99999/app",
            "Invalid port '99999' in the database URL 'postgres://ann:***@127.0.0.1:99999/app'. "
            "Use postgres://USER:PASSWORD@HOST:PORT/DATABASE, with PORT a number from 1 to "
            "65535.",
        ),
        (
            "mysql://root:s3cret@127.0.0.1:3306",
            "The database URL 'mysql://root:***@127.0.0.1:3306' names no database. Use "
            "mysql://USER:PASSWORD@HOST:PORT/DATABASE.",
        ),
        (
            "postgress://ann@127.0.0.1/app",
            "Unknown database URL scheme 'postgress' in the database URL "
            "'postgress://ann@127.0.0.1/app'. Use sqlite:///PATH, "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE or "
            "mysql://USER:PASSWORD@HOST:PORT/DATABASE (known schemes: mariadb, "
            "mariadb+aiomysql, mysql, mysql+aiomysql, postgres, postgresql, "
            "postgresql+asyncpg, sqlite, sqlite+aiosqlite).",
        ),
    ],
    ids=["bad-port", "no-database-name", "unknown-scheme"],
)
def test_malformed_url(migrated_project: Path, command: str, url: str, message: str) -> None:
    result = run_covet(*DB_COMMANDS[command], cwd=migrated_project, DATABASE_URL=url)
    assert _one_error_line(result) == message
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize("command", DB_COMMANDS)
@pytest.mark.parametrize("backend", DISPLAY)
def test_unreachable_server(migrated_project: Path, command: str, backend: str) -> None:
    port = free_port()
    url = _replace(_server_url(backend), port=port)
    result = run_covet(*DB_COMMANDS[command], cwd=migrated_project, DATABASE_URL=url)
    assert _one_error_line(result) == (
        f"Cannot connect to {DISPLAY[backend]} at 127.0.0.1:{port}: connection refused. "
        f"Start the database server, or fix the host and port in {URL_HINT}."
    )


@pytest.mark.parametrize("command", DB_COMMANDS)
@pytest.mark.parametrize("backend", DISPLAY)
def test_missing_database(migrated_project: Path, command: str, backend: str) -> None:
    server = _server_url(backend)
    parts = urllib.parse.urlsplit(server)
    name = f"covet_missing_{secrets.token_hex(4)}"
    result = run_covet(
        *DB_COMMANDS[command], cwd=migrated_project, DATABASE_URL=_replace(server, database=name)
    )
    create = {
        "postgres": f"createdb -h 127.0.0.1 -p {parts.port} -U {parts.username} {name}",
        "mysql": (
            f"mysql -h 127.0.0.1 -P {parts.port} -u {parts.username} -e 'CREATE DATABASE {name} "
            "CHARACTER SET utf8mb4'"
        ),
    }[backend]
    assert _one_error_line(result) == (
        f"The {DISPLAY[backend]} database {name!r} does not exist on 127.0.0.1:{parts.port}. "
        f"Fix the database name in {URL_HINT}, or create the database with: {create}"
    )


@pytest.mark.parametrize("command", DB_COMMANDS)
@pytest.mark.parametrize("backend", DISPLAY)
def test_unknown_user(migrated_project: Path, command: str, backend: str) -> None:
    server = _server_url(backend)
    parts = urllib.parse.urlsplit(server)
    user = f"covet_nobody_{secrets.token_hex(4)}"
    result = run_covet(
        *DB_COMMANDS[command], cwd=migrated_project, DATABASE_URL=_replace(server, user=user)
    )
    line = _one_error_line(result)
    assert line.startswith(
        f"{DISPLAY[backend]} at 127.0.0.1:{parts.port} refused the login of user {user!r}: "
    ), line
    assert line.endswith(f". Fix the user name and password in {URL_HINT}."), line


@pytest.mark.parametrize("command", ["run", "shell", "migrate"])
def test_missing_sqlite_directory(
    request: pytest.FixtureRequest, tmp_path: Path, command: str
) -> None:
    directory = tmp_path / "no" / "such"
    url = f"sqlite:///{directory / 'app.db'}"
    # migrate needs revisions to apply; the lock file it takes first is in that directory.
    where = request.getfixturevalue("migrated_project" if command == "migrate" else "project")
    result = run_covet(*DB_COMMANDS[command], cwd=where, DATABASE_URL=url)
    assert _one_error_line(result) == (
        f"The directory {str(directory)!r} of the SQLite database {url!r} does not exist. "
        f"Create it (mkdir -p {directory}), or fix the path in {URL_HINT}."
    )


@pytest.mark.parametrize("command", ["run", "shell"])
@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        ("postgresql://u@127.0.0.1/app", "asyncpg", "postgres"),
        ("mysql://u@127.0.0.1/app", "aiomysql", "mysql"),
    ],
    ids=["postgres", "mysql"],
)
def test_missing_driver(
    project: Path, tmp_path: Path, command: str, url: str, module: str, extra: str
) -> None:
    # A package that fails to import stands for the driver that is not installed.
    shadow = tmp_path / "shadow"
    (shadow / module).mkdir(parents=True)
    (shadow / module / "__init__.py").write_text(
        f"raise ModuleNotFoundError(\"No module named '{module}'\", name={module!r})\n", "utf-8"
    )
    result = run_covet(
        *DB_COMMANDS[command],
        cwd=project,
        DATABASE_URL=url,
        PYTHONPATH=os.pathsep.join([str(shadow), str(REPO)]),
    )
    assert _one_error_line(result) == (
        f"The {module!r} package is required for this feature. Run: pip install "
        f"'covet-web[{extra}]'"
    )
