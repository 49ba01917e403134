"""Password hashing: Argon2id by default, PBKDF2-SHA256 as the dependency-free fallback.

Encoded hashes follow Django's format, so a hash says which algorithm and which
parameters made it::

    argon2$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
    pbkdf2_sha256$1500000$<salt>$<hash>

The preferred hasher (the first of :func:`get_hashers`) hashes new passwords;
every configured hasher verifies. :func:`check_password` also reports when a
hash was made by another algorithm or with other parameters, so a login can
upgrade it (``AbstractUser.check_password`` does).

Hashing is deliberately slow CPU work. :func:`hash_password` and
:func:`verify_password` run it in a dedicated thread pool with one thread per
core, shared among the server's worker processes (see :func:`set_hashing_workers`),
so the event loop keeps serving requests and at most that many hashes
(each Argon2 hash holds 19 MiB) run at once; on glibc those 19 MiB go back
to the operating system after each hash (see :func:`_release_hash_buffers`).
Passwords over
:data:`MAX_PASSWORD_BYTES` are refused before any hashing, so nobody can make
the server hash megabytes.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import concurrent.futures
import hashlib
import hmac
import os
import secrets
import string
import sys
import threading
from typing import TYPE_CHECKING, Any

from covet.exceptions import CovetError, ImproperlyConfigured, MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = (
    "MAX_PASSWORD_BYTES",
    "UNUSABLE_PASSWORD_PREFIX",
    "Argon2PasswordHasher",
    "BasePasswordHasher",
    "PBKDF2PasswordHasher",
    "PasswordTooLongError",
    "check_password",
    "default_hashing_workers",
    "get_hashers",
    "hash_password",
    "identify_hasher",
    "is_password_usable",
    "make_unusable_password",
    "needs_rehash",
    "set_hashers",
    "set_hashing_workers",
    "verify_password",
)

#: Longer passwords are refused unhashed (Django's and OWASP's bound on hashing cost).
MAX_PASSWORD_BYTES = 4096
#: A stored password starting with this can never match: the account has no password.
UNUSABLE_PASSWORD_PREFIX = "!"  # noqa: S105 - a marker, not a password
_SALT_CHARS = string.ascii_letters + string.digits


class PasswordTooLongError(CovetError, ValueError):
    """A password is longer than :data:`MAX_PASSWORD_BYTES` and was not hashed."""


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _encode_password(password: str) -> bytes:
    if not isinstance(password, str):
        raise TypeError(f"A password must be a str, got {type(password).__name__!r}.")
    raw = password.encode("utf-8")
    if len(raw) > MAX_PASSWORD_BYTES:
        raise PasswordTooLongError(
            f"The password is {len(raw)} bytes long, over the {MAX_PASSWORD_BYTES}-byte limit. "
            "Choose a shorter password."
        )
    return raw


class BasePasswordHasher(abc.ABC):
    """One hashing algorithm. Subclass it to add another (and list it in :func:`set_hashers`).

    Methods here are synchronous and CPU-bound: call the module's async
    functions, which run them off the event loop.
    """

    #: The prefix of encoded hashes, before the first ``$``.
    algorithm: str = ""

    def __init__(self) -> None:
        self._dummy: str | None = None
        self._dummy_lock = threading.Lock()

    @abc.abstractmethod
    def encode(self, password: bytes) -> str:
        """Return the encoded hash of ``password`` with a new random salt."""

    @abc.abstractmethod
    def verify(self, password: bytes, encoded: str) -> bool:
        """Return whether ``password`` matches ``encoded``, comparing in constant time."""

    @abc.abstractmethod
    def needs_update(self, encoded: str) -> bool:
        """Return whether ``encoded`` was made with parameters other than this hasher's."""

    def dummy_verify(self, password: bytes) -> None:
        """Verify ``password`` against a throw-away hash, to spend the time a real check takes.

        Used when there is no hash to check (an unknown user), so that the
        answer does not come faster and reveal that.
        """
        with self._dummy_lock:
            if self._dummy is None:
                self._dummy = self.encode(secrets.token_bytes(16))
            dummy = self._dummy
        self.verify(password, dummy)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


#: glibc's ``mallopt()`` parameter numbers (``<malloc.h>``).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc never raises its mmap threshold above this (``DEFAULT_MMAP_THRESHOLD_MAX``
#: on 64-bit), so bigger buffers are mapped, and unmapped on free, without help.
_GLIBC_DYNAMIC_MAX = 32 * 1024 * 1024
#: Smaller buffers are not worth changing the allocator's behaviour for.
_RELEASE_MIN = 1024 * 1024
#: What :func:`_release_hash_buffers` set (bytes), or None while glibc's defaults hold.
_mmap_threshold: int | None = None
_malloc_lock = threading.Lock()


