"""Run docs/tutorial.md step by step: its console commands and the files it writes.

Blocks are processed in document order. A fence like ```python file=PATH
writes its code to PATH in the project (``append`` adds it to the end); a
```console block's ``$ `` lines are run. ``covet run`` is started on a free
port, asked for its home page, then stopped with SIGINT. The commands of the
"Deploy" section run against a fresh database, as on a new server.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.cli.conftest import (
    REPO,
    covet_argv,
    free_port,
    start_covet,
    stop_server,
    subprocess_env,
    wait_for_server,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

TUTORIAL = REPO / "docs" / "tutorial.md"
_BLOCK = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


_HEADING = re.compile(r"^## (?P<title>.*)$", re.MULTILINE)


def _steps() -> list[tuple[str, str, str, str]]:
    """Return (kind, argument, body, section) for each console block command and file block."""
    text = TUTORIAL.read_text("utf-8")
    headings = [(match.start(), match["title"]) for match in _HEADING.finditer(text)]
    steps: list[tuple[str, str, str, str]] = []
    for match in _BLOCK.finditer(text):
        info, body = match["info"].split(), match["body"]
        section = next((title for start, title in reversed(headings) if start < match.start()), "")
        if info[:1] == ["console"]:
            steps.extend(
                ("command", line[2:], "", section)
                for line in body.splitlines()
                if line.startswith("$ ")
            )
        elif len(info) > 1 and info[1].startswith("file="):
            kind = "append" if "append" in info[2:] else "write"
            steps.append((kind, info[1].removeprefix("file="), body, section))
    return steps


def test_tutorial_has_commands_and_files() -> None:
    kinds = {kind for kind, _, _, _ in _steps()}
    assert kinds == {"command", "write", "append"}
    deploy = [argument for kind, argument, _, section in _steps() if section.endswith("Deploy")]
    assert deploy[0] == "covet migrate"


def _serve(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    argv = list(argv)
    if "--port" in argv:
        argv[argv.index("--port") + 1] = str(free_port())
    else:
        argv += ["--port", str(free_port())]
    port = argv[argv.index("--port") + 1]
    process = start_covet(*argv[1:], cwd=cwd, **env)
    try:
        wait_for_server(f"http://127.0.0.1:{port}/static/style.css", process)
        host = env.get("ALLOWED_HOSTS", "127.0.0.1").split(",")[0]
        response = httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": host}, timeout=10)
        assert response.status_code == 200, response.text
    finally:
        code, _, err = stop_server(process, signal.SIGINT)
    assert code == 0, err


def test_tutorial_runs(tmp_path: Path) -> None:
    cwd = tmp_path
    # The deploy section runs on a new server: its database has no tables yet.
    server_database = f"sqlite:///{tmp_path / 'server.sqlite3'}"
    for kind, argument, body, section in _steps():
        if kind == "write":
            target = cwd / argument
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, "utf-8")
            continue
        if kind == "append":
            target = cwd / argument
            target.write_text(target.read_text("utf-8") + "\n\n" + body, "utf-8")
            continue
        words = shlex.split(argument)
        env: dict[str, str] = {}
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        if section.endswith("Deploy"):
            env.setdefault("DATABASE_URL", server_database)
        if words[0] == "cd":
            cwd = cwd / words[1]
            continue
        if words[:2] == ["covet", "run"]:
            _serve(words, cwd, env)
            continue
        if words[0] == "covet":
            argv = covet_argv(*words[1:])
        elif words[0] == "pytest":
            argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *words[1:]]
        else:
            pytest.fail(f"the tutorial runs an unknown program: {argument!r}")
        result = subprocess.run(
            argv,
            cwd=cwd,
            env=subprocess_env(**env),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, f"$ {argument}\n{result.stdout}\n{result.stderr}"
