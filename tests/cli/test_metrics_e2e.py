"""Metrics across ``covet run --workers 2``: every worker's requests add up in one scrape."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as websocket_connect

from covet.cli.run import metrics_multiprocess_dir
from covet.metrics import FLUSH_SECONDS
from tests.cli.conftest import free_port, start_covet, stop_server, wait_for_server, write_project

if TYPE_CHECKING:
    from pathlib import Path

APP = """
import asyncio
import os

from covet import Covet
from covet.metrics import Metrics, MetricsApp

app = Covet(allowed_hosts=["127.0.0.1"])
metrics = Metrics()
app.add_observer(metrics)
app.add_route("/metrics", MetricsApp(metrics), name="metrics")


@app.get("/work/{n:int}")
async def work(request, n):
    await asyncio.sleep(0.02)
    return {"pid": os.getpid()}


@app.websocket("/feed", name="feed")
async def feed(websocket):
    await websocket.accept()
    await websocket.send_text(str(os.getpid()))
    await websocket.receive_text()  # until the client closes
"""


def _work_count(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "covet_http_requests_total" and sample.labels["route"] == "work"
    )


@pytest.mark.slow
def test_request_counts_add_up_over_two_workers(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    write_project(project, "metered", APP)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_covet(
        "run", "--port", str(port), "--workers", "2", cwd=project, TMPDIR=str(scratch)
    )
    sent = 0
    pids: set[int] = set()
    try:
        wait_for_server(f"{base}/metrics", process)
        (shared,) = scratch.glob("covet-metrics-*")

        def call(n: int) -> int:
            # A new connection each time, so either worker may accept it.
            response = httpx.get(f"{base}/work/{n}", timeout=10)
            assert response.status_code == 200
            return int(response.json()["pid"])

        with ThreadPoolExecutor(8) as pool:
            for _ in range(10):
                pids.update(pool.map(call, range(sent, sent + 40)))
                sent += 40
                if len(pids) == 2:
                    break
        assert len(pids) == 2, "the requests never reached the second worker"
        assert any(shared.glob("*.db")), "the workers wrote no samples to the shared directory"
        # Each worker adds its samples to the shared files within FLUSH_SECONDS (the one
        # answering a scrape adds its own first); after that, whichever worker answers
        # the scrape reports every worker's requests.
        deadline = time.monotonic() + FLUSH_SECONDS + 5
        while time.monotonic() < deadline:
            scrape = httpx.get(f"{base}/metrics", timeout=10)
            if _work_count(scrape.text) == sent:
                break
            time.sleep(0.1)
        for _ in range(4):
            scrape = httpx.get(f"{base}/metrics", timeout=10)
            assert scrape.status_code == 200
            assert _work_count(scrape.text) == sent
    finally:
        code, _, err = stop_server(process, signal.SIGTERM)
    assert code == 0, err
    assert list(scratch.glob("covet-metrics-*")) == []  # removed at exit


def _open_feeds(base: str) -> float:
    scrape = httpx.get(f"{base}/metrics", timeout=10)
    assert scrape.status_code == 200
    return sum(
        sample.value
        for family in text_string_to_metric_families(scrape.text)
        for sample in family.samples
        if sample.name == "covet_websocket_connections" and sample.labels["route"] == "feed"
    )


async def _websockets_add_up(base: str) -> dict[str, float]:
    """Open websockets until both workers hold some; return the gauge as they open and close."""
    url = base.replace("http", "ws") + "/feed"
    opened: list[tuple[ClientConnection, int]] = []
    seen: dict[str, float] = {}

    async def gauge_reaches(expected: int) -> float:
        value = -1.0
        for _ in range(100):
            value = await asyncio.to_thread(_open_feeds, base)
            if value == expected:
                break
            await asyncio.sleep(0.05)  # a handler ends just after its client closed
        return value

    try:
        # The second worker may still be starting when the first answers (a loaded CI
        # machine): keep at most 20 sockets on one worker and retry until the other
        # takes one, for up to 30 seconds.
        deadline = time.monotonic() + 30
        while len({pid for _, pid in opened}) < 2 and time.monotonic() < deadline:
            websocket = await websocket_connect(url)
            pid = int(await websocket.recv())
            if sum(1 for _, held in opened if held == pid) >= 20:
                await websocket.close()
                await asyncio.sleep(0.1)
                continue
            opened.append((websocket, pid))
        seen["opened"] = len(opened)
        seen["workers"] = len({pid for _, pid in opened})
        seen["all_open"] = await gauge_reaches(len(opened))
        for websocket, _ in opened[: len(opened) // 2]:
            await websocket.close()
        seen["half_open"] = await gauge_reaches(len(opened) - len(opened) // 2)
    finally:
        for websocket, _ in opened:
            await websocket.close()
    seen["none_open"] = await gauge_reaches(0)
    return seen


@pytest.mark.slow
def test_open_websockets_add_up_over_two_workers(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    write_project(project, "metered_ws", APP)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_covet(
        "run", "--port", str(port), "--workers", "2", cwd=project, TMPDIR=str(tmp_path)
    )
    try:
        wait_for_server(f"{base}/metrics", process)
        seen = asyncio.run(_websockets_add_up(base))
    finally:
        code, _, err = stop_server(process, signal.SIGTERM)
    assert code == 0, err
    assert seen["workers"] == 2, "every websocket went to the same worker"
    opened = seen["opened"]
    assert seen["all_open"] == opened
    assert seen["half_open"] == opened - opened // 2
    assert seen["none_open"] == 0


def test_multiprocess_dir_only_for_several_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("COVET_METRICS", raising=False)
    assert metrics_multiprocess_dir(1) is None
    monkeypatch.setenv("COVET_METRICS", "0")
    assert metrics_multiprocess_dir(4) is None
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_a_given_multiprocess_dir_is_kept_and_emptied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COVET_METRICS", raising=False)
    given = tmp_path / "prom"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"stale")
    (given / "notes.txt").write_text("mine", "utf-8")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(given))
    assert metrics_multiprocess_dir(2) == (str(given), False)
    assert sorted(path.name for path in given.iterdir()) == ["notes.txt"]


def test_a_new_multiprocess_dir_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COVET_METRICS", raising=False)
    # Set (to empty: not given) rather than deleted, so the variable the call sets
    # is removed again after the test.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    found = metrics_multiprocess_dir(2)
    assert found is not None
    directory, made = found
    assert made is True
    assert directory.startswith(str(tmp_path / "covet-metrics-"))
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == directory
