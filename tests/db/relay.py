"""A TCP relay between covet and a database server, for tests that play network faults."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


class Relay:
    """Relay a port on 127.0.0.1 to a database server, with two faults a test can play.

    ``frozen = True`` drops everything both ways from then on: a network that goes
    silent (a cable pulled, a firewall dropping packets), where the client's socket
    stays open and nothing, not even the server's own error, comes back.

    ``hold_server_close=True`` passes the server's data but holds back its close:
    when the server terminates a backend the client receives the FATAL message
    while its socket stays open, which widens the window in which such a
    connection could be handed out.
    """

    def __init__(self, host: str, port: int, *, hold_server_close: bool = False) -> None:
        self.target = (host, port)
        self.port = 0
        self.frozen = False
        self.hold_server_close = hold_server_close
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, upstream_writer]

        async def pipe(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, hold: bool
        ) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    if not self.frozen:
                        sink.write(data)
                        await sink.drain()
            if not hold:
                sink.transport.abort()

        ways = (
            (reader, upstream_writer, False),
            (upstream_reader, writer, self.hold_server_close),
        )
        for source, sink, hold in ways:
            task = asyncio.ensure_future(pipe(source, sink, hold))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
