from __future__ import annotations

import uuid
from typing import Any, assert_type

import pytest

from covet import Covet, PlainTextResponse, Request, Router, WebSocket
from covet.exceptions import ImproperlyConfigured, WebSocketDisconnect
from covet.routing import Mount, NoMatchFound, Route, WebSocketRoute, _Group
from covet.testing import TestClient
from tests.asgi import http_scope


async def call_asgi(
    app: Any, path: str, *, method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, dict[bytes, bytes], bytes]:
    """Drive ``app`` with one raw ASGI request; return status, headers and body."""
    scope = http_scope(path, method=method, headers=headers or [])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


async def echo_params(request: Request, **params: Any) -> dict[str, Any]:
    return {key: [type(value).__name__, str(value)] for key, value in params.items()}


# ----------------------------------------------------------------- converters


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/s/{v}", "/s/hello", {"v": ["str", "hello"]}),
        ("/s/{v:str}", "/s/caf%C3%A9", {"v": ["str", "caf\u00e9"]}),
        ("/i/{v:int}", "/i/42", {"v": ["int", "42"]}),
        ("/f/{v:float}", "/f/2.5", {"v": ["float", "2.5"]}),
        ("/u/{v:uuid}", f"/u/{uuid.UUID(int=7)}", {"v": ["UUID", str(uuid.UUID(int=7))]}),
        ("/g/{v:slug}", "/g/my-post_1", {"v": ["str", "my-post_1"]}),
        ("/p/{v:path}", "/p/a/b/c.txt", {"v": ["str", "a/b/c.txt"]}),
        ("/m/{a:int}/x/{b}", "/m/1/x/y", {"a": ["int", "1"], "b": ["str", "y"]}),
    ],
)
def test_converters_pass_converted_values(pattern, path, expected):
    app = Covet()
    app.add_route(pattern, echo_params)
    with TestClient(app) as client:
        response = client.get(path)
    assert response.status_code == 200
    assert response.json() == expected


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("/s/{v}", "/s/a/b"),
        ("/i/{v:int}", "/i/abc"),
        ("/i/{v:int}", "/i/-1"),
        ("/i/{v:int}", "/i/" + "9" * 5000),
        ("/f/{v:float}", "/f/1e3"),
        ("/f/{v:float}", "/f/" + "9" * 400),
        ("/u/{v:uuid}", "/u/not-a-uuid"),
        ("/g/{v:slug}", "/g/with%20space"),
    ],
)
def test_converters_refuse_invalid_values_with_404(pattern, path):
    app = Covet()
    app.add_route(pattern, echo_params)
    with TestClient(app) as client:
        assert client.get(path).status_code == 404


# ---------------------------------------------------------- methods and errors


def make_app(**options: Any) -> Covet:
    app = Covet(**options)

    @app.get("/items/{item_id:int}", name="item")
    async def read_item(request: Request, item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.put("/items/{item_id:int}")
    async def replace_item(request: Request, item_id: int) -> dict[str, Any]:
        return {"replaced": item_id}

    @app.post("/items")
    async def create_item(request: Request) -> str:
        return "created"

    @app.get("/users/")
    async def users(request: Request) -> str:
        return "users"

    return app


def test_get_and_other_methods_on_one_path():
    with TestClient(make_app()) as client:
        assert client.get("/items/3").json() == {"id": 3}
        assert client.put("/items/3").json() == {"replaced": 3}


def test_405_lists_allowed_methods():
    with TestClient(make_app()) as client:
        response = client.delete("/items/3")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD, PUT"
        response = client.get("/items")
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"


def test_404_for_unknown_path():
    with TestClient(make_app()) as client:
        response = client.get("/nope")
    assert response.status_code == 404
    assert response.text == "Not Found"


def test_head_is_served_for_get_routes_without_body():
    with TestClient(make_app()) as client:
        response = client.head("/items/3")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(b'{"id":3}'))


def test_trace_is_never_routed():
    with TestClient(make_app()) as client:
        response = client.request("TRACE", "/items/3")
        assert response.status_code == 405
        assert "TRACE" not in response.headers["allow"]
        assert client.request("TRACE", "/nope").status_code == 404


def test_options_without_route_is_405():
    app = make_app()

    @app.options("/opts")
    async def opts(request: Request) -> PlainTextResponse:
        return PlainTextResponse("", headers={"Allow": "OPTIONS"})

    with TestClient(app) as client:
        response = client.options("/items/3")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD, PUT"
        assert client.options("/opts").status_code == 200


