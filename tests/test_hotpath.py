"""Guarantees the request fast path must keep while it is tuned for speed.

The response builds its header list without the ``MutableHeaders`` view and
skips the CR/LF/NUL scan when nothing outside it could have touched the list;
``import covet`` leaves optional machinery unimported. These tests pin the
behaviour those shortcuts must not change.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from covet import Covet, HTMLResponse, JSONResponse, PlainTextResponse, Request, Response
from covet.middleware import errors as public_errors
from covet.testing import TestClient

if TYPE_CHECKING:
    from covet.types import Message

ROOT = Path(__file__).resolve().parents[1]


async def _send_response(response: Response, method: str = "GET") -> list[Message]:
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    await response({"type": "http", "method": method, "headers": []}, receive, send)
    return messages


async def test_default_headers_are_length_then_type() -> None:
    messages = await _send_response(PlainTextResponse("héllo"))
    assert messages[0] == {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-length", b"6"),
            (b"content-type", b"text/plain; charset=utf-8"),
        ],
    }
    assert messages[1] == {
        "type": "http.response.body",
        "body": "héllo".encode(),
    }


async def test_headers_view_and_raw_list_are_the_same_list() -> None:
    response = HTMLResponse("<p>x</p>")
    raw = response.raw_headers
    response.headers["x-one"] = "1"
    raw.append((b"x-two", b"2"))
    assert response.headers.getlist("x-two") == ["2"]
    messages = await _send_response(response)
    assert messages[0]["headers"] is raw
    assert (b"x-one", b"1") in raw


async def test_injection_through_headers_view_raw_refused_at_send() -> None:
    response = PlainTextResponse("x")
    response.headers.raw.append((b"x-evil", b"a\r\nset-cookie: x=1"))
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        await _send_response(response)


@pytest.mark.parametrize("bad", [b"a\nb", b"a\rb", b"a\x00b"])
async def test_injection_in_a_header_name_refused_at_send(bad: bytes) -> None:
    response = JSONResponse({"a": 1})
    response.raw_headers.append((bad, b"value"))
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        await _send_response(response)


async def test_raw_list_checked_after_init_headers_runs_again() -> None:
    response = PlainTextResponse("x")
    response.raw_headers.append((b"x-evil", b"a\nb"))
    response.init_headers({"X-Fresh": "yes"})
    messages = await _send_response(response)
    assert messages[0]["headers"] == [
        (b"x-fresh", b"yes"),
        (b"content-length", b"1"),
        (b"content-type", b"text/plain; charset=utf-8"),
    ]
    assert response.headers.get("x-fresh") == "yes"


@pytest.mark.parametrize("media_type", ["text/plain\r\nx-evil: 1", "text/html\x00"])
def test_media_type_with_control_characters_refused(media_type: str) -> None:
    with pytest.raises(ValueError, match="CR, LF and NUL"):
        Response(b"x", media_type=media_type)


def test_media_type_charset_rules_survive_caching() -> None:
    assert Response(b"", media_type="text/csv").headers["content-type"] == (
        "text/csv; charset=utf-8"
    )
    assert Response(b"", media_type="text/csv; charset=latin-1").headers["content-type"] == (
        "text/csv; charset=latin-1"
    )
    assert Response(b"", media_type="image/png").headers["content-type"] == "image/png"

    class Latin1Response(Response):
        charset = "latin-1"
        media_type = "text/csv"

    assert Latin1Response("é").body == b"\xe9"
    assert Latin1Response("é").headers["content-type"] == "text/csv; charset=latin-1"


def test_given_headers_win_over_computed_ones() -> None:
    response = PlainTextResponse(
        "abc", headers={"Content-Type": "text/x-custom", "Content-Length": "3"}
    )
    assert response.raw_headers == [(b"content-type", b"text/x-custom"), (b"content-length", b"3")]


@pytest.mark.parametrize(("status", "length"), [(200, b"2"), (201, b"2"), (204, None), (304, None)])
def test_content_length_by_status(status: int, length: bytes | None) -> None:
    response = Response(b"ab", status_code=status)
    assert dict(response.raw_headers).get(b"content-length") == length


async def test_head_sends_headers_without_body() -> None:
    messages = await _send_response(JSONResponse({"a": 1}), method="HEAD")
    assert (b"content-length", b"7") in messages[0]["headers"]
    assert messages[1]["body"] == b""


def test_public_error_middleware_is_the_one_the_app_uses() -> None:
    app = Covet(allowed_hosts=["testserver"])

    @app.get("/")
    async def index(request: Request) -> dict[str, Any]:
        return {"ok": True}

    with TestClient(app) as client:
        assert client.get("/").json() == {"ok": True}
    # Without middleware the app calls its router, which hands failures to the public
    # error middleware's failed() (no wrapper of its own per request).
    assert app._stack is app.router
    assert isinstance(
        getattr(app.router._failed, "__self__", None), public_errors.ServerErrorMiddleware
    )


def test_duplicate_host_header_still_refused() -> None:
    app = Covet(allowed_hosts=["testserver"])

    @app.get("/")
    async def index(request: Request) -> str:
        return "ok"

    with TestClient(app) as client:
        response = client.get("/", headers=[("host", "testserver"), ("host", "evil.example")])
        assert response.status_code == 400
        assert client.get("/").text == "ok"


def test_import_covet_leaves_optional_modules_unloaded() -> None:
    code = (
        "import sys, covet\n"
        # covet.middleware itself is loaded (the error middleware lives there), but its
        # package loads the other middleware lazily: none of them may come along.
        "heavy = ['covet.middleware.csrf', 'covet.middleware.cors', 'covet.middleware.gzip',"
        " 'covet.sessions', 'covet.ratelimit', 'covet.auth', 'covet.db',"
        " 'covet.formparsers', 'python_multipart', 'email.utils',"
        " 'mimetypes', 'secrets', 'tempfile', 'jinja2', 'http.cookies', 'html',"
        # Observability loads only when asked for: metrics, tracing and their libraries.
        " 'covet.metrics', 'prometheus_client', 'covet.tracing', 'opentelemetry',"
        " 'covet.errorreports', 'covet._redact', 'covet.sentry', 'sentry_sdk',"
        # Typed handlers: the validation libraries load with the first route using them.
        " 'pydantic', 'msgspec', 'covet.params.binding', 'covet.params.engines.pydantic',"
        " 'covet.params.engines.msgspec']\n"
        "print(','.join(name for name in heavy if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == ""
