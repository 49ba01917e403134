"""Prometheus metrics: requests, latency, in-flight requests, queries and pools; ``/metrics``.

>>> metrics = Metrics()                                               # doctest: +SKIP
>>> app.add_observer(metrics)                                         # doctest: +SKIP
>>> app.add_route("/metrics", MetricsApp(metrics, token=token), name="metrics")  # doctest: +SKIP

:class:`Metrics` is a request observer (:meth:`covet.Covet.add_observer`) and a
process-wide query observer (:func:`covet.db.querylog.observe_query_durations`). It records:

* ``covet_http_requests_total`` and ``covet_http_request_duration_seconds``
  labelled ``route`` (the route's name, else its path template; never the raw
  path, so ``/items/1`` and ``/items/2`` are one series; ``<unmatched>`` when
  no route matched), ``method`` (``OTHER`` for a non-standard one; ``WEBSOCKET``)
  and ``status``;
* ``covet_http_requests_in_progress``;
* ``covet_websocket_connections``: websocket connections open now, labelled
  ``route`` (counted from the app's accept to the end of the handler);
* ``covet_db_queries_total`` (labelled ``database``, ``outcome`` ``ok``/``error``)
  and ``covet_db_query_duration_seconds`` (``database``), transaction control
  (``BEGIN``, ``COMMIT``, savepoints) left out;
* ``covet_db_pool_connections`` (``database``, ``state`` ``in_use``/``idle``) and
  ``covet_db_pool_max_connections``, read from each connected database's pool
  when scraped.

:class:`MetricsApp` is the ASGI endpoint that serves them in the Prometheus text
format. It is protected (``covet check --deploy`` reports one that is not): by
default only 127.0.0.1 and ::1 may read it; with ``token=`` a client must send
``Authorization: Bearer <token>`` instead (and come from ``allowed_ips`` too,
when both are given).

With ``PROMETHEUS_MULTIPROC_DIR`` set (``covet run --workers N`` sets it when
prometheus-client is installed), every worker writes its samples there and a
scrape, whichever worker answers it, adds them up. Pool gauges stay those of
the worker that answered. The gauges of requests in progress and open
websockets add up the workers alive: each new :class:`Metrics` (a worker
started to replace one that died) forgets the gauges of processes that are gone.
"""

from __future__ import annotations

import asyncio
import atexit
import hmac
import ipaddress
import os
import weakref
from bisect import bisect_left
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covet.db.database import connected_databases
from covet.db.querylog import observe_query_durations
from covet.exceptions import ImproperlyConfigured, MissingDependencyError
from covet.responses import PlainTextResponse, Response

try:
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        generate_latest,
        values,
    )
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise MissingDependencyError("prometheus-client", extra="metrics") from exc

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from covet._context import RequestContext
    from covet.requests import Request
    from covet.types import Scope

__all__ = ("DEFAULT_BUCKETS", "FLUSH_SECONDS", "Metrics", "MetricsApp", "multiprocess_dir")

#: Latency buckets in seconds: 5 ms to 10 s.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_UNMATCHED = "<unmatched>"
_LOOPBACK = ("127.0.0.1/32", "::1/128")

#: Seconds between batches: the longest a sample waits before it reaches the
#: prometheus-client series (a scrape adds what waits first, so it never sees less).
FLUSH_SECONDS = 1.0
#: Samples that make a batch however young it is. Adding one costs about 2,700
#: instructions per sample, so this bounds the pause a busy worker takes for a batch
#: (about a millisecond) as well as what waits in memory.
_MAX_PENDING = 1_000
#: The sample request_started() leaves: one more request in progress.
_STARTED = object()
_INF = float("inf")


