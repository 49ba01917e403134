from __future__ import annotations

import base64
from typing import Any

import pytest

from covet import Covet, Router
from covet.exceptions import ImproperlyConfigured
from covet.middleware import SessionMiddleware
from covet.middleware.csrf import (
    CSRFMiddleware,
    _unmask,
    csrf_exempt,
    get_csrf_token,
    rotate_csrf_token,
)
from covet.requests import Request, RequestLimits
from covet.testing import TestClient


async def noop_app(scope, receive, send) -> None:
    return None


def make_app(*, debug: bool = False, sessions: bool = True, before_csrf=(), **options) -> Covet:
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
    for middleware in before_csrf:
        app.add_middleware(middleware)
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


def count_urlencoded_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from covet import formparsers

    calls: list[int] = []
    parse = formparsers.parse_urlencoded

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return await parse(*args, **kwargs)

    monkeypatch.setattr(formparsers, "parse_urlencoded", counting)
    return calls


def test_handler_reuses_the_form_the_check_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_urlencoded_parses(monkeypatch)
    client = TestClient(make_app())
    token = token_for(client)
    response = client.post("/submit", data={"name": "Ann", "csrf_token": token})
    assert response.json() == {"name": "Ann", "token_field": True}
    assert len(calls) == 1  # the check's parse, handed to request.form()


def test_a_body_changed_after_the_check_is_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # A middleware inside the CSRF layer that hands the app another body: the handler
    # must see that body's fields, not the form the check parsed.
    calls = count_urlencoded_parses(monkeypatch)

    class RenameAnn:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            async def renamed() -> Any:
                message = await receive()
                if message["type"] == "http.request":
                    message = {**message, "body": message["body"].replace(b"Ann", b"Bob")}
                return message

            await self.app(scope, renamed, send)

    app = make_app()
    app.add_middleware(RenameAnn)  # added after CSRFMiddleware: inside it
    client = TestClient(app)
    token = token_for(client)
    response = client.post("/submit", data={"name": "Ann", "csrf_token": token})
    assert response.json() == {"name": "Bob", "token_field": True}
    assert len(calls) == 2


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


# --- Reading the token from a body: limits, streaming, hostile input -------------------------

SECRET = bytes(range(32))
BOUNDARY = "covet-test-boundary"


