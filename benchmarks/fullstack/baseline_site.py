"""The hand-written baseline: raw ASGI + asyncpg or aiosqlite + Jinja2, doing the sites' work.

No framework: one ASGI callable routes on ``(method, path)``, reads the signed
session cookie, looks the session row and the user up with one query each,
checks the CSRF token of a POST, runs the queries, renders the shared template
and sends the security headers. It is the ceiling the others are compared to:
the same work with nothing in between.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import sys
from typing import Any
from urllib.parse import parse_qs

import jinja2
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

from benchmarks.fullstack import common

ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(common.TEMPLATES), autoescape=True, auto_reload=False
)
PAGE = ENV.get_template("page.html")
LOGIN = ENV.get_template("login.html")
HASHER = PasswordHasher()

DDL = (
    "CREATE TABLE users (id {serial} PRIMARY KEY, email VARCHAR(254) NOT NULL UNIQUE, "
    "password VARCHAR(255) NOT NULL)",
    "CREATE TABLE sessions (session_key VARCHAR(64) PRIMARY KEY, data TEXT NOT NULL, "
    "expires_at {timestamp} NOT NULL, user_id VARCHAR(64))",
    "CREATE INDEX ix_sessions_user_id ON sessions (user_id)",
    "CREATE TABLE notes (id {serial} PRIMARY KEY, author_id INTEGER NOT NULL "
    "REFERENCES users (id) ON DELETE CASCADE, title VARCHAR(200) NOT NULL, body TEXT NOT NULL, "
    "created_at {timestamp} NOT NULL)",
    "CREATE INDEX ix_notes_author_id ON notes (author_id)",
)


class Postgres:
    """asyncpg pool of 2 to 10 connections (covet's PostgreSQL default), on the run's schema."""

    placeholder = None
    serial, timestamp = "SERIAL", "TIMESTAMPTZ"

    def __init__(self, url: str) -> None:
        self.dsn, self.schema = common.postgres_parts(url)
        self.pool: Any = None

    async def connect(self) -> None:
        import asyncpg

        settings = {"search_path": self.schema} if self.schema else {}
        self.pool = await asyncpg.create_pool(
            self.dsn, min_size=2, max_size=10, server_settings=settings
        )

    async def close(self) -> None:
        await self.pool.close()

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self.pool.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return list(await self.pool.fetch(sql, *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.pool.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> None:
        await self.pool.execute(sql, *args)

    @staticmethod
    def when(value: Any) -> datetime.datetime:
        return value  # type: ignore[no-any-return]

    @staticmethod
    def stamp(value: datetime.datetime) -> Any:
        return value


_DOLLAR = re.compile(r"\$\d+")


class SQLite:
    """One aiosqlite connection with covet's SQLite pragmas (WAL, synchronous=NORMAL)."""

    serial, timestamp = "INTEGER", "TEXT"

    def __init__(self, url: str) -> None:
        self.path = common.sqlite_path(url)
        self.conn: Any = None

    async def connect(self) -> None:
        import aiosqlite

        self.conn = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000"):
            await self.conn.execute(f"PRAGMA {pragma}")
        await self.conn.execute("PRAGMA foreign_keys=ON")

    async def close(self) -> None:
        await self.conn.close()

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        async with self.conn.execute(_DOLLAR.sub("?", sql), args) as cursor:
            return await cursor.fetchone()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self.conn.execute(_DOLLAR.sub("?", sql), args) as cursor:
            return list(await cursor.fetchall())

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    async def execute(self, sql: str, *args: Any) -> None:
        await self.conn.execute(_DOLLAR.sub("?", sql), args)

    @staticmethod
    def when(value: Any) -> datetime.datetime:
        return datetime.datetime.fromisoformat(value)

    @staticmethod
    def stamp(value: datetime.datetime) -> Any:
        return value.isoformat()


def make_database(url: str) -> Postgres | SQLite:
    return Postgres(url) if url.startswith("postgres") else SQLite(url)


class Note:
    __slots__ = ("body", "created_at", "id", "title")

    def __init__(self, note_id: int, title: str, body: str, created_at: datetime.datetime) -> None:
        self.id, self.title, self.body, self.created_at = note_id, title, body, created_at


NOTES_SQL = (
    "SELECT id, title, body, created_at FROM notes WHERE author_id = $1 "
    "ORDER BY created_at DESC, id DESC LIMIT 20"
)


class App:
    """The ASGI application."""

    def __init__(self) -> None:
        self.db = make_database(common.database_url())
        self.signer = common.serializer()
        self.routes = {
            ("GET", "/fs/page"): self.page,
            ("GET", "/fs/notes.json"): self.notes_json,
            ("POST", "/fs/notes"): self.create_note,
            ("GET", "/fs/login"): self.login_form,
            ("POST", "/fs/login"): self.login,
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        handler = self.routes.get((scope["method"], scope["path"]))
        if handler is None:
            await self.respond(send, 404, b"text/plain", b"Not Found")
            return
        await handler(scope, receive, send)

    async def lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.db.connect()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.db.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def respond(
        self,
        send: Any,
        status: int,
        content_type: bytes,
        body: bytes,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            *common.SECURITY_HEADERS,
            *(extra or ()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def session(self, scope: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """Return the session id and data named by the cookie, or None."""
        raw = common.cookie_value(scope["headers"], common.SESSION_COOKIE)
        key = common.session_key_from_cookie(self.signer, raw)
        if key is None:
            return None
        row = await self.db.fetchrow(
            "SELECT data FROM sessions WHERE session_key = $1 AND expires_at > $2",
            key,
            self.db.stamp(common.utc_now()),
        )
        return None if row is None else (key, common.decode_session(row[0]))

    async def user(self, data: dict[str, Any]) -> tuple[int, str] | None:
        user_id = data.get("user_id")
        if not isinstance(user_id, int):
            return None
        row = await self.db.fetchrow("SELECT id, email FROM users WHERE id = $1", user_id)
        return None if row is None else (row[0], row[1])

    async def notes(self, user_id: int) -> list[Note]:
        when = self.db.when
        return [Note(r[0], r[1], r[2], when(r[3])) for r in await self.db.fetch(NOTES_SQL, user_id)]

    async def page(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        session = await self.session(scope)
        user = None if session is None else await self.user(session[1])
        if session is None or user is None:
            await self.respond(send, 303, b"text/plain", b"", [(b"location", b"/fs/login")])
            return
        total = await self.db.fetchval("SELECT COUNT(*) FROM notes WHERE author_id = $1", user[0])
        notes = await self.notes(user[0])
        html = PAGE.render(
            user_email=user[1],
            total=total,
            notes=notes,
            csrf_input=jinja2.utils.markupsafe.Markup(
                common.csrf_input(common.mask_token(session[1]["csrf"]))
            ),
        )
        await self.respond(send, 200, b"text/html; charset=utf-8", html.encode())

    async def notes_json(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        session = await self.session(scope)
        user = None if session is None else await self.user(session[1])
        if user is None:
            await self.respond(send, 401, b"application/json", b'{"detail":"Log in first."}')
            return
        data = [
            common.note_dict(n.id, n.title, n.body, n.created_at) for n in await self.notes(user[0])
        ]
        body = json.dumps(data, separators=(",", ":")).encode()
        await self.respond(send, 200, b"application/json", body)

    async def form(self, receive: Any) -> dict[str, str]:
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        parsed = parse_qs(b"".join(chunks).decode(), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}

    async def create_note(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        session = await self.session(scope)
        form = await self.form(receive)
        if session is None or not common.token_matches(
            session[1].get("csrf", ""), form.get(common.CSRF_FIELD, "")
        ):
            await self.respond(send, 403, b"text/plain", b"CSRF check failed.")
            return
        user = await self.user(session[1])
        if user is None:
            await self.respond(send, 303, b"text/plain", b"", [(b"location", b"/fs/login")])
            return
        title = form.get("title", "").strip()
        if not title or len(title) > 200:
            await self.respond(send, 422, b"text/plain", b"Give the note a title.")
            return
        await self.db.execute(
            "INSERT INTO notes (author_id, title, body, created_at) VALUES ($1, $2, $3, $4)",
            user[0],
            title,
            form.get("body", ""),
            self.db.stamp(common.utc_now()),
        )
        await self.respond(send, 303, b"text/plain", b"", [(b"location", b"/fs/page")])

    async def login_form(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = LOGIN.render(csrf_input="").encode()
        await self.respond(send, 200, b"text/html; charset=utf-8", body)

    async def login(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        form = await self.form(receive)
        row = await self.db.fetchrow(
            "SELECT id, password FROM users WHERE email = $1", form.get("email", "")
        )
        try:
            ok = row is not None and HASHER.verify(row[1], form.get("password", ""))
        except VerificationError:
            ok = False
        if not ok:
            await self.respond(send, 400, b"text/plain", b"Wrong email or password.")
            return
        key, data = common.new_session(row[0])
        expires = common.utc_now() + datetime.timedelta(seconds=common.SESSION_AGE)
        await self.db.execute(
            "INSERT INTO sessions (session_key, data, expires_at, user_id) VALUES ($1, $2, $3, $4)",
            key,
            common.encode_session(data),
            self.db.stamp(expires),
            str(row[0]),
        )
        cookie = f"{common.SESSION_COOKIE}={self.signer.dumps(key)}; HttpOnly; Path=/; SameSite=Lax"
        await self.respond(
            send,
            303,
            b"text/plain",
            b"",
            [(b"location", b"/fs/page"), (b"set-cookie", cookie.encode())],
        )


async def setup(url: str) -> None:
    """Create the tables and the two users, and give the reader their notes."""
    db = make_database(url)
    await db.connect()
    try:
        for statement in DDL:
            await db.execute(statement.format(serial=db.serial, timestamp=db.timestamp))
        for email in (common.READER, common.WRITER):
            await db.execute(
                "INSERT INTO users (email, password) VALUES ($1, $2)",
                email,
                HASHER.hash(common.PASSWORD),
            )
        reader = await db.fetchval("SELECT id FROM users WHERE email = $1", common.READER)
        for title, body, created in common.seed_notes():
            await db.execute(
                "INSERT INTO notes (author_id, title, body, created_at) VALUES ($1, $2, $3, $4)",
                reader,
                title,
                body,
                db.stamp(created),
            )
    finally:
        await db.close()


app = App()

if __name__ == "__main__" and sys.argv[1:] == ["setup"]:
    asyncio.run(setup(common.database_url()))
