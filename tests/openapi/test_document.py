"""``app.openapi()``: what each route feature becomes in the OpenAPI 3.1 document.

(No ``from __future__ import annotations``: handlers defined in tests name local types.)
"""

from typing import Annotated, Any

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel

from covet import Covet, Request, Router
from covet.auth import login_required, requires
from covet.exceptions import ImproperlyConfigured
from covet.middleware import AuthenticationMiddleware, SessionMiddleware
from covet.openapi import OpenAPIConfig
from covet.params import Cookie, Form, Header, Query
from covet.testing import TestClient
from tests.auth.models import APIToken, AuthUser
from tests.openapi.example import app as example


def _operation(document: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    return document["paths"][path][method]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    result = example.openapi()
    validate(result)  # openapi-spec-validator: a valid OpenAPI 3.1 document
    return result


def test_info_comes_from_the_config(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {
        "title": "Example shop",
        "version": "2.0.0",
        "description": "Items and notes.",
    }


def test_paths_drop_converters_and_private_routes(document: dict[str, Any]) -> None:
    assert sorted(document["paths"]) == [
        "/items/",
        "/items/{item_id}",
        "/login-form",
        "/notes",
        "/pair",
        "/search",
        "/things/{thing}/{slug}",
        "/upload",
        "/whoami",
    ]
    assert "head" not in document["paths"]["/items/"]  # implied by GET


def test_converters_give_path_schemas(document: dict[str, Any]) -> None:
    thing, slug = _operation(document, "/things/{thing}/{slug}")["parameters"]
    assert thing == {
        "name": "thing",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }
    assert slug["schema"] == {"type": "string", "pattern": "^(?:[-a-zA-Z0-9_]+)$"}
    (item_id,) = _operation(document, "/items/{item_id}")["parameters"]
    # The int converter (digits only) and the Path(ge=1, le=10**9) constraints.
    assert item_id["schema"] == {"type": "integer", "minimum": 1, "maximum": 10**9}


def test_names_and_docstrings_become_operation_id_summary_description(
    document: dict[str, Any],
) -> None:
    listing = _operation(document, "/items/")
    assert listing["operationId"] == "list_items"
    assert listing["summary"] == "List the items."
    assert listing["description"] == "Filtered by colour, a page at a time."
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_query_parameters_with_constraints_defaults_and_dependencies(
    document: dict[str, Any],
) -> None:
    page, colour = _operation(document, "/items/")["parameters"]
    # ``page`` is read by the pagination dependency, not the handler.
    assert page == {
        "name": "page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1},
    }
    assert colour["description"] == "Only this colour"
    assert colour["schema"]["anyOf"][0] == {"$ref": "#/components/schemas/Colour"}
    assert document["components"]["schemas"]["Colour"]["enum"] == ["red", "green"]


def test_a_query_model_is_spread_into_parameters(document: dict[str, Any]) -> None:
    names = [(p["name"], p["in"]) for p in _operation(document, "/search")["parameters"]]
    assert names == [("q", "query"), ("limit", "query")]


def test_header_and_cookie_parameters(document: dict[str, Any]) -> None:
    (client,) = _operation(document, "/whoami")["parameters"]
    assert client == {"name": "x-client", "in": "header", "schema": client["schema"]}
    assert client["schema"]["maxLength"] == 40
    app = Covet()

    @app.get("/prefs")
    async def prefs(theme: Annotated[str, Cookie(max_length=20)] = "light") -> dict[str, str]:
        return {"theme": theme}

    (theme,) = app.openapi()["paths"]["/prefs"]["get"]["parameters"]
    assert theme == {
        "name": "theme",
        "in": "cookie",
        "schema": {"type": "string", "maxLength": 20, "default": "light"},
    }


def test_json_body_shared_through_components(document: dict[str, Any]) -> None:
    body = _operation(document, "/items/", "post")["requestBody"]
    assert body == {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ItemIn"}}},
    }
    schemas = document["components"]["schemas"]
    # Nested models are components too, referenced (not inlined) from their parents.
    assert schemas["ItemIn"]["properties"]["tags"]["items"] == {"$ref": "#/components/schemas/Tag"}


def test_embedded_bodies_are_members_of_one_object(document: dict[str, Any]) -> None:
    schema = _operation(document, "/pair", "put")["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert schema["required"] == ["left", "right"]
    assert schema["properties"]["left"] == {"$ref": "#/components/schemas/Tag"}


def test_msgspec_models_are_described_too(document: dict[str, Any]) -> None:
    operation = _operation(document, "/notes", "post")
    ref = {"$ref": "#/components/schemas/Note"}
    assert operation["requestBody"]["content"]["application/json"]["schema"] == ref
    assert operation["responses"]["201"]["content"]["application/json"]["schema"] == ref
    assert document["components"]["schemas"]["Note"]["required"] == ["title"]


def test_urlencoded_form(document: dict[str, Any]) -> None:
    body = _operation(document, "/login-form", "post")["requestBody"]
    schema = body["content"]["application/x-www-form-urlencoded"]["schema"]
    assert schema["required"] == ["email"]
    # covet reads an empty form value as absent: a required one is non-empty.
    assert schema["properties"]["email"] == {"type": "string", "maxLength": 100, "minLength": 1}


def test_multipart_form_with_files(document: dict[str, Any]) -> None:
    body = _operation(document, "/upload", "post")["requestBody"]
    schema = body["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["title", "file"]
    binary = {"type": "string", "contentMediaType": "application/octet-stream"}
    assert schema["properties"]["file"] == binary
    assert schema["properties"]["extra"] == {"type": "array", "items": binary}


def test_responses_status_model_and_errors(document: dict[str, Any]) -> None:
    created = _operation(document, "/items/", "post")["responses"]
    assert sorted(created) == ["201", "400", "413", "415", "422"]
    assert created["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ItemOut"
    }
    assert created["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HTTPValidationError"
    }
    deleted = _operation(document, "/items/{item_id}", "delete")["responses"]
    assert deleted["204"] == {"description": "Successful Response"}  # no body
    # A plain route has no validation and no body: no 422, 400, 413, 415.
    assert sorted(_operation(document, "/things/{thing}/{slug}")["responses"]) == ["200", "404"]


def test_the_422_schema_is_fastapis(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["HTTPValidationError"]["properties"]["detail"]["items"] == {
        "$ref": "#/components/schemas/ValidationError"
    }
    assert schemas["ValidationError"]["required"] == ["loc", "msg", "type"]


def test_the_422_body_matches_its_schema() -> None:
    import jsonschema  # type: ignore[import-untyped]

    with TestClient(example) as client:
        document = client.get("/openapi.json").json()
        response = client.post("/items/", json={"name": "", "price": -1})
    assert response.status_code == 422
    schemas = document["components"]["schemas"]
    root = {**schemas["HTTPValidationError"], "components": {"schemas": schemas}}
    jsonschema.validate(response.json(), root)


def test_tags_from_routers_routes_and_config(document: dict[str, Any]) -> None:
    assert _operation(document, "/items/")["tags"] == ["items"]
    assert _operation(document, "/search")["tags"] == ["search"]
    assert "tags" not in _operation(document, "/whoami")
    assert document["tags"] == [
        {"name": "items", "description": "Things for sale"},
        {"name": "search"},
    ]


def test_include_router_adds_tags_and_can_hide_a_router() -> None:
    inner = Router(prefix="/v1", tags=["v1"])

    @inner.get("/a", tags=["a"])
    async def a(request: Request) -> dict[str, int]:
        return {}

    hidden = Router(prefix="/admin")

    @hidden.get("/b")
    async def b(request: Request) -> dict[str, int]:
        return {}

    app = Covet()
    app.include_router(inner, prefix="/api", tags=["api"])
    app.include_router(hidden, include_in_schema=False)
    document = app.openapi()
    assert list(document["paths"]) == ["/api/v1/a"]
    assert document["paths"]["/api/v1/a"]["get"]["tags"] == ["api", "v1", "a"]
    assert Router(include_in_schema=False).include_in_schema is False


def test_mounted_covet_routers_and_apps_are_described() -> None:
    router = Router()

    @router.get("/r")
    async def r(request: Request) -> dict[str, int]:
        return {}

    sub = Covet()

    @sub.get("/s/{n:int}")
    async def s(request: Request, n: int) -> dict[str, int]:
        return {}

    app = Covet()
    app.mount("/router", router)
    app.mount("/sub", sub)
    assert sorted(app.openapi()["paths"]) == ["/router/r", "/sub/s/{n}"]


def test_several_methods_get_one_operation_id_each() -> None:
    app = Covet()

    @app.route("/thing", methods=["GET", "POST"])
    async def thing(request: Request) -> dict[str, int]:
        return {}

    item = app.openapi()["paths"]["/thing"]
    assert (item["get"]["operationId"], item["post"]["operationId"]) == ("thing_get", "thing_post")


def test_parameter_marker_documentation_and_hidden_parameters() -> None:
    app = Covet()

    @app.get("/p")
    async def p(
        q: Annotated[
            int,
            Query(title="Q", description="A number", examples=[3], deprecated=True),
        ] = 1,
        secret: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> dict[str, int]:
        return {}

    (q,) = app.openapi()["paths"]["/p"]["get"]["parameters"]
    assert q["description"] == "A number"
    assert q["deprecated"] is True
    assert q["examples"] == {"example1": {"value": 3}}
    assert q["schema"]["title"] == "Q"


def test_two_models_with_one_name_both_survive() -> None:
    def make(field: str) -> type[BaseModel]:
        return type("Thing", (BaseModel,), {"__annotations__": {field: int}})

    first, second = make("a"), make("b")
    app = Covet()

    @app.post("/one")
    async def one(body: first) -> dict[str, int]:  # type: ignore[valid-type]
        return {}

    @app.post("/two")
    async def two(body: second) -> dict[str, int]:  # type: ignore[valid-type]
        return {}

    document = app.openapi()
    validate(document)
    assert sorted(document["components"]["schemas"]) == [
        "HTTPValidationError",
        "Thing",
        "Thing2",
        "ValidationError",
    ]


def test_security_schemes_come_from_the_middleware() -> None:
    app = Covet()
    app.add_middleware(SessionMiddleware, secret_key="k" * 32)
    app.add_middleware(AuthenticationMiddleware, user_model=AuthUser, token_model=APIToken)

    @app.get("/me")
    @login_required
    async def me(request: Request) -> dict[str, int]:
        """Who is logged in."""
        return {}

    @app.post("/posts")
    @requires("posts.add")
    async def add_post(request: Request) -> dict[str, int]:
        return {}

    @app.get("/open")
    async def open_route(request: Request) -> dict[str, int]:
        return {}

    document = app.openapi()
    validate(document)
    schemes = document["components"]["securitySchemes"]
    assert schemes["sessionCookie"]["type"] == "apiKey"
    assert (schemes["sessionCookie"]["in"], schemes["sessionCookie"]["name"]) == (
        "cookie",
        "session",
    )
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerAuth"]["description"],
    }
    guarded = document["paths"]["/me"]["get"]
    assert guarded["security"] == [{"sessionCookie": []}, {"bearerAuth": []}]
    assert guarded["summary"] == "Who is logged in."
    assert sorted(guarded["responses"]) == ["200", "401"]
    assert sorted(document["paths"]["/posts"]["post"]["responses"]) == ["200", "401", "403"]
    assert "security" not in document["paths"]["/open"]["get"]


def test_no_security_schemes_without_the_middleware() -> None:
    app = Covet()
    app.add_middleware(SessionMiddleware, secret_key="k" * 32, cookie_name="sid")
    app.add_middleware(AuthenticationMiddleware, user_model=AuthUser)  # sessions only
    schemes = app.openapi()["components"]["securitySchemes"]
    assert list(schemes) == ["sessionCookie"]
    assert schemes["sessionCookie"]["name"] == "sid"
    assert "components" not in Covet().openapi()


class Signup(BaseModel):
    email: str
    age: int = 0


def test_form_model_fields_are_the_form() -> None:
    app = Covet()

    @app.post("/signup")
    async def signup(form: Annotated[Signup, Form()]) -> dict[str, int]:
        return {}

    body = app.openapi()["paths"]["/signup"]["post"]["requestBody"]
    schema = body["content"]["application/x-www-form-urlencoded"]["schema"]
    assert schema["required"] == ["email"]
    assert schema["properties"]["email"]["minLength"] == 1
    assert schema["properties"]["age"]["type"] == "integer"


def test_the_document_is_cached_once_the_app_has_started() -> None:
    app = Covet()
    first = app.openapi()
    assert app.openapi() is not first  # routes may still change: built again

    @app.get("/late")
    async def late(request: Request) -> dict[str, int]:
        return {}

    assert "/late" in app.openapi()["paths"]
    with TestClient(app):
        cached = app.openapi()
        assert app.openapi() is cached


def test_config_is_checked() -> None:
    with pytest.raises(ImproperlyConfigured, match="docs_path='docs'"):
        OpenAPIConfig(docs_path="docs")
    with pytest.raises(ImproperlyConfigured, match="both at '/x'"):
        OpenAPIConfig(path="/x", docs_path="/x")
    with pytest.raises(ImproperlyConfigured, match="title=''"):
        OpenAPIConfig(title="")
    with pytest.raises(ImproperlyConfigured, match="is not an OpenAPIConfig"):
        Covet(openapi={"title": "x"})  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured, match="tags='items'"):
        Router(tags="items")