def _malloc_configured_by_operator() -> bool:
    """Return whether the environment already sets glibc's thresholds (that choice wins)."""
    env = os.environ
    if "MALLOC_MMAP_THRESHOLD_" in env or "MALLOC_TRIM_THRESHOLD_" in env:
        return True
    tunables = env.get("GLIBC_TUNABLES", "")
    return "malloc.mmap_threshold" in tunables or "malloc.trim_threshold" in tunables


def _release_hash_buffers(size: int) -> None:
    """Make glibc map buffers of ``size`` bytes or more by themselves, so each is freed to the OS.

    Argon2 allocates ``memory_cost`` KiB (19 MiB by default) for every hash and
    frees it at the end. glibc serves the first such buffer with ``mmap()``, then
    raises its mmap threshold to that size, so every later one comes from the
    hashing thread's heap and stays there when freed: a worker that has hashed on
    N pool threads keeps N x 19 MiB for the rest of its life (measured: 13 MiB
    -> 165 MiB after hashes on 8 threads). Fixing the threshold (which turns the
    raising off) at the buffer's size maps every hash buffer again; it costs the
    page faults of a fresh 19 MiB, about 6 ms on a 30 ms hash. Smaller
    allocations are served as glibc would after raising the threshold, and the
    trim threshold is set to twice the mmap one, as glibc's raising would.

    Nothing is changed on other C libraries, for buffers glibc maps anyway
    (over 32 MiB) or too small to matter, when the environment sets the
    thresholds (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
    ``GLIBC_TUNABLES``), or when a lower threshold was set before.
    """
    global _mmap_threshold
    if not _RELEASE_MIN <= size <= _GLIBC_DYNAMIC_MAX or not sys.platform.startswith("linux"):
        return
    with _malloc_lock:
        if _mmap_threshold is not None and _mmap_threshold <= size:
            return
        if _malloc_configured_by_operator():
            return
        try:
            if not os.confstr("CS_GNU_LIBC_VERSION"):
                return
        except (ValueError, OSError):
            return  # not glibc (musl has no such name)
        import ctypes

        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):
            return
        mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        mallopt.restype = ctypes.c_int
        if mallopt(_M_MMAP_THRESHOLD, size):  # returns 1 on success, 0 on error
            mallopt(_M_TRIM_THRESHOLD, 2 * size)
            _mmap_threshold = size


class Argon2PasswordHasher(BasePasswordHasher):
    """Argon2id through argon2-cffi, with OWASP's parameters by default.

    Args:
        time_cost: Passes over memory (``t``).
        memory_cost: Memory in KiB (``m``); 19456 is 19 MiB.
        parallelism: Lanes (``p``).
        hash_len: Bytes of output.
        salt_len: Bytes of random salt.

    Raises:
        MissingDependencyError: If argon2-cffi is not installed.
    """

    algorithm = "argon2"

    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_cost: int = 19456,
        parallelism: int = 1,
        hash_len: int = 32,
        salt_len: int = 16,
    ) -> None:
        super().__init__()
        try:
            import argon2
        except ImportError as exc:  # pragma: no cover - argon2-cffi is a dependency
            raise MissingDependencyError("argon2-cffi") from exc
        self.time_cost = time_cost
        self.memory_cost = memory_cost
        self.parallelism = parallelism
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=hash_len,
            salt_len=salt_len,
            type=argon2.Type.ID,
        )
        self._errors: tuple[type[Exception], ...] = (
            argon2.exceptions.VerificationError,
            argon2.exceptions.InvalidHashError,
        )
        self._rehash_errors: tuple[type[Exception], ...] = (*self._errors, ValueError)
        # Argon2 allocates its blocks in multiples of 4 x parallelism KiB, rounding down.
        _release_hash_buffers((memory_cost - 4 * parallelism) * 1024)

    def encode(self, password: bytes) -> str:
        """Return ``argon2$argon2id$v=19$m=...,t=...,p=...$salt$hash``."""
        return self.algorithm + self._hasher.hash(password)

    def verify(self, password: bytes, encoded: str) -> bool:
        """Return whether ``password`` matches the Argon2 hash ``encoded``."""
        algorithm, _, rest = encoded.partition("$")
        if algorithm != self.algorithm or not rest:
            return False
        try:
            return bool(self._hasher.verify("$" + rest, password))
        except self._errors:
            return False

    def needs_update(self, encoded: str) -> bool:
        """Return whether ``encoded`` uses another Argon2 variant or other parameters."""
        _, _, rest = encoded.partition("$")
        try:
            return bool(self._hasher.check_needs_rehash("$" + rest))
        except self._rehash_errors:
            return True

    def __repr__(self) -> str:
        return (
            f"Argon2PasswordHasher(time_cost={self.time_cost!r}, "
            f"memory_cost={self.memory_cost!r}, parallelism={self.parallelism!r})"
        )


