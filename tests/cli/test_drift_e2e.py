"""End to end: ``covet run`` names a model edited without ``covet makemigrations``."""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.cli.conftest import (
    free_port,
    run_covet,
    start_covet_logged,
    stop_server,
    wait_for_server,
)
from tests.cli.test_e2e import _csrf

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

HINT = 'Run `covet makemigrations -m "..."` then `covet migrate`.'


@pytest.mark.parametrize("workers", [1, 2])
def test_run_names_the_model_that_lacks_a_migration(tmp_path: Path, workers: int) -> None:
    """The warning names the model, once: with two workers, only one of them compares."""
    assert run_covet("new", "driftsite", cwd=tmp_path).returncode == 0
    root = tmp_path / "driftsite"
    migrated = run_covet("migrate", cwd=root)
    assert migrated.returncode == 0, migrated.stderr
    models = root / "driftsite" / "models.py"
    source = models.read_text("utf-8")
    anchor = '    body = fields.TextField(default="")\n'
    assert anchor in source
    field = '    summary = fields.CharField(max_length=80, default="")\n'
    models.write_text(source.replace(anchor, anchor + field), "utf-8")

    port = free_port()
    log = tmp_path / "server.log"
    process = start_covet_logged(
        log, "run", "--port", str(port), "--workers", str(workers), cwd=root
    )
    try:
        wait_for_server(f"http://127.0.0.1:{port}/up", process)
        # A signed-in user's home page lists notes: the missing column fails it, and the
        # debug page says why. (Visitors get a welcome page that reads no note.)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            signed_up = client.post(
                "/signup",
                data={
                    "email": "drift@example.com",
                    "password": "a long and fine password",
                    "password_confirmation": "a long and fine password",
                    "csrf_token": _csrf(client, "/signup"),
                },
            )
            assert signed_up.status_code == 303, signed_up.text
            page = client.get("/", headers={"accept": "text/html"})
        # The comparison runs in a child process, in the background: the server answers
        # before the warning is logged. Each worker decides whether it compares before
        # its start-up completes, so once every worker has started and the line is
        # there, no second one can come.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = log.read_text()
            started = text.count("Application startup complete")
            if started >= workers and "differs from the database" in text:
                break
            time.sleep(0.1)
    finally:
        stop_server(process, signal.SIGINT)
    output_text = log.read_text()
    logged = [line for line in output_text.splitlines() if "differs from the database" in line]
    assert len(logged) == 1, output_text
    assert (
        "Model Note differs from the database: field 'summary' has no column notes.summary"
        in (logged[0])
    )
    assert logged[0].endswith(HINT)
    assert page.status_code == 500, page.text[:3000]
    assert "MissingSchemaObjectError" in page.text
    assert "covet makemigrations -m &quot;...&quot;" in page.text
