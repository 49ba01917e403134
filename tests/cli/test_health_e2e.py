"""The scaffold answers GET /up and GET /ready on a live server, through its middleware."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.cli.conftest import free_port, run_covet, start_covet, stop_server, wait_for_server

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


def test_scaffold_serves_up_and_ready(tmp_path: Path) -> None:
    created = run_covet("new", "probe", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    root = tmp_path / "probe"
    migrated = run_covet("migrate", cwd=root)
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_covet("run", "--port", str(port), cwd=root)
    try:
        up = wait_for_server(f"{base}/up", process)
        assert up.status_code == 200
        assert up.text == "ok"
        # A probe sends no cookie and gets none: no session is made for it.
        assert "set-cookie" not in up.headers
        ready = httpx.get(f"{base}/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["db:default"]["ok"] is True
        assert ready.json()["checks"]["migrations"]["ok"] is True
        assert "set-cookie" not in ready.headers
        # A browser's session cookie and an unknown bearer token do not get in the way.
        home = httpx.get(f"{base}/login", timeout=5)
        with httpx.Client(base_url=base, cookies=home.cookies, timeout=5) as client:
            assert client.get("/ready").status_code == 200
            assert client.head("/up").status_code == 200
            bearer = client.get("/ready", headers={"Authorization": "Bearer nope"})
            assert bearer.status_code == 200
    finally:
        code, _, err = stop_server(process, signal.SIGTERM)
    assert code == 0, err
