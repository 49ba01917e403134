"""The site in Starlette + SQLAlchemy (async ORM) + Jinja2, with middleware equivalent to covet's.

Starlette ships a signed-cookie session only, and no CSRF protection or
security headers, so the three are small pure-ASGI middleware here, doing
what covet's scaffold does: a server-side session row looked up through the
ORM, the user loaded through the ORM, the CSRF token of a form POST checked
against the secret kept in the session, and precomputed security headers.
One ``AsyncSession`` per request is shared by the middleware and the
endpoint, the usual SQLAlchemy pattern.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from markupsafe import Markup
from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, event, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from benchmarks.fullstack import common

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

HASHER = PasswordHasher()
templates = Jinja2Templates(directory=common.TEMPLATES)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password: Mapped[str] = mapped_column(String(255))


class SessionRow(Base):
    __tablename__ = "sessions"
    session_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    user_id: Mapped[str | None] = mapped_column(String(64), index=True)


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


def make_engine(url: str) -> Any:
    """Return the async engine: asyncpg pooled 10 (covet's max), or aiosqlite with WAL."""
    if url.startswith("postgres"):
        dsn, schema = common.postgres_parts(url)
        settings = {"search_path": schema} if schema else {}
        return create_async_engine(
            dsn.replace("postgresql://", "postgresql+asyncpg://", 1),
            pool_size=10,
            max_overflow=0,
            connect_args={"server_settings": settings},
        )
    engine = create_async_engine("sqlite+aiosqlite:///" + common.sqlite_path(url))

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(connection: Any, record: Any) -> None:
        cursor = connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "busy_timeout=5000",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return engine


engine = make_engine(common.database_url())
Session = async_sessionmaker(engine, expire_on_commit=False)


class DatabaseSessionMiddleware:
    """Open the request's ORM session and load the server-side session row named by the cookie."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.signer = common.serializer()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async with Session() as db:
            scope["db"] = db
            scope["session"] = {}
            raw = common.cookie_value(scope["headers"], common.SESSION_COOKIE)
            key = common.session_key_from_cookie(self.signer, raw)
            if key is not None:
                row = await db.scalar(
                    select(SessionRow).where(
                        SessionRow.session_key == key, SessionRow.expires_at > common.utc_now()
                    )
                )
                if row is not None:
                    scope["session"] = common.decode_session(row.data)
            await self.app(scope, receive, send)


class AuthenticationMiddleware:
    """Load the session's user through the ORM into ``scope["user"]`` (None when anonymous)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            user_id = scope["session"].get("user_id")
            scope["user"] = (
                await scope["db"].get(User, user_id) if isinstance(user_id, int) else None
            )
        await self.app(scope, receive, send)


class CSRFMiddleware:
    """Check the CSRF token of unsafe requests against the secret kept in the session.

    The form body is read here and replayed to the endpoint, as covet's
    CSRFMiddleware does for a urlencoded form.
    """

    def __init__(self, app: Any, exempt: tuple[str, ...] = ("/fs/login",)) -> None:
        self.app = app
        self.exempt = exempt

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if scope["path"] not in self.exempt:
            form = parse_qs(body.decode("latin-1"))
            token = form.get(common.CSRF_FIELD, [""])[0]
            if not common.token_matches(scope["session"].get("csrf", ""), token):
                await PlainTextResponse("CSRF check failed.", status_code=403)(scope, receive, send)
                return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class SecurityHeadersMiddleware:
    """Add the precomputed security headers to every response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *common.SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def own_notes(user: User) -> Any:
    return (
        select(Note)
        .where(Note.author_id == user.id)
        .order_by(Note.created_at.desc(), Note.id.desc())
        .limit(common.PAGE_SIZE)
    )


async def page(request: Request) -> Response:
    user = request.scope["user"]
    if user is None:
        return RedirectResponse("/fs/login", status_code=303)
    db: AsyncSession = request.scope["db"]
    total = await db.scalar(select(func.count()).select_from(Note).where(Note.author_id == user.id))
    notes = (await db.scalars(own_notes(user))).all()
    token = common.mask_token(request.scope["session"]["csrf"])
    context = {
        "user_email": user.email,
        "total": total,
        "notes": notes,
        "csrf_input": Markup(common.csrf_input(token)),
    }
    return templates.TemplateResponse(request, "page.html", context)


async def notes_json(request: Request) -> Response:
    user = request.scope["user"]
    if user is None:
        return JSONResponse({"detail": "Log in first."}, status_code=401)
    notes = (await request.scope["db"].scalars(own_notes(user))).all()
    return JSONResponse([common.note_dict(n.id, n.title, n.body, n.created_at) for n in notes])


async def create_note(request: Request) -> Response:
    user = request.scope["user"]
    if user is None:
        return RedirectResponse("/fs/login", status_code=303)
    form = await request.form()
    title = str(form.get("title", "")).strip()
    if not title or len(title) > 200:
        return PlainTextResponse("Give the note a title.", status_code=422)
    db: AsyncSession = request.scope["db"]
    db.add(
        Note(
            author_id=user.id,
            title=title,
            body=str(form.get("body", "")),
            created_at=common.utc_now(),
        )
    )
    await db.commit()
    return RedirectResponse("/fs/page", status_code=303)


async def login(request: Request) -> Response:
    if request.method == "GET":
        return templates.TemplateResponse(request, "login.html", {"csrf_input": ""})
    form = await request.form()
    db: AsyncSession = request.scope["db"]
    user = await db.scalar(select(User).where(User.email == str(form.get("email", ""))))
    try:
        ok = user is not None and HASHER.verify(user.password, str(form.get("password", "")))
    except VerificationError:
        ok = False
    if not ok or user is None:
        return PlainTextResponse("Wrong email or password.", status_code=400)
    key, data = common.new_session(user.id)
    expires = common.utc_now() + datetime.timedelta(seconds=common.SESSION_AGE)
    db.add(
        SessionRow(
            session_key=key,
            data=common.encode_session(data),
            expires_at=expires,
            user_id=str(user.id),
        )
    )
    await db.commit()
    response = RedirectResponse("/fs/page", status_code=303)
    response.set_cookie(
        common.SESSION_COOKIE, common.serializer().dumps(key), httponly=True, samesite="lax"
    )
    return response


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await engine.dispose()


app = Starlette(
    routes=[
        Route("/fs/page", page),
        Route("/fs/notes.json", notes_json),
        Route("/fs/notes", create_note, methods=["POST"]),
        Route("/fs/login", login, methods=["GET", "POST"]),
    ],
    middleware=[
        Middleware(SecurityHeadersMiddleware),
        Middleware(DatabaseSessionMiddleware),
        Middleware(AuthenticationMiddleware),
        Middleware(CSRFMiddleware),
    ],
    lifespan=lifespan,
)


async def setup() -> None:
    """Create the tables and the two users, and give the reader their notes."""
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    async with Session() as db:
        users = [
            User(email=email, password=HASHER.hash(common.PASSWORD))
            for email in (common.READER, common.WRITER)
        ]
        db.add_all(users)
        await db.flush()
        db.add_all(
            Note(author_id=users[0].id, title=title, body=body, created_at=created)
            for title, body, created in common.seed_notes()
        )
        await db.commit()
    await engine.dispose()


if __name__ == "__main__" and sys.argv[1:] == ["setup"]:
    asyncio.run(setup())
