"""The request being served in the current context, and the per-request observer hook.

:class:`RequestContext` describes one HTTP request or websocket connection:
its scope, id, status, bytes sent and duration. ``current_request`` holds
the one being served in this task (tasks it starts inherit it), so log
records, ORM statements and background tasks can name their request.

The app calls every :class:`RequestObserver` installed for it at one point
per request (see ``Covet.__call__``): the access log, metrics and, later,
tracing hang off that single hook. With no observer the app pays one
attribute check per request.
"""

from __future__ import annotations

import contextvars
import os
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from covet.types import Scope

__all__ = (
    "JobContext",
    "RequestContext",
    "RequestObserver",
    "current_job",
    "current_request",
    "new_request_id",
)


def new_request_id() -> str:
    """Return a random UUID 4 as 32 hex digits (``uuid.uuid4().hex``, for a third of its cost).

    Every request asks for one when something logs it, so it is on the hot path.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


class RequestContext:
    """One request (or websocket connection) as the observers see it.

    Attributes:
        scope: The ASGI scope.
        status: The response status (101 once a websocket is accepted, 403
            when it is refused; 500 when the app failed before answering).
        sent: Response body bytes sent.
        duration: Seconds from the start of the request to its end (set
            before :meth:`RequestObserver.request_finished`).
        started: ``time.perf_counter()`` when the request started.
    """

    __slots__ = ("_request_id", "duration", "scope", "sent", "started", "status")

    def __init__(self, scope: Scope, started: float = 0.0) -> None:
        self.scope = scope
        self.status = 0
        self.sent = 0
        self.duration = 0.0
        self.started = started
        self._request_id: str | None = None

    @property
    def request_id(self) -> str:
        """Return the request id, made (once) when first asked for.

        It is the one :class:`~covet.middleware.RequestIDMiddleware` assigned, if any.
        """
        request_id = self._request_id
        if request_id is None:
            request_id = self._request_id = self.scope.get("covet.request_id") or new_request_id()
        return request_id

    @request_id.setter
    def request_id(self, value: str) -> None:
        self._request_id = value

    @property
    def user_id(self) -> str | None:
        """Return the primary key of the authenticated user, or None."""
        user = self.scope.get("user")
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        pk = getattr(user, "pk", None)
        return None if pk is None else str(pk)

    @property
    def route_name(self) -> str | None:
        """Return the matched route's name (else its path template), or None when none matched.

        Never the raw path: ``/items/{id}`` stays one value however many ids are asked for.
        """
        route: Any = self.scope.get("route")
        if route is None:
            return None
        return getattr(route, "name", None) or getattr(route, "path", None)

    @property
    def client(self) -> str | None:
        """Return the client address (after proxy headers, as the server reports it)."""
        client = self.scope.get("client")
        return None if not client else str(client[0])


#: The request being served in this context, or None (startup, scripts, jobs outside a request).
current_request: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "covet_request", default=None
)


class JobContext:
    """The background job running in this context (``covet.jobs``), as log records see it.

    Attributes:
        job_id: The job's id.
        name: The job's name (``"module:function"``).
        queue: The queue it was taken from.
        attempt: Which attempt this is (1 for the first run).
        request_id: The id of the request that enqueued it, if one did.
        run_at: When it was due (Unix time): a schedule's tick for a scheduled job.
    """

    __slots__ = ("attempt", "job_id", "name", "queue", "request_id", "run_at")

    def __init__(
        self,
        job_id: str,
        name: str,
        queue: str,
        attempt: int,
        request_id: str | None,
        run_at: float,
    ) -> None:
        self.job_id = job_id
        self.name = name
        self.queue = queue
        self.attempt = attempt
        self.request_id = request_id
        self.run_at = run_at

    def __repr__(self) -> str:
        return f"<JobContext {self.name} id={self.job_id} attempt={self.attempt}>"


#: The background job running in this context, or None (set by the ``covet worker``).
current_job: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "covet_job", default=None
)


class RequestObserver(Protocol):
    """Something told when each request starts and ends (access log, metrics, tracing).

    Both methods run in the request's context (``current_request`` is set)
    and must not raise. An observer may also have a third,
    ``websocket_accepted(context)``, called when the app accepts a websocket
    connection (``context.status`` is 101 from then on, and the route is known),
    for what lasts as long as the connection (an open-connections gauge).
    """

    def request_started(self, context: RequestContext) -> None:
        """Note that ``context``'s request started."""

    def request_finished(self, context: RequestContext) -> None:
        """Note that ``context``'s request ended (status, sent and duration are set)."""
