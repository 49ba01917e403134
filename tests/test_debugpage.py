"""The debug-mode 500 page: request, locals, form; masked, escaped, and never in production."""

from __future__ import annotations

import logging
import re

import pytest

from covet import Covet, Request
from covet._redact import MASK, MAX_REPR, safe_repr
from covet.testing import TestClient

XSS = "<script>alert(1)</script>"


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


def secret(prefix: str) -> str:
    return f"{prefix}-value-{len(prefix)}"


def make_app(*, debug: bool) -> Covet:
    app = Covet(debug=debug)

    @app.get("/boom/{item}")
    async def boom(request: Request, item: str) -> str:
        # Secrets are built at run time: the page shows the source lines, not their values.
        api_key = secret("sk-live")  # a sensitive name: masked
        password_hash = secret("pbkdf2")
        note = XSS
        broken = BrokenRepr()
        big = "x" * 50_000
        nested = {"db_pass": secret("pw")}
        config = {"SECRET_KEY": secret("s3cr3t"), "DEBUG": True, "nested": nested}
        dsn = f"postgresql://app:{secret('hunter')}@db.example/app"
        if item:
            raise ValueError(f"failed for {item} {note}")
        return api_key + password_hash + repr(broken) + big + str(config) + dsn + str(nested)

    @app.post("/form")
    async def form(request: Request) -> str:
        data = await request.form()
        raise RuntimeError(f"form had {len(data)} fields")

    @app.post("/unread")
    async def unread(request: Request) -> str:
        raise RuntimeError("body not read")

    return app


HEADERS = {
    "accept": "text/html,*/*",
    "cookie": "session=cookie-value-1",
    "authorization": "Bearer auth-value-2",
    "x-csrftoken": "csrf-value-3",
    "x-api-key": "apikey-value-4",
    "x-evil": XSS,
}


def get_boom(client: TestClient) -> str:
    response = client.get(
        "/boom/item1", params={"q": XSS, "access_token": "tok-value-5"}, headers=HEADERS
    )
    assert response.status_code == 500
    return response.text


def test_page_shows_request_headers_query_and_masks_secrets():
    with TestClient(make_app(debug=True), raise_server_exceptions=False) as client:
        body = get_boom(client)
    assert "<script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "http://testserver/boom/item1" in body
    # Headers: shown, secrets masked.
    assert "x-evil" in body
    for secret in ("cookie-value-1", "auth-value-2", "csrf-value-3", "apikey-value-4"):
        assert secret not in body
    for name in ("cookie", "authorization", "x-csrftoken", "x-api-key"):
        assert re.search(rf"<th>{name}</th><td>\*{{8}}</td>", body), name
    # Query parameters: shown, secrets masked (also not leaked through the URL line).
    assert "<th>q</th><td>&lt;script&gt;" in body
    assert "tok-value-5" not in body
    assert "<th>access_token</th><td>********</td>" in body
    assert "<th>item</th><td>&#x27;item1&#x27;</td>" in body


def test_page_shows_frame_locals_masked_capped_and_safe():
    with TestClient(make_app(debug=True), raise_server_exceptions=False) as client:
        body = get_boom(client)
    assert "in boom" in body
    assert "raise ValueError(f&quot;failed for {item} {note}&quot;)" in body
    assert "<th>note</th><td>&#x27;&lt;script&gt;alert(1)&lt;/script&gt;&#x27;</td>" in body
    assert secret("sk-live") not in body and secret("pbkdf2") not in body
    assert "<th>api_key</th><td>********</td>" in body
    assert "<th>password_hash</th><td>********</td>" in body
    # A failing __repr__ shows a placeholder instead of breaking the page.
    assert "BrokenRepr object (repr() failed: RuntimeError)" in body
    # Sensitive keys inside mappings, and URL passwords, are hidden too.
    assert secret("s3cr3t") not in body and secret("pw") not in body
    assert "&#x27;SECRET_KEY&#x27;: ********" in body
    assert "&#x27;DEBUG&#x27;: True" in body
    assert secret("hunter") not in body
    assert "postgresql://app:********@db.example/app" in body
    # Long values are capped.
    assert "x" * 400 not in body


def test_page_shows_a_form_only_when_the_handler_parsed_it():
    with TestClient(make_app(debug=True), raise_server_exceptions=False) as client:
        parsed = client.post(
            "/form",
            data={"title": XSS, "password": "pw-value-6", "csrf_token": "csrf-value-7"},
            headers={"accept": "text/html"},
        )
        unread = client.post(
            "/unread", data={"title": "never-read-8"}, headers={"accept": "text/html"}
        )
    assert parsed.status_code == unread.status_code == 500
    assert "<th>title</th><td>&#x27;&lt;script&gt;alert(1)&lt;/script&gt;&#x27;</td>" in parsed.text
    assert "pw-value-6" not in parsed.text and "csrf-value-7" not in parsed.text
    assert "<th>password</th><td>********</td>" in parsed.text
    # The handler never read the body, and the error page does not read it either.
    assert "never-read-8" not in unread.text
    assert "The handler did not read a form." in unread.text


def test_json_clients_keep_the_compact_answer():
    with TestClient(make_app(debug=True), raise_server_exceptions=False) as client:
        response = client.get("/boom/x", headers={"accept": "application/json", "cookie": "a=b"})
    data = response.json()
    assert set(data) == {"error", "detail", "traceback"}
    assert data["error"] == "ValueError"


@pytest.mark.parametrize("accept", ["text/html", "application/json", "*/*"])
def test_production_shows_nothing_of_the_request(accept, caplog):
    with (
        caplog.at_level(logging.ERROR, logger="covet.error"),
        TestClient(make_app(debug=False), raise_server_exceptions=False) as client,
    ):
        response = client.get(
            "/boom/item1", params={"q": "query-value-9"}, headers={**HEADERS, "accept": accept}
        )
        form = client.post("/form", data={"title": "form-value-10"}, headers={"accept": accept})
    for answer in (response, form):
        assert answer.status_code == 500
        # The generic answer in the client's format, with nothing of the request in it.
        assert "Internal Server Error" in answer.text
        leaks = ("query-value-9", "form-value-10", "cookie-value-1", "auth-value-2", "Traceback")
        for secret in leaks:
            assert secret not in answer.text


def test_safe_repr_survives_and_caps():
    assert safe_repr(BrokenRepr()) == "<BrokenRepr object (repr() failed: RuntimeError)>"
    text = safe_repr(["y" * 100_000] * 3)
    assert len(text) <= MAX_REPR + 40
    assert safe_repr({"token": "t", "ok": 1}) == f"{{'token': {MASK}, 'ok': 1}}"

    class Deep(dict[str, object]):
        pass

    assert safe_repr(Deep(authorization="x")) == f"Deep({{'authorization': {MASK}}})"
