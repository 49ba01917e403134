"""Tests of ``covet run``: options, import errors, serving, signals and reload."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from covet.cli import main
from covet.cli.run import RELOAD_INCLUDES, SERVER_LIMITS, server_options, worker_environment
from covet.db.migrations.drift import CLAIM_VARIABLE
from tests.cli.conftest import (
    free_port,
    start_covet,
    stop_server,
    wait_for_server,
    write_project,
)

APP = """
from covet import Covet

app = Covet(allowed_hosts=["127.0.0.1"])

@app.get("/")
async def home(request):
    return "version one"
"""

pytestmark = pytest.mark.usefixtures("isolated_imports")


def test_server_options_carry_the_default_limits(tmp_path: Path) -> None:
    options = server_options("site.app:app", root=tmp_path, port=9000, workers=3)
    assert options["app"] == "site.app:app"
    assert options["port"] == 9000
    assert options["workers"] == 3
    assert options["app_dir"] == str(tmp_path)
    assert options["limit_concurrency"] == 1000
    assert options["timeout_keep_alive"] == 5
    assert options["timeout_graceful_shutdown"] == 30
    assert options["ws_max_size"] == 1_048_576
    assert options["h11_max_incomplete_event_size"] == 16_384
    assert options["proxy_headers"] is True
    assert options["forwarded_allow_ips"] == "127.0.0.1"
    assert "reload" not in options
    assert SERVER_LIMITS.items() <= options.items()


def test_server_options_take_the_graceful_timeout(tmp_path: Path) -> None:
    options = server_options("site.app:app", root=tmp_path, graceful_timeout=7.5)
    assert options["timeout_graceful_shutdown"] == 7.5


@pytest.mark.parametrize(
    ("variable", "option"),
    [("COVET_DRAIN_SECONDS", "drain_seconds"), ("COVET_GRACEFUL_TIMEOUT", "graceful_timeout")],
)
def test_run_reports_an_invalid_shutdown_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, option: str
) -> None:
    write_project(tmp_path, "shutdown_site", APP)
    (tmp_path / ".env").write_text(f"{variable}=soon\n", "utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(variable, raising=False)
    result = CliRunner().invoke(main, ["run", "--port", str(free_port())])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Invalid {variable} 'soon'. Use a number of seconds, 0 or more (e.g. 5).\n"
    )


def test_run_refuses_a_negative_drain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["run", "--drain-seconds", "-1"])
    assert result.exit_code == 2
    assert "Invalid value for '--drain-seconds': -1.0 is not in the range x>=0." in result.output


def test_server_options_for_reload_watch_code_templates_and_env(tmp_path: Path) -> None:
    (tmp_path / ".venv").mkdir()
    options = server_options("site.app:app", root=tmp_path, reload=True)
    assert options["reload"] is True
    assert options["reload_dirs"] == [str(tmp_path)]
    assert {"*.py", "*.html", ".env"} <= set(options["reload_includes"])
    assert list(RELOAD_INCLUDES) == options["reload_includes"]
    assert options["reload_excludes"] == [str(tmp_path / ".venv")]


def test_server_options_refuse_reload_with_workers(tmp_path: Path) -> None:
    from covet.cli._common import CommandError

    with pytest.raises(CommandError, match="--reload cannot be combined with --workers 2"):
        server_options("site.app:app", root=tmp_path, reload=True, workers=2)


def test_run_refuses_reload_with_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["run", "--reload", "--workers", "4"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: --reload cannot be combined with --workers 4: the reloader runs one process. "
        "Drop one of the two options.\n"
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import not_a_module_anywhere\n", "ModuleNotFoundError: No module named"),
        ("def broken(:\n", "SyntaxError"),
        ("raise RuntimeError('boom at import')\n", "RuntimeError: boom at import"),
        ("app = 42\n", "which is not an ASGI application"),
    ],
)
def test_run_reports_an_app_that_cannot_be_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, message: str
) -> None:
    package = f"broken_{abs(hash(source)) % 10_000}"
    write_project(tmp_path, package, source)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["run", "--port", str(free_port())])
    assert result.exit_code == 1
    assert message in result.output
    assert result.output.startswith("Error: ")
    assert result.output.count("\n") == 1


def test_run_with_unknown_app_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["run", "--app", "missing_module_xyz:app"])
    assert result.exit_code == 1
    assert "Could not import module 'missing_module_xyz'" in result.output
    assert result.output.count("\n") == 1


def test_traceback_flag_shows_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--traceback", "run", "--app", "missing_module_xyz:app"])
    assert result.exit_code == 1
    # The error escapes to the runner instead of becoming a one-line message.
    assert result.exception is not None
    assert "missing_module_xyz" in str(result.exception)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_serves_and_stops_cleanly_on_signal(tmp_path: Path, sig: int) -> None:
    write_project(tmp_path, "served_site", APP)
    port = free_port()
    process = start_covet("run", "--port", str(port), cwd=tmp_path)
    try:
        response = wait_for_server(f"http://127.0.0.1:{port}/", process)
        assert response.status_code == 200
        assert response.text == "version one"
        assert "server" not in response.headers
    finally:
        code, _, err = stop_server(process, sig)
    assert code == 0, err
    assert "Finished server process" in err


def test_sigterm_under_reload_does_not_drain(tmp_path: Path) -> None:
    # The reloader restarts the server with SIGTERM: a drain would delay every reload.
    write_project(tmp_path, "reload_drain_site", APP)
    port = free_port()
    process = start_covet(
        "run", "--reload", "--drain-seconds", "20", "--port", str(port), cwd=tmp_path
    )
    try:
        wait_for_server(f"http://127.0.0.1:{port}/", process)
        stopping = time.monotonic()
    finally:
        code, _, err = stop_server(process, signal.SIGTERM)
    assert code == 0, err
    assert time.monotonic() - stopping < 10
    assert "The drain of 20 s is not used with --reload" in err


WORKERS_APP = """
import os

