"""Tests of ``covet run --server granian``: real granian servers on free ports, real requests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from click.testing import CliRunner

from covet.cli import main
from covet.metrics import FLUSH_SECONDS
from tests.cli.conftest import free_port, start_covet, stop_server, wait_for_server, write_project

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.usefixtures("isolated_imports")

# Each worker records its lifespan in a file named after its process id, so the
# test sees which workers started and stopped, without two processes appending to
# one file.
APP = """
import os
from pathlib import Path

from covet import Covet
from covet.auth.hashers import default_hashing_workers

app = Covet(allowed_hosts=["127.0.0.1"])
EVENTS = Path(__file__).resolve().parent.parent / "events"


def record(event):
    EVENTS.mkdir(exist_ok=True)
    with (EVENTS / str(os.getpid())).open("a") as file:
        file.write(event + "\\n")


@app.on_startup
async def started():
    record("startup")


@app.on_shutdown
async def stopped():
    record("shutdown")


@app.get("/")
async def home(request):
    return {
        "version": "one",
        "pid": os.getpid(),
        "client": request.client.host if request.client else None,
        "scheme": request.url.scheme,
        "web_concurrency": os.environ.get("WEB_CONCURRENCY"),
        "hashing_workers": default_hashing_workers(),
    }
"""


def lifespans(root: Path) -> dict[str, list[str]]:
    """Return each worker's recorded lifespan events, by process id."""
    events = root / "events"
    if not events.is_dir():
        return {}
    return {path.name: path.read_text("utf-8").split() for path in events.iterdir()}


def head_status(port: int, headers: list[tuple[bytes, bytes]], target: bytes = b"/") -> int:
    """Send one GET with ``headers`` over a raw socket and return the status granian answers."""
    head = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        status_line = sock.makefile("rb").readline()
    return int(status_line.split()[1])


