from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from covet.auth import (
    MAX_PASSWORD_BYTES,
    Argon2PasswordHasher,
    PasswordTooLongError,
    PBKDF2PasswordHasher,
    check_password,
    get_hashers,
    hash_password,
    hashers,
    is_password_usable,
    make_unusable_password,
    needs_rehash,
    set_hashers,
    set_hashing_workers,
    verify_password,
)
from covet.auth.hashers import identify_hasher
from covet.exceptions import ImproperlyConfigured
from tests.auth.conftest import CHEAP_ARGON2, CHEAP_PBKDF2

ROOT = Path(__file__).resolve().parents[2]


async def test_default_hashers_are_owasp_argon2id_then_pbkdf2():
    set_hashers(None)
    argon, pbkdf2 = get_hashers()
    assert isinstance(argon, Argon2PasswordHasher)
    assert isinstance(pbkdf2, PBKDF2PasswordHasher)
    assert (argon.time_cost, argon.memory_cost, argon.parallelism) == (2, 19456, 1)
    assert pbkdf2.iterations == 1_500_000
    encoded = await hash_password("correct horse")
    assert encoded.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert await verify_password("correct horse", encoded)
    assert not await verify_password("correct horsf", encoded)


async def test_hashes_are_salted():
    first = await hash_password("same password")
    second = await hash_password("same password")
    assert first != second
    assert await verify_password("same password", first)
    assert await verify_password("same password", second)


async def test_pbkdf2_format_and_verification():
    hasher = PBKDF2PasswordHasher(iterations=CHEAP_PBKDF2)
    encoded = await hash_password("pässword", hasher=hasher)
    algorithm, iterations, salt, digest = encoded.split("$")
    assert (algorithm, iterations) == ("pbkdf2_sha256", str(CHEAP_PBKDF2))
    assert len(salt) == 22 and salt.isalnum()
    assert len(digest) == 44  # base64 of 32 bytes
    assert await verify_password("pässword", encoded)
    assert not await verify_password("password", encoded)
    assert identify_hasher(encoded) is get_hashers()[1]


def test_pbkdf2_matches_a_known_django_vector():
    # Django's test suite: make_password("lètmein", "seasalt", "pbkdf2_sha256") at 30000 rounds.
    hasher = PBKDF2PasswordHasher(iterations=30000)
    expected = "pbkdf2_sha256$30000$seasalt$VrX+V8drCGo68wlvy6rfu8i1d1pfkdeXA4LJkRGJodY="
    assert hasher.verify("lètmein".encode(), expected)
    assert not hasher.verify(b"letmein", expected)


async def test_both_algorithms_verify_whichever_is_preferred():
    argon_hash = await hash_password("pw-1", hasher=get_hashers()[0])
    pbkdf2_hash = await hash_password("pw-2", hasher=get_hashers()[1])
    set_hashers(
        [PBKDF2PasswordHasher(iterations=CHEAP_PBKDF2), Argon2PasswordHasher(**CHEAP_ARGON2)]
    )
    assert await verify_password("pw-1", argon_hash)
    assert await verify_password("pw-2", pbkdf2_hash)
    # Argon2 is no longer preferred: a match asks for a re-hash.
    assert await check_password("pw-1", argon_hash) == (True, True)
    assert await check_password("pw-2", pbkdf2_hash) == (True, False)


async def test_parameter_change_asks_for_rehash():
    old = await hash_password("secret words")
    assert not needs_rehash(old)
    set_hashers([Argon2PasswordHasher(time_cost=2, memory_cost=1024), PBKDF2PasswordHasher()])
    assert needs_rehash(old)
    assert await check_password("secret words", old) == (True, True)
    # A wrong password never asks for anything.
    assert await check_password("wrong words", old) == (False, False)
    pbkdf2_old = PBKDF2PasswordHasher(iterations=1000).encode(b"x")
    assert PBKDF2PasswordHasher(iterations=2000).needs_update(pbkdf2_old)
    assert not PBKDF2PasswordHasher(iterations=1000).needs_update(pbkdf2_old)


