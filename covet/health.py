"""Health endpoints for load balancers and orchestrators: ``GET /up`` and ``GET /ready``.

>>> app.include_router(health_router())                              # doctest: +SKIP
>>> app.include_router(health_router(checks={"redis": redis.ping}))  # doctest: +SKIP

``/up`` answers 200 without any I/O: the process is alive and its event loop
turns (a liveness probe; restart the process when it fails).

``/ready`` runs its checks concurrently, each bounded by ``timeout`` seconds,
so a hanging dependency makes it answer 503 in time instead of hanging the
probe: every connected :class:`covet.db.Database` runs ``SELECT 1`` on a
pooled connection, every Redis that a configured feature uses (sessions, rate
limits, channels, cache, jobs: :func:`covet.redis.redis_connections`) answers
``PING``, the database has no pending migrations (when you pass the project
settings as ``migrations=``), then each extra check you pass (an async
callable; it fails by raising). It answers 200 when all pass, else 503 with ``Retry-After``, and
503 as soon as the app starts draining (from SIGTERM on, see
:mod:`covet.shutdown`), so the load balancer stops sending new requests to a
process that is going away. The body is JSON::

    {"status": "ok" | "unavailable" | "draining",
     "checks": {"db:default": {"ok": true, "ms": 0.4, "error": null}}}

Both answer ``GET`` and ``HEAD`` only and never set a cookie. Put a health
router before the routes that need a session: the session, authentication and
CSRF middleware do no work for a request without cookies, which is what probes
send.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from covet.db.database import connected_databases
from covet.exceptions import ImproperlyConfigured
from covet.redis import redis_connections
from covet.responses import JSONResponse, PlainTextResponse
from covet.routing import Router

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from alembic.script import ScriptDirectory

    from covet.config import Settings
    from covet.db import Database
    from covet.db.migrations.history import LinearHistory
    from covet.requests import Request

__all__ = ("DEFAULT_READY_TIMEOUT", "Health", "health_router")

#: Seconds each readiness check may take before it counts as failed.
DEFAULT_READY_TIMEOUT = 2.0

_NO_STORE = {"Cache-Control": "no-store"}


class Health:
    """The ``/up`` and ``/ready`` endpoints; :func:`health_router` routes them.

    Args:
        checks: Extra readiness checks by name, each an async callable without
            arguments that raises when its dependency is unavailable (for
            example ``{"redis": redis_client.ping}``).
        timeout: Seconds each check may take; a slower one fails with
            ``"timed out after ... s"``.
        databases: Check every connected :class:`covet.db.Database` too.
        retry_after: Seconds sent in ``Retry-After`` with a 503.
        redis: Ping every Redis a covet feature in this process is configured
            with (:func:`covet.redis.redis_connections`).
        migrations: The project settings: fail while the database they name
            (the connected one with their ``DATABASE_URL``, else alias
            ``default``) has migrations pending. The scripts are read once, at
            the first check.

    Raises:
        ImproperlyConfigured: For a check that is not callable, a timeout that
            is not positive or a negative ``retry_after``.
    """

    def __init__(
        self,
        *,
        checks: Mapping[str, Callable[[], Awaitable[object]]] | None = None,
        timeout: float = DEFAULT_READY_TIMEOUT,
        databases: bool = True,
        retry_after: int = 5,
        redis: bool = True,
        migrations: Settings | None = None,
    ) -> None:
        for name, check in (checks or {}).items():
            if not callable(check):
                raise ImproperlyConfigured(
                    f"Readiness check {name!r} is {check!r}, not callable. "
                    "Pass an async function without arguments that raises when the "
                    "dependency is down."
                )
        value: object = timeout  # checked at run time: settings often come from strings
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ImproperlyConfigured(
                f"Health got timeout={timeout!r}. Pass a positive number of seconds."
            )
        seconds: object = retry_after
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
            raise ImproperlyConfigured(
                f"Health got retry_after={retry_after!r}. "
                "Pass a whole number of seconds, 0 or more."
            )
        self.checks = dict(checks or {})
        self.timeout = float(timeout)
        self.databases = databases
        self.retry_after = retry_after
        self.redis = redis
        self.migrations = migrations
        self._script: ScriptDirectory | LinearHistory | None = None

    async def up(self, request: Request) -> PlainTextResponse:
        """Answer 200 ``ok``: the process serves requests (no I/O)."""
        return PlainTextResponse("ok", headers=_NO_STORE)

    async def ready(self, request: Request) -> JSONResponse:
        """Run the readiness checks; 200 when all pass, else (or while draining) 503."""
        if getattr(request.scope.get("app"), "draining", False):
            return self._unavailable({"status": "draining", "checks": {}})
        checks = await self.run_checks()
        if all(result["ok"] for result in checks.values()):
            return JSONResponse({"status": "ok", "checks": checks}, headers=_NO_STORE)
        return self._unavailable({"status": "unavailable", "checks": checks})

    def _unavailable(self, body: dict[str, Any]) -> JSONResponse:
        headers = {**_NO_STORE, "Retry-After": str(self.retry_after)}
        return JSONResponse(body, status_code=503, headers=headers)

    def _all_checks(self) -> dict[str, Callable[[], Awaitable[object]]]:
        checks: dict[str, Callable[[], Awaitable[object]]] = {}
        databases = connected_databases()
        if self.databases:
            for database in databases:
                checks[f"db:{database.alias}"] = _database_check(database)
        if self.redis:
            for connection in redis_connections():
                # Features sharing one server are one check.
                checks.setdefault(f"redis:{connection.address}", connection.ping)
        if self.migrations is not None and databases:
            target = _migrated_database(databases, self.migrations)
            checks["migrations"] = lambda: self._no_pending_migrations(target)
        checks.update(self.checks)
        return checks

    async def _no_pending_migrations(self, database: Database) -> None:
        """Raise when ``database`` is behind the project's migrations."""
        from covet.db.migrations import load_history, pending_migrations

        settings = self.migrations
        assert settings is not None  # noqa: S101 - only called when set
        if self._script is None:
            # Reading the scripts parses them (or imports them, for a history alembic
            # must read): off the loop, once.
            self._script = await asyncio.to_thread(load_history, settings)
            if self._script is None:
                return  # no migrations directory: nothing can be pending
        pending = await pending_migrations(database, settings, script=self._script)
        if pending:
            raise RuntimeError(f"{len(pending)} pending: {', '.join(pending)}; run `covet migrate`")

    async def run_checks(self) -> dict[str, dict[str, Any]]:
        """Run every check concurrently and return ``{name: {"ok", "ms", "error"}}``.

        A check that has not finished after ``timeout`` seconds is cancelled
        and reported as failed; this returns after at most about ``timeout``
        seconds even when a check ignores the cancellation.
        """
        checks = self._all_checks()
        if not checks:
            return {}
        started = time.perf_counter()
        tasks = {name: asyncio.ensure_future(_timed(check)) for name, check in checks.items()}
        _, pending = await asyncio.wait(tasks.values(), timeout=self.timeout)
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        results: dict[str, dict[str, Any]] = {}
        for name, task in tasks.items():
            if task in pending:
                # Cancel without waiting: a check that swallows the cancellation
                # must not hold the probe.
                task.cancel()
                task.add_done_callback(_consume)
                error = f"timed out after {self.timeout:g} s"
                results[name] = {"ok": False, "ms": elapsed, "error": error}
            else:
                results[name] = task.result()
        return results


