"""Helpers for the CLI tests: sample projects, subprocesses and free ports."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).parent / "covet"


def covet_argv(*args: str) -> list[str]:
    """Return the command line running ``covet ARGS`` with this interpreter."""
    if _SCRIPT.is_file():
        return [str(_SCRIPT), *args]
    return [sys.executable, "-c", "import sys; from covet.cli import main; sys.exit(main())", *args]


def subprocess_env(**extra: str) -> dict[str, str]:
    """Return an environment where covet is importable and no project setting leaks in."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CACHE_URL", "SECRET_KEY", "COVET_DEBUG", "ALLOWED_HOSTS"}
        and not key.startswith("PYTEST_")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_covet(
    *args: str, cwd: Path, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``covet ARGS`` to completion and return the finished process."""
    return subprocess.run(
        covet_argv(*args),
        cwd=cwd,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_covet(*args: str, cwd: Path, **env: str) -> subprocess.Popen[str]:
    """Start ``covet ARGS`` (a server, typically) in the background, capturing its output."""
    return _start(args, cwd, env, log=None)


def start_covet_logged(log: Path, *args: str, cwd: Path, **env: str) -> subprocess.Popen[str]:
    """Start ``covet ARGS`` like :func:`start_covet`, its stdout and stderr going to ``log``.

    The test can read the file while the server runs.
    """
    return _start(args, cwd, env, log=log)


def _start(
    args: tuple[str, ...], cwd: Path, env: dict[str, str], log: Path | None
) -> subprocess.Popen[str]:
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(log.open("w")) if log is not None else subprocess.PIPE
        return subprocess.Popen(
            covet_argv(*args),
            cwd=cwd,
            env=subprocess_env(**env),
            stdout=output,
            stderr=subprocess.STDOUT if log is not None else subprocess.PIPE,
            text=True,
        )


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_server(
    url: str, process: subprocess.Popen[str], timeout: float = 30
) -> httpx.Response:
    """Poll ``url`` until it answers; fail with the server's output if it dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"server exited with {process.returncode}:\n{out}\n{err}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    out, err = process.communicate()
    pytest.fail(f"server did not answer {url} within {timeout} s:\n{out}\n{err}")


def stop_server(
    process: subprocess.Popen[str], sig: int, timeout: float = 30
) -> tuple[int, str, str]:
    """Send ``sig`` to the server, wait for it and return (exit code, stdout, stderr)."""
    process.send_signal(sig)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"server did not stop on signal {sig}:\n{out}\n{err}")
    return process.returncode, out, err


def write_project(root: Path, package: str, app_source: str, extra_toml: str = "") -> Path:
    """Write a minimal covet project whose ``PACKAGE/app.py`` is ``app_source``."""
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{package}"\nversion = "0"\n\n'
        f'[tool.covet]\napp = "{package}.app:app"\n{extra_toml}\n',
        "utf-8",
    )
    (root / package).mkdir(exist_ok=True)
    (root / package / "__init__.py").write_text("", "utf-8")
    (root / package / "app.py").write_text(textwrap.dedent(app_source), "utf-8")
    return root


@pytest.fixture
def isolated_imports() -> Iterator[None]:
    """Undo the sys.path entries and the project modules a test's in-process command added.

    Library modules imported meanwhile stay: dropping them would duplicate
    their classes (and break ``except`` clauses holding the old ones).
    """
    path = list(sys.path)
    modules = set(sys.modules)
    keep = (sys.prefix, sys.base_prefix, str(REPO))
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        filename = getattr(sys.modules[name], "__file__", None) or ""
        if not filename.startswith(keep):
            del sys.modules[name]
