"""The benchmark endpoints behind the middleware stack ``covet new`` scaffolds.

``covet_app`` measures covet with no middleware; a project made by ``covet
new`` runs every request through the stack its ``app.py`` adds, outermost
first: security headers, sessions, authentication (a bearer token, then the
session) and CSRF. This app adds the same middleware with the same options,
so ``inprocess.py``/``instructions.py --only bare,covet,scaffold`` show what
that stack costs beside the bare route. Two differences keep every request
free of I/O, as the other benchmark apps are: sessions live in a
:class:`~covet.sessions.MemoryStore` (the scaffold's ``DatabaseStore`` would
add one query for each request carrying a session cookie), and the login
throttle counts in memory (it is only consulted at login). There is no
database: no request here logs a user in.

Endpoints:

- ``/plaintext`` and ``/json``: as in the other apps, requested without
  cookies (an API client, a health probe).
- ``/page``: a returning visitor's page view. The request carries the session
  cookie of a stored session (holding the visitor's CSRF secret and a visit
  count); the handler reads the session and ``request.user`` (anonymous) and
  takes a CSRF token, as a page with a form does. Nothing changes, so nothing
  is saved and no cookie is set. :data:`REQUEST_HEADERS` holds the cookie the
  benchmark clients send with it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from covet import Covet, JSONResponse, PlainTextResponse, Request
from covet.auth import (
    AbstractAPIToken,
    AbstractUser,
    AuthenticationMiddleware,
    BearerTokenBackend,
    LoginThrottle,
    SessionBackend,
)
from covet.db import CASCADE, fields
from covet.middleware import CSRFMiddleware, SecurityHeadersMiddleware, SessionMiddleware
from covet.middleware.csrf import get_csrf_token
from covet.sessions import MemoryStore, SessionRecord

if TYPE_CHECKING:
    from covet.types import Message, Scope

ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
SECRET_KEY = "benchmark-secret-key-not-for-production-0123456789"
LOGIN_RATE = "5/minute"
#: The one session id every benchmark visitor has (see :class:`OneVisitorStore`).
VISITOR = "benchmark-visitor"


class BenchUser(AbstractUser):
    """The scaffold's ``User``; never loaded here (no request is logged in)."""

    class Meta:
        table = "bench_users"


class BenchAPIToken(AbstractAPIToken):
    """The scaffold's ``APIToken``, for the bearer backend tried on every request."""

    user = fields.ForeignKey(BenchUser, related_name="api_tokens", on_delete=CASCADE)

    class Meta:
        table = "bench_api_tokens"


class OneVisitorStore(MemoryStore):
    """A :class:`MemoryStore` that files every session under :data:`VISITOR`.

    The benchmark client runs in another process than the server: with a fixed
    id, the cookie it signs names the session the server stored at import.
    """

    async def save(self, record: SessionRecord, *, ttl: int) -> Any:
        """Store ``record`` under :data:`VISITOR`; the payload is that id."""
        return await super().save(dataclasses.replace(record, key=VISITOR), ttl=ttl)


def build() -> Covet:
    """Build the app with the scaffold's middleware, in the scaffold's order."""
    app = Covet(allowed_hosts=ALLOWED_HOSTS)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(SessionMiddleware, secret_key=SECRET_KEY, store=OneVisitorStore())
    app.add_middleware(
        AuthenticationMiddleware,
        user_model=BenchUser,
        backends=[BearerTokenBackend(BenchAPIToken), SessionBackend()],
        secret_key=SECRET_KEY,
        login_throttle=LoginThrottle(LOGIN_RATE),
    )
    app.add_middleware(CSRFMiddleware)

    @app.get("/plaintext")
    async def plaintext(request: Request) -> PlainTextResponse:
        return PlainTextResponse("Hello, World!")

    @app.get("/json")
    async def json_endpoint(request: Request) -> JSONResponse:
        return JSONResponse({"message": "Hello, World!"})

    @app.get("/page")
    async def page(request: Request) -> PlainTextResponse:
        visits = request.session.get("visits", 0)
        who = "signed in" if request.user.is_authenticated else "anonymous"
        token = get_csrf_token(request)
        return PlainTextResponse(f"visit {visits}, {who}, token {len(token)}")

    @app.get("/start")
    async def start(request: Request) -> PlainTextResponse:
        request.session["visits"] = 1
        get_csrf_token(request)  # stores the visitor's CSRF secret in the session
        return PlainTextResponse("started")

    return app


def _start_session(app: Covet) -> bytes:
    """Serve ``/start`` once, without an event loop; return the session cookie it sets.

    Nothing in it waits (the store is in memory), so the coroutine finishes on
    its first step. The server process does this at import too, which stores
    the session the cookie names.
    """
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": "/start",
        "raw_path": b"/start",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    step = app(scope, receive, send)
    try:
        step.send(None)
    except StopIteration:
        pass
    else:
        step.close()
        raise RuntimeError("Serving /start waited for something; the benchmark store must not.")
    for name, value in sent[0]["headers"]:
        if name == b"set-cookie" and value.startswith(b"session="):
            cookie: bytes = value.partition(b";")[0]
            return cookie
    raise RuntimeError(f"/start set no session cookie: {sent[0]!r}.")


app = build()
#: Extra request headers the benchmark clients send, by path.
REQUEST_HEADERS: dict[str, list[tuple[bytes, bytes]]] = {
    "/page": [(b"cookie", _start_session(app))],
}
