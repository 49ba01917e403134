"""select_for_update(nowait=, skip_locked=, of=) against a second, real transaction.

A first task locks rows in its transaction and holds them until told to go;
the test's own transaction then tries to lock them. SQLite has no row locks
(``select_for_update()`` is a no-op there, a write transaction locks the whole
database), so these run where ``supports_select_for_update``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import pytest

from covet.db.exceptions import NotSupportedError, OperationalError
from covet.db.transactions import transaction
from tests.db.models import Author, Post

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.db.queryset import QuerySet

pytestmark = [pytest.mark.usefixtures("orm"), pytest.mark.requires("supports_select_for_update")]


@contextlib.asynccontextmanager
async def held(queryset: QuerySet[Any]) -> AsyncIterator[None]:
    """Lock the rows of ``queryset`` in another task's transaction for the block's duration."""
    locked, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with transaction():
            await queryset
            locked.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await asyncio.wait_for(locked.wait(), 10)
    try:
        yield
    finally:
        release.set()
        await task


async def make() -> tuple[Author, list[Post]]:
    ann = await Author.objects.create(name="Ann", email="ann@example.com")
    posts = [await Post.objects.create(title=f"p{i}", author=ann) for i in range(3)]
    return ann, posts


async def test_nowait_fails_at_once_on_a_locked_row(database) -> None:
    _, posts = await make()
    async with held(Post.objects.select_for_update().filter(id=posts[0].id)):
        with pytest.raises(OperationalError):
            async with transaction():
                await asyncio.wait_for(
                    Post.objects.select_for_update(nowait=True).filter(id=posts[0].id), 5
                )
        # A row nobody holds locks at once.
        async with transaction():
            free = await Post.objects.select_for_update(nowait=True).filter(id=posts[1].id)
            assert [p.title for p in free] == ["p1"]


@pytest.mark.requires("has_select_for_update_skip_locked")
async def test_skip_locked_takes_the_other_rows(database) -> None:
    _, posts = await make()
    async with held(Post.objects.select_for_update().filter(id=posts[0].id)), transaction():
        rest = await Post.objects.select_for_update(skip_locked=True).order_by("title")
        assert [p.title for p in rest] == ["p1", "p2"]
        # A queue worker takes one row at a time, each worker a different one.
        one = await Post.objects.select_for_update(skip_locked=True).order_by("title")[:1]
        assert [p.title for p in one] == ["p1"]


async def test_of_locks_only_the_named_tables(database) -> None:
    ann, posts = await make()
    mine = (
        Post.objects.select_related("author")
        .filter(id=posts[0].id)
        .select_for_update(of=[Post._meta.table])
    )
    try:
        database.ops.for_update_sql(of=["t"])
    except NotSupportedError:
        # MariaDB has no FOR UPDATE OF: the query says so instead of locking more rows.
        with pytest.raises(NotSupportedError, match="FOR UPDATE OF"):
            async with transaction():
                await mine
        return
    async with held(mine):
        # The joined author row is not locked; the post row is.
        async with transaction():
            authors = await Author.objects.select_for_update(nowait=True).filter(id=ann.id)
            assert [a.name for a in authors] == ["Ann"]
        with pytest.raises(OperationalError):
            async with transaction():
                await Post.objects.select_for_update(nowait=True).filter(id=posts[0].id)
