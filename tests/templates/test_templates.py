from __future__ import annotations

import re
from pathlib import Path  # noqa: TC003 - used at runtime by pytest fixtures
from typing import TYPE_CHECKING

import jinja2
import pytest

from covet import Covet, HTMLResponse
from covet.exceptions import ImproperlyConfigured
from covet.flash import flash
from covet.middleware import SessionMiddleware
from covet.middleware.csrf import CSRFMiddleware
from covet.requests import Request
from covet.staticfiles import StaticFiles
from covet.templates import TemplateNotFoundError, Templates
from covet.testing import TestClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def tdir(tmp_path: Path) -> Path:
    return write(
        tmp_path / "templates",
        {
            "hello.html": "<p>Hello {{ name }}</p>",
            "raw.html": "<p>{{ name|safe }}</p>",
            "plain.txt": "Hello {{ name }}",
            "page.j2": "{{ name }}",
            "base.html": (
                "<title>{% block title %}Site{% endblock %}</title>"
                "<main>{% block content %}{% endblock %}</main>"
            ),
            "child.html": (
                '{% extends "base.html" %}{% block title %}{{ super() }} - Child{% endblock %}'
                "{% block content %}<h1>{{ heading }}</h1>{% endblock %}"
            ),
            "undefined.html": "[{{ missing }}]",
            "broken.html": "line 1\nline 2\n{% if %}\n",
            "fails.html": "line 1\n{{ 1 // zero }}\n",
            "form.html": (
                '<link href="{{ static("css/site.css") }}">'
                '<a href="{{ url_for("item", item_id=3) }}">item</a>'
                '<form method="post">{{ csrf_input() }}<input name="name"></form>'
                "<span id=token>{{ csrf_token() }}</span>"
            ),
            "flashes.html": (
                "{% for category, message in get_flashed_messages(with_categories=True) %}"
                "<li class={{ category }}>{{ message }}</li>{% endfor %}"
                "|{{ current_user.name if current_user else 'anonymous' }}"
            ),
            "stream.html": "{% for row in rows %}{{ row }},{% endfor %}{{ extra }}",
            "tools.html": "{{ name|shout }} {{ site }}",
        },
    )


def request_for(**scope) -> Request:
    return Request({"type": "http", "headers": [], **scope})


def test_autoescape_blocks_xss_and_safe_is_the_only_way_around(tdir):
    templates = Templates(tdir)
    request = request_for()
    payload = '<script>alert("x")</script>'
    body = templates.render(request, "hello.html", {"name": payload}).body.decode()
    assert "<script>" not in body
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in body
    assert "<script>" in templates.render(request, "raw.html", {"name": payload}).body.decode()
    assert "&lt;" in templates.render(request, "page.j2", {"name": "<b>"}).body.decode()
    assert templates.render_string("{{ v }}", {"v": "<i>"}) == "&lt;i&gt;"
    # Non-markup templates are not escaped.
    assert templates.render(request, "plain.txt", {"name": "<b>"}).body == b"Hello <b>"


def test_render_returns_an_html_response(tdir):
    response = Templates(tdir).render(
        request_for(), "hello.html", {"name": "A"}, status_code=201, headers={"X-A": "1"}
    )
    assert isinstance(response, HTMLResponse)
    assert response.status_code == 201
    assert response.headers["x-a"] == "1"
    assert response.headers["content-type"] == "text/html; charset=utf-8"


def test_inheritance(tdir):
    body = Templates(tdir).render(request_for(), "child.html", {"heading": "Hi"}).body.decode()
    assert body == "<title>Site - Child</title><main><h1>Hi</h1></main>"


