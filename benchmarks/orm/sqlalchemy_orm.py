"""SQLAlchemy 2's async ORM: ``AsyncSession`` and ``select()``, one session per operation.

The session factory uses ``expire_on_commit=False`` (the setting the
SQLAlchemy asyncio docs recommend), and the same drivers as covet and the raw
contender: asyncpg, aiomysql and aiosqlite.
"""

from __future__ import annotations

import datetime  # noqa: TC003 - SQLAlchemy resolves Mapped[...] annotations at runtime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, event, func
from sqlalchemy import delete as sa_delete
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, joinedload, mapped_column, relationship

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

# SQLite only auto-increments INTEGER PRIMARY KEY, not BIGINT.
_BigKey = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """The declarative base of the benchmark models."""


class SAAuthor(Base):
    """An author."""

    __tablename__ = "bench_author"
    id: Mapped[int] = mapped_column(_BigKey, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(200))


class SAPost(Base):
    """A post."""

    __tablename__ = "bench_post"
    id: Mapped[int] = mapped_column(_BigKey, primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("bench_author.id"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    views: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    author: Mapped[SAAuthor] = relationship(lazy="raise")


class SAComment(Base):
    """A comment."""

    __tablename__ = "bench_comment"
    id: Mapped[int] = mapped_column(_BigKey, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("bench_post.id"))
    name: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class SASku(Base):
    """A stock-keeping unit."""

    __tablename__ = "bench_sku"
    id: Mapped[int] = mapped_column(_BigKey, primary_key=True)
    sku: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    stock: Mapped[int] = mapped_column(Integer)


def _naive(value: datetime.datetime) -> datetime.datetime:
    # MySQL DATETIME and SQLite text have no zone: SQLAlchemy stores what it is given.
    return value.replace(tzinfo=None)


class SQLAlchemyORM(Contender):
    """``async with session: await session.execute(select(...))``."""

    name = "sqlalchemy"

    async def start(self, target: Target) -> None:
        self.naive = target.backend != "postgres"
        if target.backend == "postgres":
            self.engine: AsyncEngine = create_async_engine(
                f"postgresql+asyncpg://{target.user}@{target.host}:{target.port}/{target.database}",
                connect_args={"server_settings": {"search_path": target.name}},
            )
        elif target.backend == "mysql":
            self.engine = create_async_engine(
                f"mysql+aiomysql://{target.user}@{target.host}:{target.port}/{target.name}"
                "?charset=utf8mb4"
            )
        else:
            self.engine = create_async_engine(f"sqlite+aiosqlite:///{target.name}")

            @event.listens_for(self.engine.sync_engine, "connect")
            def _pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

        self.session = async_sessionmaker(self.engine, expire_on_commit=False)

    async def stop(self) -> None:
        await self.engine.dispose()

    def _dt(self, value: datetime.datetime) -> datetime.datetime:
        return _naive(value) if self.naive else value

    async def seed(self) -> None:
        async with self.session() as s, s.begin():
            s.add_all(
                SAAuthor(id=i, name=n, email=e)
                for i, n, e in map(author_row, range(1, AUTHORS + 1))
            )
            await s.flush()
            s.add_all(
                SAPost(id=i, author_id=a, title=t, body=b, views=v, created_at=self._dt(c))
                for i, a, t, b, v, c in map(post_row, range(1, POSTS + 1))
            )
        if target_is_pg(self):
            async with self.engine.begin() as conn:
                for table in ("bench_author", "bench_post"):
                    await conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT MAX(id) FROM {table}))"
                    )

    async def clear_comments(self) -> None:
        async with self.engine.begin() as conn:
            await conn.exec_driver_sql("DELETE FROM bench_comment")

    async def get_by_pk(self, pk: int) -> Any:
        async with self.session() as s:
            result = await s.execute(sa_select(SAPost).where(SAPost.id == pk))
            return result.scalar_one()

    async def filter_20(self, author_id: int) -> list[Any]:
        async with self.session() as s:
            result = await s.scalars(sa_select(SAPost).where(SAPost.author_id == author_id))
            return list(result.all())

    async def insert_one(self, i: int, post_id: int) -> Any:
        p, name, body, created = comment_values(i, post_id)
        comment = SAComment(post_id=p, name=name, body=body, created_at=self._dt(created))
        async with self.session() as s, s.begin():
            s.add(comment)
        return comment.id

    async def bulk_insert(self, rows: list[tuple[Any, ...]]) -> None:
        async with self.session() as s, s.begin():
            s.add_all(
                SAComment(post_id=p, name=n, body=b, created_at=self._dt(c)) for p, n, b, c in rows
            )

    async def update_one(self, pk: int, views: int) -> None:
        async with self.session() as s, s.begin():
            await s.execute(sa_update(SAPost).where(SAPost.id == pk).values(views=views))

    async def reset_skus(self) -> None:
        async with self.session() as s, s.begin():
            await s.execute(sa_delete(SASku))
            s.add_all(SASku(sku=k, name=n, stock=v) for k, n, v in map(sku_row, range(SKUS_SEEDED)))

    async def upsert(self, rows: list[tuple[str, str, int]]) -> None:
        # The dialect's own insert(): on_conflict_do_update / on_duplicate_key_update.
        dialect = self.engine.dialect.name
        values = [{"sku": k, "name": n, "stock": v} for k, n, v in rows]
        if dialect == "mysql":
            from sqlalchemy.dialects.mysql import insert as mysql_insert

            ins = mysql_insert(SASku)
            stmt: Any = ins.on_duplicate_key_update(
                name=ins.inserted.name, stock=ins.inserted.stock
            )
        else:
            if dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            else:
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            ins = dialect_insert(SASku)
            stmt = ins.on_conflict_do_update(
                index_elements=[SASku.sku],
                set_={"name": ins.excluded.name, "stock": ins.excluded.stock},
            )
        async with self.session() as s, s.begin():
            await s.execute(stmt, values)

    async def bulk_update(self, rows: list[tuple[int, int]]) -> None:
        # "ORM bulk UPDATE by primary key": a list of dicts with the key.
        async with self.session() as s, s.begin():
            await s.execute(sa_update(SAPost), [{"id": i, "views": v} for i, v in rows])

    async def count(self) -> int:
        async with self.session() as s:
            return int(await s.scalar(sa_select(func.count()).select_from(SAPost)) or 0)

    async def select_related_20(self, after: int) -> list[tuple[str, str]]:
        async with self.session() as s:
            result = await s.scalars(
                sa_select(SAPost)
                .options(joinedload(SAPost.author, innerjoin=True))
                .where(SAPost.id > after)
                .order_by(SAPost.id)
                .limit(20)
            )
            posts = result.all()
        return [(p.title, p.author.name) for p in posts]


def target_is_pg(contender: SQLAlchemyORM) -> bool:
    """Tell whether the contender talks to PostgreSQL."""
    return contender.engine.dialect.name == "postgresql"


def make(backend: str) -> Contender:
    """Return the SQLAlchemy contender (the same class on every backend)."""
    del backend
    return SQLAlchemyORM()
