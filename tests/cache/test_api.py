"""Every cache operation, on every backend (memory, Redis, SQLite, PostgreSQL, MySQL)."""

from __future__ import annotations

import asyncio
import datetime
import secrets

import pytest

from covet.cache import Cache, CacheValueError, InvalidCacheKeyError


async def test_set_get_delete(make):
    cache = make()
    assert await cache.get("missing") is None
    assert await cache.get("missing", "fallback") == "fallback"
    await cache.set("k", {"a": [1, 2.5, "three", None, True]})
    assert await cache.get("k") == {"a": [1, 2.5, "three", None, True]}
    assert await cache.has_key("k")
    assert await cache.delete("k") is True
    assert await cache.delete("k") is False
    assert await cache.get("k", "gone") == "gone"
    assert not await cache.has_key("k")


async def test_values_of_every_kind_round_trip(make):
    cache = make()
    values = {
        "int": 42,
        "negative": -7,
        "big": 2**70,
        "float": 0.1,
        "text": "héllo\n\x00",
        "bytes": b"\x00\xffraw",
        "none": None,
        "false": False,
        "list": [1, [2, {"x": "y"}]],
        "empty": "",
    }
    await cache.set_many(values)
    assert await cache.get_many(values) == values
    assert await cache.get("none", "default") is None  # a stored None is a value
    # JSON's types: a tuple comes back as a list, a date as its ISO string.
    await cache.set("tuple", (1, 2))
    assert await cache.get("tuple") == [1, 2]
    await cache.set("date", datetime.date(2030, 1, 2))
    assert await cache.get("date") == "2030-01-02"


async def test_a_value_json_cannot_hold_is_refused_naming_the_key(make):
    cache = make()
    with pytest.raises(TypeError, match=r"'obj'.*'object' is not JSON serializable"):
        await cache.set("obj", object())
    assert await cache.get("obj") is None


async def test_get_many_set_many_delete_many(make):
    cache = make()
    await cache.set_many({"a": 1, "b": "two", "c": [3]}, ttl=60)
    assert await cache.get_many(["a", "b", "c", "nope"]) == {"a": 1, "b": "two", "c": [3]}
    assert await cache.get_many([]) == {}
    assert await cache.delete_many(["a", "c", "nope"]) == 2
    assert await cache.get_many(["a", "b", "c"]) == {"b": "two"}
    assert await cache.delete_many([]) == 0


async def test_get_many_in_batches_beyond_the_parameter_limit(make):
    cache = make()
    values = {f"k{i}": i for i in range(1200)}
    await cache.set_many(values)
    assert await cache.get_many(values) == values
    assert await cache.delete_many(values) == 1200


async def test_add_only_when_absent(make):
    cache = make()
    assert await cache.add("k", "first") is True
    assert await cache.add("k", "second") is False
    assert await cache.get("k") == "first"
    assert await cache.add("gone", 1, ttl=0) is True  # absent; nothing is stored
    assert await cache.get("gone") is None


async def test_concurrent_adds_have_one_winner(make):
    cache = make()
    results = await asyncio.gather(*(cache.add("lock", n) for n in range(10)))
    assert sorted(results) == [False] * 9 + [True]
    assert await cache.get("lock") == results.index(True)


async def test_incr_and_decr(make):
    cache = make()
    await cache.set("n", 10)
    assert await cache.incr("n") == 11
    assert await cache.incr("n", 5) == 16
    assert await cache.decr("n", 20) == -4
    assert await cache.incr("n", 0) == -4
    assert await cache.get("n") == -4
    with pytest.raises(CacheValueError, match=r"has no value to increment.*cache\.add\(key, 0\)"):
        await cache.incr("absent")
    await cache.set("text", "abc")
    with pytest.raises(CacheValueError, match="does not hold an integer"):
        await cache.incr("text")
    with pytest.raises(TypeError, match="delta must be an int"):
        await cache.incr("n", 1.5)


async def test_concurrent_increments_are_all_counted(make):
    cache = make()
    await cache.add("hits", 0)
    await asyncio.gather(*(cache.incr("hits") for _ in range(20)))
    assert await cache.get("hits") == 20


async def test_incr_keeps_the_ttl(make, store):
    cache = make()
    await cache.set("n", 1, ttl=0.4)
    assert await cache.incr("n") == 2
    await store.advance(0.6)
    assert await cache.get("n") is None


async def test_entries_expire(make, store):
    cache = make(timeout=0.4)
    await cache.set("default-ttl", 1)
    await cache.set("short", 2, ttl=datetime.timedelta(milliseconds=400))
    await cache.set("forever", 3, ttl=None)
    await cache.set("long", 4, ttl=60)
    await store.advance(0.6)
    assert await cache.get_many(["default-ttl", "short", "forever", "long"]) == {
        "forever": 3,
        "long": 4,
    }
    assert await cache.delete("short") is False  # expired entries are not "deleted"
    assert await cache.add("short", "again") is True  # an expired key can be added anew
    assert await cache.get("short") == "again"


