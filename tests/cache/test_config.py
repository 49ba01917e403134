"""Configuration: URLs, settings (CACHE_URL, [tool.covet]), named caches, serializers."""

from __future__ import annotations

import logging
import pickle

import pytest

from covet.cache import (
    Cache,
    CacheHandler,
    JSONSerializer,
    MemoryBackend,
    PickleSerializer,
    cache,
    caches,
)
from covet.cache.serializers import Codec
from covet.config import load_settings
from covet.exceptions import ImproperlyConfigured

SECRET = "s" * 40


def test_url_options_and_arguments():
    made = Cache("memory://?key_prefix=site&version=3&timeout=60")
    assert (made.key_prefix, made.version, made.timeout) == ("site", 3, 60.0)
    assert made.make_key("k") == "site:3:k"
    assert Cache("memory://?timeout=none").timeout is None
    overridden = Cache("memory://?key_prefix=site&timeout=60", key_prefix="other", timeout=5)
    assert (overridden.key_prefix, overridden.timeout) == ("other", 5.0)
    assert Cache().make_key("k") == ":1:k"  # Django's format with no prefix


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memcached://127.0.0.1", "Unsupported cache URL 'memcached://127.0.0.1'"),
        ("127.0.0.1:6379", "Unsupported cache URL"),
        ("memory://?max_entry=5", r"Unknown option\(s\) 'max_entry'.*max_entries, max_bytes"),
        ("database://?cull=1", r"Unknown option\(s\) 'cull'.*cull_every"),
        ("memory://?version=two", "version must be an integer, got 'two'"),
        ("memory://?timeout=soon", "timeout must be seconds or 'none'"),
        ("database://?cull_every=0", "cull_every must be a positive integer"),
    ],
)
def test_bad_urls_are_refused_clearly(url, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        Cache(url)


def test_passwords_are_masked():
    made = Cache("redis://user:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in repr(made)
    with pytest.raises(ImproperlyConfigured) as info:
        Cache("nope://user:hunter2@host")
    assert "hunter2" not in str(info.value)


def test_redis_options_go_to_redis_py():
    from covet.cache import RedisBackend

    made = Cache("redis://127.0.0.1:6379/0?key_prefix=p&socket_timeout=2")
    assert isinstance(made.backend, RedisBackend)
    assert made.key_prefix == "p"
    assert made.backend._redis.url == "redis://127.0.0.1:6379/0?socket_timeout=2"


def test_bad_arguments():
    with pytest.raises(ImproperlyConfigured, match="key_prefix must be a string"):
        Cache(key_prefix=3)  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured, match="version must be an integer"):
        Cache(version="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timeout must be seconds"):
        Cache(timeout="soon")  # type: ignore[arg-type]


async def test_ttl_must_be_a_number():
    with pytest.raises(TypeError, match=r"ttl must be seconds.*timedelta\(minutes=5\)"):
        await Cache().set("k", 1, ttl="300")  # type: ignore[arg-type]


def write_project(root, table: str) -> None:
    (root / "pyproject.toml").write_text(f"[tool.covet]\n{table}\n", encoding="utf-8")


def test_settings_read_cache_url_and_named_caches(tmp_path, monkeypatch):
    monkeypatch.delenv("CACHE_URL", raising=False)
    write_project(
        tmp_path,
        'cache_url = "memory://?key_prefix=proj"\n'
        '[tool.covet.caches]\nfragments = "memory://?max_entries=50"',
    )
    settings = load_settings(tmp_path, environ={})
    assert settings.cache_url == "memory://?key_prefix=proj"
    assert settings.caches == {"fragments": "memory://?max_entries=50"}
    assert load_settings(tmp_path, environ={"CACHE_URL": "memory://"}).cache_url == "memory://"
    handler = CacheHandler()
    monkeypatch.chdir(tmp_path)
    assert handler["default"].key_prefix == "proj"
    assert handler["fragments"].backend.max_entries == 50  # type: ignore[attr-defined]
    assert handler["default"] is handler["default"]
    assert sorted(handler) == ["default", "fragments"]
    assert "fragments" in handler


def test_the_environment_wins_over_pyproject(tmp_path, monkeypatch):
    write_project(tmp_path, 'cache_url = "memory://?key_prefix=file"')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CACHE_URL", "memory://?key_prefix=env")
    assert CacheHandler()["default"].key_prefix == "env"
    (tmp_path / ".env").write_text("CACHE_URL=memory://?key_prefix=dotenv\n")
    monkeypatch.delenv("CACHE_URL")
    assert CacheHandler()["default"].key_prefix == "dotenv"


def test_outside_a_project_the_default_is_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHE_URL", raising=False)
    assert isinstance(CacheHandler()["default"].backend, MemoryBackend)
    monkeypatch.setenv("CACHE_URL", "memory://?key_prefix=env")
    assert CacheHandler()["default"].key_prefix == "env"


def test_bad_caches_table(tmp_path):
    write_project(tmp_path, "caches = 3")
    with pytest.raises(ImproperlyConfigured, match=r"caches must be a table of strings"):
        load_settings(tmp_path, environ={})


def test_configure_and_unknown_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    handler = CacheHandler()
    mine = Cache(key_prefix="mine")
    handler.configure(default="memory://?key_prefix=d", pages=mine)
    assert handler["default"].key_prefix == "d"
    assert handler["pages"] is mine
    with pytest.raises(ImproperlyConfigured, match=r"No cache named 'nope'.*known: default, pages"):
        handler["nope"]
    with pytest.raises(ImproperlyConfigured, match="is defined as 3"):
        handler.configure(other=3)  # type: ignore[arg-type]
    handler.configure()  # no definitions: the default falls back to CACHE_URL or memory
    assert isinstance(handler["default"].backend, MemoryBackend)


async def test_the_default_cache_follows_configure():
    saved = (caches._definitions, caches._caches)
    try:
        caches.configure(default=Cache(key_prefix="first"))
        await cache.set("k", 1)
        assert cache.key_prefix == "first"
        caches.configure(default=Cache(key_prefix="second"))
        assert await cache.get("k") is None
        assert "second" in repr(cache)
        await caches.close()
    finally:
        caches._definitions, caches._caches = saved


async def test_pickle_is_signed_and_kept_apart_from_json(caplog):
    signed = Cache(serializer=PickleSerializer(SECRET))
    await signed.set("t", (1, {2, 3}))
    assert await signed.get("t") == (1, {2, 3})  # Python types survive
    # A pickle with another key's signature, or none, is never loaded.
    forged = Cache(serializer=PickleSerializer("o" * 40))
    forged.backend = signed.backend
    with caplog.at_level(logging.WARNING, logger="covet.cache"):
        assert await forged.get("t") is None
    assert "signature" in caplog.text
    await signed.backend.set(signed.make_key("raw"), b"p" + pickle.dumps("evil"), None)
    assert await signed.get("raw") is None
    # A JSON cache ignores pickled data altogether.
    plain = Cache()
    plain.backend = signed.backend
    with caplog.at_level(logging.WARNING, logger="covet.cache"):
        assert await plain.get("t", "default") == "default"
    assert "another serializer" in caplog.text


def test_pickle_needs_a_real_key():
    with pytest.raises(ImproperlyConfigured, match="at least 32 characters"):
        PickleSerializer("short")


async def test_malformed_data_reads_as_a_miss(caplog):
    made = Cache()
    for raw in (b"", b"12x", b"j{not json", b"x\x00"):
        await made.backend.set(made.make_key("bad"), raw, None)
        with caplog.at_level(logging.WARNING, logger="covet.cache"):
            assert await made.get("bad", "default") == "default"
    assert caplog.text.count("Ignoring the cached value") == 4


def test_serializer_tags_are_checked():
    class Bad(JSONSerializer):
        tag = b"b"

    with pytest.raises(ImproperlyConfigured, match="tag other than"):
        Codec(Bad())
