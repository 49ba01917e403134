from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from covet.exceptions import ImproperlyConfigured, WebSocketDisconnect
from covet.middleware import TrustedHostMiddleware
from covet.testing import TestClient

if TYPE_CHECKING:
    from covet.types import Message


async def unused_receive() -> Message:
    raise AssertionError("the middleware must not read the request here")


async def unused_send(message: Message) -> None:
    raise AssertionError(f"the middleware must not send {message!r} here")


async def endpoint(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "hello"})
        await send({"type": "websocket.close", "code": 1000})
        return
    body = b"ok"
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def client(base_url="http://testserver", **options) -> TestClient:
    return TestClient(
        TrustedHostMiddleware(endpoint, **options), base_url=base_url, follow_redirects=False
    )


def get_with_host(c: TestClient, host: bytes | None, path: str = "/"):
    request = c.build_request("GET", path)
    if host is None:
        del request.headers["host"]
    else:
        request.headers["host"] = host.decode("latin-1")
    return c.send(request)


@pytest.mark.parametrize(
    ("host", "status"),
    [
        (b"example.com", 200),
        (b"EXAMPLE.com:8000", 200),
        (b"api.example.com", 200),
        (b"a.b.example.com", 200),
        (b"evil.com", 400),
        (b"example.com.evil.com", 400),
        (b"example.com@evil.com", 400),
        (b"example.com/evil", 400),
        (b"example.com:99999", 400),
        (b"", 400),
        (None, 400),
    ],
)
def test_allowlist(host, status):
    c = client(allowed_hosts=[".example.com"])
    response = get_with_host(c, host)
    assert response.status_code == status
    if status == 400:
        assert response.text == "Invalid Host header"
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
    else:
        assert response.text == "ok"


def test_subdomain_wildcard_excludes_the_domain_itself():
    c = client(allowed_hosts=["*.example.com"], www_redirect=False)
    assert get_with_host(c, b"api.example.com").status_code == 200
    assert get_with_host(c, b"example.com").status_code == 400


@pytest.mark.parametrize(
    "host", [b"bad host", b"a..b", b"user@x", b"x:0", b"[::1", b"\xff.example", b"x\tx"]
)
def test_malformed_host_is_rejected_even_when_any_host_is_allowed(host):
    assert get_with_host(client(), host).status_code == 400


def test_any_host_and_missing_host_pass_by_default():
    c = client()
    assert get_with_host(c, b"whatever.test:1234").status_code == 200
    assert get_with_host(c, None).status_code == 200


def test_duplicate_host_headers_are_rejected():
    c = client()
    request = c.build_request("GET", "/")
    raw = [(k, v) for k, v in request.headers.raw if k.lower() != b"host"]
    request.headers = httpx.Headers([*raw, (b"host", b"testserver"), (b"host", b"evil.com")])
    assert c.send(request).status_code == 400


def test_www_redirect_keeps_path_query_and_port():
    c = client(allowed_hosts=["www.example.com"], base_url="https://example.com:8443")
    response = c.get("/a%20b/c?x=1&y=%2F")
    assert response.status_code == 301
    assert response.headers["location"] == "https://www.example.com:8443/a%20b/c?x=1&y=%2F"


def test_www_redirect_drops_default_port():
    c = client(allowed_hosts=["www.example.com"], base_url="http://example.com:80")
    response = get_with_host(c, b"example.com:80", "/p")
    assert response.headers["location"] == "http://www.example.com/p"


def test_www_redirect_can_be_disabled():
    c = client(allowed_hosts=["www.example.com"], www_redirect=False)
    assert get_with_host(c, b"example.com").status_code == 400


def test_ipv6_hosts():
    c = client(allowed_hosts=["::1"])
    assert get_with_host(c, b"[::1]:8000").status_code == 200
    assert get_with_host(c, b"[0:0::1]").status_code == 200
    assert get_with_host(c, b"[::2]").status_code == 400


def test_websocket_with_allowed_host_connects():
    c = client(allowed_hosts=["testserver"])
    with c.websocket_connect("/ws") as ws:
        assert ws.receive_text() == "hello"


def test_websocket_with_bad_host_is_closed_before_accept():
    c = client(allowed_hosts=["example.com"])
    with pytest.raises(WebSocketDisconnect) as info, c.websocket_connect("/ws"):
        pass
    assert info.value.code == 1008
    assert info.value.reason == "Invalid Host header"


async def test_lifespan_passes_through():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    await TrustedHostMiddleware(app, allowed_hosts=["example.com"])(
        {"type": "lifespan"}, unused_receive, unused_send
    )
    assert seen == ["lifespan"]


@pytest.mark.parametrize("patterns", ["example.com", ["https://example.com"], ["*.*.example.com"]])
def test_bad_patterns_are_refused(patterns):
    with pytest.raises(ImproperlyConfigured):
        TrustedHostMiddleware(endpoint, allowed_hosts=patterns)


def test_app_and_middleware_refuse_a_host_with_the_same_answer():
    # One host guard serves both: same grammar, same words, no body for HEAD.
    from covet import Covet

    app = Covet(allowed_hosts=["example.com"])

    @app.get("/")
    async def index(request):
        return "ok"

    wrapped = TrustedHostMiddleware(Covet(), allowed_hosts=["example.com"])
    for target in (app, wrapped):
        with TestClient(target, base_url="http://example.com") as client:
            refused = client.get("/", headers={"host": "evil.com"})
            duplicated = client.get("/", headers=[("host", "example.com"), ("host", "x.com")])
            head = client.head("/", headers={"host": "evil.com"})
        assert (refused.status_code, refused.text) == (400, "Invalid Host header")
        assert (duplicated.status_code, duplicated.text) == (400, "Invalid Host header")
        assert (head.status_code, head.content) == (400, b"")
