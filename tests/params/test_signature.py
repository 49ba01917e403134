"""What route registration reads from a handler, and what it refuses there.

``Route.signature`` is the single description of a route's inputs and output
(the API documentation reads it), so its contents are pinned here.
"""

import subprocess
import sys
from typing import Annotated, Any

import msgspec
import pytest
from pydantic import BaseModel

from covet import Covet, JSONResponse, Request
from covet.datastructures import UploadFile
from covet.exceptions import ImproperlyConfigured
from covet.params import MISSING, Body, Depends, Form, Header, Path, Query
from covet.params.engines import get_engine, is_model_type, libraries_in
from covet.routing import Route
from tests.params.models import Item, Movie, Point, SItem, User

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def route_of(handler: Any, path: str = "/", **options: Any) -> Route:
    return Route(path, handler, **options)


def test_plain_handlers_stay_plain() -> None:
    async def index(request: Request) -> JSONResponse:
        return JSONResponse({})

    async def item(request: Request, item_id: int) -> dict[str, Any]:
        return {}

    async def untyped(req, item_id):
        return {}

    async def kwargs(request: Request, **params: Any) -> dict[str, Any]:
        return params

    class App:
        async def __call__(self, *args: Any) -> None:
            return None

    for handler, path in [
        (index, "/"),
        (item, "/items/{item_id:int}"),
        (untyped, "/items/{item_id}"),
        (kwargs, "/{a}/{b}"),
        (App(), "/"),
    ]:
        route = route_of(handler, path)
        assert route.signature.plain, handler
        assert route._is_async


def test_signature_lists_every_declared_input() -> None:
    def pagination(
        page: Annotated[int, Query(ge=1, description="Page number")] = 1,
        x_client: Annotated[str | None, Header()] = None,
    ) -> int:
        return page

    async def create(
        request: Request,
        shop: str,
        item: Item,
        page: Annotated[int, Depends(pagination)],
        tags: Annotated[list[str], Query(alias="tag")] = [],  # noqa: B006 - never mutated
    ) -> User:
        return User(name="x")

    route = route_of(create, "/shops/{shop}/items", methods=["POST"], status_code=201)
    signature = route.signature
    assert not signature.plain
    assert signature.status_code == 201
    assert signature.response is not None
    assert (signature.response.annotation, signature.response.engine) == (User, "pydantic")
    found = {p.name: p for p in signature.parameters()}
    assert list(found) == ["shop", "item", "page", "x_client", "tags"]
    shop, item, page, client, tags = found.values()
    assert (shop.source, shop.engine, shop.required) == ("path", None, True)
    assert (item.source, item.whole, item.annotation, item.engine) == (
        "body",
        True,
        Item,
        "pydantic",
    )
    assert (page.source, page.alias, page.default, page.constraints) == (
        "query",
        "page",
        1,
        {"ge": 1},
    )
    assert page.marker is not None and page.marker.description == "Page number"  # type: ignore[union-attr]
    assert (client.source, client.alias, client.required) == ("header", "x-client", False)
    assert (tags.source, tags.alias, tags.sequence, tags.engine) == ("query", "tag", True, None)
    (dependency,) = [p for p in signature.handler.parameters if p.source == "dependency"]
    assert dependency.dependency is not None and dependency.dependency.call is pagination
    assert signature.engines == frozenset({"pydantic"})


def test_classification_without_markers() -> None:
    async def handler(a: int, b: Point, c: str = "") -> None:
        return None

    async def upload(f: UploadFile, files: list[UploadFile]) -> None:
        return None

    sources = {p.name: p.source for p in route_of(handler).signature.parameters()}
    assert sources == {"a": "query", "b": "body", "c": "query"}
    uploads = list(route_of(upload).signature.parameters())
    assert [(p.source, p.sequence, p.engine) for p in uploads] == [
        ("form", False, None),
        ("form", True, None),
    ]


def test_engine_follows_the_models_of_the_route() -> None:
    async def with_msgspec(item: SItem, n: int = 0) -> None:
        return None

    async def with_nothing(n: int = 0) -> None:
        return None

    engines = {p.name: p.engine for p in route_of(with_msgspec).signature.parameters()}
    assert engines == {"item": "msgspec", "n": "msgspec"}
    assert [p.engine for p in route_of(with_nothing).signature.parameters()] == ["pydantic"]