def test_static_path_wins_over_parameter_pattern():
    app = Covet()

    @app.get("/users/{name}")
    async def by_name(request: Request, name: str) -> str:
        return f"name {name}"

    @app.get("/users/me")
    async def me(request: Request) -> str:
        return "me"

    with TestClient(app) as client:
        assert client.get("/users/me").text == "me"
        assert client.get("/users/ann").text == "name ann"


def test_literal_first_segment_wins_over_parameter_first_segment():
    app = Covet()

    @app.get("/{lang}/about")
    async def localized(request: Request, lang: str) -> str:
        return f"about in {lang}"

    @app.get("/api/{section}")
    async def api(request: Request, section: str) -> str:
        return f"api {section}"

    with TestClient(app) as client:
        assert client.get("/en/about").text == "about in en"
        assert client.get("/api/about").text == "api about"


def test_overlapping_patterns_fall_through_on_method_and_converter():
    app = Covet()

    @app.get("/things/{thing_id:int}")
    async def by_id(request: Request, thing_id: int) -> str:
        return f"id {thing_id}"

    @app.post("/things/{name}")
    async def post_by_name(request: Request, name: str) -> str:
        return f"posted {name}"

    @app.get("/things/{name}")
    async def by_name(request: Request, name: str) -> str:
        return f"name {name}"

    with TestClient(app) as client:
        assert client.get("/things/5").text == "id 5"
        assert client.post("/things/5").text == "posted 5"
        assert client.get("/things/bolt").text == "name bolt"
        response = client.delete("/things/5")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"


def test_routes_with_same_pattern_merge_methods():
    app = Covet()
    app.add_route("/x", echo_params, methods=["GET"])

    async def post_x(request: Request) -> str:
        return "post"

    app.add_route("/x", post_x, methods=["POST", "PATCH"])
    with TestClient(app) as client:
        assert client.post("/x").text == "post"
        response = client.delete("/x")
        assert response.headers["allow"] == "GET, HEAD, PATCH, POST"


# -------------------------------------------------------------- slash redirect


def test_redirect_slashes_both_ways_keeps_query():
    with TestClient(make_app(), follow_redirects=False) as client:
        response = client.get("/items/3/?x=1&y=%20")
        assert response.status_code == 307
        assert response.headers["location"] == "/items/3?x=1&y=%20"
        response = client.get("/users")
        assert response.status_code == 307
        assert response.headers["location"] == "/users/"


def test_redirect_is_307_for_post_so_the_body_is_kept():
    with TestClient(make_app(), follow_redirects=False) as client:
        response = client.post("/items/", content=b"data")
    assert response.status_code == 307
    assert response.headers["location"] == "/items"


def test_redirect_followed_end_to_end():
    with TestClient(make_app()) as client:
        response = client.post("/items/", content=b"data")
    assert response.status_code == 200
    assert response.text == "created"


def test_redirect_quotes_the_path():
    app = Covet()

    @app.get("/a b/")
    async def spaced(request: Request) -> str:
        return "ok"

    with TestClient(app, follow_redirects=False) as client:
        response = client.get("/a%20b")
    assert response.headers["location"] == "/a%20b/"


async def test_no_redirect_to_scheme_relative_url():
    app = Covet()

    @app.get("/{a}/{b}/")
    async def anything(request: Request, a: str, b: str) -> str:
        return a

    # Sent raw: an HTTP client would read "//evil.example/x" as a host name.
    status, headers, _ = await call_asgi(app, "//evil.example/x")
    # Redirecting would point the browser at https://evil.example/x/.
    assert status == 404
    assert b"location" not in headers
    status, headers, _ = await call_asgi(app, "/ok/x")
    assert (status, headers[b"location"]) == (307, b"/ok/x/")


def test_redirect_slashes_can_be_disabled():
    with TestClient(make_app(redirect_slashes=False), follow_redirects=False) as client:
        assert client.get("/users").status_code == 404


def test_redirect_under_root_path():
    with TestClient(make_app(), root_path="/prefix", follow_redirects=False) as client:
        response = client.get("/users")
    assert response.status_code == 307
    assert response.headers["location"] == "/prefix/users/"


# ------------------------------------------------------------- reverse routing


def test_url_path_for_with_converted_params():
    app = make_app()
    assert app.url_path_for("item", item_id=3) == "/items/3"