def test_granian_serves_with_lifespan_and_trusted_proxy(tmp_path: Path) -> None:
    write_project(tmp_path, "granian_site", APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = start_covet("run", "--server", "granian", "--port", str(port), cwd=tmp_path)
    try:
        response = wait_for_server(url, process)
        assert response.status_code == 200
        assert response.json()["version"] == "one"
        assert response.json()["client"] == "127.0.0.1"
        # 127.0.0.1 is the default --forwarded-allow-ips, as with uvicorn.
        forwarded = httpx.get(
            url, headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
        ).json()
        assert forwarded["client"] == "203.0.113.7"
        assert forwarded["scheme"] == "https"
        # covet's own checks still apply behind granian: an unknown host is refused.
        assert httpx.get(url, headers={"Host": "evil.example"}).status_code == 400
        # The request head is bounded as under uvicorn: 64 KiB in all, 100 fields
        # (granian's settings), 8190 bytes a field and 4094 the target (ProtocolLimits).
        assert head_status(port, [(b"X-Big", b"a" * 70_000)]) == 431
        assert head_status(port, [(b"X-H%d" % i, b"v") for i in range(150)]) == 431
        assert head_status(port, [(b"X-Long", b"a" * 9_000)]) == 431
        assert head_status(port, [(b"X-Fine", b"a" * 8_000)]) == 200
        assert head_status(port, [], target=b"/?q=" + b"a" * 5_000) == 414
        assert head_status(port, [], target=b"/?q=" + b"a" * 4_000) == 200
    finally:
        code, out, err = stop_server(process, signal.SIGTERM)
    assert code == 0, err
    assert "Starting granian" in out + err
    assert list(lifespans(tmp_path).values()) == [["startup", "shutdown"]]


def test_granian_forwarded_headers_are_ignored_from_untrusted_proxies(tmp_path: Path) -> None:
    write_project(tmp_path, "granian_untrusted", APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = start_covet(
        "run", "--server", "granian", "--port", str(port),
        "--forwarded-allow-ips", "10.0.0.1", cwd=tmp_path,
    )  # fmt: skip
    try:
        wait_for_server(url, process)
        data = httpx.get(url, headers={"X-Forwarded-For": "203.0.113.7"}).json()
        assert data["client"] == "127.0.0.1"
    finally:
        code, _, err = stop_server(process, signal.SIGINT)
    assert code == 0, err


def test_granian_serves_with_two_workers(tmp_path: Path) -> None:
    write_project(tmp_path, "granian_workers", APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = start_covet(
        "run", "--server", "granian", "--workers", "2", "--port", str(port), cwd=tmp_path
    )
    try:
        wait_for_server(url, process)
        # The kernel spreads new connections over the two workers' accept loops;
        # keep opening fresh ones until both have answered (bounded in time).
        pids: set[int] = set()
        answer: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:
            with httpx.Client() as client:
                answer = client.get(url).json()
                pids.add(answer["pid"])
        assert len(pids) == 2
        # Each worker knows it is one of two: the hashing pool takes half the cores.
        assert answer["web_concurrency"] == "2"
        assert answer["hashing_workers"] == max(1, (os.cpu_count() or 1) // 2)
        # Both workers ran their startup before serving.
        deadline = time.monotonic() + 10
        while len(lifespans(tmp_path)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        code, _, err = stop_server(process, signal.SIGINT)
    assert code == 0, err
    recorded = lifespans(tmp_path)
    assert {int(pid) for pid in recorded} == pids
    assert all(events == ["startup", "shutdown"] for events in recorded.values()), recorded


def test_granian_reload_serves_changed_code(tmp_path: Path) -> None:
    write_project(tmp_path, "granian_reload", APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = start_covet(
        "run", "--server", "granian", "--reload", "--port", str(port), cwd=tmp_path
    )
    try:
        assert wait_for_server(url, process).json()["version"] == "one"
        app_file = tmp_path / "granian_reload" / "app.py"
        changed = app_file.read_text("utf-8").replace('"version": "one"', '"version": "two"')
        # A file the reload does not watch changes nothing (and must not break anything).
        (tmp_path / "notes.md").write_text("not code\n", "utf-8")
        deadline = time.monotonic() + 60
        version = "one"
        while version != "two" and time.monotonic() < deadline:
            app_file.write_text(changed, "utf-8")
            retry = time.monotonic() + 5
            while version != "two" and time.monotonic() < retry:
                try:
                    version = httpx.get(url, timeout=2).json()["version"]
                except httpx.TransportError:
                    pass  # the worker is restarting
                time.sleep(0.2)
        assert version == "two"
    finally:
        code, _, err = stop_server(process, signal.SIGINT)
    assert code == 0, err


def test_granian_refuses_a_port_in_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_project(tmp_path, "granian_busy", APP)
    monkeypatch.chdir(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["run", "--server", "granian", "--port", str(port)])
    assert result.exit_code == 1
    assert f"Cannot serve on 127.0.0.1:{port}: the address is already in use" in result.output


def test_granian_missing_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_project(tmp_path, "granian_missing", APP)
    monkeypatch.chdir(tmp_path)
    # A None entry makes `import granian` raise ImportError, as when it is not installed.
    monkeypatch.setitem(sys.modules, "granian", None)
    result = CliRunner().invoke(main, ["run", "--server", "granian", "--port", str(free_port())])
    assert result.exit_code == 1
    assert result.output == (
        "Error: --server granian needs the granian package, which is not installed. "
        "Run: pip install 'covet-web[granian]' (or drop --server granian to use uvicorn).\n"
    )


def test_granian_refuses_reload_with_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["run", "--server", "granian", "--reload", "--workers", "2"])
    assert result.exit_code == 1
    assert "--reload cannot be combined with --workers 2" in result.output


def test_granian_options_map_covet_limits(tmp_path: Path) -> None:
    from covet.cli._granian import granian_options

    options = granian_options(
        "site.app:app", root=tmp_path, port=9000, workers=3, graceful_timeout=7.5
    )
    assert options["target"] == "covet.cli._granian:application"
    assert options["factory"] is True
    assert options["port"] == 9000
    assert options["workers"] == 3
    assert options["working_dir"] == tmp_path
    assert options["backpressure"] == 1000
    assert options["http1_settings"].header_read_timeout == 10_000
    assert options["http1_settings"].max_buffer_size == 64 * 1024
    assert options["workers_kill_timeout"] == 8
    assert "reload" not in options


def test_granian_reload_filter_watches_code_templates_and_env(tmp_path: Path) -> None:
    from watchfiles import Change

    from covet.cli._granian import granian_options

    options = granian_options("site.app:app", root=tmp_path, reload=True)
    assert options["reload"] is True
    assert options["reload_paths"] == [tmp_path]
    accept = options["reload_filter"]()
    for name in ("app.py", "page.html", "pyproject.toml", ".env"):
        assert accept(Change.modified, str(tmp_path / name)), name
    for name in ("notes.md", "data.sqlite3", "app.pyc"):
        assert not accept(Change.modified, str(tmp_path / name)), name
    assert not accept(Change.modified, str(tmp_path / ".venv" / "lib" / "x.py"))


def test_covet_server_variable_chooses_granian(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(tmp_path, "granian_variable", APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COVET_SERVER", "granian")
    monkeypatch.setitem(sys.modules, "granian", None)
    result = CliRunner().invoke(main, ["run", "--port", str(free_port())])
    assert result.exit_code == 1
    assert "--server granian needs the granian package" in result.output


def test_unknown_server_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["run", "--server", "hypercorn"])
    assert result.exit_code == 2
    assert "'hypercorn' is not one of 'uvicorn', 'granian'" in result.output


METRICS_APP = """
import os

from covet import Covet
from covet.metrics import Metrics, MetricsApp

app = Covet(allowed_hosts=["127.0.0.1"])
metrics = Metrics()
app.add_observer(metrics)
app.add_route("/metrics", MetricsApp(metrics), name="metrics")


@app.get("/work")
async def work(request):
    return {"pid": os.getpid()}
"""


def test_granian_workers_add_up_their_metrics(tmp_path: Path) -> None:
    # The app (and prometheus-client) is imported by `covet run` before the workers
    # start: they must still write their samples where any worker's scrape adds them up.
    from prometheus_client.parser import text_string_to_metric_families

    write_project(tmp_path, "granian_metrics", METRICS_APP)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_covet(
        "run", "--server", "granian", "--workers", "2", "--port", str(port), cwd=tmp_path
    )
    try:
        wait_for_server(f"{base}/work", process, timeout=60)
        pids: set[int] = set()
        deadline = time.monotonic() + 30
        sent = 1
        while len(pids) < 2 and time.monotonic() < deadline:
            with httpx.Client() as client:
                pids.add(client.get(f"{base}/work").json()["pid"])
            sent += 1
        assert len(pids) == 2

        def counted() -> float:
            scrape = httpx.get(f"{base}/metrics").text
            return sum(
                sample.value
                for family in text_string_to_metric_families(scrape)
                for sample in family.samples
                if sample.name == "covet_http_requests_total" and sample.labels["route"] == "work"
            )

        # Each worker adds its samples to the shared files within FLUSH_SECONDS.
        deadline = time.monotonic() + FLUSH_SECONDS + 5
        while counted() != sent and time.monotonic() < deadline:
            time.sleep(0.1)
        assert counted() == sent
    finally:
        code, _, err = stop_server(process, signal.SIGINT)
    assert code == 0, err


# -- ProtocolLimits: covet.protocol's per-request limits on granian's ASGI messages ------------

SLOW_APP = """
import covet.protocol

# Read by ProtocolLimits when the worker wraps this app, after importing it: a short
# body timeout, so the test waits one second rather than a minute.
covet.protocol.BODY_TIMEOUT = 1.0

from covet import Covet

app = Covet(allowed_hosts=["127.0.0.1"])


@app.post("/upload")
async def upload(request):
    return {"size": len(await request.body())}
"""


def test_granian_times_out_a_slow_body(tmp_path: Path) -> None:
    write_project(tmp_path, "granian_slow", SLOW_APP)
    port = free_port()
    process = start_covet("run", "--server", "granian", "--port", str(port), cwd=tmp_path)
    try:
        wait_for_server(f"http://127.0.0.1:{port}/up", process)
        fast = httpx.post(f"http://127.0.0.1:{port}/upload", content=b"x" * 100)
        assert fast.json() == {"size": 100}
        head = (
            b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head + b"x" * 10)  # and then nothing: a slow client
            began = time.monotonic()
            answer = sock.makefile("rb").read()
        waited = time.monotonic() - began
    finally:
        code, out, err = stop_server(process, signal.SIGTERM)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert answer.endswith(b"Request head or body not received in time.")
    assert 0.9 < waited < 8, waited
    assert code == 0, err
    assert "Request body not received in time (10 bytes" in out + err


def _limited(app: Any, **limits: Any) -> Any:
    from covet.cli._granian import ProtocolLimits

    return ProtocolLimits(app, **limits)


def _scope(target: bytes = b"/", headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    path, _, query = target.partition(b"?")
    return {
        "type": "http",
        "method": "POST",
        "path": path.decode(),
        "raw_path": path,
        "query_string": query,
        "headers": headers if headers is not None else [(b"host", b"127.0.0.1")],
    }


async def _drive(app: Any, scope: Any, receive: Any) -> list[Any]:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_protocol_limits_refuse_long_targets_and_fields_before_the_app() -> None:
    called: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limited = _limited(app, max_request_line=20, max_header_field_size=30)

    async def nothing() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    # 20 bytes of target pass (path, "?", query), 21 do not.
    assert (await _drive(limited, _scope(b"/abc?" + b"q" * 15), nothing))[0]["status"] == 204
    sent = await _drive(limited, _scope(b"/abc?" + b"q" * 16), nothing)
    assert sent[0]["status"] == 414 and sent[1]["body"] == b"Request line too long."
    assert (b"connection", b"close") in sent[0]["headers"]
    # 30 bytes of field (name and value) pass, 31 do not.
    fine = [(b"host", b"127.0.0.1"), (b"x-a", b"v" * 27)]
    assert (await _drive(limited, _scope(headers=fine), nothing))[0]["status"] == 204
    long = [(b"host", b"127.0.0.1"), (b"x-a", b"v" * 28)]
    sent = await _drive(limited, _scope(headers=long), nothing)
    assert sent[0]["status"] == 431 and sent[1]["body"] == b"Request header fields too large."
    assert called == ["/abc", "/"]


def _body_scope() -> Any:
    return _scope(headers=[(b"host", b"127.0.0.1"), (b"content-length", b"100")])


async def test_protocol_limits_time_out_a_body_that_stops_coming() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        seen.append(await receive())  # the client stalls here
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"too late"})

    chunks = [{"type": "http.request", "body": b"x" * 10, "more_body": True}]

    async def receive() -> Any:
        if chunks:
            return chunks.pop()
        await asyncio.sleep(3600)
        raise AssertionError("the timeout should have ended this wait")

    began = time.monotonic()
    sent = await _drive(_limited(app, body_timeout=0.3), _body_scope(), receive)
    assert 0.25 < time.monotonic() - began < 2
    assert seen[1] == {"type": "http.disconnect"}
    # The 408 is the whole answer: what the app sent afterwards is dropped.
    assert [message.get("status") for message in sent] == [408, None]
    assert sent[1]["body"] == b"Request head or body not received in time."


async def test_protocol_limits_count_only_the_time_spent_waiting_for_the_body() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        total = 0
        more = True
        while more:
            message = await receive()
            total += len(message["body"])
            more = message["more_body"]
            await asyncio.sleep(0.15)  # the app's own work between reads is not the client's
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(total).encode()})

    chunks = [
        {"type": "http.request", "body": b"x" * 10, "more_body": more}
        for more in (False, True, True, True)
    ]

    async def receive() -> Any:
        await asyncio.sleep(0.05)
        return chunks.pop()

    sent = await _drive(_limited(app, body_timeout=0.3), _body_scope(), receive)
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"40"


async def test_protocol_limits_extend_the_time_for_each_body_received() -> None:
    # 0.2 s, plus a second per 100 bytes: the second chunk of 100 bytes buys the wait.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        first = await receive()
        second = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": first["body"] + second["body"]})

    waits = [0.4, 0.05]

    async def receive() -> Any:
        await asyncio.sleep(waits.pop())
        return {"type": "http.request", "body": b"x" * 100, "more_body": bool(waits)}

    sent = await _drive(_limited(app, body_timeout=0.2, body_min_rate=100), _body_scope(), receive)
    assert sent[0]["status"] == 200 and len(sent[1]["body"]) == 200


async def test_protocol_limits_stop_the_clock_once_the_body_is_complete() -> None:
    # A streamed answer watches receive() for the disconnect long after the body came:
    # that wait is not the client's body time, and must not end the response.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        disconnect = await receive()  # waits past the body timeout
        await send(
            {
                "type": "http.response.body",
                "body": body["body"] + b" " + disconnect["type"].encode(),
            }
        )

    messages = [
        {"type": "http.disconnect"},
        {"type": "http.request", "body": b"all", "more_body": False},
    ]

    async def receive() -> Any:
        if len(messages) == 1:
            await asyncio.sleep(0.5)
        return messages.pop()

    sent = await _drive(_limited(app, body_timeout=0.2), _body_scope(), receive)
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"all http.disconnect"
