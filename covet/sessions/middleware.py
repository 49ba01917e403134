"""Signed-cookie sessions: ``request.session`` for every request.

``SessionMiddleware`` loads the session named by the session cookie into
``scope["session"]`` (a :class:`~covet.sessions.Session`), and when the
response starts it saves the session and sets the cookie, but only if the
session changed (or is new and not empty). A tampered, expired or unknown
cookie silently starts an empty session.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Literal

from itsdangerous import BadSignature, URLSafeTimedSerializer

from covet.cookies import cookie_header
from covet.exceptions import ImproperlyConfigured
from covet.requests import HTTPConnection
from covet.sessions.stores import (
    MAX_COOKIE_SIZE,
    CookieStore,
    Session,
    SessionRecord,
    SessionStore,
    SessionTooLargeError,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Sequence

    from covet.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ("SessionMiddleware",)

_TWO_WEEKS = 14 * 24 * 60 * 60
#: How many verified session cookies each middleware remembers (see _verify()).
_VERIFIED_SIZE = 4096
#: What _verify() returns for a cookie that does not verify (None is a valid payload).
_INVALID: Any = object()
_SameSite = Literal["lax", "strict", "none"]


def _is_text(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _positive_int(value: object) -> bool:
    """Return whether ``value`` is an ``int`` (not a ``bool``) of at least 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _secret_keys(secret_key: str | Sequence[str], owner: str) -> list[str]:
    """Validate ``secret_key`` and return the keys oldest first, as itsdangerous wants them."""
    keys = [secret_key] if isinstance(secret_key, str) else list(secret_key)
    if not keys or not all(_is_text(key) for key in keys):
        raise ImproperlyConfigured(
            f"{owner} got secret_key={secret_key!r}. Pass a non-empty string, or a list of "
            "them with the newest first, for example secret_key=os.environ['SECRET_KEY']."
        )
    # covet lists the newest key first; itsdangerous signs with the last one.
    return keys[::-1]