def test_url_path_for_quotes_values():
    app = Covet()

    @app.get("/tags/{tag}", name="tag")
    async def tag(request: Request, tag: str) -> str:
        return tag

    @app.get("/files/{rest:path}", name="file")
    async def file(request: Request, rest: str) -> str:
        return rest

    assert app.url_path_for("tag", tag="a b?c#d") == "/tags/a%20b%3Fc%23d"
    assert app.url_path_for("file", rest="dir/x y.txt") == "/files/dir/x%20y.txt"
    with TestClient(app) as client:
        assert client.get(app.url_path_for("tag", tag="a b?c#d")).text == "a b?c#d"


def test_url_path_for_default_name_is_the_handler_name():
    app = make_app()
    assert app.url_path_for("create_item") == "/items"


def test_url_path_for_unknown_name():
    with pytest.raises(NoMatchFound, match=r"No route is named 'nope'.*'item'"):
        make_app().url_path_for("nope")


def test_url_path_for_missing_and_extra_params():
    app = make_app()
    with pytest.raises(NoMatchFound, match=r"'item'.*missing 'item_id'"):
        app.url_path_for("item")
    with pytest.raises(NoMatchFound, match=r"unexpected 'extra'"):
        app.url_path_for("item", item_id=1, extra=2)
    with pytest.raises(LookupError):
        app.url_path_for("item", wrong=1)


def test_url_path_for_refused_value():
    with pytest.raises(ValueError, match="item_id"):
        make_app().url_path_for("item", item_id=-1)


async def plain_asgi(scope: Any, receive: Any, send: Any) -> None:
    body = (
        f"root_path={scope['root_path']} path={scope['path']} "
        f"params={sorted(scope.get('path_params', {}).items())}"
    ).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_mount_plain_asgi_app_sees_root_path():
    app = Covet()
    app.mount("/legacy", plain_asgi, name="legacy")
    with TestClient(app) as client:
        assert client.get("/legacy/a/b").text == "root_path=/legacy path=/legacy/a/b params=[]"
        assert client.get("/legacy/").text == "root_path=/legacy path=/legacy/ params=[]"
        assert client.get("/legacyx").status_code == 404
        assert client.get("/legacy", follow_redirects=False).status_code == 307
    assert app.url_path_for("legacy", path="/css/a.css") == "/legacy/css/a.css"
    assert app.url_path_for("legacy", path="css/a b.css") == "/legacy/css/a%20b.css"
    with pytest.raises(NoMatchFound, match="'path'"):
        app.url_path_for("legacy")


def test_mount_with_parameters_converts_them():
    app = Covet()
    app.mount("/users/{user_id:int}", plain_asgi, name="user_files")
    with TestClient(app) as client:
        response = client.get("/users/7/avatar.png")
    assert response.text == "root_path=/users/7 path=/users/7/avatar.png params=[('user_id', 7)]"
    assert app.url_path_for("user_files", user_id=7, path="/x") == "/users/7/x"


def test_mount_router_and_nested_app_with_names():
    inner = Covet()

    @inner.get("/items/{item_id:int}", name="item")
    async def inner_item(request: Request, item_id: int) -> dict[str, Any]:
        return {"inner": item_id, "root": request.scope["root_path"]}

    router = Router()

    @router.get("/ping", name="ping")
    async def ping(request: Request) -> str:
        return "pong"

    app = Covet()
    app.mount("/v2", inner, name="v2")
    app.mount("/r", router)
    with TestClient(app) as client:
        assert client.get("/v2/items/4").json() == {"inner": 4, "root": "/v2"}
        assert client.get("/r/ping").text == "pong"
        assert client.get("/v2/nothing").status_code == 404
    assert app.url_path_for("v2:item", item_id=4) == "/v2/items/4"
    assert app.url_path_for("ping") == "/r/ping"
    with pytest.raises(NoMatchFound):
        app.url_path_for("v2:missing")


def test_request_url_for_is_absolute():
    app = Covet()

    @app.get("/items/{item_id:int}", name="item")
    async def item(request: Request, item_id: int) -> str:
        return str(request.url_for("item", item_id=item_id + 1))

    with TestClient(app) as client:
        assert client.get("/items/1").text == "http://testserver/items/2"


# --------------------------------------------------------------- include_router


