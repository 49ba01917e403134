"""Tests of ``covet check`` and ``covet check --deploy``."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from covet import Covet
from covet.cli.check import (
    CheckContext,
    check_allowed_hosts,
    check_debug,
    check_metrics,
    check_migrations,
    check_secret_key,
    check_security_headers,
    check_sessions,
    check_workers,
    weak_secret_key,
)
from covet.config import Settings
from covet.middleware import CSRFMiddleware, SecurityHeadersMiddleware, SessionMiddleware
from covet.routing import Router
from tests.cli.conftest import covet_argv, run_covet, subprocess_env, write_project

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from covet.cli.check import Problem

STRONG_KEY = secrets.token_urlsafe(50)
_LINE = re.compile(r"^(covet\.[EW]\d{3}) (ERROR|WARNING): .+\. Fix: .+$")


def _ids(output: str) -> list[str]:
    """Return the IDs of the problem lines, checking each line's shape."""
    ids = []
    for line in output.splitlines():
        if line.startswith("covet."):
            match = _LINE.match(line)
            assert match, line
            ids.append(match[1])
    return ids


class MetricsApp:
    """Stands in for covet.metrics' endpoint: recognised by its class name."""

    def __init__(self, *, protected: bool) -> None:
        self.protected = protected

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raise NotImplementedError


# -- end to end: a scaffolded project -----------------------------------------------------

