"""``{% cache %}``: cache a fragment of a Jinja2 template.

::

    templates = Templates("templates", extensions=[CacheExtension])

    {% cache 300 "sidebar", user.pk %} ... expensive markup ... {% endcache %}

The first expression is the TTL in seconds (``none`` for no expiry), the
second the fragment's name, then any values the fragment varies on: each
combination is cached apart, under ``covet.fragment.<name>.<sha256 of the
values>`` (Django's ``{% cache %}`` scheme). The fragment is rendered once
for concurrent requests (it goes through
:meth:`~covet.cache.Cache.get_or_set`), and stored as rendered, escaping
included, so a hit is inserted as is.

The cache is ``templates.env.fragment_cache`` when set (a :class:`Cache` or
the name of a configured one), else the default cache.

When the cache cannot be reached, the fragment is rendered uncached and a
warning logged.

The tag needs Jinja's async mode (:meth:`covet.templates.Templates.render_async`),
since every cache backend is async; rendering it with the synchronous
``render()`` raises a :class:`jinja2.TemplateRuntimeError` saying so.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from markupsafe import Markup

from covet.cache.core import Cache
from covet.cache.exceptions import CacheUnavailableError
from covet.cache.registry import DEFAULT_CACHE_ALIAS, caches

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from jinja2.parser import Parser

__all__ = ("CacheExtension", "fragment_key")

logger = logging.getLogger("covet.cache")


def fragment_key(name: str, vary_on: Sequence[Any] = ()) -> str:
    """Return the cache key of fragment ``name`` for the values ``vary_on``.

    Handy to delete a fragment when its data changes:
    ``await cache.delete(fragment_key("sidebar", [user.pk]))``.
    """
    digest = hashlib.sha256("\x1f".join(str(value) for value in vary_on).encode()).hexdigest()
    return f"covet.fragment.{name}.{digest}"


class CacheExtension(Extension):
    """The ``{% cache ttl name[, value ...] %}...{% endcache %}`` tag."""

    tags = frozenset({"cache"})  # type: ignore[assignment]

    def __init__(self, environment: jinja2.Environment) -> None:
        super().__init__(environment)
        environment.extend(fragment_cache=None)

    def parse(self, parser: Parser) -> nodes.Node:
        """Parse ``cache TTL NAME[, VALUE ...]`` and the body up to ``endcache``."""
        lineno = next(parser.stream).lineno
        ttl = parser.parse_expression()
        parser.stream.skip_if("comma")
        name = parser.parse_expression()
        vary: list[nodes.Expr] = []
        while parser.stream.skip_if("comma"):
            vary.append(parser.parse_expression())
        body = parser.parse_statements(("name:endcache",), drop_needle=True)
        call = self.call_method("_cache", [ttl, name, nodes.List(vary)])
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _store(self) -> Cache:
        configured = getattr(self.environment, "fragment_cache", None)
        if isinstance(configured, Cache):
            return configured
        return caches[configured or DEFAULT_CACHE_ALIAS]

    def _cache(
        self, ttl: Any, name: Any, vary: list[Any], caller: Callable[[], Any]
    ) -> Awaitable[Markup]:
        if not self.environment.is_async:
            raise jinja2.TemplateRuntimeError(
                "The {% cache %} tag needs async rendering, because the cache is async. "
                "Render with await templates.render_async(request, name, context)."
            )
        if not isinstance(name, str) or not name:
            raise jinja2.TemplateRuntimeError(
                f"The {{% cache %}} tag needs a fragment name (a non-empty string) after the "
                f'TTL, got {name!r}. Write {{% cache 300 "sidebar" %}}.'
            )
        return self._cached(ttl, name, vary, caller)

    async def _cached(
        self, ttl: Any, name: str, vary: list[Any], caller: Callable[[], Any]
    ) -> Markup:
        async def render() -> str:
            return str(await caller())

        try:
            value = await self._store().get_or_set(fragment_key(name, vary), render, ttl)
        except CacheUnavailableError as exc:
            # A cache that is down slows the page; it must not break it.
            logger.warning("Rendering fragment %r without the cache: %s", name, exc)
            value = await render()
        # Stored as rendered (already escaped where autoescape is on): insert as is.
        return Markup(value)  # noqa: S704 - template output, escaped when it was rendered
