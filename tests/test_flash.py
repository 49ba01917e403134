from __future__ import annotations

import pytest

from covet import Covet
from covet.exceptions import ImproperlyConfigured
from covet.flash import flash, get_flashed_messages
from covet.middleware import SessionMiddleware
from covet.requests import Request
from covet.testing import TestClient


def make_app() -> Covet:
    app = Covet(allowed_hosts=["testserver"])

    @app.post("/flash")
    async def add(request):
        flash(request, "Saved.", "success")
        flash(request, "Check your <b>email</b>.")
        flash(request, "Disk almost full.", category="warning")

    @app.get("/read")
    async def read(request):
        return {
            "plain": get_flashed_messages(request),
            "pairs": get_flashed_messages(request, with_categories=True),
            "warnings": get_flashed_messages(request, category_filter=["warning"]),
        }

    app.add_middleware(SessionMiddleware, secret_key="secret")
    return app


def test_messages_survive_one_redirect_and_are_consumed():
    client = TestClient(make_app())
    assert client.post("/flash").status_code == 204
    data = client.get("/read").json()
    assert data["plain"] == ["Saved.", "Check your <b>email</b>.", "Disk almost full."]
    assert data["pairs"] == [
        ["success", "Saved."],
        ["info", "Check your <b>email</b>."],
        ["warning", "Disk almost full."],
    ]
    assert data["warnings"] == ["Disk almost full."]
    # Gone on the next request.
    assert client.get("/read").json()["plain"] == []


def test_flash_requires_string_messages():
    request = Request({"type": "http", "session": {}, "headers": []})
    with pytest.raises(TypeError, match="str"):
        flash(request, 42)  # type: ignore[arg-type]


def test_flash_without_session_middleware_is_a_clear_error():
    request = Request({"type": "http", "headers": []})
    with pytest.raises(ImproperlyConfigured, match="SessionMiddleware"):
        flash(request, "hello")
    with pytest.raises(ImproperlyConfigured, match="SessionMiddleware"):
        get_flashed_messages(request)


def test_malformed_stored_flashes_are_ignored():
    request = Request(
        {"type": "http", "session": {"_flashes": [["ok", "fine"], "junk", [1]]}, "headers": []}
    )
    assert get_flashed_messages(request, with_categories=True) == [("ok", "fine")]