class SessionMiddleware:
    """Give every request a session, stored by ``store`` and named by a signed cookie.

    Args:
        app: The ASGI app to wrap.
        secret_key: The key that signs the cookie, or a list of keys, newest
            first: the newest signs, every key verifies, so a key can be
            retired without logging everybody out.
        store: Where sessions live (default :class:`~covet.sessions.CookieStore`:
            in the cookie itself).
        cookie_name: The cookie name. By default ``"__Host-session"`` on
            HTTPS (``"__Secure-session"`` when ``domain`` is set) and
            ``"session"`` on plain HTTP.
        max_age: The absolute lifetime of a session in seconds (default 14
            days), counted from its creation, however active it is.
        idle_timeout: End a session unused for this many seconds. When set,
            every response refreshes the session's access time.
        same_site: The cookie's ``SameSite``: ``"lax"``, ``"strict"`` or ``"none"``.
        https_only: Mark the cookie ``Secure``. ``None`` decides per request
            from its scheme (``https``/``wss``).
        path: The cookie's ``Path``.
        domain: The cookie's ``Domain``; ``None`` keeps it host-only.

    Raises:
        ImproperlyConfigured: For an empty key or an invalid option.
    """

    def __init__(
        self,
        app: ASGIApp,
        secret_key: str | Sequence[str],
        *,
        store: SessionStore | None = None,
        cookie_name: str | None = None,
        max_age: int = _TWO_WEEKS,
        idle_timeout: int | None = None,
        same_site: _SameSite = "lax",
        https_only: bool | None = None,
        path: str = "/",
        domain: str | None = None,
    ) -> None:
        self.app = app
        self._serializer = URLSafeTimedSerializer(
            _secret_keys(secret_key, "SessionMiddleware"), salt="covet.session"
        )
        self.store: SessionStore = CookieStore() if store is None else store
        if not isinstance(self.store, SessionStore):
            raise ImproperlyConfigured(
                f"SessionMiddleware got store={store!r}, which lacks load/save/touch/delete. "
                "Pass a CookieStore, RedisStore, MemoryStore or another SessionStore."
            )
        if not _positive_int(max_age):
            raise ImproperlyConfigured(
                f"SessionMiddleware got max_age={max_age!r}. Pass a number of seconds >= 1."
            )
        if idle_timeout is not None and not _positive_int(idle_timeout):
            raise ImproperlyConfigured(
                f"SessionMiddleware got idle_timeout={idle_timeout!r}. Pass a number of "
                "seconds >= 1, or None for no idle timeout."
            )
        if same_site not in ("lax", "strict", "none"):
            raise ImproperlyConfigured(
                f"SessionMiddleware got same_site={same_site!r}. Use 'lax', 'strict' or 'none'."
            )
        if same_site == "none" and https_only is not True:
            raise ImproperlyConfigured(
                "SessionMiddleware got same_site='none', which browsers only accept on Secure "
                "cookies. Pass https_only=True as well."
            )
        self.cookie_name = cookie_name
        # Verified cookie values -> (session id, signing time); see _verify().
        self._verified: dict[str, tuple[str, float]] = {}
        self.max_age = max_age
        self.idle_timeout = idle_timeout
        self.same_site: _SameSite = same_site
        self.https_only = https_only
        self.path = path
        self.domain = domain
        # Fail at startup, not at the first response, for a name browsers would reject.
        if cookie_name is not None:
            self._set_cookie(cookie_name, "x", max_age=1, secure=bool(https_only))

    def _cookie_name_for(self, secure: bool) -> str:
        if self.cookie_name is not None:
            return self.cookie_name
        if not secure:
            return "session"
        # The __Host- prefix forbids Domain and needs Path=/ (RFC 6265bis section 4.1.3).
        if self.domain is None and self.path == "/":
            return "__Host-session"
        return "__Secure-session"

    def _set_cookie(
        self, name: str, value: str, *, max_age: int, secure: bool
    ) -> tuple[bytes, bytes]:
        return cookie_header(
            name,
            value,
            max_age=max_age,
            path=self.path,
            domain=self.domain,
            secure=secure,
            httponly=True,
            samesite=self.same_site,
        )

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """Load the session, run the app, then save the session with the response.

        Without a session cookie there is nothing to load: the request gets an
        empty session and this layer hands back the app's awaitable without a
        coroutine of its own. Its ``send`` wrapper saves the session (a
        coroutine) only when the response start finds something to store or
        a cookie to change; otherwise it passes the message straight on.
        """
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            return self.app(scope, receive, send)
        secure = (
            self.https_only
            if self.https_only is not None
            else scope.get("scheme") in ("https", "wss")
        )
        name = self._cookie_name_for(secure)
        raw: str | None = None
        for header, _ in scope["headers"]:
            if header == b"cookie":  # parsed only when there are cookies at all
                raw = HTTPConnection(scope).cookies.get(name)
                break
        if raw:
            return self._serve_loaded(scope, receive, send, raw, name, secure)
        # No cookie (or an empty one), so nothing to load: a new, empty session.
        session = scope["session"] = Session()
        if kind == "websocket":
            # A websocket has no response to carry a cookie: the session is read-only.
            return self.app(scope, receive, send)
        return self.app(
            scope, receive, self._saving_send(send, session, None, raw is not None, name, secure)
        )

    async def _serve_loaded(
        self, scope: Scope, receive: Receive, send: Send, raw: str, name: str, secure: bool
    ) -> None:
        """Serve a request that names a session: load it first."""
        session, payload = await self._load(raw)
        scope["session"] = session
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        saving = self._saving_send(send, session, payload, True, name, secure)
        await self.app(scope, receive, saving)

    def _saving_send(
        self, send: Send, session: Session, payload: Any, had_cookie: bool, name: str, secure: bool
    ) -> Send:
        """Wrap ``send`` so that the response start saves the session if it needs saving."""

        def send_with_cookie(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start" and self._needs_commit(
                session, payload, had_cookie
            ):
                return self._send_committed(
                    send, message, session, payload, had_cookie, name, secure
                )
            return send(message)

        return send_with_cookie

    def _needs_commit(self, session: Session, payload: Any, had_cookie: bool) -> bool:
        """Say whether :meth:`_commit` has anything to do (False: it would return None at once)."""
        if session.retired_keys:
            return True
        if not session:
            return had_cookie  # an emptied session's cookie is deleted
        if session.modified or session.is_new or payload is None or self.idle_timeout is not None:
            return True
        return session.created + self.max_age <= time.time()  # expired while serving

    async def _send_committed(
        self,
        send: Send,
        message: Message,
        session: Session,
        payload: Any,
        had_cookie: bool,
        name: str,
        secure: bool,
    ) -> None:
        """Save the session, add its cookie to the start ``message``, and send it."""
        header = await self._commit(session, payload, had_cookie=had_cookie)
        if header is not None:
            value, max_age = header
            cookie = self._set_cookie(name, value, max_age=max_age, secure=secure)
            if len(cookie[1]) + len(b"set-cookie: ") > MAX_COOKIE_SIZE:
                raise SessionTooLargeError(
                    f"The session cookie {name!r} is {len(cookie[1])} bytes, over the "
                    f"{MAX_COOKIE_SIZE}-byte limit browsers accept. Store less in the "
                    "session, or keep it server-side: store=RedisStore(url)."
                )
            message["headers"] = [*message.get("headers", ()), cookie]
        await send(message)

    def _verify(self, raw: str) -> Any:
        """Return the payload of a signed cookie value, or ``_INVALID``.

        Checking the signature (itsdangerous: base64, HMAC, the timestamp) is
        about half of what a request naming a session costs, and a visitor
        sends the same cookie with every request: the payloads of cookies
        already verified are kept (at most ``_VERIFIED_SIZE``, oldest dropped
        first), and only their age is checked again. Only server-side ids
        (strings) are kept: a cookie-store payload holds the session data,
        which must not be shared between requests.
        """
        cached = self._verified.get(raw)
        if cached is None:
            try:
                payload, signed = self._serializer.loads(
                    raw, max_age=self.max_age, return_timestamp=True
                )
            except BadSignature:  # tampered, signed with an unknown key, or expired
                return _INVALID
            if type(payload) is not str:
                return payload
            verified = self._verified
            if len(verified) >= _VERIFIED_SIZE:
                del verified[next(iter(verified))]
            cached = verified[raw] = (payload, signed.timestamp())
        payload, signed_at = cached
        age = time.time() - signed_at
        if age > self.max_age or age < 0:  # as itsdangerous decides expiry
            return _INVALID
        return payload

    async def _load(self, raw: str | None) -> tuple[Session, Any]:
        """Return the session named by the cookie (or a new one) and the verified payload."""
        if not raw:
            return Session(), None
        payload = self._verify(raw)
        if payload is _INVALID:
            return Session(), None
        record = await self.store.load(payload)
        if record is None:
            return Session(), None
        now = time.time()
        if now - record.created > self.max_age or (
            self.idle_timeout is not None and now - record.accessed > self.idle_timeout
        ):
            await self.store.delete(record.key)
            return Session(), None
        return Session(record.data, key=record.key, created=record.created, is_new=False), payload

    async def _commit(
        self, session: Session, payload: Any, *, had_cookie: bool
    ) -> tuple[str, int] | None:
        """Save or delete the session; return the cookie ``(value, max_age)`` to send, if any.

        ``max_age=0`` deletes the cookie.
        """
        store = self.store
        # Loaded from the store under this id: the store must not re-create it if it
        # was revoked while this request ran (a logout in another tab).
        existing = payload is not None and not session.retired_keys
        for key in session.retired_keys:
            await store.delete(key)
        session.retired_keys.clear()
        if not session:
            if not had_cookie:
                return None
            if payload is not None:
                await store.delete(session.session_key)
            return "", 0
        now = time.time()
        remaining = session.created + self.max_age - now
        if remaining <= 0:
            await store.delete(session.session_key)
            return "", 0
        max_age = math.ceil(remaining)
        ttl = max_age if self.idle_timeout is None else min(max_age, self.idle_timeout)
        record = SessionRecord(
            session.session_key,
            dict(session),
            session.created,
            now,
            existing=existing,
            # Only this request's changes are merged into what is stored: concurrent
            # requests of one user that change different keys all keep theirs.
            changes=session.changes if existing else None,
        )
        if session.modified or session.is_new or payload is None:
            new_payload = await store.save(record, ttl=ttl)
        elif self.idle_timeout is not None:
            new_payload = await store.touch(record, ttl=ttl)
        else:
            return None
        session.modified = False
        if new_payload is None:
            return "", 0  # revoked while this request ran: it stays revoked
        if new_payload == payload:
            return None  # a server-side id that did not change: the cookie stays valid
        value = self._serializer.dumps(new_payload)
        assert isinstance(value, str)  # noqa: S101 - URLSafeTimedSerializer returns str
        return value, max_age
