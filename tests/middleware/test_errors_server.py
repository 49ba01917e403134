"""The error layer under a real uvicorn server (in a subprocess).

An unhandled exception is logged once (one traceback in the server's stderr,
covet's, not a second "Exception in ASGI application" from uvicorn), and the
complete 500 leaves the kept-alive connection usable for the next request.
A response that fails after it started cannot be completed: the server closes
that connection, and the error is still logged only once.
"""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from tests.cli.conftest import free_port, stop_server, subprocess_env, wait_for_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

APP = """
from covet import Covet, Request, StreamingResponse


class PassThrough:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


class BoomError(Exception):
    pass


def build(stacked):
    app = Covet(allowed_hosts=["127.0.0.1"])

    @app.get("/ok")
    async def ok(request: Request) -> str:
        return "fine"

    @app.get("/boom")
    async def boom(request: Request) -> str:
        raise BoomError("kaput")

    @app.get("/stream-breaks")
    async def stream_breaks(request: Request) -> StreamingResponse:
        async def chunks():
            yield b"first"
            raise BoomError("mid-stream")

        return StreamingResponse(chunks(), media_type="text/plain")

    if stacked:
        app.add_middleware(PassThrough)
    return app


direct = build(stacked=False)
stacked = build(stacked=True)
"""


class Server:
    """A uvicorn subprocess serving the app; :meth:`stop` returns its stderr."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.stderr: str | None = None

    def stop(self) -> str:
        if self.stderr is None:
            code, _, self.stderr = stop_server(self.process, signal.SIGINT)
            assert code == 0, self.stderr
        return self.stderr


@pytest.fixture(params=["direct", "stacked"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """Serve the app without user middleware (the inline path), then with it (the stack)."""
    (tmp_path / "errorapp.py").write_text(textwrap.dedent(APP), "utf-8")
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            f"errorapp:{request.param}",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=tmp_path,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = Server(process, port)
    try:
        wait_for_server(f"http://127.0.0.1:{port}/ok", process)
        yield running
    finally:
        running.stop()


def get(connection: http.client.HTTPConnection, path: str) -> http.client.HTTPResponse:
    connection.request("GET", path, headers={"Accept": "*/*"})
    return connection.getresponse()


def test_a_500_is_logged_once_and_keeps_the_connection(server: Server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        response = get(connection, "/boom")
        assert (response.status, response.read()) == (500, b"Internal Server Error")
        assert response.getheader("Connection") is None
        socket_after_500 = connection.sock
        assert socket_after_500 is not None
        # The same kept-alive connection serves the next request.
        response = get(connection, "/ok")
        assert (response.status, response.read()) == (200, b"fine")
        assert connection.sock is socket_after_500
    finally:
        connection.close()
    stderr = server.stop()
    assert stderr.count("Traceback (most recent call last)") == 1, stderr
    assert stderr.count("Unhandled BoomError while serving GET '/boom'") == 1, stderr
    assert "Exception in ASGI application" not in stderr


def test_a_response_broken_after_it_started_closes_the_connection(server: Server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        response = get(connection, "/stream-breaks")
        assert response.status == 200
        # The body cannot be completed: the server closes the connection and the
        # client sees a truncated response, not a complete wrong one.
        with pytest.raises(http.client.IncompleteRead):
            response.read()
    finally:
        connection.close()
    stderr = server.stop()
    assert stderr.count("Traceback (most recent call last)") == 1, stderr
    assert stderr.count("Unhandled BoomError while serving GET '/stream-breaks'") == 1, stderr
    assert "Exception in ASGI application" not in stderr