from covet import Covet
from covet.auth.hashers import default_hashing_workers

app = Covet(allowed_hosts=["127.0.0.1"])

@app.get("/")
async def home(request):
    return {"web_concurrency": os.environ.get("WEB_CONCURRENCY"),
            "hashing_workers": default_hashing_workers()}
"""


def test_run_tells_its_workers_how_many_there_are(tmp_path: Path) -> None:
    # Per-machine budgets (the password hashing pool) are split among the workers.
    write_project(tmp_path, "workers_site", WORKERS_APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = start_covet(
        "run", "--workers", "2", "--port", str(port), cwd=tmp_path, WEB_CONCURRENCY="7"
    )
    try:
        wait_for_server(url, process)
        answer = httpx.get(url).json()
    finally:
        code, _, err = stop_server(process, signal.SIGINT)
    assert code == 0, err
    assert answer == {
        "web_concurrency": "2",
        "hashing_workers": max(1, (os.cpu_count() or 1) // 2),
    }


def test_run_reload_serves_changed_code(tmp_path: Path) -> None:
    write_project(tmp_path, "reload_site", APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = start_covet("run", "--reload", "--port", str(port), cwd=tmp_path)
    try:
        assert wait_for_server(url, process).text == "version one"
        app_file = tmp_path / "reload_site" / "app.py"
        changed = app_file.read_text("utf-8").replace("version one", "version two")
        app_file.write_text(changed)
        # Generous: on a loaded 2-core CI machine a reloaded worker can take a while
        # to import. The file is rewritten every few seconds in case the first
        # change landed before the reloader's watcher was armed.
        deadline = time.monotonic() + 60
        rewrite_at = time.monotonic() + 5
        text = ""
        while time.monotonic() < deadline:
            try:
                text = httpx.get(url, timeout=2).text
            except httpx.TransportError:
                text = ""
            if text == "version two":
                break
            if time.monotonic() > rewrite_at:
                app_file.write_text(changed)
                rewrite_at = time.monotonic() + 5
            time.sleep(0.2)
        assert text == "version two"
    finally:
        code, _, err = stop_server(process, signal.SIGINT)
    assert code == 0, err


def test_worker_environment_is_set_for_the_workers_and_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several workers get a claim directory for debug mode's comparison; it goes at the end."""
    monkeypatch.setenv("COVET_METRICS", "0")  # metrics' own directory is tested elsewhere
    monkeypatch.delenv(CLAIM_VARIABLE, raising=False)
    monkeypatch.setenv("WEB_CONCURRENCY", "7")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    restore = worker_environment(3, {"COVET_EXAMPLE": "1"})
    claims = Path(os.environ[CLAIM_VARIABLE])
    assert claims.parent == tmp_path and claims.is_dir()
    assert (os.environ["WEB_CONCURRENCY"], os.environ["COVET_EXAMPLE"]) == ("3", "1")
    restore()
    assert not claims.exists()
    assert CLAIM_VARIABLE not in os.environ and "COVET_EXAMPLE" not in os.environ
    assert os.environ["WEB_CONCURRENCY"] == "7"

    restore = worker_environment(1, {})  # one worker compares alone: no directory
    assert CLAIM_VARIABLE not in os.environ
    restore()