def multiprocess_dir() -> str | None:
    """Return ``PROMETHEUS_MULTIPROC_DIR`` when set (samples are shared by worker processes)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """Record request and query metrics in a Prometheus registry.

    Add it with :meth:`covet.Covet.add_observer`; it starts observing the
    queries of this process when created (:meth:`close` stops).

    The metric objects are attributes (``requests``, ``latency``,
    ``in_progress``, ``websockets``, ``queries``, ``query_latency``), for
    reading and for exemplars or extra collectors. Each labelled series is
    looked up once and then recorded into directly, so calling ``remove()``
    or ``clear()`` on these metrics would detach series that go on being
    recorded into, unseen: make a new :class:`Metrics` to start again.

    Args:
        namespace: The prefix of every metric name.
        buckets: The latency histogram buckets, in seconds.
        registry: Where the metrics are registered (a new one by default, so
            several apps in one process do not clash).
        queries: Record query counts and latencies.

    Raises:
        ImproperlyConfigured: For an invalid namespace or empty buckets, or when
            ``PROMETHEUS_MULTIPROC_DIR`` was set too late to take effect.
    """

    def __init__(
        self,
        *,
        namespace: str = "covet",
        buckets: Iterable[float] = DEFAULT_BUCKETS,
        registry: CollectorRegistry | None = None,
        queries: bool = True,
    ) -> None:
        if not namespace.replace("_", "").isalnum() or namespace[:1].isdigit():
            raise ImproperlyConfigured(
                f"Metrics got namespace={namespace!r}. Use letters, digits and underscores, "
                "not starting with a digit, e.g. 'covet' or 'shop'."
            )
        bucket_list = sorted(float(bucket) for bucket in buckets)
        if not bucket_list:
            raise ImproperlyConfigured(
                "Metrics got no latency buckets. Pass some seconds, e.g. (0.01, 0.1, 1.0)."
            )
        directory = multiprocess_dir()
        if directory is not None and values.ValueClass is values.MutexValue:
            raise ImproperlyConfigured(
                f"PROMETHEUS_MULTIPROC_DIR={directory!r} was set after prometheus_client was "
                "imported, so this process's samples would never reach that directory. Set it "
                "before the process starts (covet run --workers does)."
            )
        self.namespace = namespace
        self.registry = registry if registry is not None else CollectorRegistry()
        # Samples wait here (appending to a deque is atomic, so any thread may record)
        # until flush() adds them to the series below, a batch at a time.
        self._pending: deque[Any] = deque()
        self._timer_set = False  # a flush is due on an event loop's timer
        self._flushes = 0  # flush() calls so far: a timer set before the last one has no work
        # Registered before the series, so that a collection of the registry (a
        # scrape, get_sample_value()) adds the waiting samples before reading them.
        self._flusher = _FlushFirst(self)
        self.registry.register(self._flusher)
        self.requests = Counter(
            "http_requests",
            "HTTP requests (and websocket connections) served.",
            ("route", "method", "status"),
            namespace=namespace,
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Seconds from the start of a request to the end of its response.",
            ("route", "method", "status"),
            namespace=namespace,
            buckets=bucket_list,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "Requests being served.",
            namespace=namespace,
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.websockets = Gauge(
            "websocket_connections",
            "Websocket connections open (accepted, handler still running).",
            ("route",),
            namespace=namespace,
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.queries = Counter(
            "db_queries",
            "SQL statements run (transaction control left out).",
            ("database", "outcome"),
            namespace=namespace,
            registry=self.registry,
        )
        self.query_latency = Histogram(
            "db_query_duration_seconds",
            "Seconds from sending a statement to its result.",
            ("database",),
            namespace=namespace,
            buckets=bucket_list,
            registry=self.registry,
        )
        self._pools = _PoolCollector(namespace)
        self.registry.register(self._pools)
        # The labelled series each request and statement records into, by label values.
        # prometheus-client's labels() checks and converts its arguments and takes a lock
        # on every call (about a third of what recording a request cost); the series for
        # a label set never changes, so each is looked up once. Bounded like the series
        # themselves: routes by name or template, never raw paths.
        self._request_series: dict[tuple[str, str, str], _Series] = {}
        self._query_series: dict[tuple[str, bool], _Series] = {}
        self._stop_queries = observe_query_durations(self._query_timed) if queries else None
        if directory is not None:
            _forget_dead_processes(directory)
            # Other workers read this one's samples from the shared files: add the
            # last batch there when the process exits normally.
            atexit.register(_flush_at_exit, weakref.ref(self))

    # -- RequestObserver -----------------------------------------------------------------------

    def request_started(self, context: RequestContext) -> None:
        """Count ``context``'s request as in progress."""
        self._queue(_STARTED)

    def websocket_accepted(self, context: RequestContext) -> None:
        """Count ``context``'s websocket connection as open."""
        self.websockets.labels(context.route_name or _UNMATCHED).inc()

    def request_finished(self, context: RequestContext) -> None:
        """Record ``context``'s request: its route, method, status and duration."""
        scope = context.scope
        route = context.route_name or _UNMATCHED
        if scope["type"] == "websocket":
            method = "WEBSOCKET"
            if context.status == 101:  # accepted, so counted open by websocket_accepted()
                self.websockets.labels(route).dec()
        else:
            method = scope.get("method", "GET")
            if method not in _METHODS:
                method = "OTHER"
        key = (route, method, str(context.status))
        series = self._request_series.get(key)
        if series is None:
            series = self._request_series[key] = _Series(
                self.requests.labels(*key), self.latency.labels(*key), request=True
            )
        self._queue((series, context.duration))

    # -- queries ------------------------------------------------------------------------------

    def _query_timed(self, database: str, seconds: float, failed: bool) -> None:
        """Record one statement (transaction control is not reported here)."""
        key = (database, failed)
        series = self._query_series.get(key)
        if series is None:
            series = self._query_series[key] = _Series(
                self.queries.labels(database, "error" if failed else "ok"),
                self.query_latency.labels(database),
                request=False,
            )
        self._queue((series, seconds))

    # -- batches ------------------------------------------------------------------------------

    def _queue(self, sample: Any) -> None:
        """Queue ``sample``, to be added within ``FLUSH_SECONDS`` (at once when many wait)."""
        pending = self._pending
        pending.append(sample)
        if len(pending) > _MAX_PENDING:
            self.flush()
        elif not self._timer_set:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # recorded outside an event loop: nothing would run a timer
                self.flush()
            else:
                loop.call_later(FLUSH_SECONDS, self._flush_due, self._flushes)
                self._timer_set = True

    def _flush_due(self, flushes: int) -> None:
        """The timer set after flush number ``flushes``: flush, unless another did since."""
        if flushes == self._flushes:
            self.flush()

    def flush(self) -> None:
        """Add every waiting sample to the prometheus-client series now.

        Requests and statements are recorded into a queue, and added to the
        series in batches: a scrape (any collection of :attr:`registry`) adds
        what waits first, and a timer on the event loop adds it within
        :data:`FLUSH_SECONDS` otherwise, so that with ``PROMETHEUS_MULTIPROC_DIR``
        other workers see it. A batch costs a few calls per series instead of
        prometheus-client's locked updates per request and per statement.
        Call it before reading a series' value directly (not through the registry).
        """
        # A timer already set finds the count moved on and does nothing. It is not cancelled:
        # it may belong to another thread's event loop, whose handles only that thread may touch.
        self._flushes += 1
        self._timer_set = False
        pending = self._pending
        batch: dict[_Series, list[Any]] = {}
        started = 0
        while True:
            try:
                sample = pending.popleft()  # atomic: another thread may record meanwhile
            except IndexError:
                break
            if sample is _STARTED:
                started += 1
                continue
            series, seconds = sample
            totals = batch.get(series)
            if totals is None:
                totals = batch[series] = [0, 0.0, [0] * len(series.bounds), []]
            totals[0] += 1
            totals[1] += seconds
            totals[2][bisect_left(series.bounds, seconds)] += 1
            if not series.summed:
                totals[3].append(seconds)
        finished = 0
        for series, (count, total, buckets, samples) in batch.items():
            series.add(count, total, buckets, samples)
            if series.request:
                finished += count
        if started != finished:
            self.in_progress.inc(started - finished)

    def close(self) -> None:
        """Stop observing queries and add the waiting samples (the values stay readable)."""
        self.flush()
        if self._stop_queries is not None:
            self._stop_queries()
            self._stop_queries = None

    # -- exposition ---------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """Return every metric in the Prometheus text format.

        With ``PROMETHEUS_MULTIPROC_DIR`` set, the samples of every worker
        process are read from that directory and added up.
        """
        directory = multiprocess_dir()
        if directory is None:
            return bytes(generate_latest(self.registry))  # _FlushFirst adds the waiting samples
        self.flush()  # into this process's files, which the collector below reads
        registry = CollectorRegistry()
        # prometheus-client's multiprocess module has no annotations.
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        registry.register(self._pools)
        return bytes(generate_latest(registry))


class _Series:
    """A counter and a histogram recorded together, with what a batch adds to them."""

    __slots__ = ("bounds", "counter", "histogram", "request", "summed")

    def __init__(self, counter: Any, histogram: Any, *, request: bool) -> None:
        self.counter = counter
        self.histogram = histogram
        self.request = request  # a request's series: each sample ends one in progress
        bounds = getattr(histogram, "_upper_bounds", None)
        # A batch is added with the histogram's own sum and bucket values, as its
        # observe() does per sample (prometheus-client has kept them so since 0.4). A
        # release without them gets each sample through observe(): slower, as correct.
        self.summed = (
            bounds is not None
            and hasattr(histogram, "_sum")
            and len(getattr(histogram, "_buckets", ())) == len(bounds)
        )
        #: The bucket bounds (the last is +Inf), compared as observe() does.
        self.bounds: list[float] = list(bounds) if bounds is not None and self.summed else [_INF]

    def add(self, count: int, total: float, buckets: list[int], samples: list[float]) -> None:
        """Add ``count`` samples adding up to ``total``, ``buckets[i]`` of them in bucket ``i``.

        ``samples`` holds each sample when :attr:`summed` is false (else it is empty).
        """
        self.counter.inc(count)
        histogram = self.histogram
        if not self.summed:
            for seconds in samples:
                histogram.observe(seconds)
            return
        # What Histogram.observe() does per sample, once per batch: its sum, then the one
        # bucket each sample falls in (prometheus-client accumulates the buckets on export).
        histogram._sum.inc(total)
        for index, number in enumerate(buckets):
            if number:
                histogram._buckets[index].inc(number)


class _FlushFirst:
    """A collector that yields nothing: collecting it adds the waiting samples first."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = weakref.ref(metrics)

    def collect(self) -> Iterator[Any]:
        metrics = self._metrics()
        if metrics is not None:
            metrics.flush()
        return iter(())

    def describe(self) -> list[Any]:
        return []