class PBKDF2PasswordHasher(BasePasswordHasher):
    """PBKDF2-HMAC-SHA256 from the standard library (FIPS-approved, no dependency).

    Args:
        iterations: Rounds of HMAC; 1,500,000 is Django 6.1's value.
    """

    algorithm = "pbkdf2_sha256"
    _digest = "sha256"
    #: Salts shorter than this (in characters of [A-Za-z0-9], ~5.95 bits each) get upgraded.
    _salt_length = 22

    def __init__(self, *, iterations: int = 1_500_000) -> None:
        super().__init__()
        if not _positive_int(iterations):
            raise ImproperlyConfigured(
                f"PBKDF2PasswordHasher got iterations={iterations!r}. Pass a positive int."
            )
        self.iterations = iterations

    def _derive(self, password: bytes, salt: str, iterations: int) -> str:
        digest = hashlib.pbkdf2_hmac(self._digest, password, salt.encode("ascii"), iterations)
        return base64.b64encode(digest).decode("ascii")

    def encode(self, password: bytes) -> str:
        """Return ``pbkdf2_sha256$<iterations>$<salt>$<base64 hash>``."""
        salt = "".join(secrets.choice(_SALT_CHARS) for _ in range(self._salt_length))
        derived = self._derive(password, salt, self.iterations)
        return f"{self.algorithm}${self.iterations}${salt}${derived}"

    def _split(self, encoded: str) -> tuple[int, str, str] | None:
        parts = encoded.split("$")
        if len(parts) != 4 or parts[0] != self.algorithm or not parts[1].isdigit():
            return None
        iterations = int(parts[1])
        if iterations < 1 or not parts[2].isascii():
            return None
        return iterations, parts[2], parts[3]

    def verify(self, password: bytes, encoded: str) -> bool:
        """Return whether ``password`` matches the PBKDF2 hash ``encoded``."""
        parts = self._split(encoded)
        if parts is None:
            return False
        iterations, salt, expected = parts
        actual = self._derive(password, salt, iterations)
        return hmac.compare_digest(actual.encode("ascii"), expected.encode("ascii", "replace"))

    def needs_update(self, encoded: str) -> bool:
        """Return whether ``encoded`` has another iteration count or a short salt."""
        parts = self._split(encoded)
        return parts is None or parts[0] != self.iterations or len(parts[1]) < self._salt_length

    def __repr__(self) -> str:
        return f"PBKDF2PasswordHasher(iterations={self.iterations!r})"


# ------------------------------------------------------------------------ configuration

_hashers: tuple[BasePasswordHasher, ...] | None = None
_executor: concurrent.futures.ThreadPoolExecutor | None = None
_workers: int | None = None
_lock = threading.Lock()


def _default_hashers() -> tuple[BasePasswordHasher, ...]:
    try:
        argon = Argon2PasswordHasher()
    except MissingDependencyError:  # pragma: no cover - argon2-cffi is a dependency
        return (PBKDF2PasswordHasher(),)
    return (argon, PBKDF2PasswordHasher())


def get_hashers() -> tuple[BasePasswordHasher, ...]:
    """Return the configured hashers; the first one hashes new passwords."""
    global _hashers
    if _hashers is None:
        with _lock:
            if _hashers is None:
                _hashers = _default_hashers()
    return _hashers


def set_hashers(hashers: Iterable[BasePasswordHasher] | None) -> None:
    """Configure the hashers, preferred first; None restores the defaults.

    The default is ``(Argon2PasswordHasher(), PBKDF2PasswordHasher())``. For
    a FIPS deployment, put :class:`PBKDF2PasswordHasher` first: existing
    Argon2 hashes still verify and are re-hashed with PBKDF2 at the next login.

    Raises:
        ImproperlyConfigured: For an empty list, a non-hasher or two hashers
            with the same algorithm.
    """
    global _hashers
    if hashers is None:
        _hashers = None
        return
    chosen = tuple(hashers)
    if not chosen or not all(isinstance(h, BasePasswordHasher) for h in chosen):
        raise ImproperlyConfigured(
            f"set_hashers() got {chosen!r}. Pass one or more BasePasswordHasher instances, "
            "for example [Argon2PasswordHasher(), PBKDF2PasswordHasher()]."
        )
    algorithms = [h.algorithm for h in chosen]
    if len(set(algorithms)) != len(algorithms):
        raise ImproperlyConfigured(
            f"set_hashers() got two hashers for one algorithm: {algorithms!r}. Keep one of each."
        )
    _hashers = chosen


