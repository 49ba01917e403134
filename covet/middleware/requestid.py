"""Give every request an identifier for logs, responses and tracing.

Each HTTP request and websocket connection gets an id, either generated here
or, when ``trust_incoming=True``, taken from a well-formed incoming header set
by a trusted proxy. The id is:

- sent back in the response header (``X-Request-ID`` by default);
- available to handlers as ``request.state.request_id`` and
  ``request.scope["covet.request_id"]``;
- available anywhere in the same task through :func:`get_request_id`, and
  to log records through :class:`RequestIDLogFilter` (or
  :class:`covet.logging.RequestContextFilter`, which reads the same context,
  as does covet's access log).
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import TYPE_CHECKING

from covet._context import RequestContext, current_request, new_request_id
from covet.exceptions import ImproperlyConfigured
from covet.middleware.errors import REQUEST_ID_HEADER

if TYPE_CHECKING:
    from collections.abc import Callable

    from covet.types import ASGIApp, Message, Receive, Scope, Send

__all__ = (
    "REQUEST_ID_PATTERN",
    "RequestIDLogFilter",
    "RequestIDMiddleware",
    "get_request_id",
)

#: Incoming ids must match this in full to be trusted: no spaces, quotes or
#: control characters that could forge log lines or inject into headers.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,200}", re.ASCII)
_HEADER_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", re.ASCII)


def get_request_id() -> str | None:
    """Return the id of the request being handled in the current context.

    Returns:
        The request id, or ``None`` outside a request (for example during
        startup). Inside a request the app observes (access log, metrics)
        without this middleware, it is an id made for the request.
    """
    context = current_request.get()
    return None if context is None else context.request_id


class RequestIDLogFilter(logging.Filter):
    """Add a ``request_id`` attribute to every log record it sees.

    Attach it to a handler and use ``%(request_id)s`` in the format::

        handler.addFilter(RequestIDLogFilter())
        handler.setFormatter(logging.Formatter("%(request_id)s %(message)s"))

    The filter never drops a record.

    Args:
        default: The value used outside a request.
    """

    def __init__(self, default: str = "-") -> None:
        super().__init__()
        self.default = default

    def filter(self, record: logging.LogRecord) -> bool:
        """Set ``record.request_id`` and keep the record."""
        request_id = get_request_id()
        record.request_id = self.default if request_id is None else request_id
        return True


class RequestIDMiddleware:
    """Assign an id to each request and echo it in a response header.

    Args:
        app: The ASGI application to wrap.
        header_name: The request and response header carrying the id.
        trust_incoming: Reuse an id sent by the client in ``header_name`` when
            it matches :data:`REQUEST_ID_PATTERN`. Enable it only behind a
            proxy that sets or strips the header, since clients choose it freely.
        generator: A zero-argument callable returning a new id; defaults to a
            random UUID4 in hexadecimal.

    Raises:
        ImproperlyConfigured: If ``header_name`` is not a valid header name.
    """

    def __init__(
        self,
        app: ASGIApp,
        header_name: str = "X-Request-ID",
        trust_incoming: bool = False,
        generator: Callable[[], str] = new_request_id,
    ) -> None:
        if _HEADER_NAME_RE.fullmatch(header_name) is None:
            raise ImproperlyConfigured(
                f"RequestIDMiddleware header_name {header_name!r} is not a valid HTTP header "
                "name. Use letters, digits and hyphens, such as 'X-Request-ID'."
            )
        self.app = app
        self.header_name = header_name
        self.trust_incoming = trust_incoming
        self.generator = generator
        self._header_key = header_name.lower().encode("latin-1")

    def _incoming_id(self, scope: Scope) -> str | None:
        for key, value in scope["headers"]:
            if key == self._header_key:
                text = value.decode("latin-1")
                return text if REQUEST_ID_PATTERN.fullmatch(text) else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Assign the id, run the app in its context and add the response header."""
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = self._incoming_id(scope) if self.trust_incoming else None
        if request_id is None:
            request_id = self.generator()
        scope["covet.request_id"] = request_id
        scope[REQUEST_ID_HEADER] = (self.header_name, request_id)
        state = scope.get("state")
        if state is None:
            scope["state"] = {"request_id": request_id}
        elif isinstance(state, MutableMapping):
            state["request_id"] = request_id
        else:
            state.request_id = request_id
        header = (self._header_key, request_id.encode("latin-1"))
        start_type = "http.response.start" if kind == "http" else "websocket.accept"

        async def send_with_id(message: Message) -> None:
            if message["type"] == start_type:
                headers = list(message.get("headers", ()))
                if all(key.lower() != self._header_key for key, _ in headers):
                    headers.append(header)
                message["headers"] = headers
            await send(message)

        context = current_request.get()
        if context is not None and scope.get("covet.context") is not None:
            # The app observes this request: its context (and access log) takes the id.
            context.request_id = request_id
            await self.app(scope, receive, send_with_id)
            return
        own = RequestContext(scope)
        own.request_id = request_id
        token = current_request.set(own)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request.reset(token)
