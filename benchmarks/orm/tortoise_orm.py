"""Tortoise ORM (``pip install tortoise-orm``), on the same drivers as covet."""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise, fields
from tortoise.models import Model

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


class TAuthor(Model):
    """An author."""

    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=100)
    email = fields.CharField(max_length=200)

    class Meta:
        table = "bench_author"


class TPost(Model):
    """A post."""

    id = fields.BigIntField(primary_key=True)
    author: fields.ForeignKeyRelation[TAuthor] = fields.ForeignKeyField(
        "models.TAuthor", related_name="posts"
    )
    title = fields.CharField(max_length=200)
    body = fields.TextField()
    views = fields.IntField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "bench_post"


class TComment(Model):
    """A comment."""

    id = fields.BigIntField(primary_key=True)
    post: fields.ForeignKeyRelation[TPost] = fields.ForeignKeyField(
        "models.TPost", related_name="comments"
    )
    name = fields.CharField(max_length=100)
    body = fields.TextField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "bench_comment"


class TSku(Model):
    """A stock-keeping unit."""

    id = fields.BigIntField(primary_key=True)
    sku = fields.CharField(max_length=40, unique=True)
    name = fields.CharField(max_length=100)
    stock = fields.IntField()

    class Meta:
        table = "bench_sku"


def _credentials(target: Target) -> dict[str, Any]:
    if target.backend == "postgres":
        return {
            "engine": "tortoise.backends.asyncpg",
            "credentials": {
                "host": target.host,
                "port": target.port,
                "user": target.user,
                "password": "",
                "database": target.database,
                "schema": target.name,
            },
        }
    if target.backend == "mysql":
        return {
            "engine": "tortoise.backends.mysql",
            "credentials": {
                "host": target.host,
                "port": target.port,
                "user": target.user,
                "password": "",
                "database": target.name,
                "charset": "utf8mb4",
            },
        }
    return {
        "engine": "tortoise.backends.sqlite",
        "credentials": {"file_path": target.name, "synchronous": "NORMAL"},
    }


class TortoiseORM(Contender):
    """``await TPost.get(id=...)``, ``TPost.filter()``, ``TComment.create()``..."""

    name = "tortoise"

    async def start(self, target: Target) -> None:
        await Tortoise.init(
            config={
                "connections": {"default": _credentials(target)},
                "apps": {"models": {"models": [__name__], "default_connection": "default"}},
                "use_tz": True,
                "timezone": "UTC",
            }
        )
        self.connection = Tortoise.get_connection("default")
        if target.backend == "mysql":
            _, rows = await self.connection.execute_query("SELECT VERSION()")
            version = str(next(iter(rows[0].values())) if isinstance(rows[0], dict) else rows[0][0])
            if "mariadb" in version.lower():
                # bulk_create(on_conflict=...) writes MySQL 8.0.19's row alias
                # (INSERT ... AS new ON DUPLICATE KEY UPDATE), a syntax error on MariaDB.
                self.unsupported = {"upsert_1000": "Tortoise's upsert SQL is MySQL 8-only"}

    async def stop(self) -> None:
        await Tortoise.close_connections()

    async def seed(self) -> None:
        await TAuthor.bulk_create(
            [TAuthor(id=i, name=n, email=e) for i, n, e in map(author_row, range(1, AUTHORS + 1))]
        )
        await TPost.bulk_create(
            [
                TPost(id=i, author_id=a, title=t, body=b, views=v, created_at=c)
                for i, a, t, b, v, c in map(post_row, range(1, POSTS + 1))
            ]
        )
        if self.connection.capabilities.dialect == "postgres":
            for table in ("bench_author", "bench_post"):
                await self.connection.execute_script(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )

    async def clear_comments(self) -> None:
        await TComment.all().delete()

    async def get_by_pk(self, pk: int) -> Any:
        return await TPost.get(id=pk)

    async def filter_20(self, author_id: int) -> list[Any]:
        return await TPost.filter(author_id=author_id)

    async def insert_one(self, i: int, post_id: int) -> Any:
        p, name, body, created = comment_values(i, post_id)
        comment = await TComment.create(post_id=p, name=name, body=body, created_at=created)
        return comment.pk

    async def bulk_insert(self, rows: list[tuple[Any, ...]]) -> None:
        from tortoise.transactions import in_transaction

        async with in_transaction():
            await TComment.bulk_create(
                [TComment(post_id=p, name=n, body=b, created_at=c) for p, n, b, c in rows]
            )

    async def update_one(self, pk: int, views: int) -> None:
        await TPost.filter(id=pk).update(views=views)

    async def count(self) -> int:
        return await TPost.all().count()

    async def reset_skus(self) -> None:
        await TSku.all().delete()
        await TSku.bulk_create(
            [TSku(sku=k, name=n, stock=v) for k, n, v in map(sku_row, range(SKUS_SEEDED))]
        )

    async def upsert(self, rows: list[tuple[str, str, int]]) -> None:
        from tortoise.transactions import in_transaction

        async with in_transaction():
            await TSku.bulk_create(
                [TSku(sku=k, name=n, stock=v) for k, n, v in rows],
                on_conflict=["sku"],
                update_fields=["name", "stock"],
            )

    async def bulk_update(self, rows: list[tuple[int, int]]) -> None:
        from tortoise.transactions import in_transaction

        async with in_transaction():
            await TPost.bulk_update([TPost(id=i, views=v) for i, v in rows], fields=["views"])

    async def select_related_20(self, after: int) -> list[tuple[str, str]]:
        posts = await TPost.filter(id__gt=after).order_by("id").limit(20).select_related("author")
        return [(p.title, p.author.name) for p in posts]


def make(backend: str) -> Contender:
    """Return the Tortoise contender (the same class on every backend)."""
    del backend
    return TortoiseORM()
