"""Typed handlers end to end: each parameter source, dependencies, response models.

Each app is served both ways the app dispatches (inline without middleware,
through the middleware stack with one), which must answer alike. (No ``from
__future__ import annotations``: handlers and dependencies are defined inside the
tests, and their annotations name local functions, so they are evaluated there.)
"""

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import msgspec
import pytest
from pydantic import Field

from covet import Covet, PlainTextResponse, Request, Response, Router, WebSocket
from covet.background import BackgroundTasks
from covet.datastructures import UploadFile
from covet.params import Body, Cookie, Depends, File, Form, Header, Path, Query
from covet.testing import TestClient
from covet.types import ASGIApp, Receive, Scope, Send
from tests.params.models import (
    Filters,
    Item,
    Movie,
    Point,
    SFilters,
    Signup,
    SItem,
    SSignup,
    SUser,
    SUserInDB,
    User,
    UserInDB,
)


class Passthrough:
    """A middleware doing nothing: it makes the app dispatch through its stack."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(params=["inline", "stack"])
def app(request: pytest.FixtureRequest) -> Covet:
    app = Covet(allowed_hosts=["testserver"])
    if request.param == "stack":
        app.add_middleware(Passthrough)
    return app


# -- sources --------------------------------------------------------------------------------------


def test_query_parameters(app: Covet) -> None:
    @app.get("/items")
    async def items(
        q: str | None = None,
        page: Annotated[int, Query(ge=1)] = 1,
        size: Annotated[int, Query(alias="page-size", le=100)] = 20,
        tag: Annotated[list[str], Query()] = [],  # noqa: B006 - never mutated
        ids: list[int] | None = None,
        flag: bool = False,
    ) -> dict[str, Any]:
        return {"q": q, "page": page, "size": size, "tag": tag, "ids": ids, "flag": flag}

    with TestClient(app) as client:
        assert client.get("/items").json() == {
            "q": None, "page": 1, "size": 20, "tag": [], "ids": None, "flag": False,
        }  # fmt: skip
        answer = client.get("/items?q=a&page=2&page-size=5&tag=x&tag=y&ids=1&ids=2&flag=yes")
        assert answer.json() == {
            "q": "a", "page": 2, "size": 5, "tag": ["x", "y"], "ids": [1, 2], "flag": True,
        }  # fmt: skip
        assert client.get("/items?page-size=101").status_code == 422
        assert client.get("/items?size=101").status_code == 200  # the alias is the wire name


def test_query_model_and_its_extra_policy(app: Covet) -> None:
    @app.get("/p")
    async def with_pydantic(filters: Annotated[Filters, Query()]) -> dict[str, Any]:
        return filters.model_dump()

    @app.get("/m")
    async def with_msgspec(filters: Annotated[SFilters, Query()]) -> dict[str, Any]:
        return msgspec.structs.asdict(filters)

    with TestClient(app) as client:
        for path in ("/p", "/m"):
            answer = client.get(f"{path}?q=x&limit=5&tag=a&tag=b")
            assert answer.json() == {"q": "x", "limit": 5, "tag": ["a", "b"]}
            errors = client.get(f"{path}?limit=500&other=1").json()["detail"]
            assert ["query", "limit"] in [e["loc"] for e in errors] or ["query", "other"] in [
                e["loc"] for e in errors
            ]
            assert client.get(f"{path}?other=1").status_code == 422  # forbid, as configured


def test_headers_and_cookies(app: Covet) -> None:
    @app.get("/")
    async def index(
        user_agent: Annotated[str, Header()],
        x_ids: Annotated[list[int], Header()] = [],  # noqa: B006 - never mutated
        raw: Annotated[str | None, Header(alias="X_Raw", convert_underscores=False)] = None,
        session: Annotated[str | None, Cookie()] = None,
        visits: Annotated[int, Cookie()] = 0,
    ) -> dict[str, Any]:
        return {"ua": user_agent, "ids": x_ids, "raw": raw, "session": session, "visits": visits}

    with TestClient(app) as client:
        client.cookies.set("session", "abc")
        client.cookies.set("visits", "3")
        headers = [("user-agent", "t"), ("x-ids", "1"), ("x-ids", "2"), ("x_raw", "r")]
        answer = client.get("/", headers=headers)
        assert answer.json() == {
            "ua": "t",
            "ids": [1, 2],
            "raw": "r",
            "session": "abc",
            "visits": 3,
        }
        client.cookies.set("visits", "many")
        errors = client.get("/", headers=headers).json()["detail"]
        assert [e["loc"] for e in errors] == [["cookie", "visits"]]


def test_path_parameters_with_constraints(app: Covet) -> None:
    @app.get("/items/{item_id:int}")
    async def item(item_id: Annotated[int, Path(ge=1, le=10)], request: Request) -> dict[str, Any]:
        return {"id": item_id, "path": request.url.path}

    with TestClient(app) as client:
        assert client.get("/items/3").json() == {"id": 3, "path": "/items/3"}
        errors = client.get("/items/11").json()["detail"]
        assert errors[0]["loc"] == ["path", "item_id"]
        assert errors[0]["type"] == "less_than_equal"


def test_body_models_of_both_libraries_and_neither(app: Covet) -> None:
    @app.post("/p", status_code=201)
    async def pydantic_item(item: Item) -> Item:
        return item

    @app.post("/m")
    async def msgspec_item(item: SItem) -> SItem:
        return item

    @app.post("/dataclass")
    async def dataclass_body(point: Point) -> dict[str, int]:
        return {"sum": point.x + point.y}

    @app.post("/typeddict")
    async def typeddict_body(movie: Movie) -> dict[str, Any]:
        return {"title": movie["title"], "year": movie["year"]}

    @app.post("/list")
    async def list_body(items: list[Item]) -> list[Item]:
        return items

    with TestClient(app) as client:
        answer = client.post("/p", json={"name": "a", "price": 2})
        assert (answer.status_code, answer.json()) == (
            201,
            {"name": "a", "price": 2.0, "color": "red", "tags": []},
        )
        answer = client.post("/m", json={"name": "a", "price": 2, "color": "blue"})
        assert answer.json() == {"name": "a", "price": 2.0, "color": "blue", "tags": []}
        assert client.post("/dataclass", json={"x": 1, "y": "2"}).json() == {"sum": 3}
        assert client.post("/dataclass", json={"x": 1}).json()["detail"][0]["loc"] == [
            "body",
            "y",
        ]
        assert client.post("/typeddict", json={"title": "t", "year": 1999}).status_code == 200
        assert client.post("/list", json=[{"name": "a", "price": 1}]).json()[0]["name"] == "a"
        errors = client.post("/list", json=[{"name": "a", "price": 1}, {}]).json()["detail"]
        assert {tuple(e["loc"]) for e in errors} == {("body", 1, "name"), ("body", 1, "price")}


def test_embedded_and_multiple_body_parameters(app: Covet) -> None:
    @app.post("/two")
    async def two(item: Item, user: User, importance: Annotated[int, Body(gt=0)]) -> dict[str, Any]:
        return {"item": item.name, "user": user.name, "importance": importance}

    @app.post("/embedded")
    async def embedded(item: Annotated[Item, Body(embed=True)]) -> str:
        return item.name

    with TestClient(app) as client:
        payload = {"item": {"name": "a", "price": 1}, "user": {"name": "u"}, "importance": 2}
        assert client.post("/two", json=payload).json() == {
            "item": "a",
            "user": "u",
            "importance": 2,
        }
        errors = client.post("/two", json={"item": {"name": "a", "price": 0}}).json()["detail"]
        assert {tuple(e["loc"]) for e in errors} == {
            ("body", "item", "price"),
            ("body", "user"),
            ("body", "importance"),
        }
        assert client.post("/two", json=[1]).json()["detail"][0]["type"] == "dict_type"
        assert client.post("/embedded", json={"item": {"name": "e", "price": 1}}).text == "e"
        assert client.post("/embedded", json={"name": "e", "price": 1}).status_code == 422


def test_optional_body(app: Covet) -> None:
    @app.post("/")
    async def maybe(item: Item | None = None) -> str:
        return "none" if item is None else item.name

    with TestClient(app) as client:
        assert client.post("/").text == "none"
        assert client.post("/", json={"name": "x", "price": 1}).text == "x"


def test_form_fields_files_and_form_models(app: Covet) -> None:
    @app.post("/fields")
    async def fields(
        name: Annotated[str, Form()],
        age: Annotated[int, Form(ge=0)],
        colours: Annotated[list[str], Form()] = [],  # noqa: B006 - never mutated
        nickname: Annotated[str | None, Form()] = None,
    ) -> dict[str, Any]:
        return {"name": name, "age": age, "colours": colours, "nickname": nickname}

    @app.post("/upload")
    async def upload(
        doc: UploadFile,
        extra: Annotated[list[UploadFile], File()] = [],  # noqa: B006 - never mutated
        raw: Annotated[bytes | None, File()] = None,
    ) -> dict[str, Any]:
        return {
            "doc": [doc.filename, (await doc.read()).decode()],
            "extra": [f.filename for f in extra],
            "raw": None if raw is None else raw.hex(),
        }

    @app.post("/signup/p")
    async def signup_p(data: Annotated[Signup, Form()]) -> dict[str, Any]:
        avatar = data.avatar.filename if data.avatar else None
        return {"email": data.email, "age": data.age, "accept": data.accept, "avatar": avatar}

    @app.post("/signup/m")
    async def signup_m(data: Annotated[SSignup, Form()]) -> dict[str, Any]:
        avatar = data.avatar.filename if data.avatar else None
        return {"email": data.email, "age": data.age, "avatar": avatar}

    with TestClient(app) as client:
        form = {"name": "Ann", "age": "30", "colours": ["red", "blue"], "nickname": ""}
        assert client.post("/fields", data=form).json() == {
            "name": "Ann",
            "age": 30,
            "colours": ["red", "blue"],
            "nickname": None,  # an empty input counts as absent
        }
        errors = client.post("/fields", data={"name": "", "age": "-1"}).json()["detail"]
        assert {(tuple(e["loc"]), e["type"]) for e in errors} == {
            (("body", "name"), "missing"),
            (("body", "age"), "greater_than_equal"),
        }
        files = [
            ("doc", ("a.txt", b"hello")),
            ("extra", ("b.txt", b"1")),
            ("extra", ("c.txt", b"2")),
            ("raw", ("r.bin", b"\x00\x01")),
        ]
        answer = client.post("/upload", files=files)
        assert answer.json() == {
            "doc": ["a.txt", "hello"],
            "extra": ["b.txt", "c.txt"],
            "raw": "0001",
        }
        errors = client.post("/upload", data={"doc": "not a file"}).json()["detail"]
        assert errors[0]["loc"] == ["body", "doc"]
        for path in ("/signup/p", "/signup/m"):
            answer = client.post(
                path,
                data={"email": "a@example.com", "age": "20", "accept": "true"},
                files={"avatar": ("me.png", b"png")},
            )
            assert answer.json()["avatar"] == "me.png"
            assert answer.json()["age"] == 20
            errors = client.post(path, data={"email": "a@example.com", "age": "x"}).json()["detail"]
            assert errors[0]["loc"] == ["body", "age"]


def test_handler_without_request_and_sync_handlers(app: Covet) -> None:
    seen: list[str] = []

    @app.get("/sync")
    def sync(q: int = 0) -> dict[str, Any]:
        seen.append(threading.current_thread().name)
        return {"q": q}

    @app.get("/none")
    async def nothing() -> None:
        return None

    with TestClient(app) as client:
        assert client.get("/sync?q=4").json() == {"q": 4}
        assert client.get("/none").status_code == 204
    assert seen and seen[0] != threading.main_thread().name


# -- dependencies -------------------------------------------------------------------------------


def test_dependencies_take_typed_parameters_and_are_cached(app: Covet) -> None:
    calls: list[str] = []

    def settings() -> dict[str, int]:
        calls.append("settings")
        return {"max": 5}

    async def pagination(
        conf: Annotated[dict[str, int], Depends(settings)],
        page: Annotated[int, Query(ge=1)] = 1,
    ) -> dict[str, int]:
        calls.append("pagination")
        return {"page": page, "max": conf["max"]}

    async def token(request: Request, x_token: Annotated[str, Header()]) -> str:
        assert isinstance(request, Request)
        return x_token

    @app.get("/")
    async def index(
        paging: Annotated[dict[str, int], Depends(pagination)],
        conf: Annotated[dict[str, int], Depends(settings)],
        again: dict[str, int] = Depends(settings, use_cache=False),  # type: ignore[assignment]  # noqa: B008
        user: str = Depends(token),  # type: ignore[assignment]
    ) -> dict[str, Any]:
        return {"paging": paging, "same": conf is paging or conf == {"max": 5}, "user": user}

    with TestClient(app) as client:
        answer = client.get("/?page=2", headers={"x-token": "t"})
        assert answer.json() == {"paging": {"page": 2, "max": 5}, "same": True, "user": "t"}
        assert calls == ["settings", "pagination", "settings"]  # once cached, once not
        calls.clear()
        errors = client.get("/?page=0").json()["detail"]
        assert {tuple(e["loc"]) for e in errors} == {("query", "page"), ("header", "x-token")}
        assert "pagination" not in calls  # a dependency with invalid input is not called


def test_generator_dependencies_clean_up_after_the_response(app: Covet) -> None:
    events: list[str] = []

    async def database() -> AsyncIterator[str]:
        events.append("open db")
        try:
            yield "db"
        except RuntimeError as exc:
            events.append(f"db saw {exc}")
            raise
        finally:
            events.append("close db")

    def transaction(db: Annotated[str, Depends(database)]) -> Iterator[str]:
        events.append("begin")
        try:
            yield f"tx on {db}"
        finally:
            events.append("end")

    async def remember() -> None:
        events.append("background")

    @app.get("/ok")
    async def ok(tx: Annotated[str, Depends(transaction)], tasks: BackgroundTasks) -> str:
        tasks.add_task(remember)
        events.append("handler")
        return tx

    @app.get("/fail")
    async def fail(db: Annotated[str, Depends(database)]) -> str:
        raise RuntimeError("boom")

    @app.get("/invalid")
    async def invalid(db: Annotated[str, Depends(database)], n: int) -> str:
        return db

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/ok").text == "tx on db"
        # Inner cleanups first; background tasks before cleanups (they may use the resource).
        assert events == ["open db", "begin", "handler", "background", "end", "close db"]
        events.clear()
        assert client.get("/fail").status_code == 500
        assert events == ["open db", "db saw boom", "close db"]
        events.clear()
        assert client.get("/invalid").status_code == 422
        assert events == ["open db", "close db"]


def test_cleanup_errors_surface_and_a_dependency_must_yield(app: Covet) -> None:
    async def no_yield(stop: bool = True) -> AsyncIterator[str]:
        if not stop:  # never true: an async generator that never yields
            yield "x"

    @app.get("/no-yield")
    async def handler(value: Annotated[str, Depends(no_yield)]) -> str:
        return value

    with TestClient(app) as client, pytest.raises(RuntimeError, match="without yielding"):
        client.get("/no-yield")


# -- responses ----------------------------------------------------------------------------------


def test_response_model_filters_what_leaves(app: Covet) -> None:
    class Row:
        """An ORM-like object: attributes, one of them secret."""

        def __init__(self) -> None:
            self.name = "row"
            self.password_hash = "secret"

    @app.get("/p")
    async def pydantic_user() -> User:
        return UserInDB(name="ann", password_hash="secret")

    @app.get("/m")
    async def msgspec_user() -> SUser:
        return SUserInDB(name="ann", password_hash="secret")

    @app.get("/dict", response_model=User)
    async def from_dict() -> dict[str, str]:
        return {"name": "d", "password_hash": "secret"}

    @app.get("/orm", response_model=list[SUser])
    async def from_objects() -> list[Row]:
        return [Row()]

    @app.get("/orm-p", response_model=User)
    async def from_object() -> Row:
        return Row()

    @app.get("/raw", response_model=User)
    async def raw() -> Response:
        return PlainTextResponse("untouched", status_code=202)

    @app.get("/off", response_model=None)
    async def off() -> User:
        return UserInDB(name="x", password_hash="shown: no response model")

    with TestClient(app) as client:
        for path in ("/p", "/m", "/dict", "/orm-p"):
            answer = client.get(path)
            assert "secret" not in answer.text, path
            assert set(answer.json()) == {"name"}
        assert client.get("/orm").json() == [{"name": "row"}]
        assert (client.get("/raw").status_code, client.get("/raw").text) == (202, "untouched")
        # Without a response model a model instance is encoded as it is.
        assert client.get("/off").json()["password_hash"] == "shown: no response model"


def test_status_code_and_head(app: Covet) -> None:
    @app.post("/created", status_code=201)
    async def created() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/user")
    async def user() -> User:
        return User(name="u")

    with TestClient(app) as client:
        answer = client.post("/created")
        assert (answer.status_code, answer.json()) == (201, {"ok": True})
        head = client.head("/user")
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-length"] == str(len(b'{"name":"u"}'))


def test_included_routers_keep_their_declarations(app: Covet) -> None:
    api = Router(prefix="/api")

    @api.post("/items", status_code=201, response_model=User)
    async def create(item: Item) -> dict[str, str]:
        return {"name": item.name, "password_hash": "x"}

    app.include_router(api, prefix="/v1")
    with TestClient(app) as client:
        answer = client.post("/v1/api/items", json={"name": "n", "price": 1})
        assert (answer.status_code, answer.json()) == (201, {"name": "n"})


def test_constraint_metadata_in_annotated(app: Covet) -> None:
    @app.get("/")
    async def index(n: Annotated[int, Field(ge=5)] = 5) -> str:
        return str(n)

    @app.get("/m")
    async def index_m(n: Annotated[int, msgspec.Meta(ge=5)] = 5) -> str:
        return str(n)

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/?n=1").json()["detail"][0]["type"] == "greater_than_equal"
        assert client.get("/m?n=1").json()["detail"][0]["type"] == "greater_than_equal"
        assert client.get("/m?n=7").text == "7"


# -- what stays as it was -----------------------------------------------------------------------


def test_plain_handlers_are_called_as_before(app: Covet) -> None:
    @app.get("/items/{item_id:int}")
    async def item(request: Request, item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/kw/{a}/{b}")
    async def kwargs(request: Request, **params: str) -> dict[str, str]:
        return params

    route = next(r for r in app.routes if getattr(r, "name", "") == "item")
    assert route.signature.plain  # type: ignore[attr-defined]
    with TestClient(app) as client:
        assert client.get("/items/3").json() == {"id": 3}
        assert client.get("/kw/x/y").json() == {"a": "x", "b": "y"}


def test_websocket_routes_are_unaffected(app: Covet) -> None:
    @app.websocket("/ws/{room}")
    async def chat(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        await websocket.send_text(f"{room}:{await websocket.receive_text()}")
        await websocket.close()

    with TestClient(app) as client, client.websocket_connect("/ws/lobby") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "lobby:hi"


def test_validation_runs_once_per_request_not_per_parameter_lookup(app: Covet) -> None:
    # The signature is inspected at registration: serving does not call inspect again.
    import inspect

    @app.get("/")
    async def index(q: int = 0) -> dict[str, int]:
        return {"q": q}

    calls = 0
    original = inspect.signature

    def counting(*args: Any, **kwargs: Any) -> inspect.Signature:
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    with TestClient(app) as client:  # startup may register routes (/docs): not counted
        inspect.signature = counting
        try:
            for n in range(3):
                assert client.get(f"/?q={n}").status_code == 200
        finally:
            inspect.signature = original
    assert calls == 0


async def test_concurrent_requests_do_not_share_state() -> None:
    app = Covet(allowed_hosts=["testserver"])

    async def slow(n: int) -> AsyncIterator[int]:
        await asyncio.sleep(0.01)
        yield n

    @app.get("/")
    async def index(value: Annotated[int, Depends(slow)]) -> dict[str, int]:
        return {"value": value}

    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answers = await asyncio.gather(*(client.get(f"/?n={n}") for n in range(20)))
    assert [a.json()["value"] for a in answers] == list(range(20))
