"""A cache in the application's database: the ``covet_cache`` table, no extra service.

Like Rails' Solid Cache: every worker on every host shares it, it survives
restarts, and it needs nothing the application does not already run. Reads
are one indexed primary-key lookup; writes are one upsert (``ON CONFLICT``
on SQLite and PostgreSQL, ``ON DUPLICATE KEY`` on MySQL/MariaDB, rendered by
the dialect). Redis is faster; the database is simpler to operate.

Create the table through migrations, like the other built-in tables: add
``"covet.cache.database"`` to ``models`` in ``[tool.covet]``, then run
``covet makemigrations`` and ``covet migrate``.

Expired rows are not read, and are deleted in bounded batches: every
``cull_every`` writes of a process, at most ``cull_batch`` expired rows go
(the soonest expired first). With ``max_entries``, the same pass also deletes
up to ``cull_batch`` of the rows closest to expiry while the table holds more.
Nothing ever scans or deletes the whole table in one statement, except
:meth:`~covet.cache.Cache.clear`.

Statements run on the connection of the current :func:`covet.db.transaction`
when there is one for this database: a cache write inside a transaction that
rolls back is rolled back too.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from covet.cache.exceptions import CacheValueError
from covet.db import IntegrityError, Model, Q, fields, get_database
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from covet.db import Database
    from covet.db.queryset import QuerySet

__all__ = ("CacheEntry", "DatabaseBackend")

_MAX_RETRIES = 50


class CacheEntry(Model):
    """One cached value.

    Attributes:
        cache_key: The stored key (``prefix:version:key``), at most 250 characters.
        value: The encoded value.
        expires_at: When the value expires (Unix time), or None for never.
    """

    cache_key = fields.CharField(max_length=250, primary_key=True)
    value = fields.BinaryField()
    expires_at = fields.FloatField(null=True, index=True)

    class Meta:
        """The table is ``covet_cache``."""

        table = "covet_cache"


class _Statements:
    """The SQL of one database's dialect, built once (quoting and upserts come from ``ops``)."""

    def __init__(self, db: Database) -> None:
        ops = db.ops
        table = ops.quote_name(CacheEntry._meta.table)
        key, value, expires = (ops.quote_name(n) for n in ("cache_key", "value", "expires_at"))
        self.key = key
        live = f"({expires} IS NULL OR {expires} > :now)"
        insert = f"INSERT INTO {table} ({key}, {value}, {expires}) VALUES (:key, :value, :expires)"
        self.select = f"SELECT {value}, {expires} FROM {table} WHERE {key} = :key AND {live}"
        self.select_many = f"SELECT {key}, {value} FROM {table} WHERE {live} AND {key} IN "
        self.upsert = f"{insert} {ops.upsert(['cache_key'], ['value', 'expires_at'])}"
        self.insert = insert
        self.delete_expired = f"DELETE FROM {table} WHERE {key} = :key AND {expires} <= :now"
        self.delete_live = f"DELETE FROM {table} WHERE {key} = :key AND {live}"
        self.delete_many = f"DELETE FROM {table} WHERE {live} AND {key} IN "
        self.touch = f"UPDATE {table} SET {expires} = :expires WHERE {key} = :key AND {live}"
        self.swap = f"UPDATE {table} SET {value} = :new WHERE {key} = :key AND {value} = :old"
        self.release = f"DELETE FROM {table} WHERE {key} = :key AND {value} = :value"


def _in_list(keys: Sequence[str]) -> tuple[str, dict[str, Any]]:
    names = {f"k{i}": key for i, key in enumerate(keys)}
    return "(" + ", ".join(f":{name}" for name in names) + ")", names


