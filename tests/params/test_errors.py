"""Every invalid-input case answers a 4xx, never a 500, with pydantic and with msgspec.

The 422 body is FastAPI's: ``{"detail": [{"type", "loc", "msg", ...}]}``. (No
``from __future__ import annotations`` here: the handlers are built in a function,
with the model classes as local variables, so annotations must be evaluated there.)
"""

from dataclasses import dataclass
from typing import Annotated, Any

import pytest

from covet import Covet, JSONResponse, Request
from covet.params import Form, Header, Query, RequestValidationError
from covet.requests import RequestLimits
from covet.testing import TestClient
from tests.params.models import (
    Item,
    SItem,
    SStrictItem,
    StrictItem,
    SUser,
    User,
)


@dataclass
class Library:
    name: str
    item: type
    strict: type
    user: type
    # The error code of a string where a number belongs.
    not_a_number: str


PYDANTIC = Library("pydantic", Item, StrictItem, User, "float_parsing")
MSGSPEC = Library("msgspec", SItem, SStrictItem, SUser, "float_type")


@pytest.fixture(params=[PYDANTIC, MSGSPEC], ids=lambda lib: lib.name)
def lib(request: pytest.FixtureRequest) -> Library:
    return request.param  # type: ignore[no-any-return]


def build(lib: Library, **route_options: Any) -> Covet:
    app = Covet(allowed_hosts=["testserver"])
    item_type, strict_type, user_type = lib.item, lib.strict, lib.user

    async def create(item: item_type) -> item_type:  # type: ignore[valid-type]
        return item

    async def create_strict(item: strict_type) -> strict_type:  # type: ignore[valid-type]
        return item

    async def search(
        page: Annotated[int, Query(ge=1)] = 1,
        token: Annotated[str, Header(alias="x-token")] = "",
    ) -> dict[str, Any]:
        return {"page": page, "token": token}

    async def bad_output() -> user_type:  # type: ignore[valid-type]
        return {"nom": "x"}

    app.add_route("/items", create, methods=["POST"], **route_options)
    app.add_route("/strict", create_strict, methods=["POST"])
    app.add_route("/search", search)
    app.add_route("/bad-output", bad_output)
    return app