def set_hashing_workers(workers: int | None) -> None:
    """Set how many hashes this process may run at once (None: the default).

    Each running Argon2 hash holds ``memory_cost`` KiB, so this bounds memory
    too. Hashes beyond it wait in a queue. The default gives the machine one
    hash per CPU core in all: the cores divided by ``WEB_CONCURRENCY``, the
    number of server processes (``covet run --workers N`` sets it for its
    workers; uvicorn and gunicorn read it as their default worker count), and
    at least one. Without the division, eight workers on eight cores could
    run 64 hashes at once, 1.2 GiB of Argon2 buffers, for no more throughput.

    Raises:
        ImproperlyConfigured: For a count below 1.
    """
    global _executor, _workers
    if workers is not None and not _positive_int(workers):
        raise ImproperlyConfigured(
            f"set_hashing_workers() got {workers!r}. Pass a positive int, or None for the default."
        )
    with _lock:
        old, _executor, _workers = _executor, None, workers
    if old is not None:
        old.shutdown(wait=False)


def default_hashing_workers() -> int:
    """Return the default hashing pool size: CPU cores / ``WEB_CONCURRENCY``, at least 1.

    A ``WEB_CONCURRENCY`` that is not a positive integer counts as 1.
    """
    cores = os.cpu_count() or 1
    try:
        processes = int(os.environ.get("WEB_CONCURRENCY", "1"))
    except ValueError:
        processes = 1
    return max(1, cores // max(1, processes))


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                workers = _workers or default_hashing_workers()
                _executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=workers, thread_name_prefix="covet-password-hash"
                )
    return _executor


async def _off_loop(func: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(_pool(), func, *args)


def identify_hasher(encoded: str) -> BasePasswordHasher:
    """Return the configured hasher that made ``encoded``.

    Raises:
        ValueError: If no configured hasher has that algorithm.
    """
    algorithm = encoded.partition("$")[0]
    for hasher in get_hashers():
        if hasher.algorithm == algorithm:
            return hasher
    raise ValueError(
        f"Unknown password hash algorithm {algorithm!r}. Configure its hasher with set_hashers()."
    )


def is_password_usable(encoded: str | None) -> bool:
    """Return whether ``encoded`` can ever match a password (it is a real hash)."""
    return bool(encoded) and not str(encoded).startswith(UNUSABLE_PASSWORD_PREFIX)


def make_unusable_password() -> str:
    """Return a value that no password matches, unique per call (for accounts without one)."""
    return UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30)


def needs_rehash(encoded: str) -> bool:
    """Return whether ``encoded`` should be re-hashed with the preferred hasher and parameters."""
    if not is_password_usable(encoded):
        return False
    preferred = get_hashers()[0]
    if encoded.partition("$")[0] != preferred.algorithm:
        return True
    return preferred.needs_update(encoded)


async def hash_password(password: str, *, hasher: BasePasswordHasher | None = None) -> str:
    """Hash ``password`` with the preferred hasher (or ``hasher``), off the event loop.

    Returns:
        The encoded hash, salted: hashing one password twice gives two hashes.

    Raises:
        PasswordTooLongError: If the password is over :data:`MAX_PASSWORD_BYTES`.
        TypeError: If ``password`` is not a str.
    """
    raw = _encode_password(password)
    chosen = hasher or get_hashers()[0]
    result: str = await _off_loop(chosen.encode, raw)
    return result


def _check(raw: bytes | None, encoded: str | None) -> tuple[bool, bool]:
    preferred = get_hashers()[0]
    if raw is None:
        return False, False
    if encoded is None or not is_password_usable(encoded):
        preferred.dummy_verify(raw)
        return False, False
    try:
        hasher = identify_hasher(encoded)
    except ValueError:
        preferred.dummy_verify(raw)
        return False, False
    if not hasher.verify(raw, encoded):
        return False, False
    upgrade = hasher is not preferred or hasher.needs_update(encoded)
    return True, upgrade


async def check_password(password: str, encoded: str | None) -> tuple[bool, bool]:
    """Check ``password`` against ``encoded`` off the event loop.

    When ``encoded`` is None or unusable (an unknown user, an account without
    a password), a dummy hash is verified instead, so the answer takes as
    long as a real check.

    Returns:
        ``(matches, should_rehash)``: ``should_rehash`` is true when the
        password matched a hash made by another algorithm or with other
        parameters than the preferred hasher's.

    Raises:
        TypeError: If ``password`` is not a str.
    """
    try:
        raw: bytes | None = _encode_password(password)
    except PasswordTooLongError:
        raw = None  # never hashed: a refused length says nothing about the account
    result: tuple[bool, bool] = await _off_loop(_check, raw, encoded)
    return result


async def verify_password(password: str, encoded: str | None) -> bool:
    """Return whether ``password`` matches ``encoded``, checked off the event loop.

    A password over :data:`MAX_PASSWORD_BYTES`, an unknown algorithm or an
    unusable hash never matches.

    Raises:
        TypeError: If ``password`` is not a str.
    """
    matches, _ = await check_password(password, encoded)
    return matches
