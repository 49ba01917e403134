"""Graceful shutdown of a real ``covet run``: SIGTERM with 200 requests and a websocket in flight.

The sequence checked (``covet.shutdown``): ``/ready`` answers 503 at once and
the process keeps serving for the drain; then new connections are refused
while the in-flight requests finish; the websocket gets a close frame (1012);
the lifespan shutdown closes the pool; the process exits 0, within the
graceful timeout even when a request would take longer.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import pytest
from websockets.asyncio.client import connect as websocket_connect
from websockets.exceptions import ConnectionClosed

from tests.cli.conftest import free_port, start_covet, wait_for_server, write_project

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.slow

APP = """
import asyncio
import os
from pathlib import Path

from covet import Covet, WebSocketDisconnect
from covet.db import Database
from covet.health import health_router

STATE = Path(os.environ["SHUTDOWN_STATE"])
database = Database("sqlite:///app.sqlite3")
app = Covet(allowed_hosts=["127.0.0.1"])
app.include_router(health_router())


@app.on_startup
async def connect():
    await database.connect()


@app.on_shutdown
async def disconnect():
    await database.disconnect()
    (STATE / f"pool-closed-{os.getpid()}").write_text("closed")


@app.get("/held/{n:int}")
async def held(request, n):
    (STATE / "arrived" / str(n)).touch()
    # In flight until SIGTERM marks the app draining, then `after` seconds more.
    for _ in range(600):
        if app.draining:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(float(request.query_params.get("after", "0")))
    async with database.connection() as connection:  # the pool is still open
        await connection.ping()
    return {"n": n}


@app.get("/hang")
async def hang(request):
    (STATE / "hanging").touch()
    await asyncio.sleep(300)
    return "never"


@app.websocket("/echo")
async def echo(websocket):
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect as exc:
        (STATE / f"websocket-closed-{exc.code}").touch()
        raise
