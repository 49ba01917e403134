"""The README of a project made by ``covet new``: its commands work verbatim in a fresh shell.

The slow test makes a new virtual environment with this checkout of covet
installed (as a user following docs/installation.md would), runs ``covet new``
from it, then runs every ``console`` block of the generated README, in order,
in one ``bash`` with a clean environment: no ``PYTHONPATH`` and a ``PATH``
without any virtual environment. ``covet run`` is started in the background on
a free port (the README's port 8000 is replaced by it) and stopped at the end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from covet.cli.new import SCAFFOLD, environment_context, render_project
from tests.cli.conftest import REPO, free_port

if TYPE_CHECKING:
    from pathlib import Path

_CONSOLE = re.compile(r"^```console\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
_URL = re.compile(r"https?://[^\s)\"'<>`{]+")
# Hosts the scaffold may name: this machine, the test client's, reserved example
# domains, and the SVG namespace. No account or site the project does not own.
_OWN_HOSTS = {"127.0.0.1", "localhost", "testserver", "evil.example", "www.w3.org"}
# Variables that configure how this machine reaches the package index: a fresh
# shell here has them too. Nothing else of the test's environment is passed on.
_MACHINE = re.compile(r"(PIP_[A-Z_]+|[a-z_]*proxy|[A-Z_]*PROXY|SSL_CERT_[A-Z_]+|LANG|HOME)")


def console_blocks(readme: str) -> list[str]:
    """Return the bodies of the README's ``console`` blocks, in order."""
    return [match["body"] for match in _CONSOLE.finditer(readme)]


def test_readme_activates_the_environment_covet_runs_from(tmp_path: Path) -> None:
    render_project(tmp_path, "envsite")
    readme = (tmp_path / "README.md").read_text("utf-8")
    first = console_blocks(readme)[0].splitlines()
    assert first == [
        "cd envsite",
        environment_context()["activate"],
        "pip install -e '.[dev]'",
        "covet migrate",
        "pytest",
        "covet run",
    ]
    if sys.prefix != sys.base_prefix:  # the test suite runs in a virtual environment
        assert first[1] == f"source {sys.prefix}/bin/activate"
        assert f"(`{sys.prefix}`)" in readme


def test_outside_a_virtual_environment_the_readme_makes_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "base_prefix", sys.prefix)
    context = environment_context()
    assert context["activate"].splitlines() == [
        f"{context['python']} -m venv --system-site-packages .venv",
        "source .venv/bin/activate",
    ]


def test_paths_are_quoted_for_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "prefix", "/opt/my envs/covet")
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    assert environment_context()["activate"] == "source '/opt/my envs/covet/bin/activate'"


def test_dev_extra_has_the_test_tools(tmp_path: Path) -> None:
    import tomllib

    render_project(tmp_path, "devsite")
    pyproject = tomllib.loads((tmp_path / "pyproject.toml").read_text("utf-8"))
    dev = {
        re.split(r"[<>=\[]", item)[0]
        for item in pyproject["project"]["optional-dependencies"]["dev"]
    }
    assert {"httpx", "pytest", "pytest-asyncio"} <= dev


def test_scaffold_links_to_no_site_the_project_does_not_own() -> None:
    for path in sorted(SCAFFOLD.rglob("*-tpl")):
        for url in _URL.findall(path.read_text("utf-8")):
            host = urlsplit(url).hostname or ""
            assert host in _OWN_HOSTS or host.endswith(".example.com"), (path, url)
    for path in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        assert "github.com/covet" not in path.read_text("utf-8"), path


def _fresh_shell_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if _MACHINE.fullmatch(key)}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    return env


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=_fresh_shell_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


# Replaces the README's `covet run` line: serve in the background, wait until the
# app answers, and stop it (SIGINT, as Ctrl+C would) when the script ends.
_SERVE = """\
covet run --port {port} > {log} 2>&1 &
server=$!
trap 'kill -INT $server; wait $server' EXIT
for attempt in $(seq 150); do
  curl -fsS -o /dev/null http://127.0.0.1:{port}/ && break
  kill -0 $server
  sleep 0.2
done
"""


@pytest.mark.slow
def test_readme_commands_work_verbatim_in_a_fresh_shell(tmp_path: Path) -> None:
    venv = tmp_path / "covet-env"
    created = _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    assert created.returncode == 0, created.stderr
    installed = _run([str(venv / "bin" / "pip"), "install", "-q", "-e", str(REPO)], tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    made = _run([str(venv / "bin" / "covet"), "new", "readme_site"], tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr

    readme = (tmp_path / "readme_site" / "README.md").read_text("utf-8")
    assert f"source {venv}/bin/activate" in readme
    port, log = free_port(), tmp_path / "server.log"
    lines = ["set -euo pipefail"]
    for block in console_blocks(readme):
        for line in block.replace("127.0.0.1:8000", f"127.0.0.1:{port}").splitlines():
            lines.append(_SERVE.format(port=port, log=log) if line == "covet run" else line)
    script = "\n".join(lines) + "\n"
    assert script.count("covet run --port") == 1
    result = _run(["bash", "-c", script], tmp_path, timeout=480)
    output = result.stdout + result.stderr
    server = log.read_text("utf-8") if log.exists() else ""
    assert result.returncode == 0, f"{output}\n--- server ---\n{server}"
    assert re.search(r"\b\d+ passed\b", result.stdout), output
    compact = result.stdout.replace('": "', '":"')
    assert '"title":"From curl"' in compact, output
    assert '"title":"Edited from curl"' in compact, output
    assert re.search(r"[}\n]401$", result.stdout, re.MULTILINE), output  # no token: 401
    # The project went into the environment covet was installed in.
    listed = _run([str(venv / "bin" / "pip"), "list", "--format=freeze"], tmp_path)
    assert "readme-site==0.1.0" in listed.stdout.lower().replace("_", "-"), listed.stdout