def multipart_part(name: str, value: bytes, *, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


def multipart_end() -> bytes:
    return f"--{BOUNDARY}--\r\n".encode()


def token_part(value: bytes) -> bytes:
    return multipart_part("csrf_token", value) + multipart_end()


class Wire:
    """Feed an ASGI app a body in chunks, recording how many chunks it has pulled."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.pulled = 0

    async def receive(self):
        if self.pulled < len(self.chunks):
            self.pulled += 1
            more = self.pulled < len(self.chunks)
            return {"type": "http.request", "body": self.chunks[self.pulled - 1], "more_body": more}
        return {"type": "http.disconnect"}


def post_scope(path: str, *, content_type: str, extra=()) -> dict[str, Any]:
    """An HTTP POST scope carrying the CSRF cookie of SECRET."""
    from covet.middleware.csrf import _mask

    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", content_type.encode()),
            (b"cookie", f"csrftoken={_mask(SECRET)}".encode()),
            *extra,
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


async def post_raw(app, path: str, chunks: list[bytes], *, content_type: str, extra=()):
    wire = Wire(chunks)
    sent: list[dict[str, Any]] = []

    async def send(message) -> None:
        sent.append(message)

    await app(post_scope(path, content_type=content_type, extra=extra), wire.receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, wire


def streaming_app(**limits: int) -> tuple[Any, dict[str, int]]:
    app = Covet(debug=True, allowed_hosts=["testserver"])
    seen: dict[str, int] = {}

    async def count(request, wire_key: str) -> int:
        total = 0
        async for chunk in request.stream():
            if wire_key not in seen:
                seen[wire_key] = request.scope["test.wire"].pulled
            total += len(chunk)
        return total

    @app.post("/stream", limits=RequestLimits(**limits) if limits else None)
    async def stream(request):
        return {"size": await count(request, "stream")}

    @app.post("/hook")
    @csrf_exempt
    async def hook(request):
        return {"size": await count(request, "hook")}

    @app.post("/form", limits=RequestLimits(**limits) if limits else None)
    async def form(request):
        data = await request.form()
        upload = data["file"]
        return {"sha": __import__("hashlib").sha256(await upload.read()).hexdigest()}

    app.add_middleware(CSRFMiddleware)

    async def outer(scope, receive, send):
        scope["test.wire"] = receive.__self__
        await app(scope, receive, send)

    return outer, seen


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


async def test_multipart_is_read_only_up_to_the_token_field():
    from covet.middleware.csrf import _mask

    app, seen = streaming_app()
    head = multipart_part("csrf_token", _mask(SECRET).encode())
    file_head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
    chunks = [head + file_head.encode(), *([b"x" * 4096] * 40), b"\r\n" + multipart_end()]
    status, body, wire = await post_raw(app, "/stream", chunks, content_type=MULTIPART)
    assert status == 200, body
    assert body == b'{"size":%d}' % sum(map(len, chunks))
    # The middleware stopped after the chunk holding the token: the upload streamed on.
    assert seen["stream"] == 1
    assert wire.pulled == len(chunks)


async def test_exempt_route_body_is_never_read_ahead():
    app, seen = streaming_app()
    chunks = [b"a" * 1000] * 30
    status, body, _ = await post_raw(app, "/hook", chunks, content_type=MULTIPART)
    assert status == 200 and body == b'{"size":30000}'
    assert seen["hook"] == 1


async def test_token_after_a_large_file_is_spooled_to_disk_and_checked(monkeypatch):
    import hashlib
    import tempfile

    from covet.middleware.csrf import _mask

    spools: list[tempfile.SpooledTemporaryFile[bytes]] = []

    class RecordingSpool(tempfile.SpooledTemporaryFile[bytes]):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            spools.append(self)

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", RecordingSpool)
    app, _ = streaming_app(spool_max_size=1024)
    payload = bytes(range(256)) * 200
    token = _mask(SECRET).encode()
    body = (
        multipart_part("file", payload, filename="blob.bin")
        + multipart_part("csrf_token", token)
        + multipart_end()
    )
    chunks = [body[i : i + 3000] for i in range(0, len(body), 3000)]
    status, answer, _ = await post_raw(app, "/form", chunks, content_type=MULTIPART)
    assert status == 200, answer
    assert answer == b'{"sha":"%s"}' % hashlib.sha256(payload).hexdigest().encode()
    # What the middleware read ahead went to disk past spool_max_size, and was closed.
    assert spools and getattr(spools[0], "_rolled", False) and spools[0].closed

    wrong = body.replace(token, _mask(bytes(32)).encode())
    assert wrong != body
    status, answer, _ = await post_raw(app, "/form", [wrong], content_type=MULTIPART)
    assert status == 403 and b"incorrect" in answer


async def test_multipart_read_ahead_respects_the_size_limit():
    app, _ = streaming_app(max_multipart_size=10_000)
    chunks = [multipart_part("file", b"", filename="a")[:-2]] + [b"x" * 4096] * 5
    status, body, wire = await post_raw(app, "/stream", chunks, content_type=MULTIPART)
    assert status == 413 and b"10000-byte limit" in body
    assert wire.pulled < len(chunks)
    declared = [(b"content-length", b"99999999999")]
    status, body, wire = await post_raw(
        app, "/stream", [b"x"], content_type=MULTIPART, extra=declared
    )
    assert status == 413 and wire.pulled == 0


@pytest.mark.parametrize(
    ("content_type", "chunks", "status", "reason"),
    [
        ("multipart/form-data", [b"x"], 400, b"no boundary"),
        ("multipart/form-data; boundary=" + "b" * 300, [b"x"], 400, b"boundary is 300"),
        (MULTIPART, [b"garbage without a boundary"], 400, b"Malformed multipart"),
        (
            MULTIPART,
            [f"--{BOUNDARY}\r\n".encode() + b"X-Pad: " + b"p" * 9000 + b"\r\n"],
            413,
            b"headers",
        ),
        (
            MULTIPART,
            [token_part(b"t" * 10_000)],
            403,
            b"format",
        ),
        (
            MULTIPART,
            [token_part("é".encode() * 43)],
            403,
            b"format",
        ),
        (MULTIPART, [multipart_part("csrf_token", b"x", filename="t")], 403, b"missing"),
        (MULTIPART, [multipart_part("other", b"x")[:20]], 403, b"missing"),
    ],
)
async def test_hostile_multipart_bodies_get_a_4xx(content_type, chunks, status, reason):
    app, _ = streaming_app()
    got, body, _ = await post_raw(app, "/stream", chunks, content_type=content_type)
    assert got == status, body
    assert reason in body


def test_scheme_comes_from_the_server_scope_not_from_forwarded_headers():
    # uvicorn applies X-Forwarded-Proto from trusted proxies only (--forwarded-allow-ips);
    # the middleware reads the resulting scope["scheme"], never the header itself.
    secure = TestClient(make_app(debug=True), base_url="https://testserver")
    token = token_for(secure)
    spoofed = {"X-CSRF-Token": token, "X-Forwarded-Proto": "http"}
    response = secure.post("/json", json={}, headers=spoofed)
    assert response.status_code == 403 and "no Referer" in response.text
    plain = TestClient(make_app(debug=True))
    token = token_for(plain)
    headers = {"X-CSRF-Token": token, "X-Forwarded-Proto": "https"}
    assert plain.post("/json", json={}, headers=headers).status_code == 200
    # The own origin follows the scope's scheme: an https Origin on plain HTTP is foreign.
    foreign = plain.post("/json", json={}, headers={**headers, "Origin": "https://testserver"})
    assert foreign.status_code == 403 and "Origin checking failed" in foreign.text


async def test_oversized_form_closes_the_connection_like_the_app_would():
    # The token is read through Request, so a 413 carries Connection: close and
    # the client cannot keep streaming into a kept-alive connection.
    from covet.middleware.csrf import _mask

    app, _ = streaming_app(max_body_size=64)
    form = f"csrf_token={_mask(SECRET)}&pad={'x' * 200}".encode()
    sent: list[dict[str, Any]] = []
    wire = Wire([form[:50], form[50:150], form[150:]])  # refused before the last chunk

    async def send(message) -> None:
        sent.append(message)

    scope = post_scope("/stream", content_type="application/x-www-form-urlencoded")
    await app(scope, wire.receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    assert (b"connection", b"close") in start["headers"]


async def test_conflicting_content_lengths_are_refused_before_reading():
    from covet.middleware.csrf import _mask

    app, _ = streaming_app()
    body = f"csrf_token={_mask(SECRET)}".encode()
    status, text, wire = await post_raw(
        app,
        "/stream",
        [body],
        content_type="application/x-www-form-urlencoded",
        extra=[(b"content-length", str(len(body)).encode()), (b"content-length", b"5")],
    )
    assert status == 400
    assert b"Conflicting Content-Length" in text
    assert wire.pulled == 0


async def test_client_gone_before_the_token_runs_no_handler():
    calls: list[str] = []
    app = Covet(debug=True, allowed_hosts=["testserver"])

    @app.post("/x")
    async def handler(request):
        calls.append("handler")
        return {}

    app.add_middleware(CSRFMiddleware)

    head = multipart_part("name", b"value")  # no token yet, then the client leaves
    sent: list[dict[str, Any]] = []

    async def send(message) -> None:
        sent.append(message)

    messages = [
        {"type": "http.request", "body": head, "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    await app(post_scope("/x", content_type=MULTIPART), receive, send)
    assert calls == []
    assert sent == []


class StandInAuth:
    """Sets scope["auth"] as covet.auth's AuthenticationMiddleware does (bearer "good" only)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        from covet.auth import AuthInfo

        headers = dict(scope.get("headers", ()))
        if headers.get(b"authorization") == b"Bearer good":
            scope["auth"] = AuthInfo("bearer", token=object())
        else:
            scope["auth"] = AuthInfo("session" if b"cookie" in headers else None)
        await self.app(scope, receive, send)


def _bearer_app(**options) -> Covet:
    # Authentication runs before the CSRF check, as in a project made by `covet new`.
    return make_app(before_csrf=[StandInAuth], **options)


def test_bearer_authenticated_requests_skip_the_check():
    client = TestClient(_bearer_app())
    ok = client.post("/json", json={"x": 1}, headers={"Authorization": "Bearer good"})
    assert ok.status_code == 200
    # A wrong token authenticates nothing, so the request is checked like any other.
    wrong = client.post("/json", json={"x": 1}, headers={"Authorization": "Bearer bad"})
    assert wrong.status_code == 403
    assert client.post("/json", json={"x": 1}).status_code == 403


def test_bearer_exemption_can_be_turned_off():
    client = TestClient(_bearer_app(exempt_bearer=False))
    response = client.post("/json", json={"x": 1}, headers={"Authorization": "Bearer good"})
    assert response.status_code == 403


def test_refusal_is_an_error_page_for_browsers():
    client = TestClient(make_app())
    page = client.post("/json", json={}, headers={"accept": "text/html"})
    assert page.status_code == 403
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "CSRF verification failed." in page.text
    data = client.post("/json", json={}, headers={"accept": "application/json"})
    assert data.json() == {"detail": "CSRF verification failed."}
