from __future__ import annotations

import pytest

from covet.exceptions import ImproperlyConfigured, WebSocketDisconnect
from covet.middleware import CORSMiddleware
from covet.testing import TestClient

PREFLIGHT = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}


async def endpoint(scope, receive, send):
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000})
        return
    headers = [(b"content-type", b"text/plain"), (b"x-endpoint", b"1")]
    if scope["path"] == "/vary":
        headers.append((b"vary", b"Accept-Language"))
    if scope["path"] == "/own-cors":
        headers.append((b"access-control-allow-origin", b"https://forged.example"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": scope["method"].encode()})


def client(**options) -> TestClient:
    return TestClient(CORSMiddleware(endpoint, **options))


def test_preflight_allowed_answers_without_calling_the_app():
    c = client(
        allow_origins=["https://app.example.com"],
        allow_methods=["GET", "POST"],
        allow_headers=["X-Token"],
        max_age=120,
    )
    response = c.options(
        "/items", headers={**PREFLIGHT, "Access-Control-Request-Headers": "x-token"}
    )
    assert response.status_code == 200
    assert response.text == "OK"
    assert "x-endpoint" not in response.headers
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    assert response.headers["access-control-allow-methods"] == "GET, POST"
    assert response.headers["access-control-allow-headers"] == (
        "accept, accept-language, content-language, content-type, x-token"
    )
    assert response.headers["access-control-max-age"] == "120"
    assert response.headers["vary"] == "Origin"
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({"Origin": "https://evil.example"}, "Disallowed CORS origin."),
        ({"Access-Control-Request-Method": "DELETE"}, "Disallowed CORS method."),
        ({"Access-Control-Request-Method": "P O S T"}, "Disallowed CORS method."),
        ({"Access-Control-Request-Headers": "x-token, x-other"}, "Disallowed CORS headers."),
        ({"Access-Control-Request-Headers": "x-bad\u00e9"}, "Disallowed CORS headers."),
        (
            {"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"},
            "Disallowed CORS origin, method.",
        ),
    ],
)
def test_preflight_denied(headers, detail):
    c = client(
        allow_origins=["https://app.example.com"],
        allow_methods=["GET", "POST"],
        allow_headers=["x-token"],
    )
    raw = {**PREFLIGHT, **headers}
    encoded = [(k.encode(), v.encode("latin-1")) for k, v in raw.items()]
    response = c.options("/items", headers=encoded)
    assert response.status_code == 400
    assert response.text == detail
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["vary"] == "Origin"


def test_preflight_safelisted_headers_are_always_allowed():
    c = client(allow_origins=["https://app.example.com"], allow_methods=["POST"])
    response = c.options(
        "/", headers={**PREFLIGHT, "Access-Control-Request-Headers": "Content-Type, Accept"}
    )
    assert response.status_code == 200


def test_preflight_wildcards_echo_method_list_and_requested_headers():
    c = client(allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])
    response = c.options(
        "/",
        headers={
            "Origin": "https://anyone.test",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, X-Custom",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == (
        "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
    )
    assert response.headers["access-control-allow-headers"] == "authorization, x-custom"
    assert "vary" not in response.headers


def test_options_without_request_method_is_not_a_preflight():
    c = client(allow_origins=["https://app.example.com"])
    response = c.options("/", headers={"Origin": "https://app.example.com"})
    assert response.text == "OPTIONS"
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"


def test_simple_request_from_allowed_origin():
    c = client(allow_origins=["https://app.example.com"], expose_headers=["X-Endpoint"])
    response = c.get("/", headers={"Origin": "https://app.example.com"})
    assert response.status_code == 200
    assert response.text == "GET"
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    assert response.headers["access-control-expose-headers"] == "X-Endpoint"
    assert response.headers["vary"] == "Origin"


def test_simple_request_from_disallowed_origin_gets_no_cors_headers():
    c = client(allow_origins=["https://app.example.com"])
    response = c.get("/", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["vary"] == "Origin"


def test_response_without_origin_still_varies_on_origin():
    # A shared cache must not serve this CORS-less answer to a cross-origin request.
    response = client(allow_origins=["https://app.example.com"]).get("/")
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["vary"] == "Origin"


def test_vary_is_merged_with_the_app_value():
    c = client(allow_origins=["https://app.example.com"])
    response = c.get("/vary", headers={"Origin": "https://app.example.com"})
    assert response.headers["vary"] == "Accept-Language, Origin"


def test_allow_all_origins_without_credentials_sends_star_and_no_vary():
    c = client(allow_origins=["*"])
    response = c.get("/", headers={"Origin": "https://anyone.test"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "vary" not in response.headers
    assert "vary" not in c.get("/").headers


def test_credentials_echo_the_origin():
    c = client(allow_origins=["https://app.example.com"], allow_credentials=True)
    response = c.get("/", headers={"Origin": "https://app.example.com"})
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    assert response.headers["access-control-allow-credentials"] == "true"
    preflight = c.options("/", headers={**PREFLIGHT, "Access-Control-Request-Method": "GET"})
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"


def test_star_origin_with_credentials_is_refused():
    with pytest.raises(ImproperlyConfigured, match="allow_credentials=True"):
        CORSMiddleware(endpoint, allow_origins=["*"], allow_credentials=True)


def test_regex_origins_match_in_full():
    c = client(allow_origin_regex=r"https://[a-z0-9-]+\.example\.com", allow_credentials=True)
    ok = c.get("/", headers={"Origin": "https://tenant-1.example.com"})
    assert ok.headers["access-control-allow-origin"] == "https://tenant-1.example.com"
    for origin in (
        "https://example.com.evil.net",
        "https://x.example.com:8443",
        "http://a.example.com",
    ):
        response = c.get("/", headers={"Origin": origin})
        assert "access-control-allow-origin" not in response.headers, origin


def test_origin_comparison_ignores_configured_case_and_trailing_slash():
    c = client(allow_origins=["HTTPS://App.Example.com/"])
    response = c.get("/", headers={"Origin": "https://app.example.com"})
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"


def test_null_origin_only_when_listed():
    assert (
        "access-control-allow-origin"
        not in client(allow_origins=["https://app.example.com"])
        .get("/", headers={"Origin": "null"})
        .headers
    )
    listed = client(allow_origins=["null"]).get("/", headers={"Origin": "null"})
    assert listed.headers["access-control-allow-origin"] == "null"


def test_app_cors_headers_are_replaced_for_allowed_origins():
    c = client(allow_origins=["https://app.example.com"])
    response = c.get("/own-cors", headers={"Origin": "https://app.example.com"})
    assert response.headers.get_list("access-control-allow-origin") == ["https://app.example.com"]


def test_websocket_passes_through():
    c = client(allow_origins=["https://app.example.com"])
    with pytest.raises(WebSocketDisconnect) as info, c.websocket_connect("/ws"):
        pass
    assert info.value.code == 1000


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"allow_origins": "https://app.example.com"}, "not the string"),
        ({"allow_origins": ["app.example.com"]}, "is not an origin"),
        ({"allow_origins": ["https://app.example.com/path"]}, "is not an origin"),
        ({"allow_methods": ["GET POST"]}, "not a valid HTTP method"),
        ({"allow_headers": ["X Token"]}, "not a valid HTTP method or header"),
        ({"max_age": -1}, "max_age"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        CORSMiddleware(endpoint, **options)
