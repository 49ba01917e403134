from __future__ import annotations

from typing import Any

import pytest

from covet import Covet, Request, WebSocket
from covet.auth import AnonymousUser, login_required, requires, safe_redirect_url
from covet.auth.login import AuthConfig
from covet.exceptions import ImproperlyConfigured, WebSocketDisconnect
from covet.requests import HTTPConnection
from covet.testing import TestClient
from tests.auth.models import AuthUser


class FakeAuth:
    """Set scope["user"] from the X-User header: '', 'ann' (posts.view) or 'root' (superuser)."""

    def __init__(self, app: Any, *, bearer: bool = False) -> None:
        self.app = app
        self.config = AuthConfig(user_model=AuthUser, secret_key=None, throttle=None, bearer=bearer)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        name = dict(scope.get("headers", [])).get(b"x-user", b"").decode()
        if name:
            scope["user"] = AuthUser(
                id=1,
                email=f"{name}@example.com",
                permissions=["posts.view"],
                is_superuser=name == "root",
            )
        else:
            scope["user"] = AnonymousUser()
        scope["covet.auth"] = self.config
        await self.app(scope, receive, send)


def make_app(*, bearer: bool = False) -> Covet:
    app = Covet(allowed_hosts=["testserver"])
    app.add_middleware(FakeAuth, bearer=bearer)

    @app.get("/login", name="login_page")
    async def login_page(request: Request) -> str:
        return "login"

    @app.get("/account")
    @login_required
    async def account(request: Request) -> dict[str, str]:
        return {"user": str(request.user)}

    @app.get("/items/{item_id:int}")
    @login_required(login_url="login_page", redirect_field="to")
    def item(request: Request, item_id: int) -> dict[str, int]:  # a sync handler
        return {"id": item_id}

    @app.get("/posts")
    @requires("posts.view")
    async def posts(request: Request) -> str:
        return "posts"

    @app.post("/posts/{pk:int}/edit")
    @requires("posts.view", "posts.edit")
    async def edit(request: Request, pk: int) -> str:
        return f"edited {pk}"

    @app.websocket("/ws")
    @login_required
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(str(websocket.user))
        await websocket.close()

    @app.websocket("/ws-admin")
    @requires("admin.all")
    async def ws_admin(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    return app


client = TestClient(make_app(), follow_redirects=False)


def test_login_required_lets_users_in():
    response = client.get("/account", headers={"X-User": "ann"})
    assert response.json() == {"user": "ann@example.com"}
    assert client.get("/items/7", headers={"X-User": "ann"}).json() == {"id": 7}


def test_login_required_redirects_browsers_to_the_login_page():
    response = client.get("/account?tab=2&x=%2F", headers={"Accept": "text/html,*/*"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account%3Ftab%3D2%26x%3D%252F"
    response = client.get("/items/3")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?to=/items/3"  # a route name, resolved


@pytest.mark.parametrize(
    "headers",
    [
        {"Accept": "application/json"},
        {"Authorization": "Bearer nope"},
        {"X-Requested-With": "XMLHttpRequest"},
    ],
)
def test_login_required_answers_401_to_api_clients(headers):
    response = client.get("/account", headers=headers)
    assert response.status_code == 401
    assert "www-authenticate" not in response.headers  # no bearer backend configured
    if headers.get("Accept") == "application/json":
        assert response.json()["detail"] == "Authentication required."


def test_401_names_the_bearer_scheme_when_tokens_are_accepted():
    with TestClient(make_app(bearer=True)) as api:
        response = api.get("/account", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_requires_checks_every_permission():
    assert client.get("/posts", headers={"X-User": "ann"}).text == "posts"
    response = client.post("/posts/5/edit", headers={"X-User": "ann"})
    assert response.status_code == 403
    assert client.post("/posts/5/edit", headers={"X-User": "root"}).text == "edited 5"


def test_requires_treats_anonymous_visitors_like_login_required():
    assert client.get("/posts").status_code == 303
    assert client.get("/posts", headers={"Accept": "application/json"}).status_code == 401


def test_websockets_are_guarded():
    with client.websocket_connect("/ws", headers={"X-User": "ann"}) as ws:
        assert ws.receive_text() == "ann@example.com"
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws") as ws:
        ws.receive_text()
    assert info.value.code == 1008
    with (
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect("/ws-admin", headers={"X-User": "ann"}) as ws,
    ):
        ws.receive_text()
    assert info.value.code == 1008


def test_guards_need_the_middleware():
    app = Covet(allowed_hosts=["testserver"])

    @app.get("/")
    @login_required
    async def home(request: Request) -> str:
        return "home"

    with pytest.raises(ImproperlyConfigured, match="AuthenticationMiddleware"):
        TestClient(app).get("/")


def test_requires_needs_permission_names():
    with pytest.raises(ImproperlyConfigured):
        requires()
    with pytest.raises(ImproperlyConfigured):
        requires("")


def _connection() -> HTTPConnection:
    return HTTPConnection({"type": "http", "path": "/", "headers": []})


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("/account", "/account"),
        ("/search?q=a+b&page=2#top", "/search?q=a+b&page=2#top"),
        ("/a/b/../c", "/a/b/../c"),
        ("//evil.com", "/"),
        ("//evil.com/path", "/"),
        ("///evil.com", "/"),
        ("/\\evil.com", "/"),
        ("\\\\evil.com", "/"),
        ("/\\/evil.com", "/"),
        ("https://evil.com", "/"),
        ("http://testserver/account", "/"),
        ("https:evil.com", "/"),
        ("javascript:alert(1)", "/"),
        ("data:text/html,x", "/"),
        ("evil.com", "/"),
        ("account", "/"),
        ("/\tevil.com", "/"),
        ("/\nLocation: https://evil.com", "/"),
        ("/\x00", "/"),
        ("/\x7f", "/"),
        (" /account", "/"),
        ("/ok\u2028", "/"),
        ("", "/"),
        (None, "/"),
        ("/" + "a" * 3000, "/"),
    ],
)
def test_safe_redirect_url(candidate, expected):
    assert safe_redirect_url(_connection(), candidate) == expected


def test_safe_redirect_url_default():
    assert safe_redirect_url(_connection(), "//evil.com", default="/home") == "/home"
