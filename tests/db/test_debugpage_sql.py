"""The debug page on every backend: the request's SQL, and the missing-migration hint."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from covet import Covet, Request
from covet.db import MissingSchemaObjectError, Model, fields
from covet.middleware.errors import REPORT_EXTENSION
from tests.asgi import http_scope

if TYPE_CHECKING:
    from collections.abc import MutableMapping


async def call(app: Covet, path: str, accept: bytes) -> tuple[int, bytes, BaseException | None]:
    """Serve one GET like a server would; return the status, body and the reported error."""
    messages: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        messages.append(message)

    reported: list[BaseException] = []
    scope = http_scope(path, headers=[(b"accept", accept)])
    # The error layer answers the 500 and reports the exception to this hook
    # instead of re-raising it to the server.
    scope["extensions"] = {REPORT_EXTENSION: {"report": reported.append}}
    await app(scope, receive, send)
    raised = reported[0] if reported else None
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return messages[0]["status"], body, raised


def gadget_app(database: Any, table_name: str, *, debug: bool) -> Covet:
    class Gadget(Model):
        name = fields.CharField(max_length=50)
        color = fields.CharField(max_length=20, default="red")  # not in the table

        class Meta:
            table = table_name

    app = Covet(debug=debug)

    @app.get("/gadgets")
    async def gadgets(request: Request) -> list[str]:
        await database.fetch_val("SELECT :marker", {"marker": "<b>first-query</b>"})
        return [g.name for g in await Gadget.objects.filter(name="<i>lamp</i>")]

    return app


async def test_debug_page_lists_sql_and_hints_at_the_missing_migration(database, scratch):
    table = await scratch("gadget", "id INTEGER PRIMARY KEY, name VARCHAR(50)")
    app = gadget_app(database, table, debug=True)
    status, body, raised = await call(app, "/gadgets", b"text/html")
    assert status == 500
    assert isinstance(raised, MissingSchemaObjectError)
    page = body.decode()
    assert "<b>" not in page and "<i>" not in page
    assert '<div class="hint"><strong>Hint:</strong>' in page
    assert "covet makemigrations -m &quot;...&quot;" in page
    assert "then `covet migrate`" in page
    # Both statements, in order, with their parameters and durations; the failing one flagged.
    sql = page[page.index("<h2>SQL</h2>") :]
    assert "2 statements" in sql
    first = sql.index("&lt;b&gt;first-query&lt;/b&gt;")
    second = sql.index("&lt;i&gt;lamp&lt;/i&gt;")
    assert first < second
    assert sql.count("(failed)") == 1
    assert sql.index("(failed)") > first
    assert " ms" in sql


async def test_json_answer_carries_the_hint(database, scratch):
    table = await scratch("gadget", "id INTEGER PRIMARY KEY, name VARCHAR(50)")
    status, body, _ = await call(
        gadget_app(database, table, debug=True), "/gadgets", b"application/json"
    )
    data = json.loads(body)
    assert status == 500
    assert data["error"] == "MissingSchemaObjectError"
    assert "covet migrate" in data["hint"]


async def test_production_answer_shows_no_sql(database, scratch):
    table = await scratch("gadget", "id INTEGER PRIMARY KEY, name VARCHAR(50)")
    status, body, raised = await call(
        gadget_app(database, table, debug=False), "/gadgets", b"text/html"
    )
    assert status == 500
    assert b"Internal Server Error" in body
    for leak in (b"first-query", b"lamp", b"SELECT", b"makemigrations"):
        assert leak not in body
    assert isinstance(raised, MissingSchemaObjectError)


async def test_page_without_sql(database):
    app = Covet(debug=True)

    @app.get("/plain")
    async def plain(request: Request) -> str:
        raise KeyError("nothing to do with the database")

    status, body, _ = await call(app, "/plain", b"text/html")
    assert status == 500
    assert "No SQL statement ran for this request." in body.decode()
    assert "Hint:" not in body.decode()