def test_include_router_with_prefixes():
    api = Router(prefix="/api")

    @api.get("/items/{item_id:int}", name="api_item")
    async def api_item(request: Request, item_id: int) -> dict[str, int]:
        return {"api": item_id}

    @api.websocket("/ws")
    async def api_ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    app = Covet()
    app.include_router(api, prefix="/v1")
    with TestClient(app) as client:
        assert client.get("/v1/api/items/2").json() == {"api": 2}
        assert client.get("/api/items/2").status_code == 404
        with client.websocket_connect("/v1/api/ws") as session:
            assert session.receive_text() == "hi"
    assert app.url_path_for("api_item", item_id=2) == "/v1/api/items/2"


def test_include_router_freezes_the_included_router():
    api = Router()
    app = Covet()
    app.include_router(api)
    with pytest.raises(ImproperlyConfigured, match="include_router"):
        api.add_route("/late", echo_params)


def test_include_router_keeps_router_limits():
    from covet.requests import RequestLimits

    small = RequestLimits(max_body_size=10)
    api = Router(limits=small)

    @api.post("/up")
    async def up(request: Request) -> dict[str, int]:
        return {"max": request.limits.max_body_size}

    app = Covet()
    app.include_router(api)
    with TestClient(app) as client:
        assert client.post("/up").json() == {"max": 10}


def test_include_router_validation():
    app = Covet()
    with pytest.raises(ImproperlyConfigured, match="must start with '/'"):
        app.include_router(Router(), prefix="api")
    with pytest.raises(ImproperlyConfigured, match=r"Pass a covet\.Router"):
        app.include_router(object())  # type: ignore[arg-type]
    router = Router()
    with pytest.raises(ImproperlyConfigured, match="cannot include itself"):
        router.include_router(router)


def test_include_router_name_clash():
    first, second = Router(), Router()
    first.add_route("/a", echo_params, name="same")
    second.add_route("/b", echo_params, name="same")
    app = Covet()
    app.include_router(first)
    with pytest.raises(ImproperlyConfigured, match="'same' is already used"):
        app.include_router(second)


# ------------------------------------------------------------------- websockets


def test_websocket_route_with_params():
    app = Covet()

    @app.websocket("/ws/{room}")
    async def chat(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        message = await websocket.receive_text()
        await websocket.send_text(f"{room}: {message}")
        await websocket.close()

    with TestClient(app) as client, client.websocket_connect("/ws/lobby") as session:
        session.send_text("hello")
        assert session.receive_text() == "lobby: hello"


def test_websocket_without_route_is_refused():
    app = Covet()
    with TestClient(app) as client, pytest.raises(WebSocketDisconnect):  # noqa: SIM117
        with client.websocket_connect("/nowhere"):
            pass


# ---------------------------------------------------------------- validation


async def handler(request: Request) -> str:
    return "x"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("items", "must start with '/'"),
        ("/items/{id:number}", "unknown converter 'number'"),
        ("/items/{id}/{id}", "parameter 'id' twice"),
        ("/items/{id", "unbalanced"),
        ("/items/id}", "unbalanced"),
        ("/items/{1id}", "invalid parameter name"),
        ("/items?x=1", "contains '\\?' or '#'"),
    ],
)
def test_add_route_path_validation(path, message):
    app = Covet()

    async def any_params(request: Request, **params: Any) -> str:
        return ""

    with pytest.raises(ImproperlyConfigured, match=message):
        app.add_route(path, any_params)


def test_add_route_handler_validation():
    app = Covet()
    with pytest.raises(ImproperlyConfigured, match="does not accept the path parameter"):
        app.add_route("/items/{item_id}", handler)
    with pytest.raises(ImproperlyConfigured, match="not callable"):
        app.add_route("/x", "handler")  # type: ignore[arg-type]

    # A handler needs no request parameter: it declares what it reads (covet.params).
    async def no_request() -> str:
        return "ok"

    app.add_route("/y", no_request)
    with TestClient(app) as client:
        assert client.get("/y").text == "ok"


def test_add_route_method_validation():
    app = Covet()
    with pytest.raises(ImproperlyConfigured, match="TRACE"):
        app.add_route("/x", handler, methods=["GET", "trace"])
    with pytest.raises(ImproperlyConfigured, match="a string"):
        app.add_route("/x", handler, methods="GET")
    with pytest.raises(ImproperlyConfigured, match="unknown HTTP method"):
        app.add_route("/x", handler, methods=["FETCH"])
    with pytest.raises(ImproperlyConfigured, match="no methods"):
        app.add_route("/x", handler, methods=[])