METRICS_MOUNT = """

class MetricsApp:
    protected = False

    async def __call__(self, scope, receive, send):
        raise RuntimeError("not served in this test")


app.mount("/metrics", MetricsApp())
"""


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a project made by ``covet new checksite``, for tests to copy (never to change)."""
    where = tmp_path_factory.mktemp("scaffold")
    created = run_covet("new", "checksite", cwd=where)
    assert created.returncode == 0, created.stderr
    return where / "checksite"


@pytest.fixture
def project(scaffolded: Path, tmp_path: Path) -> Path:
    """Return this test's own copy of the ``covet new`` project.

    One scaffold per module, copied, saves each test a ``covet new`` and the child
    process it starts to generate the first migration (about 1.3 s).
    """
    return shutil.copytree(scaffolded, tmp_path / "checksite")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), "utf-8")


def _covet_with(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``covet ARGS`` with the variables of ``env`` set."""
    return subprocess.run(
        covet_argv(*args),
        cwd=cwd,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _empty_sqlite(path: Path) -> str:
    sqlite3.connect(path).close()
    return f"sqlite:///{path}"


@pytest.mark.slow
def test_deploy_flags_every_problem_of_a_misconfigured_project(
    tmp_path: Path, project: Path
) -> None:
    app_py = project / "checksite" / "app.py"
    _edit(app_py, "    app.add_middleware(SecurityHeadersMiddleware)\n", "")
    _edit(app_py, "store=DatabaseStore())", "store=DatabaseStore(), https_only=False)")
    app_py.write_text(app_py.read_text("utf-8") + METRICS_MOUNT, "utf-8")
    result = run_covet(
        "check",
        "--deploy",
        "--workers",
        "4",
        cwd=project,
        COVET_DEBUG="1",
        SECRET_KEY="changeme",
        ALLOWED_HOSTS="",
        DATABASE_URL=_empty_sqlite(tmp_path / "prod.sqlite3"),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert _ids(result.stdout) == [
        "covet.E101",  # debug on
        "covet.E103",  # weak SECRET_KEY
        "covet.E104",  # no allowed hosts
        "covet.E106",  # session cookie never Secure
        "covet.W108",  # no idle timeout
        "covet.E109",  # no HSTS on HTML
        "covet.E110",  # no CSP on HTML
        "covet.E111",  # pending migrations
        "covet.E114",  # SQLite on 4 workers
        "covet.E115",  # public metrics
    ]
    assert "covet check --deploy: 9 errors, 1 warning." in result.stdout
    assert "changeme" not in result.stdout  # the key itself is never printed
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_deploy_passes_a_correctly_configured_project(tmp_path: Path, project: Path) -> None:
    env = {
        "COVET_DEBUG": "0",
        "SECRET_KEY": STRONG_KEY,
        "ALLOWED_HOSTS": "example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
    }
    migrated = _covet_with(env, "migrate", cwd=project)
    assert migrated.returncode == 0, migrated.stderr

    # As scaffolded: only warnings (the Secure flag per request, no idle timeout).
    result = _covet_with(env, "check", "--deploy", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _ids(result.stdout) == ["covet.W107", "covet.W108"]
    strict = _covet_with(env, "check", "--deploy", "--fail-level", "WARNING", cwd=project)
    assert strict.returncode == 1
    skipped = _covet_with(
        env,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        "--skip",
        "covet.W107",
        "--skip",
        "covet.W108",
        cwd=project,
    )
    assert skipped.returncode == 0, skipped.stdout

    _edit(
        project / "checksite" / "app.py",
        "store=DatabaseStore())",
        "store=DatabaseStore(), https_only=True, idle_timeout=1800)",
    )
    clean = _covet_with(env, "check", "--deploy", "--fail-level", "WARNING", cwd=project)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.strip() == "covet check --deploy: no problems found."


@pytest.mark.slow
def test_deploy_reports_an_unreachable_database(project: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = run_covet(
        "check",
        "--deploy",
        cwd=project,
        COVET_DEBUG="0",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="example.com",
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/test",
    )
    assert result.returncode == 1
    assert "covet.E112" in _ids(result.stdout)
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_deploy_gives_up_on_a_silent_database_after_the_timeout(project: Path) -> None:
    # A listening socket that never answers: the TCP connection opens, the
    # PostgreSQL handshake never completes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        result = run_covet(
            "check",
            "--deploy",
            "--db-timeout",
            "1",
            cwd=project,
            timeout=30,
            COVET_DEBUG="0",
            SECRET_KEY=STRONG_KEY,
            ALLOWED_HOSTS="example.com",
            DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/test",
        )
    assert result.returncode == 1
    assert "covet.E112" in _ids(result.stdout)
    assert "did not answer within 1 s" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("variable", ["COVET_TEST_POSTGRES_URL", "COVET_TEST_MYSQL_URL"])
def test_deploy_finds_pending_migrations_on_a_server(project: Path, variable: str) -> None:
    server = os.environ.get(variable, "")
    if not server:
        if os.environ.get("COVET_TEST_REQUIRE_ALL") == "1":
            pytest.fail(f"{variable} is not set (COVET_TEST_REQUIRE_ALL=1 makes this a failure)")
        pytest.skip(f"{variable} is not set")
    result = run_covet(
        "check",
        "--deploy",
        cwd=project,
        COVET_DEBUG="0",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="example.com",
        DATABASE_URL=server,
    )
    ids = _ids(result.stdout)
    assert "covet.E112" not in ids, f"the server was unreachable:\n{result.stdout}"
    # The shared test database holds none of this new project's revisions (it is
    # only read, never migrated, here).
    assert "covet.E111" in ids, result.stdout
    assert result.returncode == 1


def test_plain_check_passes_and_reports_import_errors(tmp_path: Path) -> None:
    write_project(tmp_path, "okapp", "from covet import Covet\napp = Covet()\n")
    ok = run_covet("check", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "covet check: no problems found."

    (tmp_path / "okapp" / "app.py").write_text("import nowhere_to_be_found\n", "utf-8")
    broken = run_covet("check", cwd=tmp_path)
    assert broken.returncode == 1
    assert _ids(broken.stdout) == ["covet.E002"]
    assert "nowhere_to_be_found" in broken.stdout
    assert "Traceback" not in broken.stderr


def test_plain_check_reports_models_and_middleware_errors(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        "mwapp",
        """
        from covet import Covet
        from covet.middleware import GZipMiddleware

        app = Covet()
        app.add_middleware(GZipMiddleware, minimum_size=-1)
        """,
        extra_toml='models = ["mwapp.models"]',
    )
    (tmp_path / "mwapp" / "models.py").write_text("raise RuntimeError('bad models')\n", "utf-8")
    result = run_covet("check", cwd=tmp_path)
    assert result.returncode == 1
    assert _ids(result.stdout) == ["covet.E003", "covet.E004"]
    assert "bad models" in result.stdout


def test_plain_check_reports_invalid_settings(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.covet]\napp = "x:app"\ndebug = "yes"\n')
    result = run_covet("check", cwd=tmp_path)
    assert result.returncode == 1
    assert _ids(result.stdout) == ["covet.E001"]


# -- unit level: one check at a time -------------------------------------------------------


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(root=tmp_path, migrations=tmp_path / "migrations", **values)


def _run(check: Callable[[CheckContext], Iterable[Problem]], context: CheckContext) -> list[str]:
    return [problem.id for problem in check(context)]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("changeme", "placeholder"),
        ("Change-Me", "placeholder"),
        ("django-insecure-" + "x" * 60, "placeholder"),
        ("abcd" * 20, "only 4 different"),
        (secrets.token_urlsafe(20), "fewer than 50"),
    ],
)
def test_weak_secret_keys(key: str, reason: str) -> None:
    found = weak_secret_key(key)
    assert found is not None
    assert reason in found


def test_strong_secret_key() -> None:
    assert weak_secret_key(STRONG_KEY) is None
    assert weak_secret_key("k" * 46 + "abcd") is None  # 50 long, 5 different: Django's minimum


def test_check_debug(tmp_path: Path) -> None:
    assert _run(check_debug, CheckContext(_settings(tmp_path), Covet())) == []
    assert _run(check_debug, CheckContext(_settings(tmp_path, debug=True), Covet())) == [
        "covet.E101"
    ]
    assert _run(check_debug, CheckContext(_settings(tmp_path), Covet(debug=True))) == ["covet.E101"]


def test_check_secret_key(tmp_path: Path) -> None:
    assert _run(check_secret_key, CheckContext(_settings(tmp_path), Covet())) == ["covet.E102"]
    strong = _settings(tmp_path, secret_key=STRONG_KEY)
    assert _run(check_secret_key, CheckContext(strong, Covet())) == []
    assert _run(check_secret_key, CheckContext(_settings(tmp_path, secret_key="secret"), Covet()))
    # A weak key handed to a middleware directly is found too.
    app = Covet()
    app.add_middleware(SessionMiddleware, secret_key=["short", STRONG_KEY])
    assert _run(check_secret_key, CheckContext(strong, app)) == ["covet.E103"]


def test_check_allowed_hosts(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert _run(check_allowed_hosts, CheckContext(settings, Covet())) == ["covet.E104"]
    assert _run(check_allowed_hosts, CheckContext(settings, Covet(allowed_hosts=[]))) == [
        "covet.E104"
    ]
    assert _run(check_allowed_hosts, CheckContext(settings, Covet(allowed_hosts=["*"]))) == [
        "covet.W105"
    ]
    good = Covet(allowed_hosts=["example.com"])
    assert _run(check_allowed_hosts, CheckContext(settings, good)) == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"https_only": False, "idle_timeout": 600}, ["covet.E106"]),
        ({}, ["covet.W107", "covet.W108"]),
        ({"https_only": True}, ["covet.W108"]),
        ({"https_only": True, "idle_timeout": 600}, []),
    ],
)
def test_check_sessions(tmp_path: Path, options: dict[str, Any], expected: list[str]) -> None:
    app = Covet()
    app.add_middleware(SessionMiddleware, secret_key=STRONG_KEY, **options)
    assert _run(check_sessions, CheckContext.for_app(app, _settings(tmp_path))) == expected


