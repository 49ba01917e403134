"""Database routing: which database a query without ``using=`` runs on.

A router is any object with ``db_for_read(model, **hints)`` and/or
``db_for_write(model, **hints)`` methods returning a database alias, or None
for "no opinion" (Django's ``DATABASE_ROUTERS`` protocol). Install routers
with :func:`set_routers`; the first one with an opinion wins, and with none
(or no routers at all) the query runs on the default database::

    from covet.db.routing import ReplicaRouter, set_routers

    set_routers([ReplicaRouter(primary="default", replicas=["replica_1", "replica_2"])])

An explicit alias always wins: ``Post.objects.using("default")`` and
``obj.save(using=...)`` are never routed. Raw SQL (``db.fetch_all(...)``)
runs on the :class:`~covet.db.Database` it is called on, so routing it is a
matter of choosing the object: ``get_database(db_for_read(Post))``.

Reads are ``await queryset``, ``async for``, ``get()``, ``first()``,
``count()``, ``exists()``, ``aggregate()``, ``explain()`` and their
prefetches; writes are ``save()``, ``delete()``, ``create()``, ``update()``,
``bulk_create()``/``bulk_update()`` and ``QuerySet.delete()``.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal, Protocol

from covet.db.database import Database, connected_databases, get_database, statement_epoch
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from covet.db.models import Model

__all__ = (
    "ReplicaRouter",
    "Router",
    "connect_replicas",
    "db_for_read",
    "db_for_write",
    "get_routers",
    "set_routers",
)

logger = logging.getLogger("covet.db")


class Router(Protocol):
    """What :func:`set_routers` takes: either method may be missing or return None."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        """Return the alias reads of ``model`` go to, or None for no opinion."""

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        """Return the alias writes of ``model`` go to, or None for no opinion."""


#: The installed routers. Mutated in place, never rebound: the query paths test its
#: truth (``if routers:``), which is all routing costs while none is installed.
routers: list[Any] = []


def set_routers(new: Iterable[Any]) -> None:
    """Install ``new`` as the routers (replacing any); ``set_routers([])`` removes them.

    Raises:
        ImproperlyConfigured: A router has neither ``db_for_read`` nor ``db_for_write``.
    """
    new = list(new)
    for router in new:
        if not (hasattr(router, "db_for_read") or hasattr(router, "db_for_write")):
            raise ImproperlyConfigured(
                f"Database router {router!r} has neither db_for_read() nor db_for_write()."
            )
    routers[:] = new
    statement_epoch.bump()  # the managers' remembered get() statements hold no router's choice


def get_routers() -> list[Any]:
    """Return a copy of the installed routers."""
    return list(routers)


def _route(method: str, model: type[Model], hints: dict[str, Any]) -> str | None:
    for router in routers:
        chooser = getattr(router, method, None)
        if chooser is not None:
            alias = chooser(model, **hints)
            if alias is not None:
                return str(alias)
    return None


def db_for_read(model: type[Model], **hints: Any) -> str | None:
    """Return the alias the routers pick for reading ``model`` (None: the default)."""
    return _route("db_for_read", model, hints) if routers else None


def db_for_write(model: type[Model], **hints: Any) -> str | None:
    """Return the alias the routers pick for writing ``model`` (None: the default)."""
    return _route("db_for_write", model, hints) if routers else None


#: Whether this context (one request: each runs in its own task) wrote through a
#: ReplicaRouter with ``read_your_writes=True``.
_wrote: ContextVar[bool] = ContextVar("covet_routing_wrote", default=False)


class ReplicaRouter:
    """Send reads to replicas and writes (and every read inside a transaction) to the primary.

    Args:
        primary: The alias of the primary (read-write) database.
        replicas: The aliases of the replicas. Those not connected, or marked
            unavailable after a failed connection (see ``Database(fallback=...)``),
            are skipped; with none left, reads go to the primary.
        choice: ``"random"`` (default) or ``"round_robin"``: how each read
            picks its replica.
        read_your_writes: After a write, send the reads of the same request
            (the same asyncio task) to the primary, so they cannot see a
            lagging replica without the write. Off by default (as in Django):
            a replica may lag behind the primary by up to its replication
            delay; pin single queries with ``.using("default")`` instead.
        models: Route only these model classes (default: every model).
    """

    def __init__(
        self,
        primary: str = "default",
        replicas: Sequence[str] = (),
        *,
        choice: Literal["random", "round_robin"] = "random",
        read_your_writes: bool = False,
        models: Iterable[type[Model]] | None = None,
    ) -> None:
        if choice not in ("random", "round_robin"):
            raise ImproperlyConfigured(
                f"ReplicaRouter(choice={choice!r}): use 'random' or 'round_robin'."
            )
        if primary in replicas:
            raise ImproperlyConfigured(
                f"ReplicaRouter: the primary {primary!r} is also listed as a replica."
            )
        self.primary = primary
        self.replicas = tuple(replicas)
        self.choice = choice
        self.read_your_writes = read_your_writes
        self.models = frozenset(models) if models is not None else None
        self._turn = itertools.count()

    def __repr__(self) -> str:
        return f"<ReplicaRouter primary={self.primary!r} replicas={list(self.replicas)!r}>"

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        """Return a replica's alias, or the primary's inside a transaction or after a write."""
        if self.models is not None and model not in self.models:
            return None
        primary = get_database(self.primary)
        if primary.in_transaction() or (self.read_your_writes and _wrote.get()):
            return self.primary
        now = time.monotonic()
        usable = [
            db
            for db in connected_databases()
            if db.alias in self.replicas and db.unavailable_until <= now
        ]
        if not usable:
            return self.primary
        if self.choice == "round_robin":
            return usable[next(self._turn) % len(usable)].alias
        return random.choice(usable).alias  # noqa: S311 - load spreading, not security

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        """Return the primary's alias (and remember the write for ``read_your_writes``)."""
        if self.models is not None and model not in self.models:
            return None
        if self.read_your_writes:
            _wrote.set(True)
        return self.primary


async def connect_replicas(
    urls: Sequence[str],
    *,
    primary: str = "default",
    choice: Literal["random", "round_robin"] = "random",
    read_your_writes: bool = False,
    **options: Any,
) -> list[Database]:
    """Connect a Database per replica URL and install a :class:`ReplicaRouter` for them.

    The replicas are named ``replica_1``, ``replica_2``... and fall back to
    ``primary`` while unreachable. ``urls`` is typically
    ``settings.database_replica_urls`` (``[tool.covet] database_replica_urls``
    or ``DATABASE_REPLICA_URLS``); ``options`` go to each :class:`Database`.

    Returns:
        The connected replica databases (disconnect them at shutdown).
    """
    opened: list[Database] = []
    try:
        for number, url in enumerate(urls, 1):
            db = Database(url, alias=f"replica_{number}", fallback=primary, **options)
            await db.connect()
            opened.append(db)
    except BaseException:
        for db in opened:
            await db.disconnect()
        raise
    router = ReplicaRouter(
        primary,
        [db.alias for db in opened],
        choice=choice,
        read_your_writes=read_your_writes,
    )
    set_routers([*(r for r in routers if not isinstance(r, ReplicaRouter)), router])
    return opened
