"""A nested GraphQL query: covet.graphql beside strawberry on Starlette + SQLAlchemy.

Both apps answer the same POST on the same SQLite file (same rows, same
driver: aiosqlite)::

    { posts(first: N) { title author { name } comments { body author { name } } } }

- covet: ``model_type`` types, a ``list_field``, relations through covet's
  batched loaders on the covet ORM, served by ``GraphQL(...).add_to(app)``.
- peer: hand-written strawberry types, strawberry's own ASGI app mounted in
  Starlette, and per-request strawberry ``DataLoader``s issuing SQLAlchemy 2
  ``select(...).where(col.in_(keys))`` on an ``AsyncSession`` (the N+1-free
  way the strawberry and SQLAlchemy docs describe).

Each app is called in-process (its ASGI callable, no server), in interleaved
rounds; every response is checked to be the same JSON before timing. Both
issue 4 SQL statements per request. Reported: the median time per request of
each app, wall-clock and process CPU time (the CPU figure moves less on a
busy machine), and the ratios peer / covet (above 1: covet is faster).

    .venv/bin/python benchmarks/graphql/run.py            # about 1 minute
    .venv/bin/python benchmarks/graphql/run.py --first 50 --rounds 9 --requests 100
"""

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

QUERY = (
    "query($n: Int!) { posts(first: $n) "
    "{ title author { name } comments { body author { name } } } }"
)
AUTHORS, POSTS, COMMENTS_PER_POST = 20, 200, 5


