from __future__ import annotations

import base64

import pytest

from covet import Covet, Router
from covet.exceptions import ImproperlyConfigured
from covet.middleware.csrf import (
    CSRFMiddleware,
    _unmask,
    csrf_exempt,
    get_csrf_token,
    rotate_csrf_token,
)
from covet.middleware.sessions import SessionMiddleware
from covet.requests import Request, RequestLimits
from covet.testing import TestClient


async def noop_app(scope, receive, send) -> None:
    return None


def make_app(*, debug: bool = False, sessions: bool = True, **options) -> Covet:
    app = Covet(debug=debug, allowed_hosts=["testserver", "example.com"])

    @app.get("/token")
    async def token(request):
        return {"token": get_csrf_token(request)}

    @app.post("/submit")
    async def submit(request):
        form = await request.form()
        return {"name": form.get("name"), "token_field": "csrf_token" in form}

    @app.post("/json")
    async def json_body(request):
        return {"received": await request.json()}

    @app.post("/upload")
    async def upload(request):
        form = await request.form()
        data = await form["file"].read()
        return {"size": len(data), "name": form["name"]}

    @app.post("/small", limits=RequestLimits(max_body_size=100))
    async def small(request):
        return {"ok": True}

    @app.post("/webhook")
    @csrf_exempt
    async def webhook(request):
        return {"body": (await request.body()).decode()}

    @app.post("/rotate")
    async def rotate(request):
        rotate_csrf_token(request)
        return {"token": get_csrf_token(request)}

    @app.post("/open/hook")
    async def open_hook(request):
        return "open"

    api = Router(prefix="/api")

    @api.post("/exempt")
    @csrf_exempt
    async def api_exempt(request):
        return "api exempt"

    app.include_router(api)
    if sessions:
        app.add_middleware(SessionMiddleware, secret_key="secret")
    app.add_middleware(CSRFMiddleware, **options)
    return app


def token_for(client: TestClient) -> str:
    response = client.get("/token")
    assert response.status_code == 200
    token: str = response.json()["token"]
    return token


def test_get_issues_a_js_readable_cookie_and_a_fresh_token_each_time():
    client = TestClient(make_app())
    response = client.get("/token")
    cookie = next(
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and v.startswith("csrftoken=")
    )
    assert "HttpOnly" not in cookie
    assert "SameSite=Lax" in cookie and "Max-Age=31536000" in cookie
    assert "Cookie" in response.headers["vary"]
    first = response.json()["token"]
    second = token_for(client)
    assert first != second
    assert len(first) == 86
    assert _unmask(first) == _unmask(second)


def test_post_without_token_is_refused():
    client = TestClient(make_app())
    token_for(client)
    response = client.post("/submit", data={"name": "x"})
    assert response.status_code == 403
    assert response.text == "CSRF verification failed."


def test_post_without_any_secret_is_refused():
    client = TestClient(make_app(debug=True))
    response = client.post("/submit", data={"name": "x"})
    assert response.status_code == 403
    assert "secret not set" in response.text


def test_form_field_token_passes_and_handler_still_reads_the_form():
    client = TestClient(make_app())
    token = token_for(client)
    response = client.post("/submit", data={"name": "Ann", "csrf_token": token})
    assert response.status_code == 200
    assert response.json() == {"name": "Ann", "token_field": True}


def test_header_token_passes_and_handler_still_reads_json():
    client = TestClient(make_app())
    token = token_for(client)
    response = client.post("/json", json={"a": [1, 2]}, headers={"X-CSRF-Token": token})
    assert response.status_code == 200
    assert response.json() == {"received": {"a": [1, 2]}}


def test_multipart_token_passes_and_upload_is_intact():
    client = TestClient(make_app())
    token = token_for(client)
    payload = bytes(range(256)) * 100
    response = client.post(
        "/upload",
        data={"csrf_token": token, "name": "blob"},
        files={"file": ("blob.bin", payload, "application/octet-stream")},
    )
    assert response.status_code == 200
    assert response.json() == {"size": len(payload), "name": "blob"}


def test_token_from_another_session_is_refused():
    app = make_app()
    alice, mallory = TestClient(app), TestClient(app)
    token_for(alice)
    mallory_token = token_for(mallory)
    response = alice.post("/submit", data={"name": "x", "csrf_token": mallory_token})
    assert response.status_code == 403


def test_raw_unmasked_secret_is_refused():
    client = TestClient(make_app(debug=True))
    secret = _unmask(token_for(client))
    assert secret is not None
    raw = base64.urlsafe_b64encode(secret).rstrip(b"=").decode()
    response = client.post("/json", json={}, headers={"X-CSRF-Token": raw})
    assert response.status_code == 403
    assert "unmasked" in response.text


