"""covet's uvicorn protocol: request-head limits and slow-client timeouts, on a live server.

Each test talks raw HTTP/1.1 to a uvicorn server (in a thread) that runs
:class:`covet.protocol.HTTPProtocol` with timeouts shortened to fractions of a
second. These are the regressions of issue 16's hostile corpus: uvicorn's
httptools protocol let a 1 MiB header or 10,000 of them through, and waited
forever for a head or body sent a byte at a time.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn

from covet import Covet, Request
from covet.cli.run import server_options
from covet.protocol import HTTPProtocol, http_protocol

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

HEADER_TIMEOUT = 0.5
BODY_TIMEOUT = 0.6

app = Covet()


@app.get("/ping")
async def ping(request: Request) -> str:
    return "pong"


@app.post("/echo")
async def echo(request: Request) -> str:
    return str(len(await request.body()))


@contextlib.contextmanager
def serving(protocol: type[HTTPProtocol], **options: Any) -> Iterator[int]:
    """Serve ``app`` with ``protocol`` on a free port, in a thread; yield the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        number = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=number,
        http=protocol,
        lifespan="off",
        log_level="error",
        **options,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield number
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    protocol = http_protocol(header_timeout=HEADER_TIMEOUT, body_timeout=BODY_TIMEOUT)
    with serving(protocol) as number:
        yield number


def exchange(
    port: int, *pieces: bytes, pause: float = 0.0, wait: float = 5.0
) -> tuple[bytes, bool]:
    """Send ``pieces`` (``pause`` apart); return what came back and whether the server closed."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        try:
            for piece in pieces:
                sock.sendall(piece)
                time.sleep(pause)
        except OSError:
            pass
        sock.settimeout(wait)
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return answer, False
            except OSError:
                return answer, True
            if not chunk:
                return answer, True
            answer += chunk


def head(*headers: bytes, target: bytes = b"/ping") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + b"".join(h + b"\r\n" for h in headers)


def test_a_well_formed_request_is_served(port: int) -> None:
    answer, _ = exchange(port, head(b"Connection: close") + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b"pong")


def test_a_long_request_line_is_414(port: int) -> None:
    answer, closed = exchange(port, head(target=b"/ping?" + b"a" * 5000) + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 414 ")
    assert answer.count(b"HTTP/1.1") == 1  # no second 400 from uvicorn's parser error path
    assert closed


def test_too_many_header_fields_is_431(port: int) -> None:
    fields = [b"X-H%d: v" % i for i in range(101)]
    answer, closed = exchange(port, head(*fields) + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert closed
    answer, _ = exchange(port, head(*fields[:98], b"Connection: close") + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_large_header_field_is_431(port: int) -> None:
    answer, closed = exchange(port, head(b"X-Big: " + b"a" * 8200) + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert closed
    answer, _ = exchange(port, head(b"X-Big: " + b"a" * 8000, b"Connection: close") + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_head_past_64_kib_is_refused_while_it_streams_in(port: int) -> None:
    # 70 fields of 1,000 bytes pass the field limits; the whole is past 64 KiB, and
    # is refused before the end of the head is ever sent.
    fields = b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 1000) for i in range(70))
    answer, closed = exchange(port, head() + fields)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert closed


def test_a_body_in_the_same_packet_as_the_head_is_not_counted_as_head(port: int) -> None:
    body = b"a" * 200_000
    request = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    answer, _ = exchange(port, request + body)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b"200000")


def test_a_head_not_finished_in_time_is_408(port: int) -> None:
    started = time.monotonic()
    answer, closed = exchange(port, b"GET /ping HTTP/1.1\r\n", *[b"X: y\r\n"] * 40, pause=0.05)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert closed
    assert time.monotonic() - started < HEADER_TIMEOUT + 2


def test_a_silent_connection_is_408(port: int) -> None:
    answer, closed = exchange(port, b"", wait=HEADER_TIMEOUT + 2)
    assert (answer.startswith(b"HTTP/1.1 408 "), closed) == (True, True)


def test_the_head_clock_restarts_for_each_kept_alive_request(port: int) -> None:
    first = head() + b"\r\n"
    answer, closed = exchange(port, first, *[b"GET /ping?" + b"a"] + [b"a"] * 40, pause=0.05)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"HTTP/1.1 408 " in answer
    assert closed


def test_a_trickled_body_is_408(port: int) -> None:
    request = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
    answer, closed = exchange(port, request, *[b"a"] * 60, pause=0.05)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert closed


def test_a_body_sent_in_time_is_served_whatever_its_pace(port: int) -> None:
    request = b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10\r\n\r\n"
    answer, _ = exchange(port, request, *[b"a"] * 10, pause=0.02)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b"10")


def test_limit_concurrency_kept_alive_connections_are_all_served() -> None:
    # Issue 16: uvicorn counts the asking connection against limit_concurrency, so
    # with 1000 (the default) a thousand kept-alive connections all got 503s.
    with serving(HTTPProtocol, limit_concurrency=3) as number:
        socks = [socket.create_connection(("127.0.0.1", number)) for _ in range(3)]
        try:
            for _ in range(2):
                for sock in socks:
                    sock.sendall(head() + b"\r\n")
                for sock in socks:
                    sock.settimeout(5)
                    assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            # One connection more than the limit is refused, and only while it lasts.
            answer, _ = exchange(number, head(b"Connection: close") + b"\r\n")
            assert answer.startswith(b"HTTP/1.1 503 ")
        finally:
            for sock in socks:
                sock.close()


def test_covet_run_serves_with_it(tmp_path: Path) -> None:
    assert server_options("site.app:app", root=tmp_path)["http"] is HTTPProtocol


@pytest.mark.parametrize("value", [0, -1, True, "10"])
def test_limits_must_be_positive_numbers(value: object) -> None:
    with pytest.raises(ValueError, match=r"header_timeout=.* is not a positive number"):
        http_protocol(header_timeout=value)  # type: ignore[arg-type]
