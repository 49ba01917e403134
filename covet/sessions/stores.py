"""Session objects and the stores that keep them.

:class:`~covet.sessions.SessionMiddleware` puts a :class:`Session`
in ``request.session`` and asks a :class:`SessionStore` to load and save it:

- :class:`CookieStore` (the default) keeps the whole session in the signed
  cookie. Nothing lives on the server, so it cannot be revoked before it
  expires and it is limited to about 4 KB.
- :class:`RedisStore` keeps the session in Redis under a 256-bit random id;
  only the signed id travels in the cookie. Use it in production.
- :class:`MemoryStore` keeps sessions in the process: for development and tests.

A store works on :class:`SessionRecord` objects and a *payload*: the
JSON-compatible value the middleware signs into the cookie (the session id for
server-side stores, the whole record for the cookie store).
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from covet import _json
from covet.exceptions import CovetError
from covet.redis import RedisConnection

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from redis.asyncio import Redis

__all__ = (
    "MAX_COOKIE_SIZE",
    "SESSION_USER_KEY",
    "CookieStore",
    "MemoryStore",
    "RedisStore",
    "Session",
    "SessionChanges",
    "SessionRecord",
    "SessionStore",
    "SessionTooLargeError",
    "generate_session_key",
)

#: The session key holding the logged-in user's primary key. It is defined here,
#: not in covet.auth, because stores index sessions by user (so all of one user's
#: sessions can be ended at once) and sessions must not depend on auth.
SESSION_USER_KEY = "_auth_user_id"

#: Browsers keep at least 4096 bytes per cookie (RFC 6265 section 6.1),
#: counting the name, the value and the attributes.
MAX_COOKIE_SIZE = 4096


class SessionTooLargeError(CovetError, ValueError):
    """The session does not fit in a cookie; use a server-side store."""


def generate_session_key() -> str:
    """Return a new session id: 256 random bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


@dataclasses.dataclass(slots=True)
class SessionRecord:
    """A stored session: its id, its data and two timestamps (Unix seconds).

    Attributes:
        key: The session id.
        data: The session data, a JSON-compatible dict.
        created: When the session was created; the absolute lifetime counts from here.
        accessed: When the session was last saved or touched; the idle timeout counts from here.
        existing: Whether this request loaded the record from the store under
            this id. A store then only updates it and never creates it again:
            if it is gone, it was revoked meanwhile (a logout in another tab,
            ``delete_for_user()``), and ``save()``/``touch()`` answer None.
        changes: For an existing record, what this request changed: the keys it
            set (their values are in ``data``) and the keys it deleted. A
            server-side store applies just these to the stored session, in one
            atomic step, so concurrent requests of one user that change
            different keys all keep their changes. None: ``data`` replaces the
            stored data whole (a new session, ``clear()``, ``flush()``,
            ``cycle_key()``, or ``modified`` set by hand).
    """

    key: str
    data: dict[str, Any]
    created: float
    accessed: float
    existing: bool = False
    changes: SessionChanges | None = None

    def merged_into(self, stored: SessionRecord) -> SessionRecord:
        """Return ``stored`` with this record's changes applied (and its access time).

        Without ``changes`` this record replaces ``stored`` whole.
        """
        changes = self.changes
        if changes is None:
            return self
        data = dict(stored.data)
        for key in changes.deleted:
            data.pop(key, None)
        for key in changes.set:
            data[key] = self.data[key]
        return SessionRecord(self.key, data, stored.created, self.accessed, self.existing)


@dataclasses.dataclass(frozen=True, slots=True)
class SessionChanges:
    """The keys one request set and deleted in a session (see :attr:`SessionRecord.changes`)."""

    set: frozenset[str] = frozenset()
    deleted: frozenset[str] = frozenset()