def _flush_at_exit(ref: weakref.ref[Metrics]) -> None:
    metrics = ref()
    if metrics is not None:
        metrics.flush()


def _forget_dead_processes(directory: str) -> None:
    """Drop the live-gauge samples of worker processes that no longer exist.

    ``livesum`` gauges (requests in progress, open websockets) count only live
    processes once a dead one's files are removed: prometheus-client leaves
    that to the process manager (``mark_process_dead()``), which uvicorn's
    supervisor does not call. A worker that replaces a dead one does it here.
    """
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid_text = path.stem.rpartition("_")[2]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            # prometheus-client's multiprocess module has no annotations.
            mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:
            continue  # alive, under another user


class _PoolCollector:
    """Pool gauges of the connected databases, read when scraped."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def collect(self) -> Iterator[GaugeMetricFamily]:
        connections = GaugeMetricFamily(
            f"{self.namespace}_db_pool_connections",
            "Open pooled connections, in use or idle.",
            labels=("database", "state"),
        )
        maximum = GaugeMetricFamily(
            f"{self.namespace}_db_pool_max_connections",
            "The most connections the pool opens.",
            labels=("database",),
        )
        waiting = GaugeMetricFamily(
            f"{self.namespace}_db_pool_waiting",
            "Callers waiting for a pooled connection because all are in use.",
            labels=("database",),
        )
        shared = GaugeMetricFamily(
            f"{self.namespace}_db_shared_in_flight",
            "Statements running or queued on SQLite's shared connection (0 elsewhere).",
            labels=("database",),
        )
        for database in connected_databases():
            try:
                stats = database.pool_stats()
            except ImproperlyConfigured:
                continue  # disconnected since it was listed
            connections.add_metric((database.alias, "in_use"), stats.size - stats.idle)
            connections.add_metric((database.alias, "idle"), stats.idle)
            maximum.add_metric((database.alias,), stats.max_size)
            waiting.add_metric((database.alias,), stats.waiting)
            shared.add_metric((database.alias,), stats.shared_in_flight)
        yield connections
        yield maximum
        yield waiting
        yield shared

    def describe(self) -> list[Any]:
        # Not described up front: the registry then calls collect() only when scraped.
        return []


class MetricsApp:
    """The endpoint serving :class:`Metrics` in the Prometheus text format (``GET`` only).

    Route it (``app.add_route("/metrics", MetricsApp(metrics), name="metrics")``),
    or serve it as an ASGI app of its own, for example on an internal port. It
    is both a route handler (called with the request) and an ASGI app (called
    with ``scope, receive, send``).

    Args:
        metrics: What to serve.
        token: A bearer token the client must send (``Authorization: Bearer ...``).
        allowed_ips: Client addresses or networks allowed (``"10.0.0.0/8"``).
            Defaults to 127.0.0.1 and ::1 without a token and to any address
            with one. Behind a reverse proxy the client is the address it
            forwards (``--forwarded-allow-ips``); a proxy on this host that does
            not forward it makes every client look local.

    Attributes:
        protected: Whether something keeps the public out: a token, or an
            address list that does not allow every address.

    Raises:
        ImproperlyConfigured: For an empty token or an invalid address.
    """

    def __init__(
        self,
        metrics: Metrics,
        *,
        token: str | None = None,
        allowed_ips: Iterable[str] | None = None,
    ) -> None:
        if token is not None and not token.strip():
            raise ImproperlyConfigured(
                f"MetricsApp got token={token!r}. Pass a non-empty secret string, or None."
            )
        if allowed_ips is None:
            allowed_ips = () if token is not None else _LOOPBACK
        networks = []
        for value in allowed_ips:
            try:
                networks.append(ipaddress.ip_network(value, strict=False))
            except ValueError:
                raise ImproperlyConfigured(
                    f"MetricsApp got the address {value!r}. Use an IP address or network "
                    "such as '10.0.0.7' or '10.0.0.0/8'."
                ) from None
        self.metrics = metrics
        self._token = token.encode() if token is not None else None
        self._networks = tuple(networks)
        everyone = any(network.prefixlen == 0 for network in networks)
        self.protected = token is not None or (bool(networks) and not everyone)

    def _client_allowed(self, scope: Scope) -> bool:
        if not self._networks:
            return True
        client = scope.get("client")
        if not client:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)

    def _token_matches(self, scope: Scope) -> bool:
        if self._token is None:
            return True
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    return hmac.compare_digest(credentials.strip(), self._token)
        return False

    async def __call__(self, *args: Any) -> Any:
        """Serve one scrape: as a route handler (``request``) or an ASGI app.

        Returns:
            The response, when called as a route handler.
        """
        if len(args) == 1:
            request: Request = args[0]
            return await self.respond(request.scope)
        scope, receive, send = args
        if scope["type"] != "http":
            raise ImproperlyConfigured(
                f"MetricsApp serves HTTP, not {scope['type']!r}. Route it for HTTP requests."
            )
        response = await self.respond(scope)
        await response(scope, receive, send)
        return None

    async def respond(self, scope: Scope) -> Response:
        """Return the response to the HTTP request of ``scope``: the metrics, or 401/403/405."""
        if scope["method"] not in ("GET", "HEAD"):
            return PlainTextResponse(
                "Method Not Allowed", status_code=405, headers={"Allow": "GET, HEAD"}
            )
        if not self._client_allowed(scope):
            return PlainTextResponse("Forbidden", status_code=403)
        if not self._token_matches(scope):
            return PlainTextResponse(
                "Unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        if multiprocess_dir() is None:
            body = self.metrics.exposition()
        else:  # reads one file per worker and metric: off the event loop
            body = await asyncio.to_thread(self.metrics.exposition)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