def _positive(value: object, name: str, *, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        allowed = "a positive integer or None" if allow_none else "a positive integer"
        raise ImproperlyConfigured(f"DatabaseBackend {name} must be {allowed}, got {value!r}.")
    return value


class DatabaseBackend:
    """Store cache entries in the ``covet_cache`` table of a covet database.

    Args:
        using: The database alias (default: the default database), looked up
            at each call, so the cache may be created before the database connects.
        cull_every: Delete expired rows after about this many writes (per process).
        cull_batch: The most rows one cull deletes.
        max_entries: Keep about this many rows at most (None: no limit but expiry).
        clock: Returns the current Unix time; tests pass a fake one.

    Raises:
        ImproperlyConfigured: For a bound that is not a positive integer.
    """

    def __init__(
        self,
        *,
        using: str | None = None,
        cull_every: int = 100,
        cull_batch: int = 1000,
        max_entries: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.using = using
        self.cull_every = _positive(cull_every, "cull_every")
        self.cull_batch = _positive(cull_batch, "cull_batch")
        self.max_entries = _positive(max_entries, "max_entries", allow_none=True)
        self.clock = clock
        self._writes = 0
        self._statements: dict[int, tuple[Database, _Statements]] = {}

    @classmethod
    def from_options(cls, options: dict[str, str], location: str) -> DatabaseBackend:
        """Build from a ``database://[alias]`` URL and its options."""
        keyword: dict[str, Any] = {}
        for name in ("cull_every", "cull_batch", "max_entries"):
            if name in options:
                keyword[name] = options.pop(name)
        return cls(using=location or None, **keyword)

    def _db(self) -> tuple[Database, _Statements]:
        db = get_database(self.using)
        cached = self._statements.get(id(db))
        if cached is None or cached[0] is not db:
            cached = self._statements[id(db)] = (db, _Statements(db))
        return cached

    def _rows(self) -> QuerySet[CacheEntry]:
        return CacheEntry.objects.using(self.using)

    @staticmethod
    def _expires(now: float, ttl: float | None) -> float | None:
        return None if ttl is None else now + ttl

    async def _wrote(self, count: int = 1) -> None:
        self._writes += count
        if self._writes >= self.cull_every:
            self._writes = 0
            await self.cull()

    async def cull(self) -> int:
        """Delete up to ``cull_batch`` expired rows (and rows past ``max_entries``).

        Returns:
            How many rows were deleted.
        """
        now = self.clock()
        expired = await (
            self._rows()
            .filter(expires_at__lte=now)
            .order_by("expires_at")
            .values_list("cache_key", flat=True)[: self.cull_batch]
        )
        deleted = 0
        if expired:
            # Checked again: a row may have been set anew since it was selected.
            deleted = await self._rows().filter(cache_key__in=expired, expires_at__lte=now).delete()
        if self.max_entries is not None:
            excess = min(await self._rows().count() - self.max_entries, self.cull_batch)
            if excess > 0:
                # Evict the rows that would expire soonest (those without expiry last).
                victims = await (
                    self._rows()
                    .order_by("expires_at")
                    .filter(expires_at__isnull=False)
                    .values_list("cache_key", flat=True)[:excess]
                )
                if len(victims) < excess:
                    victims += await (
                        self._rows()
                        .filter(expires_at__isnull=True)
                        .values_list("cache_key", flat=True)[: excess - len(victims)]
                    )
                deleted += await self._rows().filter(cache_key__in=victims).delete()
        return deleted

    async def clear_expired(self) -> int:
        """Delete every expired row now (for a periodic job); return how many."""
        return await self._rows().filter(expires_at__lte=self.clock()).delete()

    # -- the backend interface -----------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        """Read the live row of ``key``."""
        db, sql = self._db()
        row = await db.fetch_one(sql.select, {"key": key, "now": self.clock()})
        return None if row is None else bytes(row[0])

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """Read the live rows of ``keys`` (in batches within the driver's parameter limit)."""
        db, sql = self._db()
        found: dict[str, bytes] = {}
        step = max(1, db.features.max_query_params - 1)
        for start in range(0, len(keys), step):
            placeholders, params = _in_list(keys[start : start + step])
            params["now"] = self.clock()
            for row in await db.fetch_all(sql.select_many + placeholders, params):
                found[row[0]] = bytes(row[1])
        return found

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Upsert the row of ``key``."""
        db, sql = self._db()
        expires = self._expires(self.clock(), ttl)
        await db.execute(sql.upsert, {"key": key, "value": value, "expires": expires})
        await self._wrote()

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> None:
        """Upsert every row in one batch."""
        if not items:
            return
        db, sql = self._db()
        expires = self._expires(self.clock(), ttl)
        await db.execute_many(
            sql.upsert,
            [{"key": key, "value": value, "expires": expires} for key, value in items.items()],
        )
        await self._wrote(len(items))

    async def add(self, key: str, value: bytes, ttl: float | None) -> bool:
        """Replace an expired row of ``key``, or insert one; False if a live row is there.

        A plain ``INSERT`` in a transaction (a savepoint inside the caller's),
        so the duplicate-key error of a concurrent ``add`` is rolled back alone
        and decides the race on every dialect. (An insert-or-ignore upsert
        cannot: with MySQL's ``FOUND_ROWS`` flag, which covet sets, an ignored
        row counts as affected.)
        """
        db, sql = self._db()
        now = self.clock()
        params = {"key": key, "value": value, "expires": self._expires(now, ttl)}
        # Not in the transaction: on InnoDB, a DELETE that finds nothing takes a gap
        # lock, and concurrent adds holding them would deadlock on their INSERTs.
        await db.execute(sql.delete_expired, {"key": key, "now": now})
        try:
            async with db.transaction():
                await db.execute(sql.insert, params)
        except IntegrityError:
            return False
        await self._wrote()
        return True

    async def delete(self, key: str) -> bool:
        """Delete the live row of ``key`` (an expired one is left to culling)."""
        db, sql = self._db()
        return await db.execute(sql.delete_live, {"key": key, "now": self.clock()}) > 0

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Delete the live rows of ``keys``."""
        db, sql = self._db()
        total = 0
        step = max(1, db.features.max_query_params - 1)
        for start in range(0, len(keys), step):
            placeholders, params = _in_list(keys[start : start + step])
            params["now"] = self.clock()
            total += await db.execute(sql.delete_many + placeholders, params)
        return total

    async def touch(self, key: str, ttl: float | None) -> bool:
        """Set a new expiry on the live row of ``key``."""
        db, sql = self._db()
        now = self.clock()
        params = {"key": key, "now": now, "expires": self._expires(now, ttl)}
        if await db.execute(sql.touch, params) > 0:
            return True
        # MySQL counts changed rows only: an unchanged expiry (None to None) reads 0.
        return await db.fetch_one(sql.select, {"key": key, "now": now}) is not None

    async def incr(self, key: str, delta: int) -> int:
        """Add ``delta`` with a compare-and-swap on the value, retried on a concurrent change."""
        db, sql = self._db()
        for _ in range(_MAX_RETRIES):
            row = await db.fetch_one(sql.select, {"key": key, "now": self.clock()})
            if row is None:
                raise CacheValueError(
                    f"Cache key {key!r} has no value to increment. Set it first, for example "
                    "with await cache.add(key, 0)."
                )
            old = bytes(row[0])
            try:
                number = int(old) + delta
            except ValueError:
                raise CacheValueError(
                    f"Cache key {key!r} does not hold an integer, so it cannot be incremented. "
                    "Store an int there."
                ) from None
            if delta == 0:
                return number
            new = str(number).encode("ascii")
            if await db.execute(sql.swap, {"key": key, "new": new, "old": old}) > 0:
                return number
        raise CacheValueError(
            f"Cache key {key!r} changed under incr() {_MAX_RETRIES} times in a row. A counter "
            "this busy belongs in Redis: use a redis:// cache for it."
        )

    async def clear(self, prefix: str) -> None:
        """Delete every row whose key starts with ``prefix``."""
        await self._rows().filter(Q(cache_key__startswith=prefix)).delete()

    async def release(self, key: str, token: bytes) -> bool:
        """Delete the row of ``key`` if its value is ``token``."""
        db, sql = self._db()
        return await db.execute(sql.release, {"key": key, "value": token}) > 0

    async def close(self) -> None:
        """Nothing to release: connections belong to the database's pool."""
