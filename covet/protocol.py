"""uvicorn's httptools protocol with the request-head limits and slow-client timeouts it lacks.

uvicorn's default HTTP protocol (httptools, picked whenever it is installed,
as ``uvicorn[standard]`` does) bounds neither the request line nor the
headers: a client can send a 1 MiB header or 10,000 of them and the
application sees them all. Nor does it time out a client that sends its
request head a byte at a time, or a body at a trickle (slowloris, uvicorn
issue #157): every such connection holds one of the ``limit_concurrency``
slots for as long as the client likes.

:class:`HTTPProtocol` adds what gunicorn and Apache's ``mod_reqtimeout``
enforce (``DEFAULTS.md``):

* a request line of at most 4094 bytes (else ``414``), at most 100 header
  fields of at most 8190 bytes each, and a request head of at most 64 KiB
  in all (else ``431``); the head is refused while it streams in, so a
  client never makes the worker buffer more than the limit;
* a request head must be complete within 10 s of the connection (or of
  its first byte, on a kept-alive connection), else ``408`` and close;
* a request body gets 60 s, plus one second for every 500 bytes received
  (``mod_reqtimeout``'s ``MinRate``), so a large upload on a slow link
  passes and a trickle does not, else ``408`` (or a close, once the
  response has started). Time the application spends not reading (the
  connection paused by flow control) is not counted.

It also fixes an off-by-one of uvicorn's ``limit_concurrency``: uvicorn
answers ``503`` once the open connections *including the one asking*
reach the limit, so with the default 1000, a thousand kept-alive
connections (browsers that idle between clicks) had every request of
every one of them refused. Here ``limit_concurrency`` open connections are
served, and ``503`` starts at one more (or at that many requests in flight).

``covet run`` serves with it; with uvicorn directly, pass
``uvicorn.run("mysite.app:app", http=HTTPProtocol)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

if TYPE_CHECKING:
    import asyncio
    from asyncio import TimerHandle

    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

__all__ = ("HTTPProtocol", "http_protocol")

#: Longest request line (method, target and version), as gunicorn's ``limit_request_line``.
MAX_REQUEST_LINE = 4094
#: Most header fields in one request, as gunicorn's ``limit_request_fields``.
MAX_HEADER_FIELDS = 100
#: Longest header field (name and value), as gunicorn's ``limit_request_field_size``.
MAX_HEADER_FIELD_SIZE = 8190
#: Most bytes of a whole request head (request line and every header).
MAX_HEAD_SIZE = 64 * 1024
#: Seconds a client has to send a complete request head.
HEADER_TIMEOUT = 10.0
#: Seconds a client has to send a request body, before the ``BODY_MIN_RATE`` extension.
BODY_TIMEOUT = 60.0
#: Bytes per second of body that earn the client one more second (mod_reqtimeout's MinRate).
BODY_MIN_RATE = 500

#: The body of each refusal the protocol writes (and ``covet run --server granian``'s
#: ``ProtocolLimits`` sends): request head or body too slow, request line too long, header
#: fields too large.
REASONS = {
    408: b"Request head or body not received in time.",
    414: b"Request line too long.",
    431: b"Request header fields too large.",
}


class HTTPProtocol(HttpToolsProtocol):
    """httptools' protocol for uvicorn, with request-head limits and slow-client timeouts.

    The limits and timeouts are the module constants; :func:`http_protocol`
    returns a subclass with others.
    """

    max_request_line = MAX_REQUEST_LINE
    max_header_fields = MAX_HEADER_FIELDS
    max_header_field_size = MAX_HEADER_FIELD_SIZE
    max_head_size = MAX_HEAD_SIZE
    header_timeout = HEADER_TIMEOUT
    body_timeout = BODY_TIMEOUT
    body_min_rate = BODY_MIN_RATE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn's own check (connections >= limit, counting this one) is replaced by
        # the one in on_headers_complete().
        self._concurrency_limit = self.limit_concurrency
        self.limit_concurrency = None
        self._head_bytes: int | None = 0  # bytes of the head being received; None: no head
        self._url_size = 0
        self._fields = 0
        self._timer: TimerHandle | None = None
        self._body_started = 0.0
        self._body_received = 0
        self._rejected = False

    # Timers.

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _header_timed_out(self) -> None:
        self._timer = None
        self._reject(408, "Request head not received within %s s.", self.header_timeout)

    def _body_deadline(self) -> float:
        return self._body_started + self.body_timeout + self._body_received / self.body_min_rate

    def _check_body(self) -> None:
        self._timer = None
        cycle: RequestResponseCycle | None = self.cycle
        if (
            cycle is None
            or not cycle.more_body
            or cycle.disconnected
            or self.transport.is_closing()
        ):
            return
        now = self.loop.time()
        if self.flow.read_paused:
            # The application is not reading (flow control paused the socket): the
            # client is not the slow one, so its clock starts again.
            self._body_started, self._body_received = now, 0
        if now < self._body_deadline():
            self._timer = self.loop.call_at(self._body_deadline(), self._check_body)
            return
        self.logger.warning(
            "Request body not received in time (%d bytes in %.0f s).",
            self._body_received,
            now - self._body_started,
        )
        if not cycle.response_started:
            self._write_error(408)
        cycle.disconnected = True
        cycle.message_event.set()
        self.transport.close()

    # Refusals.

    def _write_error(self, status: int) -> None:
        body = REASONS[status]
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    *(
                        name + b": " + value + b"\r\n"
                        for name, value in self.server_state.default_headers
                    ),
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )

    def _finished(self) -> bool:
        """Return whether the connection is refused, closing or lost (its parser dropped)."""
        return self._rejected or self.transport.is_closing() or self.parser is None

    def _reject(self, status: int, message: str, *args: object) -> None:
        """Answer ``status`` to a request whose head is refused, and close the connection."""
        if self._rejected or self.transport.is_closing():
            return
        self._rejected = True
        self._disarm()
        self.logger.warning(message, *args)
        self._write_error(status)
        self.transport.close()

    # asyncio.Protocol.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the connection and the clock for its first request head."""
        super().connection_made(transport)
        self._arm(self.header_timeout, self._header_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clocks and end the connection."""
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed ``data`` to the parser, refusing a head past ``max_head_size`` as it streams in."""
        if self._rejected:
            return
        if self._head_bytes is not None:
            room = self.max_head_size - self._head_bytes
            if len(data) <= room:
                self._head_bytes += len(data)
            else:
                # Only the bytes the head may still take go to the parser; the rest is
                # fed once they complete the head (it is the body, or the next request).
                head, data = data[:room], data[room:]
                self._head_bytes += len(head)
                super().data_received(head)
                if self._finished():
                    return
                if self._head_bytes is not None:
                    self._reject(431, "Request head larger than %d bytes.", self.max_head_size)
                    return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        """Answer 400 to a request httptools cannot parse, unless it was refused already."""
        if not self._rejected:
            self._rejected = True
            self._disarm()
            super().send_400_response(msg)

    def handle_websocket_upgrade(self) -> None:
        """Hand the connection to the websocket protocol, which has timeouts of its own."""
        self._disarm()
        self._head_bytes = None
        super().handle_websocket_upgrade()

    # httptools callbacks.

    def on_message_begin(self) -> None:
        """Start a request: its head is counted and timed from here."""
        super().on_message_begin()
        self._url_size = 0
        self._fields = 0
        if self._head_bytes is None:
            self._head_bytes = 0
            self._arm(self.header_timeout, self._header_timed_out)

    def on_url(self, url: bytes) -> None:
        """Collect the request target, refusing one past ``max_request_line``."""
        self._url_size += len(url)
        if self._url_size > self.max_request_line:
            self._reject(414, "Request line longer than %d bytes.", self.max_request_line)
            raise _Refused
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Collect one header field, refusing too many or too large ones."""
        self._fields += 1
        if self._fields > self.max_header_fields:
            self._reject(431, "More than %d request header fields.", self.max_header_fields)
            raise _Refused
        if len(name) + len(value) > self.max_header_field_size:
            self._reject(
                431, "Request header field larger than %d bytes.", self.max_header_field_size
            )
            raise _Refused
        super().on_header(name, value)

    def _over_concurrency_limit(self) -> bool:
        limit = self._concurrency_limit
        if limit is None or (self.parser.should_upgrade() and self._should_upgrade()):
            return False
        # This connection is one of self.connections; the request is not yet a task.
        if len(self.connections) > limit:
            return True
        # A finished task leaves self.tasks only when its done-callback runs, a loop
        # iteration later: under a burst those would count, so they are counted out
        # (a scan only when the set is that full).
        return len(self.tasks) >= limit and sum(not task.done() for task in self.tasks) >= limit

    def on_headers_complete(self) -> None:
        """Stop the head clock; start the body clock when a body follows."""
        self._disarm()
        self._head_bytes = None
        if self._over_concurrency_limit():
            self.logger.warning("Exceeded concurrency limit.")
            app, self.app = self.app, service_unavailable
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        else:
            super().on_headers_complete()
        cycle: RequestResponseCycle | None = self.cycle
        if cycle is not None and cycle.more_body and not self.parser.should_upgrade():
            self._body_started = self.loop.time()
            self._body_received = 0
            self._arm(self.body_timeout, self._check_body)

    def on_body(self, body: bytes) -> None:
        """Count body bytes: each ``body_min_rate`` of them earns the client a second."""
        self._body_received += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        """Stop the body clock."""
        self._disarm()
        super().on_message_complete()


class _Refused(Exception):  # noqa: N818 - a signal to the parser, never seen outside
    """Raised from a parser callback to stop httptools after a refusal."""


def http_protocol(
    *,
    max_request_line: int = MAX_REQUEST_LINE,
    max_header_fields: int = MAX_HEADER_FIELDS,
    max_header_field_size: int = MAX_HEADER_FIELD_SIZE,
    max_head_size: int = MAX_HEAD_SIZE,
    header_timeout: float = HEADER_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
    body_min_rate: int = BODY_MIN_RATE,
) -> type[HTTPProtocol]:
    """Return an :class:`HTTPProtocol` with other limits, for ``uvicorn.run(http=...)``.

    Args:
        max_request_line: Longest request line in bytes (414 past it).
        max_header_fields: Most header fields (431 past it).
        max_header_field_size: Longest header field, name and value, in bytes (431).
        max_head_size: Most bytes of the whole request head (431).
        header_timeout: Seconds to receive a request head (408).
        body_timeout: Seconds to receive a body, before the rate extension (408).
        body_min_rate: Bytes of body that earn one more second.

    Returns:
        A subclass of :class:`HTTPProtocol`.

    Raises:
        ValueError: When a limit is not a positive number.
    """
    limits: dict[str, object] = {
        "max_request_line": max_request_line,
        "max_header_fields": max_header_fields,
        "max_header_field_size": max_header_field_size,
        "max_head_size": max_head_size,
        "header_timeout": header_timeout,
        "body_timeout": body_timeout,
        "body_min_rate": body_min_rate,
    }
    for name, value in limits.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            default = getattr(HTTPProtocol, name)
            raise ValueError(
                f"http_protocol({name}={value!r}) is not a positive number. "
                f"Pass one, such as {name}={default!r}."
            )
    return type("HTTPProtocol", (HTTPProtocol,), dict(limits))