def test_several_bodies_are_embedded() -> None:
    async def two(item: Item, user: User) -> None:
        return None

    async def embed(item: Annotated[Item, Body(embed=True)]) -> None:
        return None

    for handler in (two, embed):
        signature = route_of(handler).signature
        assert signature.embed_body
        assert not any(p.whole for p in signature.parameters())


def test_response_model_inference() -> None:
    async def model() -> Item:
        return Item(name="a", price=1)

    async def response() -> JSONResponse:
        return JSONResponse({})

    async def mapping(request: Request) -> dict[str, Any]:
        return {}

    async def models() -> list[SItem]:
        return []

    assert route_of(model).signature.response is not None
    assert route_of(response).signature.response is None
    assert route_of(mapping).signature.plain  # a dict is not a model: no cost added
    assert route_of(models).signature.response.engine == "msgspec"  # type: ignore[union-attr]
    assert route_of(model, response_model=None).signature.response is None
    explicit = route_of(mapping, response_model=User).signature.response
    assert explicit is not None and explicit.annotation is User


def test_annotations_under_type_checking_are_tolerated_where_unneeded() -> None:
    namespace: dict[str, Any] = {}
    exec(  # noqa: S102 - a module with TYPE_CHECKING-only imports, as apps write them
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from covet import Request, Response\n"
        "async def handler(request: Request, item_id: int) -> Response:\n"
        "    return None\n"
        "async def typed(request: Request, q: Missing) -> None:\n"
        "    return None\n",
        namespace,
    )
    assert route_of(namespace["handler"], "/{item_id:int}").signature.plain
    with pytest.raises(
        ImproperlyConfigured, match="'Missing' of parameter 'q' cannot be evaluated"
    ):
        route_of(namespace["typed"])


@pytest.mark.parametrize(
    ("path", "annotation", "message"),
    [
        ("/{n}", int, r"annotated int but its converter gives str. Write '\{n:int\}'"),
        ("/{n:int}", str, r"annotated str but its converter gives int"),
        ("/{n:float}", int, r"Write '\{n:int\}'"),
    ],
)
def test_path_annotation_must_match_its_converter(
    path: str, annotation: type, message: str
) -> None:
    async def handler(n):
        return None

    handler.__annotations__["n"] = annotation
    with pytest.raises(ImproperlyConfigured, match=message):
        route_of(handler, path)


def test_float_annotation_accepts_an_int_converter() -> None:
    async def handler(request: Request, n: float) -> None:
        return None

    assert route_of(handler, "/{n:int}").signature.plain


def test_registration_errors() -> None:
    async def two_markers(q: Annotated[int, Query(), Header()]) -> None:
        return None

    async def marker_twice(q: Annotated[int, Query()] = Query()) -> None:  # type: ignore[assignment]
        return None

    async def default_twice(q: Annotated[int, Query(3)] = 4) -> None:
        return None

    async def no_placeholder(n: Annotated[int, Path()]) -> None:
        return None

    async def path_default(n: Annotated[int, Path(ge=1)] = 1) -> None:
        return None

    async def json_and_form(item: Item, name: Annotated[str, Form()]) -> None:
        return None

    async def mixed(item: list[Item | SItem]) -> None:
        return None

    class Opaque:
        pass

    async def opaque(q: Opaque) -> None:
        return None

    cases = [
        (two_markers, "/", "several markers"),
        (marker_twice, "/", "both in Annotated and as its default"),
        (default_twice, "/", "default both in"),
        (no_placeholder, "/", "has no {n} placeholder"),
        (path_default, "/{n:int}", "cannot have a default"),
        (json_and_form, "/", "both a JSON body"),
        (mixed, "/", "mixes pydantic and msgspec"),
        (opaque, "/", "pydantic cannot validate parameter 'q'"),
    ]
    for handler, path, message in cases:
        with pytest.raises(ImproperlyConfigured, match=message):
            route_of(handler, path)