def test_duplicate_route_and_names():
    app = Covet()
    app.add_route("/x", handler, name="x")
    with pytest.raises(ImproperlyConfigured, match="already registered for \\['GET'\\]"):
        app.add_route("/x", handler, methods=["GET", "POST"])
    with pytest.raises(ImproperlyConfigured, match="'x' is already used by '/x'"):
        app.add_route("/y", handler, name="x")
    # A default (handler) name may repeat; the explicit one stays reachable.
    app.add_route("/z", handler)
    app.add_route("/w", handler)
    assert app.url_path_for("handler") == "/z"
    assert app.url_path_for("x") == "/x"


def test_explicit_name_wins_over_default_name():
    app = Covet()

    async def page(request: Request) -> str:
        return ""

    app.add_route("/default", page)
    app.add_route("/explicit", handler, name="page")
    assert app.url_path_for("page") == "/explicit"


def test_websocket_and_mount_validation():
    app = Covet()

    def sync_ws(websocket: WebSocket) -> None:
        return None

    with pytest.raises(ImproperlyConfigured, match="not an async function"):
        app.add_websocket_route("/ws", sync_ws)
    with pytest.raises(ImproperlyConfigured, match="must not end with '/'"):
        app.mount("/static/", plain_asgi)
    with pytest.raises(ImproperlyConfigured, match="not an ASGI application"):
        app.mount("/static", "nope")  # type: ignore[arg-type]

    async def ws(websocket: WebSocket) -> None:
        return None

    app.add_websocket_route("/ws", ws)
    with pytest.raises(ImproperlyConfigured, match="already registered"):
        app.add_websocket_route("/ws", ws)


def test_router_prefix_validation():
    with pytest.raises(ImproperlyConfigured, match="prefix '/api/'"):
        Router(prefix="/api/")
    with pytest.raises(ImproperlyConfigured, match="prefix 'api'"):
        Router(prefix="api")


def test_router_with_route_objects():
    router = Router(
        routes=[
            Route("/a", handler, name="a"),
            Mount("/m", plain_asgi, name="m"),
            WebSocketRoute("/ws", echo_ws),
        ]
    )
    app = Covet(routes=router.routes)
    assert [type(r).__name__ for r in app.routes] == ["Route", "Mount", "WebSocketRoute"]
    assert app.url_path_for("a") == "/a"
    assert repr(app.routes[0]) == "Route(path='/a', name='a', methods=['GET', 'HEAD'])"
    with pytest.raises(ImproperlyConfigured, match="is not a route"):
        Router(routes=["/a"])  # type: ignore[list-item]


async def echo_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.close()


# ------------------------------------------------------- standalone router


def test_router_is_an_asgi_app_on_its_own():
    router = Router()

    @router.get("/hello")
    async def hello(request: Request) -> str:
        return "hello"

    with TestClient(router) as client:
        assert client.get("/hello").text == "hello"
        response = client.get("/missing")
        assert response.status_code == 404
        assert response.text == "Not Found"
        response = client.post("/hello")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"


def test_router_limits_validation():
    with pytest.raises(ImproperlyConfigured, match="RequestLimits"):
        Router(limits={"max_body_size": 1})  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured, match="RequestLimits"):
        Route("/x", handler, limits=5)  # type: ignore[arg-type]


# ------------------------------------------------------------------ scaling


class CountingGroup:
    """Wrap a _Group to count how many alternatives the router asks about.

    The router either calls ``match()`` or, on its inlined fast path, the
    group's ``regex.fullmatch()``: both are counted.
    """

    calls = 0

    def __init__(self, group: _Group) -> None:
        self.group = group
        self.entries = group.entries
        self.slots = group.slots
        self.regex = self

    def fullmatch(self, path: str) -> Any:
        CountingGroup.calls += 1
        return self.group.regex.fullmatch(path)

    def match(self, path: str) -> Any:
        CountingGroup.calls += 1
        return self.group.match(path)


def test_500_routes_resolve_late_routes_through_the_index():
    app = Covet(openapi=None)  # only the routes below in the index
    for number in range(500):
        app.add_route(f"/static{number}", handler, name=f"static{number}")
        app.add_route(f"/r{number}/{{item_id:int}}", echo_params, name=f"r{number}")
    with TestClient(app) as client:
        assert client.get("/static499").text == "x"
        assert client.get("/r499/7").json() == {"item_id": ["int", "7"]}
        index = app.router._http
        assert index is not None
        # Static paths are one dict entry each; each parametrised route sits
        # in the group of its first segment, alone.
        assert len(index.static) == 500
        assert len(index.groups) == 500
        assert all(len(group.entries) == 1 for group in index.groups.values())
        assert index.wildcard is None
        # Only the one relevant group is ever matched against.
        index.groups = {key: CountingGroup(group) for key, group in index.groups.items()}  # type: ignore[misc]
        CountingGroup.calls = 0
        assert client.get("/r499/8").json() == {"item_id": ["int", "8"]}
        assert CountingGroup.calls == 1
        CountingGroup.calls = 0
        assert client.get("/static499").text == "x"
        assert CountingGroup.calls == 0


