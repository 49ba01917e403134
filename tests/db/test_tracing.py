"""covet.tracing on every backend: statement spans below the request and template spans."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from covet import Covet, Request
from covet.db import transaction
from covet.db.exceptions import DatabaseError
from covet.templates import Templates
from tests.asgi import http_scope
from tests.db.models import Author, Post
from tests.traced import PARENT_ID, TRACE_ID, Traced, parent_id

if TYPE_CHECKING:
    from collections.abc import Iterator, MutableMapping
    from pathlib import Path

    from opentelemetry.sdk.trace import ReadableSpan

    from covet.db import Database

#: OpenTelemetry's ``db.system.name`` for each backend (the MySQL one serves MariaDB too).
SYSTEMS = {"sqlite": {"sqlite"}, "postgres": {"postgresql"}, "mysql": {"mysql", "mariadb"}}
SECRET = "do-not-export-me"


@pytest.fixture
def traced() -> Iterator[Traced]:
    found = Traced()
    yield found
    found.tracing.close()


async def call(app: Covet, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """Serve one GET in this event loop (the database's); return the status."""
    messages: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        messages.append(message)

    await app(http_scope(path, headers=headers), receive, send)
    status: int = messages[0]["status"]
    return status


def notes_app(traced: Traced, tmp_path: Path) -> Covet:
    (tmp_path / "authors.html").write_text(
        "{% for author in authors %}{{ author.name }};{% endfor %}"
    )
    templates = Templates(tmp_path)
    app = Covet(allowed_hosts=["testserver"])
    app.add_observer(traced.tracing)

    @app.get("/authors/{name}", name="authors")
    async def authors(request: Request, name: str) -> Any:
        async with transaction():
            author = await Author.objects.create(name=name, email=f"{name}@example.com")
            await Post.objects.create(title=SECRET, author=author)
        titles = [p.title for p in await Post.objects.select_related("author").filter(id__gt=0)]
        assert titles == [SECRET]
        # The template iterates the queryset itself: its SELECT runs inside the render.
        queryset = Author.objects.filter(name=name)
        return await templates.render_async(request, "authors.html", {"authors": queryset})

    return app


def _by_name(spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    found: dict[str, ReadableSpan] = {}
    for span in spans:
        assert span.name not in found, f"two spans named {span.name!r}"
        found[span.name] = span
    return found


async def test_statement_and_render_spans_nest_below_the_request(
    orm: Database, traced: Traced, tmp_path: Path
) -> None:
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01".encode()
    app = notes_app(traced, tmp_path)
    assert await call(app, "/authors/ann", [(b"traceparent", traceparent)]) == 200
    spans = _by_name(traced.spans)
    author, posts = Author._meta.table, Post._meta.table
    assert set(spans) == {
        "GET authors",
        f"INSERT {author}",
        f"INSERT {posts}",
        f"SELECT {posts}",
        "render authors.html",
        f"SELECT {author}",
    }
    request = spans["GET authors"]
    assert format(request.context.trace_id, "032x") == TRACE_ID
    assert request.parent is not None
    assert format(request.parent.span_id, "016x") == PARENT_ID
    render = spans["render authors.html"]
    for name in (f"INSERT {author}", f"INSERT {posts}", f"SELECT {posts}", "render authors.html"):
        assert parent_id(spans[name]) == request.context.span_id, name
    assert parent_id(spans[f"SELECT {author}"]) == render.context.span_id
    assert {span.context.trace_id for span in spans.values()} == {request.context.trace_id}

    select = spans[f"SELECT {author}"]
    attributes = dict(select.attributes or {})
    assert attributes.pop("db.system.name") in SYSTEMS[orm.vendor]
    assert attributes.pop("db.system") == orm.ops.telemetry_name
    query = str(attributes.pop("db.query.text"))
    assert query.startswith("SELECT ")
    assert orm.ops.quote_name(author) in query
    expected: dict[str, Any] = {
        "db.namespace": orm.url.database,
        "db.operation.name": "SELECT",
        "db.collection.name": author,
        "covet.database": orm.alias,
    }
    if orm.url.host:  # SQLite has no server
        expected["server.address"] = orm.url.host
    if orm.url.port:
        expected["server.port"] = orm.url.port
    assert attributes == expected
    # A join names no single collection; its span still names the first table.
    assert "db.collection.name" not in (spans[f"SELECT {posts}"].attributes or {})
    # Parameters never leave the process: the SQL keeps its placeholders.
    for span in spans.values():
        assert SECRET not in repr(dict(span.attributes or {}))


async def test_failed_statement_records_the_error(orm: Database, traced: Traced) -> None:
    with pytest.raises(DatabaseError) as raised:
        await orm.fetch_val("SELECT * FROM covet_tracing_missing_table")
    span = traced.named("SELECT covet_tracing_missing_table")
    assert span.status.status_code.name == "ERROR"
    kind = type(raised.value)
    assert (span.attributes or {})["error.type"] == f"{kind.__module__}.{kind.__qualname__}"
    assert [event.name for event in span.events] == ["exception"]
    # A statement run outside any span starts a trace of its own.
    assert span.parent is None


async def test_batches_count_their_parameter_sets(orm: Database, traced: Traced) -> None:
    table = orm.ops.quote_name(Author._meta.table)
    await orm.execute_many(
        f"INSERT INTO {table} (name, email) VALUES (:name, :email)",  # noqa: S608 - quoted
        [{"name": "a", "email": "a@example.com"}, {"name": "b", "email": "b@example.com"}],
    )
    span = traced.named(f"BATCH INSERT {Author._meta.table}")
    attributes = span.attributes or {}
    assert attributes["db.operation.name"] == "BATCH INSERT"
    assert attributes["db.operation.batch.size"] == 2


async def test_transaction_control_has_no_spans(orm: Database, traced: Traced) -> None:
    async with transaction(), transaction():  # the inner one is a savepoint
        await Author.objects.create(name="t", email="t@example.com")
    assert [span.name for span in traced.spans] == [f"INSERT {Author._meta.table}"]