def test_package_loader_and_directory_precedence(tdir, tmp_path, monkeypatch):
    package = tmp_path / "pkgs" / "shop"
    write(
        package,
        {
            "__init__.py": "",
            "templates/hello.html": "package hello",
            "templates/shop/cart.html": "cart of {{ name }}",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    templates = Templates(tdir, packages=["shop"])
    request = request_for()
    assert templates.render(request, "shop/cart.html", {"name": "<A>"}).body == b"cart of &lt;A&gt;"
    # The project's directory overrides the package's template.
    assert templates.render(request, "hello.html", {"name": "x"}).body == b"<p>Hello x</p>"
    only_package = Templates(packages=["shop"])
    assert only_package.render(request, "hello.html").body == b"package hello"


def test_missing_template_names_it_and_the_search_path(tdir):
    templates = Templates(tdir, packages=[])
    with pytest.raises(TemplateNotFoundError) as info:
        templates.render(request_for(), "nope.html")
    message = str(info.value)
    assert "'nope.html'" in message
    assert str(tdir.resolve()) in message
    assert isinstance(info.value, jinja2.TemplateNotFound)


def test_missing_template_from_extends_is_clear_too(tdir):
    write(tdir, {"orphan.html": '{% extends "gone.html" %}'})
    with pytest.raises(TemplateNotFoundError, match=r"gone\.html"):
        Templates(tdir).render(request_for(), "orphan.html")


def test_bad_configuration_is_refused(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="does not exist"):
        Templates(tmp_path / "nowhere")
    with pytest.raises(ImproperlyConfigured, match="directory"):
        Templates()
    with pytest.raises(ImproperlyConfigured, match="package"):
        Templates(packages=["covet_no_such_package"])
    with pytest.raises(ImproperlyConfigured, match="list"):
        Templates(packages="shop")


def test_strict_undefined_in_debug_only(tdir):
    with pytest.raises(jinja2.UndefinedError, match="missing"):
        Templates(tdir, debug=True).render(request_for(), "undefined.html")
    assert Templates(tdir).render(request_for(), "undefined.html").body == b"[]"


def test_syntax_error_names_template_and_line(tdir):
    with pytest.raises(jinja2.TemplateSyntaxError) as info:
        Templates(tdir).render(request_for(), "broken.html")
    assert info.value.lineno == 3
    assert info.value.name == "broken.html"


def test_debug_page_shows_the_failing_template_line(tdir):
    templates = Templates(tdir, debug=True)
    app = Covet(debug=True, allowed_hosts=["testserver"])

    @app.get("/")
    async def index(request):
        return templates.render(request, "fails.html", {"zero": 0})

    response = TestClient(app, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert "fails.html" in response.text
    assert "line 2" in response.text
    assert "ZeroDivisionError" in response.text


def make_app(tdir: Path, tmp_path: Path) -> tuple[Covet, Templates]:
    static = write(tmp_path / "static", {"css/site.css": "body {}"})
    templates = Templates(tdir)
    app = Covet(allowed_hosts=["testserver"])

    @app.get("/form")
    async def form(request):
        return templates.render(request, "form.html")

    @app.post("/form")
    async def submit(request):
        return {"name": (await request.form())["name"]}

    @app.get("/items/{item_id:int}", name="item")
    async def item(request, item_id: int):
        return {"id": item_id}

    @app.post("/flash")
    async def add_flash(request):
        flash(request, "<b>Saved</b>", "success")

    @app.get("/flashes")
    async def flashes(request):
        return templates.render(request, "flashes.html")

    app.mount("/static", StaticFiles(directory=static), name="static")
    app.add_middleware(SessionMiddleware, secret_key="secret")
    app.add_middleware(CSRFMiddleware)
    return app, templates


def test_url_for_static_and_csrf_input_in_templates(tdir, tmp_path):
    app, _ = make_app(tdir, tmp_path)
    client = TestClient(app)
    page = client.get("/form").text
    assert '<link href="http://testserver/static/css/site.css">' in page
    assert '<a href="http://testserver/items/3">' in page
    field = re.search(r'<input type="hidden" name="csrf_token" value="([^"]+)">', page)
    assert field is not None
    span = re.search(r"<span id=token>([^<]+)</span>", page)
    assert span is not None and span.group(1) != field.group(1)
    assert client.get("/static/css/site.css").text == "body {}"
    # The token in the page changes at every render, and each one works.
    second = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/form").text)
    assert second is not None and second.group(1) != field.group(1)
    for token in (field.group(1), second.group(1)):
        response = client.post("/form", data={"csrf_token": token, "name": "Ann"})
        assert response.json() == {"name": "Ann"}
    assert client.post("/form", data={"name": "Ann"}).status_code == 403


def test_flashed_messages_and_current_user_in_templates(tdir, tmp_path):
    app, _ = make_app(tdir, tmp_path)
    client = TestClient(app)
    token = re.search(r'value="([^"]+)"', client.get("/form").text)
    assert token is not None
    client.post("/flash", headers={"X-CSRF-Token": token.group(1)})
    page = client.get("/flashes").text
    assert page == "<li class=success>&lt;b&gt;Saved&lt;/b&gt;</li>|anonymous"
    assert client.get("/flashes").text == "|anonymous"

    class User:
        name = "<Ann>"

    templates = Templates(tdir)
    request = request_for(session={}, user=User())
    assert templates.render(request, "flashes.html").body == b"|&lt;Ann&gt;"


def test_csrf_helpers_without_middleware_name_it(tdir):
    templates = Templates(tdir)
    with pytest.raises(ImproperlyConfigured, match="CSRFMiddleware"):
        templates.render_string("{{ csrf_input() }}", {"request": request_for()})


def test_context_processors_filters_and_globals(tdir):
    templates = Templates(tdir, context_processors=[lambda request: {"site": "Covet"}])
    templates.add_filter("shout", lambda value: str(value).upper() + "!")
    templates.add_global("site", "ignored: processors win over globals")
    body = templates.render(request_for(), "tools.html", {"name": "hi"}).body
    assert body == b"HI! Covet"
    # Explicit context wins over processors.
    body = templates.render(request_for(), "tools.html", {"name": "a", "site": "<x>"}).body
    assert body == b"A! &lt;x&gt;"


async def test_render_async_supports_async_iterables_and_processors(tdir):
    async def extra(request):
        return {"extra": "<end>"}

    templates = Templates(tdir, context_processors=[extra])

    async def rows() -> AsyncIterator[str]:
        for i in range(3):
            yield f"<{i}>"

    response = await templates.render_async(request_for(), "stream.html", {"rows": rows()})
    assert response.body == b"&lt;0&gt;,&lt;1&gt;,&lt;2&gt;,&lt;end&gt;"
    with pytest.raises(ImproperlyConfigured, match="render_async"):
        templates.render(request_for(), "stream.html", {"rows": []})


def test_auto_reload_in_debug(tdir):
    templates = Templates(tdir, debug=True)
    assert templates.env.auto_reload is True
    assert templates.env.bytecode_cache is None
    production = Templates(tdir)
    assert production.env.auto_reload is False
    assert isinstance(production.env.bytecode_cache, jinja2.FileSystemBytecodeCache)
    assert Templates(tdir, bytecode_cache=False).env.bytecode_cache is None


async def test_render_async_after_sync_render_filled_the_bytecode_cache(tmp_path):
    # Jinja keys cached bytecode by template name only; sync and async code for one
    # template must not overwrite each other (a restarted process read sync code).
    import jinja2

    from covet.templates import Templates

    (tmp_path / "t.html").write_text("Hello {{ name }}", "utf-8")
    cache = tmp_path / "cache"
    cache.mkdir()
    first = Templates(tmp_path, bytecode_cache=jinja2.FileSystemBytecodeCache(str(cache)))
    assert first.env.get_template("t.html").render(name="sync") == "Hello sync"
    restarted = Templates(tmp_path, bytecode_cache=jinja2.FileSystemBytecodeCache(str(cache)))
    template = restarted.async_env.get_template("t.html")
    assert await template.render_async(name="async") == "Hello async"
    # And the other way round: the sync environment still gets sync code.
    again = Templates(tmp_path, bytecode_cache=jinja2.FileSystemBytecodeCache(str(cache)))
    assert again.env.get_template("t.html").render(name="sync") == "Hello sync"