def test_malformed_token_is_refused():
    client = TestClient(make_app(debug=True))
    token_for(client)
    response = client.post("/json", json={}, headers={"X-CSRF-Token": "!" * 86})
    assert response.status_code == 403
    assert "format" in response.text


def test_foreign_origin_is_refused_and_trusted_origins_pass():
    client = TestClient(
        make_app(debug=True, trusted_origins=["https://admin.example.org", "https://*.example.net"])
    )
    token = token_for(client)
    headers = {"X-CSRF-Token": token}
    evil = client.post("/json", json={}, headers={**headers, "Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert "Origin checking failed" in evil.text
    assert client.post("/json", json={}, headers={**headers, "Origin": "null"}).status_code == 403
    # Scheme matters: the trusted origin is https only.
    assert (
        client.post("/json", json={}, headers={**headers, "Origin": "http://admin.example.org"})
    ).status_code == 403
    for origin in ("http://testserver", "https://admin.example.org", "https://a.example.net"):
        response = client.post("/json", json={}, headers={**headers, "Origin": origin})
        assert response.status_code == 200, origin
    assert (
        client.post("/json", json={}, headers={**headers, "Origin": "https://example.net"})
    ).status_code == 403


def test_https_requires_a_same_origin_referer_when_origin_is_absent():
    client = TestClient(make_app(debug=True), base_url="https://testserver")
    token = token_for(client)
    headers = {"X-CSRF-Token": token}
    missing = client.post("/json", json={}, headers=headers)
    assert missing.status_code == 403 and "no Referer" in missing.text
    bad = client.post("/json", json={}, headers={**headers, "Referer": "https://evil.example/x"})
    assert bad.status_code == 403 and "Referer checking failed" in bad.text
    insecure = client.post("/json", json={}, headers={**headers, "Referer": "http://testserver/"})
    assert insecure.status_code == 403
    good = client.post("/json", json={}, headers={**headers, "Referer": "https://testserver/form"})
    assert good.status_code == 200
    with_origin = client.post("/json", json={}, headers={**headers, "Origin": "https://testserver"})
    assert with_origin.status_code == 200


def test_exempt_handlers_and_paths_skip_the_check():
    client = TestClient(make_app(exempt_paths=["/open/"]))
    assert client.post("/webhook", content=b"payload").json() == {"body": "payload"}
    assert client.post("/api/exempt").text == "api exempt"
    assert client.post("/open/hook").text == "open"
    assert client.post("/submit", data={}).status_code == 403


def test_cookie_mode_without_sessions():
    client = TestClient(make_app(sessions=False))
    token = token_for(client)
    assert client.post("/json", json={"x": 1}, headers={"X-CSRF-Token": token}).status_code == 200
    # The cookie itself holds a masked token that JavaScript may send back.
    cookie = client.cookies["csrftoken"]
    assert client.post("/json", json={}, headers={"X-CSRF-Token": cookie}).status_code == 200
    other = TestClient(make_app(sessions=False))
    assert other.post("/json", json={}, headers={"X-CSRF-Token": token}).status_code == 403


def test_rotation_invalidates_old_tokens():
    client = TestClient(make_app())
    old = token_for(client)
    new = client.post("/rotate", headers={"X-CSRF-Token": old}).json()["token"]
    assert client.post("/json", json={}, headers={"X-CSRF-Token": old}).status_code == 403
    assert client.post("/json", json={}, headers={"X-CSRF-Token": new}).status_code == 200


def test_body_limits_apply_while_reading_the_token():
    client = TestClient(make_app())
    token = token_for(client)
    response = client.post("/small", data={"csrf_token": token, "pad": "x" * 500})
    assert response.status_code == 413
    assert client.post("/small", data={"csrf_token": token}).status_code == 200


def test_safe_methods_are_not_checked():
    client = TestClient(make_app())
    assert client.get("/token").status_code == 200
    assert client.head("/token").status_code == 200


def test_helpers_without_middleware_name_it():
    request = Request({"type": "http", "headers": []})
    with pytest.raises(ImproperlyConfigured, match="CSRFMiddleware"):
        get_csrf_token(request)
    with pytest.raises(ImproperlyConfigured, match="CSRFMiddleware"):
        rotate_csrf_token(request)


@pytest.mark.parametrize(
    "options",
    [
        {"trusted_origins": ["example.com"]},
        {"trusted_origins": "https://example.com"},
        {"exempt_paths": ["hooks"]},
        {"cookie_name": "bad name"},
    ],
)
def test_invalid_options_are_refused(options):
    with pytest.raises((ImproperlyConfigured, ValueError)):
        CSRFMiddleware(noop_app, **options)
