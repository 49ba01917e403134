"""Turn exceptions into responses: the two middleware every covet app wraps itself in.

:class:`ServerErrorMiddleware` is the outermost layer. It catches whatever
nothing else handled, logs it once on the ``covet.error`` logger with the
method and path, and answers ``500``: a traceback page in debug mode, an error
page (HTML, JSON or text, see :mod:`covet.errorpages`) otherwise. It does not
re-raise the exception to the server, which would log it again and drop the
kept-alive connection; a server or test client that wants it installs the
:data:`REPORT_EXTENSION` scope extension.

:class:`ExceptionMiddleware` sits just outside the router. It dispatches
exceptions to the handlers registered with ``app.add_exception_handler()``:
by status code for :class:`~covet.exceptions.HTTPException`, then by class
along the exception's MRO.
"""

from __future__ import annotations

# The code lives in covet._errors so that covet.app can use it without importing
# the covet.middleware package (and, through its __init__, every middleware).
from covet._errors import (
    REPORT_EXTENSION,
    ExceptionHandler,
    ExceptionMiddleware,
    ServerErrorMiddleware,
    check_exception_handler,
    debug_response,
    http_exception_handler,
    websocket_exception_handler,
)

__all__ = (
    "REPORT_EXTENSION",
    "ExceptionHandler",
    "ExceptionMiddleware",
    "ServerErrorMiddleware",
    "check_exception_handler",
    "debug_response",
    "http_exception_handler",
    "websocket_exception_handler",
)
