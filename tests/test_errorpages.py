"""Error pages: HTML for browsers, JSON for API clients, text for the rest; overridable."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from typing import TYPE_CHECKING, Any

import pytest

from covet import Covet, HTTPException, Request
from covet.errorpages import error_response, preferred_format
from covet.exceptions import ImproperlyConfigured
from covet.staticfiles import StaticFiles
from covet.templates import Templates
from covet.testing import TestClient
from tests.cli.conftest import run_covet

if TYPE_CHECKING:
    from pathlib import Path

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


class Passthrough:
    """A do-nothing user middleware: with it, the app serves through the full stack."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(params=["direct", "stacked"])
def shape(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_app(shape: str = "direct", **options: Any) -> Covet:
    app = Covet(allowed_hosts=["testserver"], **options)

    @app.get("/forbidden")
    async def forbidden(request: Request) -> str:
        raise HTTPException(403, "Members only <b>here</b>.")

    @app.get("/slow-down")
    async def slow_down(request: Request) -> str:
        raise HTTPException(429, headers={"Retry-After": "30"})

    @app.get("/boom")
    async def boom(request: Request) -> str:
        raise RuntimeError("secret internals in /srv/app.py")

    if shape == "stacked":
        app.add_middleware(Passthrough)
    return app


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (BROWSER, "html"),
        ("text/html", "html"),
        ("application/xhtml+xml", "html"),
        ("application/json", "json"),
        ("application/problem+json", "json"),
        ("application/json, text/html;q=0.5", "json"),
        ("text/html;q=0.9, application/json;q=0.9", "html"),
        ("text/html;q=0, application/json", "json"),
        ("text/html;q=bogus", "text"),
        ("*/*", "text"),
        ("text/plain", "text"),
        (None, "text"),
    ],
)
def test_preferred_format_follows_accept(accept: str | None, expected: str) -> None:
    headers = [] if accept is None else [(b"accept", accept.encode())]
    assert preferred_format({"type": "http", "headers": headers}) == expected


@pytest.mark.parametrize(
    ("path", "status", "title"),
    [
        ("/missing", 404, "Not Found"),
        ("/forbidden", 403, "Forbidden"),
        ("/slow-down", 429, "Too Many Requests"),
        ("/boom", 500, "Internal Server Error"),
    ],
)
def test_browsers_get_the_builtin_html_page(shape: str, path: str, status: int, title: str) -> None:
    with TestClient(make_app(shape), raise_server_exceptions=False) as client:
        response = client.get(path, headers={"Accept": BROWSER})
    assert response.status_code == status
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    body = response.text
    assert body.startswith("<!doctype html>")
    assert f"<h1>{title}</h1>" in body
    assert f"<title>{status} {title}</title>" in body
    # Self-contained: inline style, nothing loaded from anywhere.
    assert "<style>" in body and "<link" not in body and "<script" not in body
    assert "src=" not in body
    assert "Traceback" not in body and "secret internals" not in body


def test_builtin_page_escapes_the_detail_and_keeps_headers() -> None:
    with TestClient(make_app()) as client:
        page = client.get("/forbidden", headers={"Accept": BROWSER})
        slow = client.get("/slow-down", headers={"Accept": BROWSER})
    assert "Members only &lt;b&gt;here&lt;/b&gt;." in page.text
    assert "<b>" not in page.text
    assert slow.headers["retry-after"] == "30"
    assert "Too many requests. Wait a moment, then try again." in slow.text


def test_builtin_page_policy_allows_only_its_own_style() -> None:
    with TestClient(make_app()) as client:
        response = client.get("/missing", headers={"Accept": BROWSER})
    policy = response.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'; style-src 'sha256-")
    style = re.search(r"<style>(.*?)</style>", response.text, re.DOTALL)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy


def test_head_request_for_an_error_page_has_no_body() -> None:
    with TestClient(make_app()) as client:
        response = client.head("/missing", headers={"Accept": BROWSER})
    assert (response.status_code, response.content) == (404, b"")


def test_json_and_text_clients_keep_their_formats(shape: str) -> None:
    with TestClient(make_app(shape), raise_server_exceptions=False) as client:
        as_json = client.get("/forbidden", headers={"Accept": "application/json"})
        as_text = client.get("/forbidden", headers={"Accept": "*/*"})
        missing = client.get("/missing", headers={"Accept": "*/*"})
        crash = client.get("/boom", headers={"Accept": "application/json"})
    assert as_json.json() == {"detail": "Members only <b>here</b>."}
    assert as_text.headers["content-type"] == "text/plain; charset=utf-8"
    assert as_text.text == "Members only <b>here</b>."
    assert missing.text == "Not Found"
    assert (crash.status_code, crash.json()) == (500, {"detail": "Internal Server Error"})


# ------------------------------------------------------------ project templates


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")


def project_templates(root: Path, **files: str) -> Templates:
    for name, text in files.items():
        write(root, name.replace("__", "/") + ".html", text)
    return Templates(directory=root)


def test_project_templates_override_the_builtin_page(shape: str, tmp_path: Path) -> None:
    templates = project_templates(
        tmp_path,
        errors__404="<h1>Lost: {{ title }}</h1><p>{{ detail }}</p><p>{{ message }}</p>",
        errors__default="<h1>Oops {{ status_code }}</h1><p>{{ detail }}</p>",
    )
    app = make_app(shape, error_templates=templates)
    with TestClient(app, raise_server_exceptions=False) as client:
        missing = client.get("/missing", headers={"Accept": BROWSER})
        forbidden = client.get("/forbidden", headers={"Accept": BROWSER})
        crash = client.get("/boom", headers={"Accept": BROWSER})
        as_json = client.get("/missing", headers={"Accept": "application/json"})
    assert missing.status_code == 404
    assert missing.text.startswith("<h1>Lost: Not Found</h1><p>Not Found</p>")
    assert "does not exist" in missing.text
    # No errors/403.html: errors/default.html, with the detail escaped.
    assert forbidden.status_code == 403
    assert forbidden.text == "<h1>Oops 403</h1><p>Members only &lt;b&gt;here&lt;/b&gt;.</p>"
    assert (crash.status_code, crash.text) == (500, "<h1>Oops 500</h1><p>Internal Server Error</p>")
    assert as_json.json() == {"detail": "Not Found"}


