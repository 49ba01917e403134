"""A real ``covet run`` sends one event per unhandled error to Sentry, here a local server.

``SENTRY_DSN`` points sentry-sdk at an HTTP server this test runs on 127.0.0.1,
standing in for sentry.io: what it receives is what Sentry would have received
from a deployed app (no test client, sentry-sdk's own HTTP transport).
"""

from __future__ import annotations

import gzip
import json
import signal
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import pytest

from tests.cli.conftest import free_port, start_covet, stop_server, wait_for_server, write_project

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

APP = """
import sentry_sdk

from covet import Covet
from covet.middleware import RequestIDMiddleware
from covet.sentry import CovetIntegration

app = Covet(allowed_hosts=["127.0.0.1"])
# The DSN comes from SENTRY_DSN.
sentry_sdk.init(integrations=[CovetIntegration(app)], traces_sample_rate=1.0)
app.add_middleware(RequestIDMiddleware, trust_incoming=True)


@app.get("/up")
async def up(request):
    return "ok"


@app.get("/orders/{order_id:int}", name="order")
async def order(request, order_id: int):
    raise RuntimeError(f"order {order_id} is broken")
"""


class Collector(BaseHTTPRequestHandler):
    """Accepts sentry-sdk's envelope POSTs and keeps their items."""

    items: ClassVar[list[tuple[dict[str, Any], bytes]]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        with self.lock:
            self.items.extend(_envelope_items(body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output quiet


def _envelope_items(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """Split an envelope: a header line, then (item header, payload) pairs."""
    _, _, rest = body.partition(b"\n")
    items = []
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        length = header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length + 1 :]
        items.append((header, payload))
    return items


@pytest.fixture
def sentry_server() -> Iterator[str]:
    Collector.items = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://public@127.0.0.1:{server.server_address[1]}/1"
    finally:
        server.shutdown()
        server.server_close()


def _events() -> list[dict[str, Any]]:
    with Collector.lock:
        return [
            json.loads(payload) for header, payload in Collector.items if header["type"] == "event"
        ]


def test_covet_run_sends_one_event_with_route_request_id_and_masked_headers(
    tmp_path: Path, sentry_server: str
) -> None:
    secret = f"bearer-{uuid.uuid4().hex}"
    root = write_project(tmp_path, "sentrysite", APP)
    port = free_port()
    process = start_covet(
        "run", "--port", str(port), "--no-check", cwd=root, SENTRY_DSN=sentry_server
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(f"{base}/up", process)
        response = httpx.get(
            f"{base}/orders/7",
            headers={"Authorization": f"Bearer {secret}", "X-Request-ID": "req-e2e-0001"},
        )
        assert response.status_code == 500
        deadline = time.monotonic() + 15
        while not _events() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        code, _, err = stop_server(process, signal.SIGTERM)
    assert code == 0, err
    # The server flushed at shutdown: whatever it had to send has arrived.
    [event] = _events()
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError" and exception["value"] == "order 7 is broken"
    assert exception["mechanism"] == {"type": "covet", "handled": False}
    assert event["transaction"] == "order"
    assert event["tags"]["request_id"] == "req-e2e-0001"
    assert event["request"]["url"] == f"{base}/orders/7"
    with Collector.lock:
        sent = b"".join(payload for _, payload in Collector.items)
    assert secret.encode() not in sent
    assert "Unhandled RuntimeError while serving GET '/orders/7'" in err  # logged once too
    assert err.count("Unhandled RuntimeError") == 1