def test_check_sessions_without_sessions(tmp_path: Path) -> None:
    assert _run(check_sessions, CheckContext.for_app(Covet(), _settings(tmp_path))) == []


def _html_app(**headers: Any) -> Covet:
    app = Covet()
    app.add_middleware(SecurityHeadersMiddleware, **headers)
    app.add_middleware(CSRFMiddleware)  # forms: the app serves HTML
    return app


def test_check_security_headers(tmp_path: Path) -> None:
    settings = _settings(tmp_path)

    def run(app: Covet) -> list[str]:
        return _run(check_security_headers, CheckContext.for_app(app, settings))

    assert run(_html_app()) == []
    assert run(_html_app(hsts_max_age=None)) == ["covet.E109"]
    assert run(_html_app(hsts_max_age=0)) == ["covet.E109"]
    assert run(_html_app(content_security_policy=None)) == ["covet.E110"]
    bare = Covet()
    bare.add_middleware(CSRFMiddleware)
    assert run(bare) == ["covet.E109", "covet.E110"]
    # A JSON API serves no HTML: browsers' HSTS and CSP do not apply.
    assert run(Covet()) == []


def test_check_security_headers_sees_project_templates(tmp_path: Path) -> None:
    import sys
    import types

    from covet.templates import Templates

    module = types.ModuleType("checkproject_views")
    module.__file__ = str(tmp_path / "views.py")
    module.templates = Templates(directory=str(tmp_path))  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        context = CheckContext.for_app(Covet(), _settings(tmp_path))
        assert _run(check_security_headers, context) == ["covet.E109", "covet.E110"]
    finally:
        del sys.modules[module.__name__]


