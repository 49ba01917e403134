"""``@cache_page``: what is cached, what never is, and the headers of both."""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any

import pytest

from covet import Covet, HTMLResponse, JSONResponse, Response, StreamingResponse
from covet.cache import Cache, MemoryBackend, cache_page, caches
from covet.middleware import SessionMiddleware
from covet.middleware.csrf import CSRFMiddleware, get_csrf_token
from covet.testing import TestClient
from tests.cache.conftest import Clock

if TYPE_CHECKING:
    from covet.requests import Request
    from covet.types import ASGIApp, Receive, Scope, Send

SECRET = "k" * 40


class User:
    is_authenticated = True


class FakeAuth:
    """Sets ``scope["user"]`` to a logged-in user when the request has ``X-User``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(k == b"x-user" for k, _ in scope["headers"]):
            scope["user"] = User()
        await self.app(scope, receive, send)


class Site:
    """An app whose handlers count their calls, with one page cache on a fake clock."""

    def __init__(self, *, middleware: bool = False, **options: Any) -> None:
        self.clock = Clock()
        self.cache = Cache(MemoryBackend(clock=self.clock), clock=self.clock)
        self.calls: dict[str, int] = {}
        self.app = Covet(allowed_hosts=["testserver", "other.test"])
        if middleware:
            self.app.add_middleware(CSRFMiddleware)
            self.app.add_middleware(SessionMiddleware, secret_key=SECRET)
            self.app.add_middleware(FakeAuth)
        self.options = options

    def page(
        self, path: str, make: Any, *, methods: list[str] | None = None, **options: Any
    ) -> None:
        name = path.strip("/") or "root"

        async def handler(request: Request) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return make(request, self.calls[name])

        handler.__name__ = name
        decorated = cache_page(60, cache=self.cache, **{**self.options, **options})(handler)
        self.app.add_route(path, decorated, methods=methods or ["GET"])

    def client(self) -> TestClient:
        return TestClient(self.app)


def html(request: Request, n: int) -> Response:
    return HTMLResponse(f"<p>call {n}</p>")


def test_a_page_is_cached_and_served_with_age():
    site = Site()
    site.page("/", html)
    with site.client() as client:
        first = client.get("/")
        assert first.text == "<p>call 1</p>"
        assert first.headers["cache-control"] == "max-age=60"
        assert "age" not in first.headers
        site.clock.now += 7
        again = client.get("/")
        assert again.text == "<p>call 1</p>"
        assert again.headers["age"] == "7"
        assert again.headers["content-type"] == "text/html; charset=utf-8"
        assert again.headers["content-length"] == str(len(b"<p>call 1</p>"))
        site.clock.now += 60
        assert client.get("/").text == "<p>call 2</p>"  # expired
    assert site.calls["root"] == 2


def test_query_strings_and_hosts_are_part_of_the_key():
    site = Site()
    site.page("/items", html)
    with site.client() as client:
        assert client.get("/items?page=1").text == "<p>call 1</p>"
        assert client.get("/items?page=2").text == "<p>call 2</p>"
        assert client.get("/items?page=1").text == "<p>call 1</p>"
        assert client.get("/items?page=1", headers={"host": "other.test"}).text == "<p>call 3</p>"


def test_dict_results_and_sync_handlers_are_cached():
    site = Site()
    site.page("/json", lambda request, n: {"n": n})
    calls = []

    @site.app.get("/sync")
    @cache_page(60, cache=site.cache)
    def sync(request: Request) -> str:
        calls.append(1)
        return f"sync {len(calls)}"

    with site.client() as client:
        assert client.get("/json").json() == {"n": 1}
        assert client.get("/json").json() == {"n": 1}
        assert client.get("/sync").text == client.get("/sync").text == "sync 1"


def test_head_is_answered_from_the_get_entry():
    site = Site()
    site.page("/", html)
    with site.client() as client:
        client.get("/")
        head = client.head("/")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(b"<p>call 1</p>"))
    assert site.calls["root"] == 1


def test_other_methods_are_never_cached():
    site = Site()
    site.page("/form", html, methods=["GET", "POST"])
    with site.client() as client:
        assert client.post("/form").text == "<p>call 1</p>"
        assert client.post("/form").text == "<p>call 2</p>"
        assert client.get("/form").text == "<p>call 3</p>"
        assert client.post("/form").text == "<p>call 4</p>"  # a cached GET is not a POST answer


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("status", lambda r, n: HTMLResponse(f"{n}", status_code=404)),
        ("created", lambda r, n: HTMLResponse(f"{n}", status_code=201)),
        ("cookie", lambda r, n: _with_cookie(HTMLResponse(f"{n}"))),
        ("private", lambda r, n: HTMLResponse(f"{n}", headers={"Cache-Control": "private"})),
        ("nostore", lambda r, n: HTMLResponse(f"{n}", headers={"Cache-Control": "no-store"})),
        ("nocache", lambda r, n: HTMLResponse(f"{n}", headers={"Cache-Control": "no-cache"})),
        ("maxage0", lambda r, n: HTMLResponse(f"{n}", headers={"Cache-Control": "max-age=0"})),
        ("varystar", lambda r, n: HTMLResponse(f"{n}", headers={"Vary": "*"})),
        ("stream", lambda r, n: StreamingResponse(iter([f"{n}".encode()]))),
    ],
)
def test_responses_that_are_never_cached(name, make):
    site = Site()
    site.page(f"/{name}", make)
    with site.client() as client:
        assert client.get(f"/{name}").text == "1"
        assert client.get(f"/{name}").text == "2"
    assert site.cache.backend.size == 0  # type: ignore[attr-defined]


def _with_cookie(response: Response) -> Response:
    response.set_cookie("theme", "dark")
    return response


def test_a_max_age_in_the_response_sets_the_ttl():
    site = Site()
    site.page("/", lambda r, n: JSONResponse(n, headers={"Cache-Control": "public, max-age=5"}))
    with site.client() as client:
        assert client.get("/").json() == 1
        site.clock.now += 4
        cached = client.get("/")
        assert (cached.json(), cached.headers["cache-control"]) == (1, "public, max-age=5")
        site.clock.now += 2
        assert client.get("/").json() == 2


def test_pages_vary_on_the_headers_the_response_names():
    site = Site()

    def greet(request: Request, n: int) -> Response:
        lang = request.headers.get("accept-language", "en")
        return HTMLResponse(f"{lang} {n}", headers={"Vary": "Accept-Language"})

    site.page("/", greet)
    with site.client() as client:
        assert client.get("/", headers={"accept-language": "fr"}).text == "fr 1"
        assert client.get("/", headers={"accept-language": "de"}).text == "de 2"
        assert client.get("/", headers={"accept-language": "fr"}).text == "fr 1"
        assert client.get("/", headers={"accept-language": "de"}).text == "de 2"


def test_encoded_responses_vary_on_accept_encoding():
    site = Site()

    def encoded(request: Request, n: int) -> Response:
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(gzip.compress(b"gz%d" % n), headers={"Content-Encoding": "gzip"})
        return Response(b"plain%d" % n)

    site.page("/", encoded)
    with site.client() as client:
        assert client.get("/", headers={"accept-encoding": "gzip"}).content == b"gz1"
        assert client.get("/", headers={"accept-encoding": "identity"}).content == b"plain2"
        assert client.get("/", headers={"accept-encoding": "gzip"}).content == b"gz1"


def test_logged_in_users_and_sessions_bypass_the_cache():
    site = Site(middleware=True)
    site.page("/", html)

    @site.app.get("/login")
    async def login(request: Request) -> str:
        request.session["user"] = "ann"
        return "in"

    with site.client() as anonymous, site.client() as member:
        assert anonymous.get("/").text == "<p>call 1</p>"
        assert anonymous.get("/").text == "<p>call 1</p>"
        # A logged-in user is neither served the shared page nor stored.
        assert member.get("/", headers={"x-user": "1"}).text == "<p>call 2</p>"
        assert member.get("/", headers={"x-user": "1"}).text == "<p>call 3</p>"
        # Nor is a visitor with session data.
        member.get("/login")
        assert member.get("/").text == "<p>call 4</p>"
        assert anonymous.get("/").text == "<p>call 1</p>"


def test_authenticated_true_caches_per_visitor():
    site = Site(middleware=True, authenticated=True)
    site.page("/", html)

    @site.app.get("/login")
    async def login(request: Request) -> str:
        request.session["user"] = request.query_params["name"]
        return "in"

    with site.client() as ann, site.client() as bob:
        ann.get("/login?name=ann")
        bob.get("/login?name=bob")
        first = ann.get("/")
        assert first.text == "<p>call 1</p>"
        assert first.headers["cache-control"] == "private, max-age=60"
        assert ann.get("/").text == "<p>call 1</p>"
        assert bob.get("/").text == "<p>call 2</p>"  # keyed on the Cookie header


def test_pages_holding_a_csrf_token_or_changing_the_session_are_not_cached():
    site = Site(middleware=True)
    site.page("/form", lambda request, n: HTMLResponse(f"{get_csrf_token(request)} {n}"))

    def flash(request: Request, n: int) -> Response:
        request.session["seen"] = n
        return HTMLResponse(f"{n}")

    site.page("/flash", flash)
    with site.client() as client:
        first = client.get("/form").text
        assert client.get("/form").text != first
        assert client.get("/flash").text == "1"
    with site.client() as other:  # a new visitor, no session yet
        assert other.get("/flash").text == "2"
    assert site.calls == {"form": 2, "flash": 2}


def test_the_default_and_named_caches_are_looked_up_per_request():
    saved = (caches._definitions, caches._caches)
    try:
        app = Covet(allowed_hosts=["testserver"])
        calls: list[int] = []

        @app.get("/")
        @cache_page(60, cache="pages")
        async def home(request: Request) -> str:
            calls.append(1)
            return f"call {len(calls)}"

        caches.configure(pages=Cache(key_prefix="pages"))
        with TestClient(app) as client:
            assert client.get("/").text == client.get("/").text == "call 1"
    finally:
        caches._definitions, caches._caches = saved


def test_the_decorated_handler_keeps_its_signature():
    app = Covet(allowed_hosts=["testserver"])

    @app.get("/items/{item_id:int}")
    @cache_page(60, cache=Cache())
    async def item(request: Request, item_id: int) -> dict[str, int]:
        return {"id": item_id}

    with TestClient(app) as client:
        assert client.get("/items/3").json() == {"id": 3}
        assert client.get("/items/4").json() == {"id": 4}


def test_a_cache_that_is_down_serves_uncached(caplog):
    down = Cache("redis://127.0.0.1:1/0")  # nothing listens on port 1
    app = Covet(allowed_hosts=["testserver"])
    calls: list[int] = []

    @app.get("/")
    @cache_page(60, cache=down)
    async def home(request: Request) -> str:
        calls.append(1)
        return f"call {len(calls)}"

    with TestClient(app) as client:
        assert client.get("/").text == "call 1"
        assert client.get("/").text == "call 2"
    assert "without the page cache" in caplog.text


def test_a_handler_whose_cache_is_down_answers_503():
    down = Cache("redis://127.0.0.1:1/0")
    app = Covet(allowed_hosts=["testserver"])

    @app.get("/")
    async def home(request: Request) -> str:
        return str(await down.get("k"))

    with TestClient(app) as client:
        answer = client.get("/", headers={"accept": "application/json"})
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "2"