def test_dependency_errors() -> None:
    with pytest.raises(ImproperlyConfigured, match="not callable"):
        Depends(3)  # type: ignore[arg-type]

    def first(value: Annotated[int, Depends(lambda: 1)]) -> int:
        return value

    async def missing_path(request: Request) -> None:
        return None

    with pytest.raises(ImproperlyConfigured, match="does not accept the path parameter"):
        route_of(missing_path, "/{x}")

    async def uses_path_in_dependency(
        value: Annotated[int, Depends(lambda x: x)],
    ) -> None:
        return None

    # A path parameter declared only by a dependency counts as accepted.
    assert not route_of(uses_path_in_dependency, "/{x}").signature.plain

    def a(value: Any = None) -> int:
        return 1

    def b(value: Annotated[int, Depends(a)]) -> int:
        return value

    a.__annotations__["value"] = Annotated[int, Depends(b)]
    a.__defaults__ = None

    async def cyclic(value: Annotated[int, Depends(a)]) -> None:
        return None

    with pytest.raises(ImproperlyConfigured, match="form a cycle"):
        route_of(cyclic)


def test_markers() -> None:
    with pytest.raises(ImproperlyConfigured, match="both default"):
        Query(1, default_factory=list)
    with pytest.raises(ImproperlyConfigured, match="non-empty string"):
        Header(alias="")
    assert Query(...).default is MISSING
    assert repr(Query(1, alias="page-size", ge=1)) == "Query(1, alias='page-size', ge=1)"
    assert Header().convert_underscores
    assert Form().media_type == "application/x-www-form-urlencoded"
    assert Body(embed=True).media_type == "application/json"
    assert repr(Depends(len)) == "Depends(len)"
    assert not MISSING


def test_model_detection() -> None:
    class Plain:
        pass

    assert is_model_type(Item) and is_model_type(SItem) and is_model_type(Point)
    assert is_model_type(Movie) and is_model_type(list[Item]) and is_model_type(Item | None)
    assert not is_model_type(int) and not is_model_type(Plain) and not is_model_type(list[int])
    assert libraries_in(Annotated[int, msgspec.Meta(ge=1)]) == {"msgspec"}
    assert libraries_in(dict[str, list[Item]]) == {"pydantic"}
    assert libraries_in(Point) == set()


def test_engines_describe_types_as_json_schema() -> None:
    class Upload(BaseModel):
        file: UploadFile

    pydantic_schema = get_engine("pydantic").json_schema(Item)
    assert set(pydantic_schema["properties"]) == {"name", "price", "color", "tags"}
    assert get_engine("pydantic").json_schema(Upload)["properties"]["file"]["format"] == "binary"
    msgspec_schema = get_engine("msgspec").json_schema(SItem)
    assert "SItem" in str(msgspec_schema)
    assert get_engine("msgspec").json_schema(UploadFile) == {"type": "string", "format": "binary"}
    with pytest.raises(ValueError, match="Unknown validation library"):
        get_engine("marshmallow")


def test_without_a_validation_library_typed_routes_say_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['pydantic'] = None\n"
        "sys.modules['msgspec'] = None\n"
        "from covet import Covet, Request\n"
        "app = Covet()\n"
        "@app.get('/plain/{n:int}')\n"
        "async def plain(request: Request, n: int):\n"
        "    return {}\n"
        "@app.get('/text')\n"
        "async def text(q: str = ''):\n"
        "    return q\n"
        "try:\n"
        "    @app.get('/typed')\n"
        "    async def typed(q: int = 0):\n"
        "        return {}\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert "pip install 'covet-web[validation]'" in result.stdout


def test_app_without_typed_routes_never_imports_the_libraries() -> None:
    code = (
        "import sys\n"
        "from covet import Covet, Request\n"
        "from covet.testing import TestClient\n"
        "app = Covet(allowed_hosts=['testserver'])\n"
        "@app.get('/{n:int}')\n"
        "async def plain(request: Request, n: int, q: str = ''):\n"
        "    return {'n': n}\n"
        "with TestClient(app) as client:\n"
        "    assert client.get('/3').json() == {'n': 3}\n"
        "print(sorted(m for m in ('pydantic', 'msgspec', 'covet.params.binding') "
        "if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    # A str query parameter needs no library; only the (light) binder is loaded.
    assert result.stdout.strip() == "['covet.params.binding']"


def test_registration_is_refused_once_the_app_serves() -> None:
    app = Covet(allowed_hosts=["testserver"])
    app._build("test")

    async def handler(q: int = 0) -> None:
        return None

    with pytest.raises(ImproperlyConfigured, match="Cannot add route"):
        app.add_route("/", handler)