@pytest.mark.parametrize(
    ("url", "workers", "expected"),
    [
        ("sqlite:///app.sqlite3", 1, []),
        ("sqlite:///app.sqlite3", 2, ["covet.E114"]),
        ("sqlite:///:memory:", 2, ["covet.E114"]),
        ("postgresql://u@127.0.0.1/db", 8, []),
        ("mysql://u@127.0.0.1/db", 8, []),
    ],
)
def test_check_workers(tmp_path: Path, url: str, workers: int, expected: list[str]) -> None:
    context = CheckContext(_settings(tmp_path, database_url=url), Covet(), workers=workers)
    assert _run(check_workers, context) == expected


def test_check_migrations_without_database(tmp_path: Path) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "env.py").write_text("", "utf-8")
    context = CheckContext(_settings(tmp_path), Covet())
    assert _run(check_migrations, context) == ["covet.E112"]
    missing = _settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'absent.sqlite3'}")
    problems = list(check_migrations(CheckContext(missing, Covet())))
    assert [problem.id for problem in problems] == ["covet.E112"]
    assert "does not exist" in problems[0].message
    assert not (tmp_path / "absent.sqlite3").exists()  # the check created no empty database
    no_directory = _settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'nodir' / 'x.db'}")
    problems = list(check_migrations(CheckContext(no_directory, Covet())))
    assert [problem.id for problem in problems] == ["covet.E112"]
    assert "nodir" in problems[0].message


def test_check_migrations_without_migrations(tmp_path: Path) -> None:
    context = CheckContext(_settings(tmp_path, database_url="sqlite:///x.db"), Covet())
    assert _run(check_migrations, context) == []


def test_check_metrics(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    public = Covet()
    public.mount("/metrics", MetricsApp(protected=False))
    problems = list(check_metrics(CheckContext(settings, public)))
    assert [problem.id for problem in problems] == ["covet.E115"]
    assert "'/metrics'" in problems[0].message

    guarded = Covet()
    guarded.mount("/metrics", MetricsApp(protected=True))
    assert _run(check_metrics, CheckContext(settings, guarded)) == []

    nested = Covet()
    ops = Router()
    ops.add_route("/metrics", MetricsApp(protected=False))
    inner = Covet()
    inner.include_router(ops)
    nested.mount("/ops", inner)
    assert [p.message for p in check_metrics(CheckContext(settings, nested))] == [
        "The metrics endpoint at '/ops/metrics' is public: anyone can read the app's routes, "
        "traffic and error rates."
    ]
    # No metrics endpoint: nothing to report.
    assert _run(check_metrics, CheckContext(settings, Covet())) == []
