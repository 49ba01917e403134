"""Response classes: ASGI callables that send a status, headers and a body.

Every response is an ASGI application: ``await response(scope, receive, send)``.
Handlers usually return one (or a dict, list, str or bytes that covet wraps in
one). All of them answer a ``HEAD`` request with the headers of the ``GET``
response, including the real ``Content-Length``, and no body.
"""

from __future__ import annotations

from covet.responses.base import (
    SENDS_PLAIN,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    check_raw_headers,
)
from covet.responses.files import FileResponse
from covet.responses.streaming import StreamingResponse

__all__ = (
    "SENDS_PLAIN",
    "FileResponse",
    "HTMLResponse",
    "JSONResponse",
    "PlainTextResponse",
    "RedirectResponse",
    "Response",
    "StreamingResponse",
    "check_raw_headers",
)
