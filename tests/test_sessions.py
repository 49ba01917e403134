from __future__ import annotations

import os
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from covet.sessions import (
    CookieStore,
    MemoryStore,
    RedisStore,
    Session,
    SessionRecord,
    SessionStore,
    generate_session_key,
)

if TYPE_CHECKING:
    from collections.abc import Callable

REDIS_URL = os.environ.get("COVET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def redis_available() -> None:
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, redis_asyncio.RedisError) as exc:
        if os.environ.get("COVET_TEST_REQUIRE_ALL") == "1":
            pytest.fail(f"Redis at {REDIS_URL} is required (COVET_TEST_REQUIRE_ALL=1): {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        await client.aclose()


def test_session_key_is_256_bit_urlsafe():
    key = generate_session_key()
    assert len(key) == 43
    assert key.replace("-", "").replace("_", "").isalnum()
    assert generate_session_key() != key


def test_session_tracks_every_kind_of_change():
    changes: list[Callable[[Session], object]] = [
        lambda s: s.__setitem__("a", 2),
        lambda s: s.__delitem__("a"),
        lambda s: s.update(b=1),
        lambda s: s.pop("a"),
        lambda s: s.popitem(),
        lambda s: s.setdefault("new", 1),
        lambda s: s.clear(),
        lambda s: s.__ior__({"c": 3}),
    ]
    for change in changes:
        session = Session({"a": 1}, key="k", is_new=False)
        assert not session.modified
        change(session)
        assert session.modified


def test_session_reads_and_noop_changes_are_not_modifications():
    session = Session({"a": 1}, key="k", is_new=False)
    assert session["a"] == 1
    assert session.get("b") is None
    assert session.pop("missing", None) is None
    assert session.setdefault("a", 5) == 1
    assert not session.modified


def test_cycle_key_keeps_data_and_retires_old_key():
    session = Session({"user": 1}, key="old", is_new=False)
    session.cycle_key()
    assert session.session_key != "old"
    assert dict(session) == {"user": 1}
    assert session.retired_keys == ["old"]
    assert session.modified


def test_flush_empties_and_changes_key():
    session = Session({"user": 1}, key="old", is_new=False)
    session.flush()
    assert dict(session) == {}
    assert session.session_key != "old"
    assert session.retired_keys == ["old"]


async def test_stores_satisfy_the_protocol():
    assert isinstance(CookieStore(), SessionStore)
    assert isinstance(MemoryStore(), SessionStore)
    assert isinstance(RedisStore(REDIS_URL), SessionStore)


async def test_cookie_store_round_trip_and_rejects_bad_payloads():
    store = CookieStore()
    record = SessionRecord("key", {"a": [1, 2]}, 10.0, 20.0)
    payload = await store.save(record, ttl=60)
    assert await store.load(payload) == record
    for bad in (None, "key", {"k": "key"}, {"k": 1, "d": {}, "c": 1, "a": 1}, [1]):
        assert await store.load(bad) is None


async def test_memory_store_round_trip_delete_and_expiry():
    store = MemoryStore()
    now = time.time()
    record = SessionRecord(generate_session_key(), {"x": 1}, now, now)
    payload = await store.save(record, ttl=60)
    assert payload == record.key
    assert await store.load(payload) == record
    await store.delete(record.key)
    assert await store.load(payload) is None
    await store.save(record, ttl=60)
    store._data[record.key] = (time.time() - 1, store._data[record.key][1])
    assert await store.load(record.key) is None
    assert await store.load(123) is None


async def test_memory_store_is_bounded():
    store = MemoryStore(max_sessions=3)
    now = time.time()
    keys = [generate_session_key() for _ in range(5)]
    for key in keys:
        await store.save(SessionRecord(key, {}, now, now), ttl=60)
    assert len(store) == 3
    assert await store.load(keys[0]) is None
    assert await store.load(keys[-1]) is not None


async def test_memory_store_refuses_non_json_data():
    store = MemoryStore()
    with pytest.raises(TypeError):
        await store.save(SessionRecord("k", {"x": object()}, 0.0, 0.0), ttl=60)


def test_redis_store_needs_exactly_one_of_url_and_client():
    with pytest.raises(ValueError, match="exactly one"):
        RedisStore()


async def test_redis_store_round_trip_ttl_and_delete():
    await redis_available()
    prefix = f"covet-test:{uuid.uuid4().hex}:"
    store = RedisStore(REDIS_URL, prefix=prefix)
    try:
        now = time.time()
        record = SessionRecord(generate_session_key(), {"cart": [1, 2], "name": "Ann"}, now, now)
        payload = await store.save(record, ttl=30)
        assert payload == record.key
        assert await store.load(payload) == record
        client = store._redis.get()
        assert 0 < await client.ttl(prefix + record.key) <= 30
        await store.touch(record, ttl=100)
        assert 30 < await client.ttl(prefix + record.key) <= 100
        await store.delete(record.key)
        assert await store.load(payload) is None
        assert await store.load({"not": "a key"}) is None
        await client.set(prefix + "garbage", b"not json")
        assert await store.load("garbage") is None
        await store.delete_many(["garbage"])
        assert await client.keys(prefix + "*") == []
    finally:
        await store.aclose()


async def test_revoked_sessions_are_never_recreated_by_a_late_save():
    await redis_available()
    redis_store = RedisStore(REDIS_URL, prefix=f"covet-test:{uuid.uuid4().hex}:")
    try:
        for store in (MemoryStore(), redis_store):
            now = time.time()
            record = SessionRecord(generate_session_key(), {"user": 1}, now, now, existing=True)
            # Loaded earlier by a request, deleted (logout elsewhere) before it saved.
            assert await store.save(record, ttl=60) is None, store
            assert await store.touch(record, ttl=60) is None, store
            assert await store.load(record.key) is None, store
            new = SessionRecord(record.key, {"user": 1}, now, now)
            assert await store.save(new, ttl=60) == record.key, store
            assert await store.save(record, ttl=60) == record.key, store
            assert await store.touch(record, ttl=60) == record.key, store
            loaded = await store.load(record.key)
            assert loaded is not None and loaded.data == {"user": 1}, store
            await store.delete(record.key)
    finally:
        await redis_store.aclose()


def test_session_records_its_changes_key_by_key() -> None:
    from covet.sessions import SessionChanges

    def changes(session: Session) -> SessionChanges | None:
        return session.changes  # read afresh: no narrowing across the mutations below

    session = Session({"a": 1, "b": 2, "c": 3}, is_new=False)
    assert changes(session) == SessionChanges()
    session["x"] = 1
    del session["a"]
    session.pop("b")
    session.pop("missing", None)
    session.setdefault("y", 2)
    session.update({"z": 3})
    session |= {"w": 4}
    expected = SessionChanges(frozenset({"x", "y", "z", "w"}), frozenset({"a", "b"}))
    assert changes(session) == expected
    session["a"] = 5  # deleted, then set again: set
    assert "a" not in (changes(session) or SessionChanges()).deleted
    session.modified = False
    assert changes(session) == SessionChanges()
    session.modified = True  # a value mutated in place: the whole session is written
    assert changes(session) is None
    session.modified = False
    session.clear()
    assert changes(session) is None