async def _timed(check: Callable[[], Awaitable[object]]) -> dict[str, Any]:
    started = time.perf_counter()
    error: str | None = None
    try:
        await check()
    except Exception as exc:  # noqa: BLE001 - any failure of the dependency is "not ready"
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    ms = round((time.perf_counter() - started) * 1000, 3)
    return {"ok": error is None, "ms": ms, "error": error}


def _consume(task: asyncio.Future[Any]) -> None:
    # Retrieve the outcome of a check abandoned after its timeout, so asyncio
    # does not log "exception was never retrieved".
    if not task.cancelled():
        task.exception()


def _migrated_database(databases: tuple[Database, ...], settings: Settings) -> Database:
    """Return the connected database the project migrates: its DATABASE_URL, else ``default``."""
    for database in databases:
        if settings.database_url and str(database.url) == settings.database_url:
            return database
    for database in databases:
        if database.alias == "default":
            return database
    return databases[0]


def _database_check(database: Database) -> Callable[[], Awaitable[None]]:
    async def ping() -> None:
        async with database.connection() as connection:
            await connection.ping()

    return ping


def health_router(
    *,
    checks: Mapping[str, Callable[[], Awaitable[object]]] | None = None,
    timeout: float = DEFAULT_READY_TIMEOUT,
    databases: bool = True,
    retry_after: int = 5,
    redis: bool = True,
    migrations: Settings | None = None,
    up_path: str = "/up",
    ready_path: str = "/ready",
) -> Router:
    """Return a router serving ``GET up_path`` and ``GET ready_path`` (named ``up`` and ``ready``).

    The arguments other than the paths are those of :class:`Health`.

    Raises:
        ImproperlyConfigured: For an invalid argument.
    """
    health = Health(
        checks=checks,
        timeout=timeout,
        databases=databases,
        retry_after=retry_after,
        redis=redis,
        migrations=migrations,
    )
    router = Router()
    router.add_route(up_path, health.up, methods=["GET"], name="up")
    router.add_route(ready_path, health.ready, methods=["GET"], name="ready")
    return router
