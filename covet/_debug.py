"""The debug-mode 500 page: the exception, the request, each frame's locals and the SQL run.

Shown only by an app created with ``Covet(debug=True)``
(:func:`covet.middleware.errors.debug_response` calls :func:`debug_page`). Browsers
get an HTML page; clients that prefer JSON get ``{"error", "detail",
"traceback"}`` (plus ``"hint"`` when a missing migration is the likely
cause).

What the page shows is filtered like Django's ``SafeExceptionReporterFilter``,
by the rule error reports use too (:mod:`covet._redact`): a header, query
parameter, form field, local variable or mapping key whose name matches
:data:`~covet._redact.SENSITIVE` (``API``, ``TOKEN``, ``KEY``, ``SECRET``,
``PASS``, ``SIGNATURE``, ``COOKIE``, ``AUTH``, ``SESSION``, ``CSRF``) shows
``********``, and a password in a URL is hidden. Values are ``repr()``-ed with
a length cap, and a failing ``__repr__`` shows a placeholder instead of
breaking the page. Everything is HTML-escaped. The request body is never read here: the form
appears only when the handler had already parsed it.

In debug mode the app wraps its middleware stack in
:class:`QueryRecordingMiddleware`, which keeps the last
:data:`MAX_QUERIES` SQL statements of each request for the page.
"""

from __future__ import annotations

import html
import linecache
import sys
import sysconfig
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covet._redact import (
    MASK,
    SENSITIVE,
    masked_headers,
    masked_path_params,
    masked_query,
    masked_url,
    parsed_form,
    safe_repr,
    shown,
)
from covet.db.querylog import QueryLog
from covet.errorpages import preferred_format
from covet.requests import Request
from covet.responses import HTMLResponse, JSONResponse, Response

if TYPE_CHECKING:
    from types import FrameType

    from covet.types import ASGIApp, Receive, Scope, Send

__all__ = (
    "MASK",
    "MAX_QUERIES",
    "SENSITIVE",
    "QueryRecordingMiddleware",
    "debug_page",
    "missing_schema_hint",
)

#: The SQL statements kept per request (the latest ones; the count covers all).
MAX_QUERIES = 100
#: Frames shown with their locals (the innermost ones; a deep recursion is cut).
MAX_FRAMES = 50
#: Local variables shown per frame.
MAX_LOCALS = 100
#: Lines of source shown around the line of each frame.
CONTEXT_LINES = 2

_SCOPE_KEY = "covet.debug.queries"
_COVET_DIR = str(Path(__file__).resolve().parent)
_LIBRARY_DIRS = tuple(
    {
        _COVET_DIR,
        *(
            str(Path(path).resolve())
            for key in ("stdlib", "platstdlib", "purelib", "platlib")
            if (path := sysconfig.get_paths().get(key))
        ),
    }
)