def test_missing_templates_fall_back_to_the_builtin_page(tmp_path: Path) -> None:
    templates = project_templates(tmp_path, errors__404="<h1>Lost</h1>")
    with TestClient(make_app(error_templates=templates)) as client:
        response = client.get("/forbidden", headers={"Accept": BROWSER})
    assert response.status_code == 403
    assert "<h1>Forbidden</h1>" in response.text


@pytest.mark.parametrize(
    "broken",
    [
        "{{ 1 // 0 }}",  # fails while rendering
        "{% extends 'nowhere.html' %}",  # a template it extends is missing
        "{{ csrf_token() }}",  # needs middleware the app does not have
        "{% if %}",  # a syntax error
    ],
)
def test_a_failing_template_falls_back_and_is_logged(
    shape: str, tmp_path: Path, broken: str, caplog: pytest.LogCaptureFixture
) -> None:
    templates = project_templates(tmp_path, errors__404=broken, errors__500=broken)
    with caplog.at_level(logging.ERROR, logger="covet.error"):  # noqa: SIM117
        with TestClient(make_app(shape, error_templates=templates)) as client:
            missing = client.get("/missing", headers={"Accept": BROWSER})
            client.raise_server_exceptions = False
            crash = client.get("/boom", headers={"Accept": BROWSER})
    assert missing.status_code == 404 and "<h1>Not Found</h1>" in missing.text
    # A 500 whose template fails is still the one 500, with the built-in page.
    assert crash.status_code == 500 and "<h1>Internal Server Error</h1>" in crash.text
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "The error template 'errors/404.html' failed; the built-in 404 page was sent instead",
        "Unhandled RuntimeError while serving GET '/boom'",
        "The error template 'errors/500.html' failed; the built-in 500 page was sent instead",
    ]


def test_error_templates_must_be_templates() -> None:
    with pytest.raises(ImproperlyConfigured, match="is not a Templates object"):
        Covet(error_templates="templates")  # type: ignore[arg-type]


async def test_error_response_for_custom_handlers() -> None:
    from tests.asgi import http_scope

    request = Request(http_scope("/", headers=[(b"accept", b"application/json")]))
    response = await error_response(request, 409, "Already taken.", headers={"X-Why": "dup"})
    assert (response.status_code, response.body) == (409, b'{"detail":"Already taken."}')
    assert response.headers["x-why"] == "dup"
    assert (await error_response(request, 304)).body == b""


# ------------------------------------------------------------ the scaffold's pages


@pytest.fixture(scope="module")
def scaffold_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("scaffold")
    result = run_covet("new", "errsite", cwd=where)
    assert result.returncode == 0, result.stderr
    return where / "errsite" / "errsite"


def test_scaffold_500_page_needs_no_session_user_or_database(scaffold_templates: Path) -> None:
    # No session, CSRF or authentication middleware and no database at all: the
    # project's 500 page still renders (the database may be what failed).
    app = make_app(error_templates=Templates(directory=scaffold_templates / "templates"))
    app.mount("/static", StaticFiles(directory=scaffold_templates / "static"), name="static")
    app.add_route("/", lambda request: "home", name="note_list")
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"Accept": BROWSER})
    assert response.status_code == 500
    body = response.text
    assert '<link rel="stylesheet" href="http://testserver/static/style.css">' in body
    assert '<a href="http://testserver/">errsite</a>' in body
    assert "<h1>Internal Server Error</h1>" in body
    assert "<title>Internal Server Error · errsite</title>" in body


def test_templates_compiled_by_the_project_pages_are_reused(tmp_path: Path) -> None:
    # The project's pages render with the sync environment and fill the bytecode
    # cache on disk; the error page, rendered after a restart, must load that code.
    import jinja2

    from tests.asgi import http_scope

    cache = tmp_path / "cache"
    cache.mkdir()
    write(tmp_path, "base.html", "<main>{% block content %}{% endblock %}</main>")
    write(
        tmp_path,
        "errors/404.html",
        "{% extends 'base.html' %}{% block content %}<h1>{{ title }}</h1>{% endblock %}",
    )
    first = Templates(tmp_path, bytecode_cache=jinja2.FileSystemBytecodeCache(str(cache)))
    request = Request(http_scope("/"))
    first.render(request, "errors/404.html", {"title": "warm"})
    assert list(cache.iterdir())
    restarted = Templates(tmp_path, bytecode_cache=jinja2.FileSystemBytecodeCache(str(cache)))
    with TestClient(make_app(error_templates=restarted)) as client:
        response = client.get("/missing", headers={"Accept": BROWSER})
    assert (response.status_code, response.text) == (404, "<main><h1>Not Found</h1></main>")


def test_error_templates_get_async_context_processors(tmp_path: Path) -> None:
    async def site(request: Any) -> dict[str, str]:
        return {"site_name": "Async Site"}

    write(tmp_path, "errors/404.html", "<h1>{{ title }}</h1><p>{{ site_name }}</p>")
    templates = Templates(directory=tmp_path, context_processors=[site])
    with TestClient(make_app(error_templates=templates)) as client:
        page = client.get("/missing", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert page.text == "<h1>Not Found</h1><p>Async Site</p>"
