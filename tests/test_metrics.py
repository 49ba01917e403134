"""covet.metrics: request, query and pool metrics, and the protected /metrics endpoint."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

import covet.metrics
from covet import Covet, WebSocket, WebSocketDisconnect
from covet.cli.check import CheckContext, check_metrics
from covet.db import Database
from covet.db.exceptions import DatabaseError
from covet.exceptions import ImproperlyConfigured
from covet.metrics import FLUSH_SECONDS, Metrics, MetricsApp, _forget_dead_processes
from covet.responses import PlainTextResponse
from covet.testing import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from covet.requests import Request


LOCAL = ("127.0.0.1", 50000)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[Metrics]:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    found = Metrics()
    yield found
    found.close()


def _app(metrics: Metrics, **options: object) -> Covet:
    app = Covet()

    @app.get("/items/{item_id:int}", name="item")
    async def item(request: Request, item_id: int) -> PlainTextResponse:
        return PlainTextResponse("item")

    @app.get("/fail")
    async def fail(request: Request) -> PlainTextResponse:
        return PlainTextResponse("no", status_code=503)

    app.add_observer(metrics)
    app.add_route("/metrics", MetricsApp(metrics, **options), name="metrics")  # type: ignore[arg-type]
    return app


def test_requests_are_counted_by_route_template_method_and_status(metrics: Metrics) -> None:
    with TestClient(_app(metrics), client=LOCAL) as client:
        for item_id in (1, 2, 3):
            assert client.get(f"/items/{item_id}").status_code == 200
        assert client.get("/fail").status_code == 503
        assert client.get("/nowhere/42").status_code == 404
        assert client.request("PROPFIND", "/items/1").status_code == 405
        scrape = client.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"] == CONTENT_TYPE_LATEST
    samples = _samples(scrape.text)
    total = "covet_http_requests_total"
    assert samples[(total, (("method", "GET"), ("route", "item"), ("status", "200")))] == 3
    assert samples[(total, (("method", "GET"), ("route", "fail"), ("status", "503")))] == 1
    unmatched = (("method", "GET"), ("route", "<unmatched>"), ("status", "404"))
    assert samples[(total, unmatched)] == 1
    odd = (("method", "OTHER"), ("route", "<unmatched>"), ("status", "405"))
    assert samples[(total, odd)] == 1
    # Never the raw path: one series per route, whatever the ids.
    assert "/items/1" not in scrape.text
    count = "covet_http_request_duration_seconds_count"
    assert samples[(count, (("method", "GET"), ("route", "item"), ("status", "200")))] == 3
    # The scrape itself is in progress while it is being served.
    assert samples[("covet_http_requests_in_progress", ())] == 1


def test_queries_and_pools_per_database(metrics: Metrics, tmp_path: Path) -> None:
    alias = f"metrics_{secrets.token_hex(4)}"
    database = Database(f"sqlite:///{tmp_path / 'm.sqlite3'}", alias=alias, max_size=3)
    app = _app(metrics)
    app.on_startup(database.connect)
    app.on_shutdown(database.disconnect)

    @app.get("/count")
    async def count(request: Request) -> PlainTextResponse:
        await database.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
        async with database.transaction():
            await database.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(DatabaseError):
            await database.execute("SELECT * FROM missing_table")
        return PlainTextResponse("ok")

    with TestClient(app, client=LOCAL) as client:
        client.get("/count")
        samples = _samples(client.get("/metrics").text)
    queries = "covet_db_queries_total"
    # CREATE and INSERT; BEGIN/COMMIT are not counted.
    assert samples[(queries, (("database", alias), ("outcome", "ok")))] == 2
    assert samples[(queries, (("database", alias), ("outcome", "error")))] == 1
    assert samples[("covet_db_query_duration_seconds_count", (("database", alias),))] == 3
    pool = "covet_db_pool_connections"
    assert samples[(pool, (("database", alias), ("state", "in_use")))] == 0
    assert samples[(pool, (("database", alias), ("state", "idle")))] >= 1
    assert samples[("covet_db_pool_max_connections", (("database", alias),))] == 3
    assert samples[("covet_db_pool_waiting", (("database", alias),))] == 0
    assert samples[("covet_db_shared_in_flight", (("database", alias),))] == 0


def test_close_stops_observing_queries(metrics: Metrics, tmp_path: Path) -> None:
    metrics.close()
    alias = f"metrics_{secrets.token_hex(4)}"
    app = _app(metrics)
    database = Database(f"sqlite:///{tmp_path / 'm.sqlite3'}", alias=alias)
    app.on_startup(database.connect)
    app.on_shutdown(database.disconnect)

    @app.get("/q")
    async def query(request: Request) -> PlainTextResponse:
        await database.fetch_val("SELECT 1")
        return PlainTextResponse("ok")

    with TestClient(app, client=LOCAL) as client:
        client.get("/q")
        assert "covet_db_queries_total{" not in client.get("/metrics").text


def test_loopback_only_by_default(metrics: Metrics) -> None:
    app = _app(metrics)
    with TestClient(app, client=("203.0.113.9", 5000)) as outsider:
        assert outsider.get("/metrics").status_code == 403
    with TestClient(app, client=("::1", 5000)) as local:
        assert local.get("/metrics").status_code == 200
        assert local.post("/metrics").status_code == 405


def test_token_replaces_the_address_check(metrics: Metrics) -> None:
    app = _app(metrics, token="s3cret")
    with TestClient(app, client=("203.0.113.9", 5000)) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert "covet_http_requests_total" in ok.text


def test_token_and_addresses_together_need_both(metrics: Metrics) -> None:
    app = _app(metrics, token="s3cret", allowed_ips=["10.0.0.0/8"])
    auth = {"Authorization": "Bearer s3cret"}
    with TestClient(app, client=("10.1.2.3", 5000)) as inside:
        assert inside.get("/metrics", headers=auth).status_code == 200
        assert inside.get("/metrics").status_code == 401
    with TestClient(app, client=("192.0.2.1", 5000)) as outside:
        assert outside.get("/metrics", headers=auth).status_code == 403


@pytest.mark.parametrize(
    ("options", "protected"),
    [
        ({}, True),
        ({"token": "t"}, True),
        ({"allowed_ips": ["10.0.0.0/8"]}, True),
        ({"allowed_ips": ["0.0.0.0/0", "::/0"]}, False),
        ({"allowed_ips": []}, False),
    ],
)
def test_protected_satisfies_the_deploy_check(
    metrics: Metrics, options: dict[str, object], protected: bool
) -> None:
    endpoint = MetricsApp(metrics, **options)  # type: ignore[arg-type]
    assert endpoint.protected is protected
    routed = Covet()
    routed.add_route("/metrics", endpoint, name="metrics")
    mounted = Covet()
    mounted.mount("/internal", endpoint)
    for app in (routed, mounted):
        problems = list(check_metrics(CheckContext(settings=None, app=app)))
        assert [problem.id for problem in problems] == ([] if protected else ["covet.E115"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"token": " "}, "MetricsApp got token=' '. Pass a non-empty secret"),
        ({"allowed_ips": ["localhost"]}, "MetricsApp got the address 'localhost'"),
    ],
)
def test_invalid_endpoint_options(
    metrics: Metrics, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        MetricsApp(metrics, **options)  # type: ignore[arg-type]


def test_invalid_metrics_options() -> None:
    with pytest.raises(ImproperlyConfigured, match="namespace='my-app'"):
        Metrics(namespace="my-app")
    with pytest.raises(ImproperlyConfigured, match="no latency buckets"):
        Metrics(buckets=())


def test_two_apps_in_one_process_do_not_clash(metrics: Metrics) -> None:
    other = Metrics()
    try:
        assert other.registry is not metrics.registry
    finally:
        other.close()


async def test_served_as_an_asgi_app_of_its_own(metrics: Metrics) -> None:
    transport = httpx.ASGITransport(app=MetricsApp(metrics), client=LOCAL)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
        scrape = await client.get("/")
        assert scrape.status_code == 200
        assert "covet_http_requests_in_progress" in scrape.text
        assert (await client.delete("/")).status_code == 405
    outside = httpx.ASGITransport(app=MetricsApp(metrics), client=("192.0.2.1", 1))
    async with httpx.AsyncClient(transport=outside, base_url="http://internal") as client:
        assert (await client.get("/")).status_code == 403


def test_multiprocess_dir_set_too_late_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # prometheus_client is imported here without the variable: samples stay in memory.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(ImproperlyConfigured, match="was set after prometheus_client was imported"):
        Metrics()


def _open_websockets(client: TestClient) -> float:
    samples = _samples(client.get("/metrics").text)
    return samples.get(("covet_websocket_connections", (("route", "chat"),)), 0.0)


def test_open_websockets_are_a_gauge_by_route(metrics: Metrics) -> None:
    app = _app(metrics)

    @app.websocket("/rooms/{room}", name="chat")
    async def chat(websocket: WebSocket, room: str) -> None:
        if room == "private":
            await websocket.close(code=1008)  # refused before accept: never open
            return
        await websocket.accept()
        while True:
            await websocket.send_text(await websocket.receive_text())

    with TestClient(app, client=LOCAL) as client:
        assert _open_websockets(client) == 0
        with client.websocket_connect("/rooms/1") as first:
            first.send_text("hi")
            assert first.receive_text() == "hi"
            assert _open_websockets(client) == 1
            with client.websocket_connect("/rooms/2") as second:
                second.send_text("hi")
                assert second.receive_text() == "hi"
                assert _open_websockets(client) == 2
            assert _open_websockets(client) == 1
        with pytest.raises(WebSocketDisconnect), client.websocket_connect("/rooms/private"):
            pass
        assert _open_websockets(client) == 0
        scrape = client.get("/metrics").text
    samples = _samples(scrape)
    # Each connection is still counted once it ended, with its whole duration.
    handshakes = (("method", "WEBSOCKET"), ("route", "chat"), ("status", "101"))
    assert samples[("covet_http_requests_total", handshakes)] == 2
    assert "/rooms/1" not in scrape


def test_live_gauges_of_dead_workers_are_forgotten(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    files = [
        f"gauge_livesum_{gone.pid}.db",  # a worker that died with requests in progress
        f"gauge_livesum_{os.getpid()}.db",  # a live one
        f"counter_{gone.pid}.db",  # its counts stay: they happened
    ]
    for name in files:
        (tmp_path / name).write_bytes(b"")
    _forget_dead_processes(str(tmp_path))
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(files[1:])


# -- batches -------------------------------------------------------------------------------

_SECONDS = [0.0, 0.004, 0.005, 0.0051, 0.01, 0.3, 1.0, 9.99, 10.0, 10.01, 250.0]


def _query_samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        key: value
        for key, value in _samples(metrics.exposition().decode()).items()
        if key[0].startswith("covet_db_query") and not key[0].endswith("_created")
    }


def test_batched_samples_equal_prometheus_clients_own(metrics: Metrics) -> None:
    for seconds in _SECONDS:
        metrics._query_timed("default", seconds, False)
    metrics._query_timed("default", 0.02, True)
    # The same samples recorded through prometheus-client's own calls, one at a time.
    direct = Metrics(queries=False)
    for seconds in [*_SECONDS, 0.02]:
        direct.query_latency.labels("default").observe(seconds)
    direct.queries.labels("default", "ok").inc(len(_SECONDS))
    direct.queries.labels("default", "error").inc()
    assert _query_samples(metrics) == _query_samples(direct)
    assert (
        _query_samples(metrics)[
            ("covet_db_query_duration_seconds_count", (("database", "default"),))
        ]
        == 12
    )


async def test_samples_wait_for_a_scrape_or_the_timer(metrics: Metrics) -> None:
    metrics._query_timed("default", 0.001, False)
    series = metrics.queries.labels("default", "ok")
    assert series._value.get() == 0  # waiting in the queue
    # Any collection of the registry adds them first.
    value = metrics.registry.get_sample_value(
        "covet_db_queries_total", {"database": "default", "outcome": "ok"}
    )
    assert value == 1
    metrics._query_timed("default", 0.001, False)
    assert series._value.get() == 1
    await asyncio.sleep(FLUSH_SECONDS + 0.3)  # the timer set by the first waiting sample
    assert series._value.get() == 2


def test_without_an_event_loop_samples_are_added_at_once(metrics: Metrics) -> None:
    metrics._query_timed("default", 0.001, False)
    assert metrics.queries.labels("default", "ok")._value.get() == 1


async def test_a_full_queue_is_added_at_once(
    metrics: Metrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(covet.metrics, "_MAX_PENDING", 5)
    for _ in range(6):
        metrics._query_timed("default", 0.001, False)
    assert metrics.queries.labels("default", "ok")._value.get() == 6
    assert not metrics._pending


def test_samples_recorded_from_many_threads_all_count(metrics: Metrics) -> None:
    def record(_: int) -> None:
        for _ in range(2_000):
            metrics._query_timed("default", 0.001, False)

    async def with_a_loop(n: int) -> None:
        record(n)  # inside an event loop: queued, added by whichever flush comes first

    def in_a_loop(n: int) -> None:
        asyncio.run(with_a_loop(n))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(in_a_loop, range(4)))
        list(pool.map(record, range(4)))
    metrics.flush()
    assert metrics.queries.labels("default", "ok")._value.get() == 16_000


def test_histogram_without_its_internals_gets_each_sample(metrics: Metrics) -> None:
    class Plain:
        """A histogram child with observe() only (a prometheus-client without _sum)."""

        def __init__(self) -> None:
            self.seen: list[float] = []

        def observe(self, seconds: float) -> None:
            self.seen.append(seconds)

    plain = Plain()
    metrics._query_series[("default", False)] = covet.metrics._Series(
        metrics.queries.labels("default", "ok"), plain, request=False
    )
    for seconds in _SECONDS:
        metrics._query_timed("default", seconds, False)
    metrics.flush()
    assert plain.seen == _SECONDS
    assert metrics.queries.labels("default", "ok")._value.get() == len(_SECONDS)


async def test_requests_in_progress_count_until_they_finish(metrics: Metrics) -> None:
    app = _app(metrics)
    entered, release = asyncio.Event(), asyncio.Event()

    @app.get("/slow", name="slow")
    async def slow(request: Request) -> PlainTextResponse:
        entered.set()
        await release.wait()
        return PlainTextResponse("done")

    transport = httpx.ASGITransport(app=app, client=LOCAL)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        pending = asyncio.ensure_future(client.get("/slow"))
        await entered.wait()
        in_progress = _samples((await client.get("/metrics")).text)
        release.set()
        assert (await pending).status_code == 200
        after = _samples((await client.get("/metrics")).text)
    # The scrape itself is in progress while it is answered.
    assert in_progress[("covet_http_requests_in_progress", ())] == 2
    assert after[("covet_http_requests_in_progress", ())] == 1
    total = (
        "covet_http_requests_total",
        (("method", "GET"), ("route", "slow"), ("status", "200")),
    )
    assert after[total] == 1


async def test_a_timer_set_before_an_earlier_flush_does_nothing(metrics: Metrics) -> None:
    metrics._query_timed("default", 0.001, False)  # sets a timer for this batch
    stale = metrics._flushes
    metrics.flush()  # early (a scrape): the timer is left to fire, with nothing to do
    metrics._query_timed("default", 0.001, False)  # the next batch, and its own timer
    metrics._flush_due(stale)
    series = metrics.queries.labels("default", "ok")
    assert (series._value.get(), len(metrics._pending)) == (1, 1)
    metrics._flush_due(metrics._flushes)
    assert (series._value.get(), len(metrics._pending)) == (2, 0)