async def test_zero_or_negative_ttl_deletes(make):
    cache = make()
    await cache.set("k", 1)
    await cache.set("k", 2, ttl=0)
    assert await cache.get("k") is None
    await cache.set_many({"a": 1, "b": 2})
    await cache.set_many({"a": 3, "b": 4}, ttl=-1)
    assert await cache.get_many(["a", "b"]) == {}


async def test_touch_sets_a_new_ttl(make, store):
    cache = make()
    await cache.set("k", "v", ttl=0.4)
    assert await cache.touch("k", 60) is True
    assert await cache.touch("absent", 60) is False
    await store.advance(0.6)
    assert await cache.get("k") == "v"
    assert await cache.touch("k", None) is True  # no expiry any more
    assert await cache.touch("k", None) is True  # unchanged still counts as found
    assert await cache.touch("k", 0) is True  # a TTL of 0 deletes
    assert await cache.get("k") is None


async def test_clear_deletes_only_this_prefix(make):
    mine, other = make(), make()
    await mine.set_many({"a": 1, "b": 2})
    await mine.set("old", 1, version=7)
    await other.set("a", "kept")
    await mine.clear()
    assert await mine.get_many(["a", "b"]) == {}
    assert await mine.get("old", version=7) is None
    assert await other.get("a") == "kept"


async def test_key_prefixes_separate_caches_on_one_store(store):
    backend = store.backend()  # one store (one memory dict, one Redis, one table)
    tag = secrets.token_hex(4)
    one, two = Cache(backend, key_prefix=f"{tag}one"), Cache(backend, key_prefix=f"{tag}two")
    try:
        await one.set("k", 1)
        await two.set("k", 2)
        assert (await one.get("k"), await two.get("k")) == (1, 2)
        assert one.make_key("k") == f"{tag}one:1:k"
        await one.clear()
        assert (await one.get("k"), await two.get("k")) == (None, 2)
    finally:
        await one.clear()
        await two.clear()
        await one.close()


async def test_versions(make):
    cache = make(version=2)
    await cache.set("k", "v2")
    await cache.set("k", "v5", version=5)
    assert await cache.get("k") == "v2"
    assert await cache.get("k", version=5) == "v5"
    assert await cache.get("k", version=1) is None
    assert cache.make_key("k").endswith(":2:k")
    assert await cache.incr_version("k") == 3
    assert await cache.get("k") is None
    assert await cache.get("k", version=3) == "v2"
    assert await cache.decr_version("k", version=3) == 2
    assert await cache.get("k") == "v2"
    with pytest.raises(CacheValueError, match="no value at version 9"):
        await cache.incr_version("k", version=9)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("x" * 251, "over the limit of 250"),
        ("tab\there", r"control character '\\t' at position 7"),
        ("nul\x00", "control character"),
        ("del\x7f", "control character"),
        ("c1\x85", "control character"),
    ],
)
async def test_invalid_keys_are_refused_clearly(make, key, message):
    cache = make(key_prefix="p")
    with pytest.raises(InvalidCacheKeyError, match=message):
        await cache.set(key, 1)
    with pytest.raises(InvalidCacheKeyError, match=message):
        await cache.get(key)


async def test_key_length_counts_prefix_and_version(make):
    cache = make(key_prefix="prefix")
    longest = "k" * (250 - len("prefix:1:"))
    await cache.set(longest, 1)
    assert await cache.get(longest) == 1
    with pytest.raises(InvalidCacheKeyError, match="251 characters"):
        await cache.set(longest + "k", 1)


async def test_non_string_keys_are_refused(make):
    cache = make()
    with pytest.raises(InvalidCacheKeyError, match=r"got 42 \(int\).*f'user:\{user_id\}'"):
        await cache.get(42)


async def test_unicode_and_spaces_are_fine_in_keys(make):
    cache = make()
    await cache.set("user name ünï 🙂", 1)
    assert await cache.get("user name ünï 🙂") == 1
    assert await cache.get("USER NAME ÜNÏ 🙂") is None  # keys are case-sensitive


async def test_an_unreachable_redis_raises_a_503_error():
    from covet.cache import CacheUnavailableError

    down = Cache("redis://127.0.0.1:1/0")
    with pytest.raises(
        CacheUnavailableError, match=r"cannot be reached.*Check that Redis is running"
    ):
        await down.get("k")
    assert CacheUnavailableError.status_code == 503
    await down.close()
