from __future__ import annotations

import os
import secrets
import time
import uuid

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from covet import Covet, WebSocket
from covet.exceptions import ImproperlyConfigured
from covet.middleware import SessionMiddleware
from covet.sessions import MemoryStore, RedisStore, SessionRecord, SessionTooLargeError
from covet.testing import TestClient

REDIS_URL = os.environ.get("COVET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def noop_app(scope, receive, send) -> None:
    return None


def sign(payload, key="secret", age=0) -> str:
    class OldSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - int(age)

    return URLSafeTimedSerializer(key, salt="covet.session", signer=OldSigner).dumps(payload)


def replace_cookie(client: TestClient, value: str, name: str = "session") -> None:
    client.cookies.clear()
    client.cookies.set(name, value, domain="testserver.local")


def make_app(**options) -> Covet:
    app = Covet(allowed_hosts=["testserver"])

    @app.get("/set/{value}")
    async def set_value(request, value: str):
        request.session["value"] = value
        return {"key": request.session.session_key}

    @app.get("/get")
    async def get_value(request):
        return {"value": request.session.get("value"), "key": request.session.session_key}

    @app.get("/cycle")
    async def cycle(request):
        request.session.cycle_key()
        return {"key": request.session.session_key}

    @app.get("/flush")
    async def flush(request):
        request.session.flush()
        return {"key": request.session.session_key}

    @app.get("/big")
    async def big(request):
        request.session["blob"] = secrets.token_urlsafe(4000)  # incompressible
        return "ok"

    @app.websocket("/ws")
    async def ws(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_json({"value": websocket.session.get("value")})
        await websocket.close()

    options.setdefault("secret_key", "secret")
    app.add_middleware(SessionMiddleware, **options)
    return app


def test_round_trip_and_cookie_attributes():
    client = TestClient(make_app())
    response = client.get("/set/hello")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Max-Age=1209600" in cookie
    assert "Secure" not in cookie
    assert client.get("/get").json()["value"] == "hello"


def test_unchanged_session_sends_no_cookie():
    client = TestClient(make_app())
    client.get("/set/a")
    response = client.get("/get")
    assert "set-cookie" not in response.headers
    fresh = TestClient(make_app()).get("/get")  # new, empty session
    assert "set-cookie" not in fresh.headers


def test_https_uses_host_prefixed_secure_cookie():
    client = TestClient(make_app(), base_url="https://testserver")
    cookie = client.get("/set/x").headers["set-cookie"]
    assert cookie.startswith("__Host-session=")
    assert "Secure" in cookie
    assert client.get("/get").json()["value"] == "x"


def test_tampered_cookie_starts_empty_session():
    client = TestClient(make_app())
    client.get("/set/a")
    value = client.cookies["session"]
    replace_cookie(client, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    response = client.get("/get")
    assert response.status_code == 200
    assert response.json()["value"] is None
    # The bad cookie is cleared.
    assert "Max-Age=0" in response.headers["set-cookie"]


def test_garbage_cookie_starts_empty_session():
    client = TestClient(make_app(), cookies={"session": "not-even-signed"})
    assert client.get("/get").json()["value"] is None


def test_expired_signature_starts_empty_session():
    now = time.time()
    payload = {"k": "key", "d": {"value": "old"}, "c": now, "a": now}
    client = TestClient(make_app(max_age=60))
    replace_cookie(client, sign(payload))
    assert client.get("/get").json()["value"] == "old"
    replace_cookie(client, sign(payload, age=120))
    assert client.get("/get").json()["value"] is None


def test_a_remembered_cookie_still_expires_by_its_signing_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Verified server-side cookies are remembered (the signature is not checked again),
    # but their age is: once past max_age the same cookie starts an empty session.
    store = MemoryStore()
    client = TestClient(make_app(store=store, max_age=60))
    client.get("/set/kept")
    cookie = client.cookies["session"]
    assert client.get("/get").json()["value"] == "kept"
    assert client.get("/get").json()["value"] == "kept"  # served from the remembered payload
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    replace_cookie(client, cookie)
    assert client.get("/get").json()["value"] is None


def test_cookie_store_payloads_are_not_shared_between_requests() -> None:
    # A cookie-store payload holds the session data itself: it is verified afresh for
    # each request, so an in-place change to a value never leaks into the next one.
    app = Covet(allowed_hosts=["testserver"])

    @app.get("/start")
    async def start(request):
        request.session["cart"] = ["a"]
        return "ok"

    @app.get("/mutate")
    async def mutate(request):
        request.session["cart"].append("b")  # not seen as a change: nothing is saved
        return {"cart": request.session["cart"]}

    app.add_middleware(SessionMiddleware, secret_key="secret")
    client = TestClient(app)
    client.get("/start")
    assert client.get("/mutate").json() == {"cart": ["a", "b"]}
    assert client.get("/mutate").json() == {"cart": ["a", "b"]}


def test_absolute_lifetime_counts_from_creation():
    created = time.time() - 120
    payload = {"k": "key", "d": {"value": "old"}, "c": created, "a": time.time()}
    client = TestClient(make_app(max_age=60))
    replace_cookie(client, sign(payload))  # freshly signed, but created long ago
    assert client.get("/get").json()["value"] is None


def test_retired_key_still_verifies_and_unknown_key_does_not():
    old = TestClient(make_app(secret_key="old-key"))
    old.get("/set/kept")
    cookie = old.cookies["session"]

    rotated = TestClient(make_app(secret_key=["new-key", "old-key"]))
    replace_cookie(rotated, cookie)
    assert rotated.get("/get").json()["value"] == "kept"
    # New cookies are signed with the newest key only.
    rotated.get("/set/again")
    only_new = TestClient(make_app(secret_key="new-key"))
    replace_cookie(only_new, rotated.cookies["session"])
    assert only_new.get("/get").json()["value"] == "again"

    stranger = TestClient(make_app(secret_key="unknown-key"))
    replace_cookie(stranger, cookie)
    assert stranger.get("/get").json()["value"] is None


def test_cycle_key_defeats_session_fixation():
    store = MemoryStore()
    app = make_app(store=store)
    victim = TestClient(app)
    victim.get("/set/data")
    planted = victim.cookies["session"]
    old_key = victim.get("/get").json()["key"]

    new_key = victim.get("/cycle").json()["key"]
    assert new_key != old_key
    assert victim.cookies["session"] != planted
    assert victim.get("/get").json() == {"value": "data", "key": new_key}

    attacker = TestClient(app)
    replace_cookie(attacker, planted)
    assert attacker.get("/get").json()["value"] is None
    assert len(store) == 1


def test_flush_deletes_cookie_and_server_side_data():
    store = MemoryStore()
    client = TestClient(make_app(store=store))
    client.get("/set/data")
    assert len(store) == 1
    response = client.get("/flush")
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert len(store) == 0
    assert client.get("/get").json()["value"] is None


def test_idle_timeout_ends_unused_sessions():
    store = MemoryStore()
    client = TestClient(make_app(store=store, idle_timeout=60))
    client.get("/set/active")
    assert client.get("/get").json()["value"] == "active"
    key = client.get("/get").json()["key"]

    # Pretend the last request was two minutes ago.
    import asyncio

    record = asyncio.run(store.load(key))
    assert record is not None
    record.accessed -= 120
    asyncio.run(store.save(record, ttl=600))
    assert client.get("/get").json()["value"] is None
    assert len(store) == 0


def test_idle_timeout_refreshes_cookie_store_sessions():
    client = TestClient(make_app(idle_timeout=60))
    client.get("/set/a")
    first = client.cookies["session"]
    time.sleep(1.05)  # itsdangerous timestamps have one-second resolution
    response = client.get("/get")
    assert "set-cookie" in response.headers
    assert client.cookies["session"] != first


def test_idle_expired_cookie_session_is_dropped():
    now = time.time()
    payload = {"k": "key", "d": {"value": "idle"}, "c": now - 100, "a": now - 100}
    client = TestClient(make_app(idle_timeout=60))
    replace_cookie(client, sign(payload))
    assert client.get("/get").json()["value"] is None


def test_too_large_cookie_session_is_a_clear_error():
    client = TestClient(make_app())
    with pytest.raises(SessionTooLargeError, match="RedisStore"):
        client.get("/big")


def test_server_side_store_keeps_large_sessions():
    client = TestClient(make_app(store=MemoryStore()))
    assert client.get("/big").status_code == 200
    assert len(client.cookies["session"]) < 200


def test_websocket_can_read_the_session():
    client = TestClient(make_app())
    client.get("/set/from-http")
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_json() == {"value": "from-http"}


@pytest.mark.parametrize(
    "options",
    [
        {"secret_key": ""},
        {"secret_key": []},
        {"max_age": 0},
        {"idle_timeout": -5},
        {"same_site": "sometimes"},
        {"same_site": "none"},
        {"cookie_name": "bad name"},
        {"store": object()},
    ],
)
def test_invalid_options_are_refused(options):
    options.setdefault("secret_key", "secret")
    with pytest.raises((ImproperlyConfigured, ValueError)):
        SessionMiddleware(noop_app, **options)


def test_redis_store_through_the_middleware():
    import asyncio

    from tests.test_sessions import redis_available

    asyncio.run(redis_available())
    prefix = f"covet-test:{uuid.uuid4().hex}:"
    store = RedisStore(REDIS_URL, prefix=prefix)
    app = make_app(store=store)
    app.on_shutdown(store.aclose)
    with TestClient(app) as client:
        client.get("/set/redis")
        assert client.get("/get").json()["value"] == "redis"
        key = client.get("/get").json()["key"]
        client.get("/flush")
        assert client.get("/get").json()["value"] is None

    async def leftovers() -> None:
        check = RedisStore(REDIS_URL, prefix=prefix)
        try:
            assert await check.load(key) is None
            assert await check._redis.get().keys(prefix + "*") == []
        finally:
            await check.aclose()

    asyncio.run(leftovers())
    assert isinstance(SessionRecord, type)


async def test_a_request_in_flight_cannot_revive_a_session_logged_out_meanwhile():
    import asyncio

    import httpx

    store = MemoryStore()
    app = Covet(allowed_hosts=["testserver"])
    entered, release = asyncio.Event(), asyncio.Event()

    @app.get("/login")
    async def login(request):
        request.session["user"] = 1
        return "in"

    @app.get("/slow")
    async def slow(request):
        entered.set()
        await release.wait()
        request.session["late"] = True  # saved after the logout below
        return "slow"

    @app.get("/logout")
    async def logout(request):
        request.session.flush()
        return "out"

    @app.get("/whoami")
    async def whoami(request):
        return {"user": request.session.get("user")}

    app.add_middleware(SessionMiddleware, secret_key="secret", store=store, idle_timeout=600)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        cookie = (await client.get("/login")).cookies["session"]
        client.cookies.clear()
        headers = {"Cookie": f"session={cookie}"}
        in_flight = asyncio.create_task(client.get("/slow", headers=headers))
        await entered.wait()
        assert (await client.get("/logout", headers=headers)).text == "out"
        client.cookies.clear()
        release.set()
        late = await in_flight
        client.cookies.clear()
        assert late.text == "slow"
        assert "Max-Age=0" in late.headers["set-cookie"]  # the revoked session stays revoked
        assert (await client.get("/whoami", headers=headers)).json() == {"user": None}
        assert len(store) == 0
