"""Static type pins for covet.cache's public API (checked by mypy; nothing runs under pytest)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, assert_type

from covet.cache import Cache, cache, cache_page, caches

if TYPE_CHECKING:
    from covet.requests import Request


@cache_page(60)
async def _page(request: Request, item_id: int) -> dict[str, int]:
    return {"id": item_id}


async def _pins(request: Request) -> None:
    assert_type(cache, Cache)
    assert_type(caches["fragments"], Cache)
    assert_type(await cache.add("k", 1), bool)
    assert_type(await cache.incr("k"), int)
    assert_type(await cache.delete("k"), bool)
    assert_type(await cache.delete_many(["k"]), int)
    assert_type(await cache.touch("k", 60), bool)
    assert_type(await cache.get_many(["k"]), dict[str, Any])
    assert_type(await cache.incr_version("k"), int)
    assert_type(await _page(request, 1), dict[str, int])