async def test_passwords_over_4096_bytes_are_refused_unhashed():
    calls: list[bytes] = []

    class Spy(PBKDF2PasswordHasher):
        def encode(self, password: bytes) -> str:
            calls.append(password)
            return super().encode(password)

        def verify(self, password: bytes, encoded: str) -> bool:
            calls.append(password)
            return super().verify(password, encoded)

    set_hashers([Spy(iterations=CHEAP_PBKDF2)])
    at_limit = "é" * (MAX_PASSWORD_BYTES // 2)
    encoded = await hash_password(at_limit)
    assert await verify_password(at_limit, encoded)
    calls.clear()
    too_long = at_limit + "x"
    with pytest.raises(PasswordTooLongError, match="4097 bytes"):
        await hash_password(too_long)
    assert not await verify_password(too_long, encoded)
    assert calls == []


async def test_non_string_password_is_a_type_error():
    with pytest.raises(TypeError, match="must be a str"):
        await hash_password(b"bytes")  # type: ignore[arg-type]


async def test_hashing_runs_off_the_event_loop_and_the_loop_keeps_ticking():
    threads: list[int] = []

    class Slow(PBKDF2PasswordHasher):
        def encode(self, password: bytes) -> str:
            threads.append(threading.get_ident())
            return super().encode(password)

    # About 100 ms of pure CPU work.
    hasher = Slow(iterations=150_000)
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await hash_password("tick tock", hasher=hasher)
    during = ticks - before
    stop.set()
    await task
    assert threads and threads[0] != threading.get_ident()
    # Structural: had the hash run on the loop, the ticker could not have run meanwhile.
    assert during >= 3


async def test_the_pool_is_bounded_and_configurable():
    running = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Event()

    class Counting(PBKDF2PasswordHasher):
        def encode(self, password: bytes) -> str:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            gate.wait(0.05)
            with lock:
                running -= 1
            return "pbkdf2_sha256$1$salt$x"

    set_hashing_workers(2)
    try:
        hasher = Counting(iterations=1)
        await asyncio.gather(*(hash_password("p", hasher=hasher) for _ in range(6)))
        assert peak == 2
    finally:
        set_hashing_workers(None)
    with pytest.raises(ImproperlyConfigured):
        set_hashing_workers(0)


async def test_unknown_or_unusable_hashes_never_match_but_cost_a_dummy_check():
    checks: list[str] = []

    class Spy(Argon2PasswordHasher):
        def dummy_verify(self, password: bytes) -> None:
            checks.append("dummy")
            super().dummy_verify(password)

    set_hashers([Spy(**CHEAP_ARGON2)])
    assert not await verify_password("x", None)
    assert not await verify_password("x", make_unusable_password())
    assert not await verify_password("x", "md5$abc$def")
    assert not await verify_password("x", "argon2$garbage")
    assert checks == ["dummy", "dummy", "dummy"]


def test_unusable_passwords():
    first, second = make_unusable_password(), make_unusable_password()
    assert first != second
    assert not is_password_usable(first)
    assert not is_password_usable("")
    assert not is_password_usable(None)
    assert is_password_usable("argon2$argon2id$...")
    assert not needs_rehash(first)


def test_identify_hasher_names_unknown_algorithms():
    with pytest.raises(ValueError, match="Unknown password hash algorithm 'bcrypt'"):
        identify_hasher("bcrypt$2b$12$abc")


def test_set_hashers_validates():
    with pytest.raises(ImproperlyConfigured):
        set_hashers([])
    with pytest.raises(ImproperlyConfigured):
        set_hashers(["argon2"])  # type: ignore[list-item]
    with pytest.raises(ImproperlyConfigured, match="two hashers"):
        set_hashers([PBKDF2PasswordHasher(), PBKDF2PasswordHasher(iterations=5)])
    with pytest.raises(ImproperlyConfigured):
        PBKDF2PasswordHasher(iterations=0)


def test_hasher_reprs_show_parameters():
    assert repr(PBKDF2PasswordHasher(iterations=7)) == "PBKDF2PasswordHasher(iterations=7)"
    assert "memory_cost=1024" in repr(Argon2PasswordHasher(**CHEAP_ARGON2))


# -- Argon2's 19 MiB buffers go back to the operating system ------------------------------------

GLIBC = sys.platform.startswith("linux") and bool(
    getattr(os, "confstr", lambda name: None)("CS_GNU_LIBC_VERSION")
)

HASH_ON_FOUR_THREADS = """
import asyncio
from covet.auth import hashers

def rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

async def main():
    hashers.set_hashing_workers(4)
    encoded = await hashers.hash_password("correct horse")
    before = rss_mib()
    for _ in range(3):
        await asyncio.gather(*(hashers.verify_password("correct horse", encoded) for _ in range(4)))
    print(round(rss_mib() - before), hashers._mmap_threshold)

asyncio.run(main())
"""


def _hash_in_subprocess(**env: str) -> tuple[int, str]:
    """Hash on four pool threads in a fresh interpreter (glibc's state is per process)."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    path = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, path))
    result = subprocess.run(
        [sys.executable, "-c", HASH_ON_FOUR_THREADS],
        env=child_env | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    grown, threshold = result.stdout.split()
    return int(grown), threshold


@pytest.mark.skipif(not GLIBC, reason="the hash buffers' fate is glibc's allocator behaviour")
def test_argon2_buffers_are_returned_after_hashing_on_many_threads():
    # Before: each pool thread's heap kept its last 19 MiB buffer (+57 MiB here).
    grown, threshold = _hash_in_subprocess()
    assert grown < 10, f"RSS grew by {grown} MiB after hashes on four threads"
    assert int(threshold) == (19456 - 4) * 1024


@pytest.mark.skipif(not GLIBC, reason="the hash buffers' fate is glibc's allocator behaviour")
def test_an_operators_malloc_settings_are_left_alone():
    _, threshold = _hash_in_subprocess(MALLOC_MMAP_THRESHOLD_="131072")
    assert threshold == "None"
    _, threshold = _hash_in_subprocess(GLIBC_TUNABLES="glibc.malloc.trim_threshold=131072")
    assert threshold == "None"


def test_small_or_huge_argon2_buffers_leave_the_allocator_alone(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(hashers, "_mmap_threshold", None)
    monkeypatch.setattr(hashers, "_malloc_configured_by_operator", lambda: calls.append(1))
    Argon2PasswordHasher(**CHEAP_ARGON2)  # 1 MiB of blocks: not worth it
    Argon2PasswordHasher(time_cost=1, memory_cost=64 * 1024)  # glibc maps 64 MiB by itself
    assert calls == [] and hashers._mmap_threshold is None


@pytest.mark.parametrize(
    ("web_concurrency", "expected"),
    [(None, 8), ("1", 8), ("2", 4), ("3", 2), ("16", 1), ("0", 8), ("many", 8)],
)
def test_the_hashing_pool_is_the_cores_shared_among_the_servers_workers(
    monkeypatch, web_concurrency, expected
):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    if web_concurrency is None:
        monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    else:
        monkeypatch.setenv("WEB_CONCURRENCY", web_concurrency)
    assert hashers.default_hashing_workers() == expected
    set_hashing_workers(None)
    try:
        assert hashers._pool()._max_workers == expected
    finally:
        set_hashing_workers(None)  # the next pool is sized from the real machine again
