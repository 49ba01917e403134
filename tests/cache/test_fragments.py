"""The ``{% cache %}`` fragment tag, in Jinja's async mode as covet.templates renders it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import jinja2
import pytest

from covet import Covet, HTMLResponse
from covet.cache import Cache, CacheExtension, MemoryBackend, caches, fragment_key
from covet.templates import Templates
from covet.testing import TestClient
from tests.cache.conftest import Clock

if TYPE_CHECKING:
    from pathlib import Path

    from covet.requests import Request


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


@pytest.fixture
def templates(tmp_path: Path) -> Templates:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "sidebar.html").write_text(
        '<aside>{% cache 300 "sidebar", user %}{{ count() }} {{ title }}{% endcache %}</aside>'
    )
    (folder / "plain.html").write_text("{% cache none 'forever' %}{{ count() }}{% endcache %}")
    (folder / "noname.html").write_text("{% cache 300 '' %}x{% endcache %}")
    made = Templates(folder, extensions=[CacheExtension])
    made.env.fragment_cache = Cache(MemoryBackend())  # type: ignore[attr-defined]
    return made


async def arender(templates: Templates, name: str, **context: object) -> str:
    return await templates.async_env.get_template(name).render_async(**context)


async def test_a_fragment_is_rendered_once_per_vary_value(templates):
    count = Counter()
    first = await arender(templates, "sidebar.html", count=count, user=1, title="<b>")
    assert first == "<aside>1 &lt;b&gt;</aside>"
    # Cached as rendered: escaping is kept, not applied twice.
    assert await arender(templates, "sidebar.html", count=count, user=1, title="x") == first
    assert await arender(templates, "sidebar.html", count=count, user=2, title="y") == (
        "<aside>2 y</aside>"
    )
    assert count.calls == 2
    cache = templates.env.fragment_cache
    assert await cache.delete(fragment_key("sidebar", [1])) is True
    assert await arender(templates, "sidebar.html", count=count, user=1, title="z") == (
        "<aside>3 z</aside>"
    )


async def test_concurrent_renders_share_one_fragment(templates):
    count = Counter()
    pages = await asyncio.gather(
        *(arender(templates, "sidebar.html", count=count, user=9, title="t") for _ in range(10))
    )
    assert set(pages) == {"<aside>1 t</aside>"}
    assert count.calls == 1


async def test_ttl_none_keeps_the_fragment(templates):
    count = Counter()
    assert await arender(templates, "plain.html", count=count) == "1"
    assert await arender(templates, "plain.html", count=count) == "1"


async def test_the_fragment_ttl_expires():
    clock = Clock()
    env = jinja2.Environment(extensions=[CacheExtension], enable_async=True, autoescape=True)
    env.fragment_cache = Cache(MemoryBackend(clock=clock))  # type: ignore[attr-defined]
    template = env.from_string("{% cache 10, 'clock' %}{{ count() }}{% endcache %}")
    count = Counter()
    assert await template.render_async(count=count) == "1"
    clock.now += 5
    assert await template.render_async(count=count) == "1"
    clock.now += 6
    assert await template.render_async(count=count) == "2"


def test_sync_rendering_explains_that_the_tag_needs_async(templates):
    with pytest.raises(jinja2.TemplateRuntimeError, match=r"needs async rendering.*render_async"):
        templates.env.get_template("sidebar.html").render(count=Counter(), user=1)


async def test_a_fragment_needs_a_name(templates):
    with pytest.raises(jinja2.TemplateRuntimeError, match="needs a fragment name"):
        await arender(templates, "noname.html")


async def test_named_and_default_caches():
    saved = (caches._definitions, caches._caches)
    try:
        named = Cache(key_prefix="fragments")
        default = Cache(key_prefix="default")
        caches.configure(default=default, fragments=named)
        env = jinja2.Environment(extensions=[CacheExtension], enable_async=True, autoescape=True)
        template = env.from_string("{% cache 60 'n' %}{{ v }}{% endcache %}")
        assert await template.render_async(v="a") == "a"
        assert await default.get(fragment_key("n")) == "a"
        env.fragment_cache = "fragments"  # type: ignore[attr-defined]
        assert await template.render_async(v="b") == "b"
        assert await named.get(fragment_key("n")) == "b"
    finally:
        caches._definitions, caches._caches = saved


def test_registered_by_import_string(tmp_path):
    made = Templates(tmp_path, extensions=["covet.cache.CacheExtension"])
    assert "cache" in made.env.extensions["covet.cache.fragments.CacheExtension"].tags


def test_through_render_async_in_an_app(templates: Templates) -> None:
    app = Covet(allowed_hosts=["testserver"])
    count = Counter()

    @app.get("/")
    async def page(request: Request) -> HTMLResponse:
        context = {"count": count, "user": 5, "title": "hi"}
        return await templates.render_async(request, "sidebar.html", context)

    with TestClient(app) as client:
        assert client.get("/").text == client.get("/").text == "<aside>1 hi</aside>"
    assert count.calls == 1


async def test_a_cache_that_is_down_renders_uncached(caplog):
    env = jinja2.Environment(extensions=[CacheExtension], enable_async=True, autoescape=True)
    env.fragment_cache = Cache("redis://127.0.0.1:1/0")  # type: ignore[attr-defined]
    template = env.from_string("{% cache 60 'f' %}{{ count() }}{% endcache %}")
    count = Counter()
    assert await template.render_async(count=count) == "1"
    assert "without the cache" in caplog.text