class QueryRecordingMiddleware:
    """Record each HTTP request's SQL statements for the debug page (debug mode only).

    The log (the last :data:`MAX_QUERIES` statements, transaction control
    included) is kept in the scope for :func:`debug_page`.

    Args:
        app: The ASGI app to wrap (the app's whole middleware stack).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request inside a :func:`~covet.db.capture_queries` block."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        log = QueryLog(limit=MAX_QUERIES, transactions=True)
        scope[_SCOPE_KEY] = log
        with log:
            await self.app(scope, receive, send)


# -- what the page is made of ---------------------------------------------------------------


def missing_schema_hint(exc: BaseException) -> str | None:
    """Return the fix to show when a missing table or column caused ``exc``, else None.

    Looks along the exception's causes for a
    :class:`~covet.db.MissingSchemaObjectError`.
    """
    from covet.db.exceptions import MissingSchemaObjectError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MissingSchemaObjectError):
            return (
                f"The database lacks a table or column the code uses ({current}). A model "
                'probably changed without a migration: run `covet makemigrations -m "..."` '
                "then `covet migrate` (just `covet migrate` when the revision already "
                "exists but is not applied)."
            )
        current = current.__cause__ or current.__context__
    return None


def _library(filename: str) -> bool:
    if filename.startswith("<"):
        return True
    try:
        path = str(Path(filename).resolve())
    except (OSError, ValueError):
        return True
    return path.startswith(_LIBRARY_DIRS)


def _frames(exc: BaseException) -> list[tuple[FrameType, int]]:
    frames = list(traceback.walk_tb(exc.__traceback__))
    return frames[-MAX_FRAMES:]


def _source(filename: str, lineno: int) -> list[tuple[int, str]]:
    first = max(1, lineno - CONTEXT_LINES)
    lines = []
    for number in range(first, lineno + CONTEXT_LINES + 1):
        line = linecache.getline(filename, number)
        if line:
            lines.append((number, line.rstrip("\n")))
    return lines


def _frame_locals(frame: FrameType) -> list[tuple[str, str]]:
    try:
        names = dict(frame.f_locals)
    except Exception:  # noqa: BLE001 - a frame whose locals cannot be read shows none
        return []
    rows = []
    for index, (name, value) in enumerate(names.items()):
        if index >= MAX_LOCALS:
            rows.append(("...", f"{len(names) - MAX_LOCALS} more"))
            break
        rows.append((name, shown(name, value)))
    return rows


def _request_rows(scope: Scope) -> dict[str, list[tuple[str, str]]]:
    client = Request(scope).client
    summary = [
        ("Method", str(scope.get("method", ""))),
        ("URL", masked_url(scope)),
        ("Client", f"{client.host}:{client.port}" if client else "unknown"),
    ]
    route = scope.get("route")
    if route is not None:
        summary.append(("Route", safe_repr(getattr(route, "path", route))))
    return {
        "summary": summary,
        "headers": masked_headers(scope),
        "query": masked_query(scope),
        "path": masked_path_params(scope),
    }


# -- rendering ------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
header { background: #fbe9eb; padding: 1em 2em; border-bottom: 1px solid #e0b4b9; }
h1 { color: #b00020; font-size: 1.4em; margin: 0 0 .3em; word-break: break-word; }
h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
main { padding: 0 2em 2em; }
pre, code { font-size: .9em; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; white-space: pre-wrap; }
table { border-collapse: collapse; width: 100%; font-size: .9em; }
th, td { text-align: left; vertical-align: top; padding: .25em .6em; }
tr { border-bottom: 1px solid #eee; }
th { width: 16em; font-weight: 600; }
td { font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; }
details { margin: .6em 0; border: 1px solid #ddd; border-radius: 4px; padding: .3em .8em; }
summary { cursor: pointer; font-family: ui-monospace, monospace; }
.hint { background: #fff4d6; border: 1px solid #e5c25c; padding: .8em 1em; margin: 1em 0; }
.line { background: #ffe9a8; }
.note { color: #666; }
.num { color: #888; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table(rows: list[tuple[str, str]], empty: str) -> str:
    if not rows:
        return f'<p class="note">{_e(empty)}</p>'
    body = "".join(f"<tr><th>{_e(name)}</th><td>{_e(value)}</td></tr>" for name, value in rows)
    return f"<table>{body}</table>"


def _render_frames(frames: list[tuple[FrameType, int]], total: int) -> str:
    parts = []
    if total > len(frames):
        parts.append(f'<p class="note">{total - len(frames)} outer frames left out.</p>')
    # Innermost first: where it failed is what the reader wants first.
    for frame, lineno in reversed(frames):
        code = frame.f_code
        filename = code.co_filename
        source = "".join(
            f'<span class="{"line" if number == lineno else ""}">'
            f'<span class="num">{number:>5}</span>  {_e(text)}</span>\n'
            for number, text in _source(filename, lineno)
        )
        title = f"{filename}, line {lineno}, in {code.co_name}"
        opened = "" if _library(filename) else " open"
        parts.append(
            f"<details{opened}><summary>{_e(title)}</summary>"
            f"<pre>{source}</pre>"
            f"{_table(_frame_locals(frame), 'No local variables.')}</details>"
        )
    return "".join(parts)


def _render_queries(log: QueryLog | None) -> str:
    if log is None:
        return '<p class="note">Not recorded.</p>'
    if not log.count:
        return '<p class="note">No SQL statement ran for this request.</p>'
    kept = list(log)
    note = f"{log.count} statement{'s' if log.count != 1 else ''}"
    if log.count > len(kept):
        note += f"; the last {len(kept)} are shown"
    total_ms = sum(query.duration for query in kept) * 1000
    rows = []
    first = log.count - len(kept) + 1
    for number, query in enumerate(kept, first):
        params = safe_repr(list(query.params)) if query.params else ""
        flag = " (failed)" if query.failed else ""
        rows.append(
            f"<tr><th>#{number} {query.duration * 1000:.2f} ms{_e(flag)}</th>"
            f"<td>{_e(query.sql)}{'<br>params: ' + _e(params) if params else ''}</td></tr>"
        )
    return f'<p class="note">{_e(note)}, {total_ms:.2f} ms.</p><table>{"".join(rows)}</table>'


def debug_page(scope: Scope, exc: BaseException) -> Response:
    """Build the debug-mode 500 response for ``exc``, raised while serving ``scope``.

    Args:
        scope: The request scope (its ``Accept`` header picks JSON or HTML).
        exc: The exception to show.

    Returns:
        A 500 :class:`HTMLResponse` or :class:`JSONResponse`.
    """
    lines = traceback.format_exception(exc)
    hint = missing_schema_hint(exc)
    if preferred_format(scope) == "json":
        content: dict[str, Any] = {
            "error": type(exc).__name__,
            "detail": str(exc),
            "traceback": [line.rstrip("\n") for line in lines],
        }
        if hint is not None:
            content["hint"] = hint
        return JSONResponse(content, status_code=500)
    title = f"{type(exc).__name__}: {exc}"
    all_frames = list(traceback.walk_tb(exc.__traceback__))
    frames = _frames(exc)
    form = parsed_form(scope, exc)
    if scope.get("type") == "http":
        rows = _request_rows(scope)
    else:
        rows = {"summary": [("Path", str(scope.get("path", "")))], "headers": []}
        rows.update(query=[], path=[])
    form_rows = (
        [(str(name), shown(str(name), value)) for name, value in form.multi_items()]
        if form is not None
        else []
    )
    log = scope.get(_SCOPE_KEY)
    sections = [
        f'<div class="hint"><strong>Hint:</strong> {_e(hint)}</div>' if hint else "",
        "<h2>Traceback</h2>",
        _render_frames(frames, len(all_frames)),
        "<details><summary>Plain traceback</summary>",
        f"<pre>{_e(''.join(lines))}</pre></details>",
        "<h2>Request</h2>",
        _table(rows["summary"], ""),
        "<h3>Headers</h3>",
        _table(rows["headers"], "No headers."),
        "<h3>Query parameters</h3>",
        _table(rows["query"], "No query parameters."),
        "<h3>Path parameters</h3>",
        _table(rows["path"], "No path parameters."),
        "<h3>Form</h3>",
        _table(form_rows, "The handler did not read a form.")
        if form is not None
        else '<p class="note">The handler did not read a form.</p>',
        "<h2>SQL</h2>",
        _render_queries(log if isinstance(log, QueryLog) else None),
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="robots" content="noindex">\n<title>{_e(title)}</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>{_e(title)}</h1>"
        f"<code>{_e(scope.get('method', 'WEBSOCKET'))} {_e(scope.get('path', ''))}</code> "
        f'<span class="note">Python {_e(sys.version.split()[0])}</span></header>\n'
        f"<main>{''.join(sections)}\n"
        '<p class="note">You see this page because the app runs with debug=True. '
        "Never enable debug in production.</p></main>\n</body>\n</html>\n"
    )
    return HTMLResponse(page, status_code=500)
