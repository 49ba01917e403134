"""covet's ORM, written the way the ORM guide writes it."""

from __future__ import annotations

from typing import Any

from benchmarks.orm.common import (
    AUTHORS,
    POSTS,
    SKUS_SEEDED,
    Contender,
    Target,
    author_row,
    comment_values,
    post_row,
    sku_row,
)
from covet.db import Database, Model, fields


class Author(Model):
    """An author (table ``bench_author``)."""

    name = fields.CharField(max_length=100)
    email = fields.CharField(max_length=200)

    class Meta:
        table = "bench_author"


class Post(Model):
    """A post (table ``bench_post``)."""

    author = fields.ForeignKey(Author, related_name="posts")
    title = fields.CharField(max_length=200)
    body = fields.TextField()
    views = fields.IntegerField()
    created_at = fields.DateTimeField()

    class Meta:
        table = "bench_post"


class Comment(Model):
    """A comment (table ``bench_comment``)."""

    post = fields.ForeignKey(Post, related_name="comments")
    name = fields.CharField(max_length=100)
    body = fields.TextField()
    created_at = fields.DateTimeField()

    class Meta:
        table = "bench_comment"


class Sku(Model):
    """A stock-keeping unit (table ``bench_sku``), the upsert benchmark's rows."""

    sku = fields.CharField(max_length=40, unique=True)
    name = fields.CharField(max_length=100)
    stock = fields.IntegerField()

    class Meta:
        table = "bench_sku"


def url_for(target: Target) -> tuple[str, dict[str, Any]]:
    """Return covet's database URL and options for ``target``."""
    if target.backend == "postgres":
        url = f"postgresql://{target.user}@{target.host}:{target.port}/{target.database}"
        return url, {"search_path": target.name}
    if target.backend == "mysql":
        return f"mysql://{target.user}@{target.host}:{target.port}/{target.name}", {}
    return f"sqlite:///{target.name}", {}


class CovetORM(Contender):
    """``Post.objects.get(pk=...)``, ``filter()``, ``create()``, ``bulk_create()``..."""

    name = "covet"

    async def start(self, target: Target) -> None:
        url, options = url_for(target)
        # The only database connected, hence the default one: no using() needed.
        self.db = Database(url, **options)
        await self.db.connect()

    async def stop(self) -> None:
        await self.db.disconnect()

    async def seed(self) -> None:
        authors = [
            Author(id=i, name=n, email=e) for i, n, e in map(author_row, range(1, AUTHORS + 1))
        ]
        await Author.objects.bulk_create(authors)
        posts = [
            Post(id=i, author_id=a, title=t, body=b, views=v, created_at=c)
            for i, a, t, b, v, c in map(post_row, range(1, POSTS + 1))
        ]
        await Post.objects.bulk_create(posts)
        if self.db.vendor == "postgres":
            for table in ("bench_author", "bench_post"):
                await self.db.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )

    async def clear_comments(self) -> None:
        await self.db.execute("DELETE FROM bench_comment")

    async def get_by_pk(self, pk: int) -> Any:
        return await Post.objects.get(pk=pk)

    async def filter_20(self, author_id: int) -> list[Any]:
        return await Post.objects.filter(author_id=author_id)

    async def insert_one(self, i: int, post_id: int) -> Any:
        p, name, body, created = comment_values(i, post_id)
        comment = await Comment.objects.create(post_id=p, name=name, body=body, created_at=created)
        return comment.pk

    async def bulk_insert(self, rows: list[tuple[Any, ...]]) -> None:
        await Comment.objects.bulk_create(
            [Comment(post_id=p, name=n, body=b, created_at=c) for p, n, b, c in rows]
        )

    async def update_one(self, pk: int, views: int) -> None:
        await Post.objects.filter(pk=pk).update(views=views)

    async def count(self) -> int:
        return await Post.objects.count()

    async def reset_skus(self) -> None:
        await Sku.objects.all().delete()
        await Sku.objects.bulk_create(
            [Sku(sku=s, name=n, stock=k) for s, n, k in map(sku_row, range(SKUS_SEEDED))]
        )

    async def upsert(self, rows: list[tuple[str, str, int]]) -> None:
        await Sku.objects.bulk_create(
            [Sku(sku=s, name=n, stock=k) for s, n, k in rows],
            update_conflicts=True,
            unique_fields=["sku"],
            update_fields=["name", "stock"],
        )

    async def bulk_update(self, rows: list[tuple[int, int]]) -> None:
        await Post.objects.bulk_update([Post(id=i, views=v) for i, v in rows], ["views"])

    async def select_related_20(self, after: int) -> list[tuple[str, str]]:
        posts = await Post.objects.select_related("author").filter(id__gt=after).order_by("id")[:20]
        return [(p.title, p.author.name) for p in posts]


def make(backend: str) -> Contender:
    """Return the covet contender (the same class on every backend)."""
    del backend
    return CovetORM()


__all__ = ("Author", "Comment", "CovetORM", "Post", "Sku", "make")
