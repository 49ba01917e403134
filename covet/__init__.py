"""covet: a batteries-included async full-stack web framework.

The names exported here are the public contract; import them from ``covet``
rather than from the submodules.
"""

from __future__ import annotations

from covet.app import Covet
from covet.exceptions import HTTPException, WebSocketException
from covet.requests import Request
from covet.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from covet.routing import Router
from covet.websockets import WebSocket, WebSocketDisconnect

__version__ = "0.1.0"

__all__ = (
    "Covet",
    "FileResponse",
    "HTMLResponse",
    "HTTPException",
    "JSONResponse",
    "PlainTextResponse",
    "RedirectResponse",
    "Request",
    "Response",
    "Router",
    "StreamingResponse",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketException",
    "__version__",
)