def detail(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail"}
    return body["detail"]  # type: ignore[no-any-return]


def locs(errors: list[dict[str, Any]]) -> dict[tuple[Any, ...], str]:
    return {tuple(error["loc"]): error["type"] for error in errors}


def test_wrong_type(lib: Library) -> None:
    with TestClient(build(lib)) as client:
        errors = detail(client.post("/items", json={"name": "a", "price": "cheap"}))
    assert locs(errors) == {("body", "price"): lib.not_a_number}
    assert all(isinstance(error["msg"], str) and error["msg"] for error in errors)


def test_missing_field(lib: Library) -> None:
    with TestClient(build(lib)) as client:
        errors = detail(client.post("/items", json={"price": 2}))
    assert locs(errors) == {("body", "name"): "missing"}


def test_extra_fields_follow_the_model_config(lib: Library) -> None:
    with TestClient(build(lib)) as client:
        # The default policy ignores unknown fields, and the echo leaves them out.
        answer = client.post("/items", json={"name": "a", "price": 2, "extra": 1})
        assert answer.status_code == 200
        assert "extra" not in answer.json()
        # forbid (extra="forbid" / forbid_unknown_fields=True) refuses them.
        errors = detail(client.post("/strict", json={"name": "a", "price": 2, "extra": 1}))
    assert locs(errors) == {("body", "extra"): "extra_forbidden"}


def test_bad_enum(lib: Library) -> None:
    with TestClient(build(lib)) as client:
        errors = detail(client.post("/items", json={"name": "a", "price": 2, "color": "green"}))
    assert locs(errors) == {("body", "color"): "enum"}


def test_nested_error_locations(lib: Library) -> None:
    with TestClient(build(lib)) as client:
        payload = {"name": "a", "price": 2, "tags": [{"name": "ok"}, {"name": 5}]}
        errors = detail(client.post("/items", json=payload))
        assert locs(errors) == {("body", "tags", 1, "name"): "string_type"}
        errors = detail(client.post("/items", json={"name": "a", "price": 2, "tags": [{}]}))
    assert locs(errors) == {("body", "tags", 0, "name"): "missing"}


def test_constraint_from_the_model(lib: Library) -> None:
    with TestClient(build(lib)) as client:
        errors = detail(client.post("/items", json={"name": "a", "price": 0}))
    assert locs(errors) == {("body", "price"): "greater_than"}
    assert errors[0]["ctx"] == {"gt": 0}


def test_body_that_is_not_an_object(lib: Library) -> None:
    with TestClient(build(lib)) as client:
        errors = detail(client.post("/items", json=[1, 2]))
    assert locs(errors) == {("body",): "model_type"}


def test_malformed_json_is_a_422_with_its_position(lib: Library) -> None:
    with TestClient(build(lib)) as client:
        answer = client.post(
            "/items", content=b'{"name": "a",', headers={"content-type": "application/json"}
        )
    (error,) = detail(answer)
    assert error["type"] == "json_invalid"
    assert error["loc"][0] == "body" and isinstance(error["loc"][1], int)
    assert error["msg"] == "JSON decode error"


def test_empty_body_is_a_missing_body(lib: Library) -> None:
    with TestClient(build(lib)) as client:
        errors = detail(client.post("/items", headers={"content-type": "application/json"}))
    assert locs(errors) == {("body",): "missing"}


def test_wrong_content_type_is_a_415(lib: Library) -> None:
    with TestClient(build(lib)) as client:
        answer = client.post("/items", data={"name": "a", "price": "2"})
    assert answer.status_code == 415
    assert "application/json" in answer.text


def test_oversized_body_is_refused_before_parsing(lib: Library) -> None:
    app = build(lib, limits=RequestLimits(max_json_size=64))
    big = {"name": "x" * 200, "price": 1}
    with TestClient(app) as client:
        answer = client.post("/items", json=big)
        assert answer.status_code == 413
        # Streamed without a Content-Length, the limit still holds while reading.
        answer = client.post(
            "/items",
            content=iter([b'{"name": "', b"x" * 200, b'", "price": 1}']),
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 413
        # Malformed but oversized: the size is checked first, nothing is parsed.
        answer = client.post(
            "/items", content=b"{" * 100, headers={"content-type": "application/json"}
        )
    assert answer.status_code == 413


def test_body_with_too_many_values_is_refused_before_parsing(lib: Library) -> None:
    # Issue 16: the validating engines decode on the event loop too.
    app = build(lib, limits=RequestLimits(max_json_items=8))
    with TestClient(app) as client:
        answer = client.post(
            "/items",
            content=b'{"name": "a", "price": 1, "x": [[],[],[],[],[],[],[]]}',
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == 413
    assert "max_json_items" in answer.text


def test_every_error_is_listed_at_once() -> None:
    with TestClient(build(PYDANTIC)) as client:
        payload = {"price": "x", "color": "green", "tags": [{}]}
        errors = detail(client.post("/items", json=payload))
    assert locs(errors) == {
        ("body", "name"): "missing",
        ("body", "price"): "float_parsing",
        ("body", "color"): "enum",
        ("body", "tags", 0, "name"): "missing",
    }


def test_msgspec_reports_the_first_body_error_and_every_parameter() -> None:
    app = Covet(allowed_hosts=["testserver"])

    @app.post("/items")
    async def create(item: SItem, page: Annotated[int, Query(ge=1)] = 1) -> SItem:
        return item

    with TestClient(app) as client:
        errors = detail(client.post("/items?page=0", json={"price": "x"}))
    assert len(errors) == 2
    assert {error["loc"][0] for error in errors} == {"body", "query"}
    assert locs(errors)[("query", "page")] == "greater_than_equal"


def test_query_and_header_errors(lib: Library) -> None:
    with TestClient(build(lib)) as client:
        errors = detail(client.get("/search?page=abc"))
        assert list(locs(errors)) == [("query", "page")]
        assert errors[0]["input"] == "abc"
        errors = detail(client.get("/search?page=0"))
        assert locs(errors) == {("query", "page"): "greater_than_equal"}
        assert client.get("/search?page=2", headers={"x-token": "t"}).json() == {
            "page": 2,
            "token": "t",
        }


def test_missing_required_header() -> None:
    app = Covet(allowed_hosts=["testserver"])

    @app.get("/")
    async def index(x_token: Annotated[str, Header()]) -> str:
        return x_token

    with TestClient(app) as client:
        errors = detail(client.get("/"))
        assert errors == [
            {
                "type": "missing",
                "loc": ["header", "x-token"],
                "msg": "Field required",
                "input": None,
            }
        ]
        assert client.get("/", headers={"X-Token": "abc"}).text == "abc"


def test_422_is_json_whatever_the_client_accepts(lib: Library) -> None:
    with TestClient(build(lib)) as client:
        for accept in ("text/html", "*/*", "text/plain"):
            answer = client.post("/items", json={"price": 1}, headers={"accept": accept})
            assert locs(detail(answer)) == {("body", "name"): "missing"}


def test_bad_multipart_is_a_400() -> None:
    app = Covet(allowed_hosts=["testserver"])

    @app.post("/signup")
    async def signup(email: Annotated[str, Form()]) -> str:
        return email

    with TestClient(app) as client:
        garbage = b"--xyz\r\nContent-Disposition: form-data; name=email\r\n\r\nann"  # no end
        answer = client.post(
            "/signup",
            content=garbage,
            headers={"content-type": "multipart/form-data; boundary=xyz"},
        )
        assert answer.status_code == 400
        answer = client.post(
            "/signup", content=b"x", headers={"content-type": "multipart/form-data"}
        )
        assert answer.status_code == 400  # no boundary
        answer = client.post("/signup", json={"email": "a"})
        assert answer.status_code == 415  # a form route refuses JSON
        assert client.post("/signup", data={"email": "ann@example.com"}).text == "ann@example.com"


def test_oversized_form_is_a_413() -> None:
    app = Covet(allowed_hosts=["testserver"])

    @app.post("/signup", limits=RequestLimits(max_body_size=32))
    async def signup(email: Annotated[str, Form()]) -> str:
        return email

    with TestClient(app) as client:
        assert client.post("/signup", data={"email": "a" * 100}).status_code == 413


def test_custom_handler_for_validation_errors(lib: Library) -> None:
    app = build(lib)

    async def problem(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"title": "Invalid", "errors": len(exc.errors())},
            status_code=400,
            media_type="application/problem+json",
        )

    app.add_exception_handler(RequestValidationError, problem)
    with TestClient(app) as client:
        answer = client.post("/items", json={})
    assert answer.status_code == 400
    # pydantic lists both missing fields; msgspec stops at the first.
    assert answer.json() == {"title": "Invalid", "errors": 2 if lib is PYDANTIC else 1}


def test_invalid_output_is_a_500_not_a_leak(lib: Library) -> None:
    with TestClient(build(lib), raise_server_exceptions=False) as client:
        answer = client.get("/bad-output")
    assert answer.status_code == 500
    assert "nom" not in answer.text


def test_request_validation_error_shape() -> None:
    exc = RequestValidationError(
        [{"type": "missing", "loc": ["body", "a"], "msg": "Field required", "input": b"\xff"}]
    )
    assert exc.status_code == 422
    assert exc.detail == "1 validation error: body.a: Field required"
    # Whatever the input held, the errors are JSON-ready.
    assert exc.errors()[0]["input"] == "\ufffd"