"""

REQUESTS = 200
DRAIN = 1.5
HELD_AFTER_DRAINING = 3.0  # seconds: past the drain, so the requests outlive the listener
GRACEFUL_TIMEOUT = 10


def _project(tmp_path: Path) -> tuple[Path, Path]:
    project = tmp_path / "project"
    project.mkdir()
    write_project(project, "draining", APP)
    state = tmp_path / "state"
    (state / "arrived").mkdir(parents=True)
    return project, state


async def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


async def _probe(url: str) -> httpx.Response | httpx.TransportError:
    """GET ``url`` on a new connection; the transport error when there is no answer."""
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            return await client.get(url)
    except httpx.TransportError as exc:
        return exc


@dataclass
class _Seen:
    """What the clients saw after SIGTERM."""

    ready: httpx.Response | httpx.TransportError | None = None
    up_while_draining: httpx.Response | httpx.TransportError | None = None
    refused: httpx.ConnectError | None = None
    hung: list[httpx.TimeoutException] = field(default_factory=list)
    in_flight_when_refused: int = -1
    websocket_close: int | None = None
    statuses: list[int | str] = field(default_factory=list)
    stopped_after: float = -1.0


async def _sigterm_under_load(base: str, process: subprocess.Popen[str], state: Path) -> _Seen:
    seen = _Seen()
    limits = httpx.Limits(max_connections=REQUESTS + 10, max_keepalive_connections=0)
    async with (
        httpx.AsyncClient(limits=limits, timeout=30) as client,
        websocket_connect(base.replace("http", "ws") + "/echo") as websocket,
    ):
        await websocket.send("hello")
        assert await websocket.recv() == "hello"
        held = [
            asyncio.ensure_future(client.get(f"{base}/held/{n}?after={HELD_AFTER_DRAINING}"))
            for n in range(REQUESTS)
        ]
        arrived = state / "arrived"
        await _until(lambda: len(list(arrived.iterdir())) == REQUESTS, 20, "200 requests")

        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)

        # The drain: /ready says 503 on a new connection; other routes still serve.
        ready: httpx.Response | httpx.TransportError | None = None
        while time.monotonic() - signalled < DRAIN + 0.5:
            ready = await _probe(f"{base}/ready")
            if isinstance(ready, httpx.Response) and ready.status_code == 503:
                break
            await asyncio.sleep(0.02)
        seen.ready = ready
        seen.up_while_draining = await _probe(f"{base}/up")

        # Then the listener closes while the held requests are still in flight:
        # a new connection is refused at once, never left hanging. (One that lands
        # in the very instant the listener closes is closed unanswered: what the
        # drain keeps a balancer from sending.)
        while time.monotonic() - signalled < DRAIN + HELD_AFTER_DRAINING:
            probe = await _probe(f"{base}/up")
            if isinstance(probe, httpx.ConnectError):
                seen.refused = probe
                break
            if isinstance(probe, httpx.TimeoutException):
                seen.hung.append(probe)
            await asyncio.sleep(0.05)
        seen.in_flight_when_refused = sum(not task.done() for task in held)

        try:
            await asyncio.wait_for(websocket.recv(), 10)
        except ConnectionClosed as exc:
            seen.websocket_close = exc.rcvd.code if exc.rcvd is not None else None
        responses = await asyncio.gather(*held, return_exceptions=True)
    seen.statuses = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in responses]
    process.wait(timeout=GRACEFUL_TIMEOUT + 10)
    seen.stopped_after = time.monotonic() - signalled
    return seen


@pytest.mark.parametrize("workers", [1, 2], ids=["1-worker", "2-workers"])
def test_sigterm_with_200_requests_in_flight_fails_none(tmp_path: Path, workers: int) -> None:
    project, state = _project(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_covet(
        "run",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--drain-seconds",
        str(DRAIN),
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT),
        cwd=project,
        SHUTDOWN_STATE=str(state),
        COVET_ACCESS_LOG="0",
    )
    try:
        wait_for_server(f"{base}/up", process)
        seen = asyncio.run(_sigterm_under_load(base, process, state))
    finally:
        if process.poll() is None:
            process.kill()
        _, err = process.communicate()

    assert process.returncode == 0, err
    failed = [status for status in seen.statuses if status != 200]
    assert (len(seen.statuses), failed) == (REQUESTS, []), err
    assert isinstance(seen.ready, httpx.Response), seen.ready
    assert seen.ready.status_code == 503
    assert seen.ready.json()["status"] == "draining"
    assert isinstance(seen.up_while_draining, httpx.Response), seen.up_while_draining
    assert seen.up_while_draining.status_code == 200
    assert seen.refused is not None, "new connections were never refused"
    assert seen.hung == []
    assert seen.in_flight_when_refused == REQUESTS
    assert seen.websocket_close == 1012
    assert (state / "websocket-closed-1012").exists()
    # The lifespan shutdown ran in every worker, after the requests: the pool closed.
    assert len(list(state.glob("pool-closed-*"))) == workers
    assert seen.stopped_after < DRAIN + GRACEFUL_TIMEOUT


def test_a_request_past_the_graceful_timeout_is_cut(tmp_path: Path) -> None:
    project, state = _project(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_covet(
        "run",
        "--port",
        str(port),
        "--graceful-timeout",
        "1",
        cwd=project,
        SHUTDOWN_STATE=str(state),
    )
    try:
        wait_for_server(f"{base}/up", process)

        async def cut() -> tuple[object, float]:
            async with httpx.AsyncClient(timeout=30) as client:
                hanging = asyncio.ensure_future(client.get(f"{base}/hang"))
                await _until((state / "hanging").exists, 10, "the request to hang")
                signalled = time.monotonic()
                process.send_signal(signal.SIGTERM)
                try:
                    outcome: object = (await hanging).status_code
                except httpx.TransportError as exc:
                    outcome = exc
                return outcome, time.monotonic() - signalled

        outcome, cut_after = asyncio.run(cut())
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        _, err = process.communicate()

    assert process.returncode == 0, err
    # uvicorn cancels the request at the timeout and answers 500 (nothing was sent yet).
    assert outcome == 500, outcome
    assert 1 <= cut_after < 3, cut_after
    assert "timeout graceful shutdown exceeded" in err
    assert len(list(state.glob("pool-closed-*"))) == 1