async def call(app: Any, body: bytes) -> bytes:
    """POST ``body`` to ``/graphql`` through the ASGI callable; return the response body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent = False
    chunks: list[bytes] = []
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    if status != [200]:
        raise RuntimeError(f"status {status}: {b''.join(chunks)[:300]!r}")
    return b"".join(chunks)


# --- covet ---------------------------------------------------------------------------------


async def covet_app(path: Path) -> tuple[Any, Any]:
    import strawberry

    from covet import Covet
    from covet.db import CASCADE, Database, Model, create_all, fields
    from covet.graphql import GraphQL, list_field, model_type

    class Author(Model):
        name = fields.CharField(max_length=100)

        class Meta:
            table = "author"

    class Post(Model):
        title = fields.CharField(max_length=200)
        author = fields.ForeignKey(Author, related_name="posts", on_delete=CASCADE)

        class Meta:
            table = "post"

    class Comment(Model):
        body = fields.CharField(max_length=200)
        post = fields.ForeignKey(Post, related_name="comments", on_delete=CASCADE)
        author = fields.ForeignKey(Author, related_name="comments", on_delete=CASCADE)

        class Meta:
            table = "comment"

    @model_type(Author, fields=["id", "name"])
    class AuthorType:
        pass

    @model_type(Post, fields=["id", "title", "author", "comments"])
    class PostType:
        pass

    @model_type(Comment, fields=["id", "body", "author"])
    class CommentType:
        pass

    @strawberry.type
    class Query:
        posts = list_field(PostType, max_items=1000)

    db = Database(f"sqlite:///{path}", alias="covet_bench")
    await db.connect()
    await create_all([Author, Post, Comment], using="covet_bench")
    if not await Author.objects.exists():
        authors = [await Author.objects.create(name=f"author {i}") for i in range(AUTHORS)]
        for i in range(POSTS):
            post = await Post.objects.create(title=f"post {i}", author=authors[i % AUTHORS])
            for j in range(COMMENTS_PER_POST):
                await Comment.objects.create(
                    body=f"comment {i}.{j}", post=post, author=authors[(i + j) % AUTHORS]
                )
    app = Covet(allowed_hosts=["testserver"])
    GraphQL(strawberry.Schema(query=Query)).add_to(app, "/graphql")
    return app, db


# --- strawberry + Starlette + SQLAlchemy ---------------------------------------------------


def peer_app(path: Path) -> tuple[Any, Any]:
    import strawberry
    from sqlalchemy import ForeignKey, String, select
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
    from starlette.applications import Starlette
    from starlette.routing import Route
    from strawberry.asgi import GraphQL as StrawberryGraphQL
    from strawberry.dataloader import DataLoader

    class Base(DeclarativeBase):
        pass

    class SAAuthor(Base):
        __tablename__ = "author"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(100))

    class SAPost(Base):
        __tablename__ = "post"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(String(200))
        author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))

    class SAComment(Base):
        __tablename__ = "comment"
        id: Mapped[int] = mapped_column(primary_key=True)
        body: Mapped[str] = mapped_column(String(200))
        post_id: Mapped[int] = mapped_column(ForeignKey("post.id"))
        author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))

    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    @strawberry.type(name="Author")
    class AuthorT:
        id: strawberry.ID
        name: str

    @strawberry.type(name="Comment")
    class CommentT:
        id: strawberry.ID
        body: str
        author_id: strawberry.Private[int]

        @strawberry.field
        async def author(self, info: strawberry.Info) -> AuthorT:
            return await info.context["authors"].load(self.author_id)  # type: ignore[no-any-return]

    @strawberry.type(name="Post")
    class PostT:
        id: strawberry.ID
        title: str
        author_id: strawberry.Private[int]

        @strawberry.field
        async def author(self, info: strawberry.Info) -> AuthorT:
            return await info.context["authors"].load(self.author_id)  # type: ignore[no-any-return]

        @strawberry.field
        async def comments(self, info: strawberry.Info) -> list[CommentT]:
            return await info.context["comments"].load(int(self.id))  # type: ignore[no-any-return]

    @strawberry.type
    class Query:
        @strawberry.field
        async def posts(self, info: strawberry.Info, first: int) -> list[PostT]:
            async with sessions() as session:
                rows = (
                    await session.scalars(select(SAPost).order_by(SAPost.id).limit(first))
                ).all()
            return [
                PostT(id=strawberry.ID(str(r.id)), title=r.title, author_id=r.author_id)
                for r in rows
            ]

    async def load_authors(keys: list[int]) -> list[AuthorT]:
        async with sessions() as session:
            rows = (await session.scalars(select(SAAuthor).where(SAAuthor.id.in_(keys)))).all()
        by_id = {r.id: AuthorT(id=strawberry.ID(str(r.id)), name=r.name) for r in rows}
        return [by_id[k] for k in keys]

    async def load_comments(keys: list[int]) -> list[list[CommentT]]:
        async with sessions() as session:
            rows = (
                await session.scalars(
                    select(SAComment).where(SAComment.post_id.in_(keys)).order_by(SAComment.id)
                )
            ).all()
        groups: dict[int, list[CommentT]] = defaultdict(list)
        for r in rows:
            groups[r.post_id].append(
                CommentT(id=strawberry.ID(str(r.id)), body=r.body, author_id=r.author_id)
            )
        return [groups[k] for k in keys]

    class App(StrawberryGraphQL):  # type: ignore[type-arg]
        async def get_context(self, request: Any, response: Any) -> Any:
            return {"authors": DataLoader(load_authors), "comments": DataLoader(load_comments)}

    graphql_app = App(strawberry.Schema(query=Query))
    app = Starlette(routes=[Route("/graphql", graphql_app, methods=["GET", "POST"])])
    return app, engine


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--first", type=int, default=20, help="posts per request")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=50, help="requests per app per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        covet, db = await covet_app(path)
        peer, engine = peer_app(path)
        body = json.dumps({"query": QUERY, "variables": {"n": args.first}}).encode()
        apps = {"covet": covet, "strawberry+starlette+sqlalchemy": peer}
        answers = {name: json.loads(await call(app, body)) for name, app in apps.items()}
        first, *others = answers.values()
        if any(other != first for other in others):
            raise SystemExit(f"The apps disagree: {answers}")
        if len(first["data"]["posts"]) != args.first:
            raise SystemExit(f"Expected {args.first} posts, got {first}")
        timings: dict[str, list[float]] = defaultdict(list)
        cpu: dict[str, list[float]] = defaultdict(list)
        for _ in range(args.rounds):
            for name, app in apps.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(args.requests):
                    await call(app, body)
                timings[name].append((time.perf_counter() - start) / args.requests)
                cpu[name].append((time.process_time() - start_cpu) / args.requests)
        print(
            f"posts(first: {args.first}) with authors, comments and their authors; "
            f"{args.rounds} interleaved rounds x {args.requests} requests"
        )
        medians = {name: statistics.median(values) for name, values in timings.items()}
        cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
        for name, median in medians.items():
            print(
                f"  {name:34} {median * 1e3:8.2f} ms/request wall"
                f" {cpu_medians[name] * 1e3:8.2f} ms/request CPU (all threads)"
            )
        peer = "strawberry+starlette+sqlalchemy"
        print(
            f"  ratio peer / covet: {medians[peer] / medians['covet']:.2f}x wall,"
            f" {cpu_medians[peer] / cpu_medians['covet']:.2f}x CPU"
        )
        await db.disconnect()
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