class Session(dict[str, Any]):
    """The session of one request: a dict that remembers whether it changed.

    Assigning, deleting, ``update()``, ``pop()`` and the like mark it as
    modified, so the middleware saves it. Mutating a value in place
    (``session["cart"].append(3)``) is not seen: reassign the value, or set
    ``session.modified = True``.

    Args:
        data: The loaded data.
        key: The session id; a new one is generated when omitted.
        created: When the session was created (default: now).
        is_new: Whether the session was just created (nothing was loaded).
    """

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        created: float | None = None,
        is_new: bool = True,
    ) -> None:
        super().__init__(data or {})
        self._modified = False
        # What changed, for the atomic merge of SessionRecord.changes; _whole when
        # the change cannot be told key by key.
        self._set: set[str] = set()
        self._deleted: set[str] = set()
        self._whole = False
        self.is_new = is_new
        self.created = time.time() if created is None else created
        # A new session's id is drawn when first asked for: most requests without a
        # session cookie never store a session, and 256 random bits cost a system call.
        self._key = key
        #: Ids replaced by cycle_key() or flush(); the middleware deletes them from the store.
        self.retired_keys: list[str] = []

    @property
    def modified(self) -> bool:
        """Whether the session changed and must be saved.

        Set it to True after mutating a value in place: the whole session is
        then saved as this request sees it (the last such response wins).
        """
        return self._modified

    @modified.setter
    def modified(self, value: bool) -> None:
        self._modified = bool(value)
        if value:
            self._whole = True
        else:
            self._set.clear()
            self._deleted.clear()
            self._whole = False

    @property
    def changes(self) -> SessionChanges | None:
        """What this request changed key by key, or None when it replaced the data whole."""
        if self._whole:
            return None
        return SessionChanges(frozenset(self._set), frozenset(self._deleted))

    def _changed(self, key: str) -> None:
        self._modified = True
        self._set.add(key)
        self._deleted.discard(key)

    def _removed(self, key: str) -> None:
        self._modified = True
        self._deleted.add(key)
        self._set.discard(key)

    def _replaced(self) -> None:
        self._modified = True
        self._whole = True

    @property
    def session_key(self) -> str:
        """Return the session id (for server-side stores, the key in the store)."""
        key = self._key
        if key is None:
            key = self._key = generate_session_key()
        return key

    def _retire_key(self) -> None:
        # An id never drawn was never handed out or stored: there is nothing to retire.
        if self._key is not None:
            self.retired_keys.append(self._key)
        self._key = None

    def cycle_key(self) -> None:
        """Give the session a new id, keeping its data.

        Call it when the privilege level changes (at login), so an id planted
        by an attacker before login is useless afterwards (session fixation).
        """
        self._retire_key()
        self._replaced()

    def flush(self) -> None:
        """Drop all data and start a new session with a new id (at logout)."""
        self._retire_key()
        super().clear()
        self.created = time.time()
        self._replaced()

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._changed(key)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._removed(key)

    def __ior__(self, other: Any) -> Session:  # type: ignore[override,misc]
        self.update(other)
        return self

    def clear(self) -> None:
        """Remove all data (the id stays; use :meth:`flush` at logout)."""
        super().clear()
        self._replaced()

    def pop(self, key: str, /, *default: Any) -> Any:
        """Remove ``key`` and return its value (or ``default``)."""
        if key in self:
            self._removed(key)
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last inserted item."""
        item = super().popitem()
        self._removed(item[0])
        return item

    def setdefault(self, key: str, default: Any = None, /) -> Any:
        """Return ``self[key]``, first setting it to ``default`` when missing."""
        if key not in self:
            self._changed(key)
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Update the data from a mapping or pairs, like :meth:`dict.update`."""
        changes = dict(*args, **kwargs)
        super().update(changes)
        self._modified = True
        for key in changes:
            self._changed(key)

    def __repr__(self) -> str:
        return f"Session({dict(self)!r}, modified={self.modified!r})"


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions live. Implement it to keep sessions somewhere else.

    The middleware signs and verifies the cookie itself: a store only turns a
    verified payload into a record and a record into a payload.
    """

    async def load(self, payload: Any) -> SessionRecord | None:
        """Return the session a verified cookie payload refers to, or None if unknown."""
        ...

    async def save(self, record: SessionRecord, *, ttl: int) -> Any:
        """Store ``record`` for ``ttl`` seconds; return the payload to sign into the cookie.

        Return None, storing nothing, when ``record.existing`` is true and the
        session is no longer stored: it was revoked, and must stay revoked.
        """
        ...

    async def touch(self, record: SessionRecord, *, ttl: int) -> Any:
        """Mark ``record`` as used now (idle timeout); return the payload for the cookie.

        Return None when the session is no longer stored, as :meth:`save` does.
        """
        ...

    async def delete(self, key: str) -> None:
        """Forget the session with id ``key`` (a no-op when unknown)."""
        ...


class CookieStore:
    """Keep the whole session in the signed cookie (the default store).

    The data is visible to the client (signed, not encrypted): never put
    secrets in it. It cannot be revoked server-side before it expires, and a
    session larger than about 4 KB raises :class:`SessionTooLargeError`.
    """

    async def load(self, payload: Any) -> SessionRecord | None:
        """Rebuild the record carried by the cookie payload."""
        if not isinstance(payload, dict):
            return None
        key, data = payload.get("k"), payload.get("d")
        created, accessed = payload.get("c"), payload.get("a")
        if (
            not isinstance(key, str)
            or not isinstance(data, dict)
            or not isinstance(created, int | float)
            or not isinstance(accessed, int | float)
        ):
            return None
        return SessionRecord(key, data, float(created), float(accessed))

    async def save(self, record: SessionRecord, *, ttl: int) -> Any:
        """Return the record as the cookie payload."""
        return {"k": record.key, "d": record.data, "c": record.created, "a": record.accessed}

    async def touch(self, record: SessionRecord, *, ttl: int) -> Any:
        """Return the record, with its new access time, as the cookie payload."""
        return await self.save(record, ttl=ttl)

    async def delete(self, key: str) -> None:
        """Do nothing: the cookie is deleted by the middleware."""


def _untouched(record: SessionRecord) -> SessionRecord:
    """Return ``record`` changing nothing but its access time: what ``touch()`` stores.

    A request that only read the session must not write back the data it
    loaded: another request may have changed it since.
    """
    if not record.existing:
        return record
    return dataclasses.replace(record, changes=SessionChanges())


def _encode_record(record: SessionRecord) -> bytes:
    return _json.dumps({"d": record.data, "c": record.created, "a": record.accessed})


def _decode_record(key: str, raw: bytes | str) -> SessionRecord | None:
    try:
        value = _json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("d"), dict):
        return None
    created, accessed = value.get("c"), value.get("a")
    if not isinstance(created, int | float) or not isinstance(accessed, int | float):
        return None
    return SessionRecord(key, value["d"], float(created), float(accessed))


class MemoryStore:
    """Keep sessions in this process's memory: for development and tests.

    Sessions vanish on restart and are not shared between workers. Expired
    sessions are swept as new ones are saved, and at most ``max_sessions`` are
    kept (the oldest are dropped first), so memory stays bounded.

    Args:
        max_sessions: The most sessions kept at once.
    """

    def __init__(self, *, max_sessions: int = 100_000) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {max_sessions!r}.")
        self.max_sessions = max_sessions
        # key -> (expires at, JSON): stored serialised, like a real backend, so
        # the data that works here also works with Redis.
        self._data: dict[str, tuple[float, bytes]] = {}

    def __len__(self) -> int:
        return len(self._data)

    async def load(self, payload: Any) -> SessionRecord | None:
        """Return the live session whose id is ``payload``."""
        if not isinstance(payload, str):
            return None
        entry = self._data.get(payload)
        if entry is None:
            return None
        if entry[0] <= time.time():
            del self._data[payload]
            return None
        return _decode_record(payload, entry[1])

    async def save(self, record: SessionRecord, *, ttl: int) -> Any:
        """Store the record for ``ttl`` seconds; the payload is its id (None if revoked)."""
        data = self._data
        entry = data.pop(record.key, None)  # re-insert: dict order is the eviction order
        if record.existing and (entry is None or entry[0] <= time.time()):
            return None
        if entry is not None and record.changes is not None:
            # Merged with what other requests stored meanwhile; no await in between,
            # so the read and the write are one step.
            stored = _decode_record(record.key, entry[1])
            if stored is not None:
                record = record.merged_into(stored)
        data[record.key] = (time.time() + ttl, _encode_record(record))
        if len(data) > self.max_sessions:
            self._sweep()
        return record.key

    async def touch(self, record: SessionRecord, *, ttl: int) -> Any:
        """Store the session again with its new access time (its data as stored)."""
        return await self.save(_untouched(record), ttl=ttl)

    async def delete(self, key: str) -> None:
        """Forget session ``key``."""
        self._data.pop(key, None)

    def _sweep(self) -> None:
        now = time.time()
        for key in [k for k, (expires, _) in self._data.items() if expires <= now]:
            del self._data[key]
        while len(self._data) > self.max_sessions:
            del self._data[next(iter(self._data))]


class RedisStore:
    """Keep sessions in Redis, shared by every worker; each expires with a TTL.

    Call :meth:`aclose` at shutdown (``app.on_shutdown(store.aclose)``) to
    close the connection pool this store opened.

    Args:
        url: A Redis URL, for example ``"redis://127.0.0.1:6379/0"``.
        client: An existing ``redis.asyncio.Redis`` client, instead of ``url``.
        prefix: Prepended to every key, to share a database with other data.

    Raises:
        MissingDependencyError: If the ``redis`` package is not installed.
        ValueError: Unless exactly one of ``url`` and ``client`` is given.
    """

    def __init__(
        self, url: str | None = None, *, client: Redis | None = None, prefix: str = "covet:session:"
    ) -> None:
        self._redis = RedisConnection(url, client, owner="RedisStore")
        self.prefix = prefix

    async def load(self, payload: Any) -> SessionRecord | None:
        """Return the session whose id is ``payload``, if it has not expired."""
        if not isinstance(payload, str):
            return None
        raw = await self._redis.get().get(self.prefix + payload)
        if raw is None:
            return None
        return _decode_record(payload, raw)

    async def save(self, record: SessionRecord, *, ttl: int) -> Any:
        """Store the record for ``ttl`` seconds; the payload is its id (None if revoked).

        An existing record's changes are merged into the stored session in a
        ``WATCH``/``MULTI`` transaction, retried when another request wrote the
        session in between.
        """
        client = self._redis.get()
        name = self.prefix + record.key
        if not record.existing or record.changes is None:
            # XX: an existing session is only overwritten, never re-created after a revocation.
            stored = await client.set(name, _encode_record(record), ex=ttl, xx=record.existing)
            return record.key if stored else None
        from redis.exceptions import WatchError

        async with client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(name)
                    raw = await pipe.get(name)
                    current = None if raw is None else _decode_record(record.key, raw)
                    if current is None:
                        return None  # revoked meanwhile: it stays revoked
                    pipe.multi()  # type: ignore[no-untyped-call]
                    # Queued (not sent) after multi(): execute() runs it, or WatchError.
                    _queued = pipe.set(name, _encode_record(record.merged_into(current)), ex=ttl)
                    await pipe.execute()
                except WatchError:
                    continue
                return record.key

    async def touch(self, record: SessionRecord, *, ttl: int) -> Any:
        """Store the session again with its new access time and TTL (its data as stored)."""
        return await self.save(_untouched(record), ttl=ttl)

    async def delete(self, key: str) -> None:
        """Delete session ``key``."""
        await self._redis.get().delete(self.prefix + key)

    async def delete_many(self, keys: Iterable[str]) -> None:
        """Delete several sessions at once (for example all of one user's)."""
        names = [self.prefix + key for key in keys]
        if names:
            await self._redis.get().delete(*names)

    async def aclose(self) -> None:
        """Close the connections this store opened on the running event loop."""
        await self._redis.aclose()