def test_one_group_regex_finds_the_last_of_many_alternatives():
    app = Covet(openapi=None)  # only the routes below in the index
    for number in range(300):
        app.add_route(f"/api/v{number}/{{item_id:int}}", echo_params, name=f"v{number}")
    with TestClient(app) as client:
        assert client.get("/api/v299/5").json() == {"item_id": ["int", "5"]}
        index = app.router._http
        assert index is not None
        assert list(index.groups) == ["api"]
        found = index.groups["api"].match("/api/v299/5")
        assert found is not None
        entry, raw = found
        assert entry.pattern.path == "/api/v299/{item_id:int}"
        assert raw == ("5",)


def test_mount_static_files_and_reverse(tmp_path):
    from covet.staticfiles import StaticFiles

    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "a.css").write_text("body {}")
    app = Covet()
    app.mount("/static", StaticFiles(directory=str(tmp_path)), name="static")
    assert app.url_path_for("static", path="/css/a.css") == "/static/css/a.css"
    with TestClient(app) as client:
        response = client.get(app.url_path_for("static", path="/css/a.css"))
        assert response.status_code == 200
        assert response.text == "body {}"
        assert client.get("/static/css/missing.css").status_code == 404


async def test_decorators_keep_the_function_type():
    router = Router()

    @router.get("/typed")
    async def typed(request: Request) -> int:
        return 1

    @router.websocket("/typed-ws")
    async def typed_ws(websocket: WebSocket) -> None:
        return None

    # mypy checks these: a decorator typed as returning Callable[..., Any]
    # would make both results Any. At run time the functions come back unchanged.
    request = Request({"type": "http", "method": "GET", "path": "/typed", "headers": []})
    assert assert_type(await typed(request), int) == 1
    websocket = WebSocket(
        {"type": "websocket", "path": "/", "headers": []}, receive_nothing, send_nothing
    )
    assert_type(await typed_ws(websocket), None)
    assert [route.endpoint for route in router.routes] == [typed, typed_ws]  # type: ignore[attr-defined]


async def receive_nothing() -> dict[str, Any]:
    return {}


async def send_nothing(message: Any) -> None:
    return None


def test_resolve_follows_mounts_without_dispatching() -> None:
    from covet import Covet, Router
    from covet.routing import Route, WebSocketRoute

    calls: list[str] = []
    inner = Router()

    @inner.post("/items/{item_id:int}")
    async def create(request, item_id: int):
        calls.append("create")
        return {}

    @inner.websocket("/live")
    async def live(websocket):
        calls.append("live")

    app = Covet()
    app.mount("/api", inner)

    def scope(path: str, method: str = "POST", kind: str = "http") -> dict[str, object]:
        return {"type": kind, "path": path, "root_path": "", "method": method}

    found = app.router.resolve(scope("/api/items/3"))
    assert isinstance(found, Route) and found.endpoint is create
    ws = app.router.resolve(scope("/api/live", kind="websocket"))
    assert isinstance(ws, WebSocketRoute) and ws.endpoint is live
    assert app.router.resolve(scope("/api/items/x")) is None  # converter refuses: 404
    assert app.router.resolve(scope("/api/items/3", method="GET")) is None  # 405
    assert app.router.resolve(scope("/nowhere")) is None
    assert calls == []


def test_slash_redirect_only_to_a_path_that_would_be_served() -> None:
    from covet import Covet
    from covet.testing import TestClient

    app = Covet()

    @app.get("/items/{item_id:int}")
    async def item(request, item_id: int):
        return {"id": item_id}

    @app.post("/forms/")
    async def form(request):
        return "posted"

    with TestClient(app, follow_redirects=False) as client:
        assert client.get("/items/3/").status_code == 307
        assert client.get("/items/3/").headers["location"] == "/items/3"
        # The int converter refuses "abc": redirecting would only lead to a 404.
        assert client.get("/items/abc/").status_code == 404
        # /forms/ answers POST only; a GET to /forms must not bounce to a 405.
        assert client.get("/forms").status_code == 404
        assert client.post("/forms").status_code == 307
