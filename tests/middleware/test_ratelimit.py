from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from covet import Covet
from covet.exceptions import ImproperlyConfigured
from covet.middleware import RateLimitMiddleware
from covet.testing import TestClient

REDIS_URL = os.environ.get("COVET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[2]


async def noop_app(scope, receive, send) -> None:
    return None


class Clock:
    def __init__(self) -> None:
        self.now = 1_200_000.0

    def __call__(self) -> float:
        return self.now


def make_app(**options) -> Covet:
    app = Covet(allowed_hosts=["testserver"])

    @app.get("/")
    async def index(request):
        return "hi"

    @app.get("/health")
    async def health(request):
        return "ok"

    @app.get("/static/app.css")
    async def css(request):
        return "body {}"

    app.add_middleware(RateLimitMiddleware, **options)
    return app


def test_limit_then_429_with_retry_after_and_headers():
    clock = Clock()
    client = TestClient(make_app(limit="3/minute", algorithm="fixed-window", clock=clock))
    responses = [client.get("/") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.headers["ratelimit-remaining"] for r in responses] == ["2", "1", "0"]
    assert responses[0].headers["x-ratelimit-limit"] == "3"
    assert responses[0].headers["ratelimit-policy"] == "3;w=60"
    refused = client.get("/")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert "Retry in 60 seconds" in refused.text
    clock.now += 60
    assert client.get("/").status_code == 200


def test_exempt_paths_and_custom_keys():
    clock = Clock()
    app = make_app(
        limit="1/minute",
        exempt_paths=["/health", "/static/"],
        key=lambda connection: connection.headers.get("x-api-key"),
        clock=clock,
    )
    client = TestClient(app)
    for _ in range(3):
        assert client.get("/health").status_code == 200
        assert client.get("/static/app.css").status_code == 200
        assert "ratelimit-limit" not in client.get("/health").headers
        # No API key: the key function returns None, so not limited.
        assert client.get("/").status_code == 200
    assert client.get("/", headers={"X-API-Key": "a"}).status_code == 200
    assert client.get("/", headers={"X-API-Key": "a"}).status_code == 429
    assert client.get("/", headers={"X-API-Key": "b"}).status_code == 200


def test_clients_are_counted_separately_by_ip():
    app = make_app(limit="1/minute")
    one = TestClient(app, client=("10.0.0.1", 1000))
    two = TestClient(app, client=("10.0.0.2", 1000))
    assert one.get("/").status_code == 200
    assert one.get("/").status_code == 429
    assert two.get("/").status_code == 200


def test_trusted_proxy_forwarded_for():
    app = make_app(limit="1/minute", trusted_proxies=["127.0.0.1"])
    proxy = TestClient(app, client=("127.0.0.1", 1000))
    assert proxy.get("/", headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 200
    assert proxy.get("/", headers={"X-Forwarded-For": "2.2.2.2"}).status_code == 200
    assert proxy.get("/", headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 429


@pytest.mark.parametrize(
    "options",
    [
        {"limit": "lots"},
        {"algorithm": "magic"},
        {"exempt_paths": "/health"},
        {"exempt_paths": ["x"]},
    ],
)
def test_invalid_options_are_refused(options):
    with pytest.raises(ImproperlyConfigured):
        RateLimitMiddleware(noop_app, **options)


WORKER_APP = textwrap.dedent(
    """
    import os

    from covet import Covet
    from covet.middleware import RateLimitMiddleware
    from covet.ratelimit import RedisBackend

    backend = RedisBackend(os.environ["COVET_TEST_REDIS_URL"], prefix=os.environ["RL_PREFIX"])
    app = Covet(allowed_hosts=["127.0.0.1"], on_shutdown=[backend.aclose])


    class WorkerPid:
        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            async def send_pid(message):
                if message["type"] == "http.response.start":
                    pid = str(os.getpid()).encode()
                    message["headers"] = [*message.get("headers", ()), (b"x-worker-pid", pid)]
                await send(message)

            await self.app(scope, receive, send_pid)


    @app.get("/")
    async def index(request):
        return "hi"


    @app.get("/health")
    async def health(request):
        return "ok"


    app.add_middleware(WorkerPid)
    app.add_middleware(
        RateLimitMiddleware,
        limit="10/day",
        algorithm="token-bucket",
        backend=backend,
        exempt_paths=["/health"],
    )
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_limit_holds_across_two_uvicorn_workers(tmp_path):
    from tests.test_sessions import redis_available

    asyncio.run(redis_available())
    (tmp_path / "rl_app.py").write_text(WORKER_APP)
    prefix = f"covet-test:{uuid.uuid4().hex}:"
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)]),
        "COVET_TEST_REDIS_URL": REDIS_URL,
        "RL_PREFIX": prefix,
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "rl_app:app",
            "--workers",
            "2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    fresh = httpx.Limits(max_keepalive_connections=0)
    try:
        with httpx.Client(base_url=base, limits=fresh, timeout=5) as http:
            # Wait until both workers answer (each new connection may land on either).
            health_pids: set[str] = set()
            deadline = time.monotonic() + 90  # a loaded CI machine starts workers slowly
            while len(health_pids) < 2 and time.monotonic() < deadline:
                try:
                    health_pids.add(http.get("/health").headers["x-worker-pid"])
                except httpx.TransportError:
                    if server.poll() is not None:
                        pytest.fail(server.stdout.read().decode() if server.stdout else "died")
                    time.sleep(0.1)
            assert len(health_pids) == 2, f"only workers {health_pids} answered within 90 s"

            def fetch(_: int) -> tuple[int, str]:
                # A client per request: threads sharing one client's pool raced its closing of
                # spent connections (a read on a closed socket, EBADF, on a loaded CI machine).
                response = httpx.get(f"{base}/", timeout=5)
                return response.status_code, response.headers["x-worker-pid"]

            with ThreadPoolExecutor(max_workers=16) as pool:
                results = list(pool.map(fetch, range(60)))
        statuses = [status for status, _ in results]
        assert statuses.count(200) == 10
        assert statuses.count(429) == 50
        assert len(health_pids | {pid for _, pid in results}) == 2, "both workers served"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()

        async def cleanup() -> None:
            import redis.asyncio as redis_asyncio

            client = redis_asyncio.Redis.from_url(REDIS_URL)
            try:
                keys = await client.keys(prefix + "*")
                if keys:
                    await client.delete(*keys)
            finally:
                await client.aclose()

        asyncio.run(cleanup())


def test_refusal_answers_in_the_clients_format():
    # Browsers get the error page, API clients JSON, the rest plain text.
    client = TestClient(make_app(limit="1/minute", algorithm="fixed-window", clock=Clock()))
    assert client.get("/").status_code == 200
    page = client.get("/", headers={"accept": "text/html"})
    assert page.status_code == 429
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>Too Many Requests</h1>" in page.text
    assert "Retry in 60 seconds" in page.text
    assert page.headers["retry-after"] == "60"
    data = client.get("/", headers={"accept": "application/json"})
    assert data.json() == {"detail": "Too many requests. Retry in 60 seconds."}
    assert (
        client.get("/", headers={"accept": "*/*"}).headers["content-type"].startswith("text/plain")
    )
