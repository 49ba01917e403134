"""How values are turned into bytes for a backend, and back.

Every backend stores bytes. A value is encoded as:

- an ``int`` (not a ``bool``): its decimal digits, so Redis ``INCRBY`` (and the
  other backends' ``incr()``) work on it in place;
- ``bytes``: ``b"b"`` and the bytes, untouched (cached pages, images);
- anything else: the serializer's one-letter tag and its output, JSON
  (``b"j"``) by default.

**Why JSON and not pickle by default.** Whoever can write to the cache store
(a Redis reachable from a neighbouring service, a shared Redis database, the
cache table reached through a bug elsewhere) could plant a pickle, and
``pickle.loads`` runs code: every worker reading that key would execute it.
JSON decoding cannot run code. The price is JSON's types: dicts (string keys),
lists, strings, numbers, booleans and None round-trip; tuples come back as
lists, and dates, UUIDs and decimals as strings (covet's encoder writes them).

:class:`PickleSerializer` keeps Python types, and signs every value with
HMAC-SHA256 under a secret key: a value without a valid signature is never
unpickled (it reads as a miss and is logged). Use it only with a key the
cache store never sees, such as the project's ``SECRET_KEY``.

A value whose tag is not the configured serializer's (for example a pickle
found by a JSON cache) also reads as a miss: the cache never falls back to a
more dangerous format.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle
import struct
from typing import Any, Final, Protocol, runtime_checkable

from covet import _json
from covet.exceptions import ImproperlyConfigured

__all__ = ("MISSING", "Codec", "JSONSerializer", "PickleSerializer", "Serializer")

logger = logging.getLogger("covet.cache")


class _Missing:
    """The marker of "no value" (a stored ``None`` is a value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


#: Returned by :meth:`Codec.decode` for data that is absent or cannot be trusted.
MISSING: Final = _Missing()

_BYTES = b"b"[0]
_ENVELOPE = b"x"[0]
_INT_START = frozenset(b"-0123456789")
# The get_or_set envelope: tag, logical expiry (Unix time), recompute time (seconds).
_ENVELOPE_HEAD = struct.Struct("!cdd")


@runtime_checkable
class Serializer(Protocol):
    """Turns values other than ints and bytes into bytes and back.

    Attributes:
        tag: One ASCII letter (not ``b``, ``x`` or a digit) stored before the
            payload, so data written by another serializer is recognised.
    """

    tag: bytes

    def dumps(self, value: Any) -> bytes:
        """Return ``value`` as bytes; raise ``TypeError`` for what cannot be stored."""
        ...

    def loads(self, data: bytes) -> Any:
        """Return the value of ``data``; raise ``ValueError`` for data that is not trusted."""
        ...


class JSONSerializer:
    """JSON through covet's encoder (orjson when installed): the safe default."""

    tag = b"j"

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON."""
        return _json.dumps(value)

    def loads(self, data: bytes) -> Any:
        """Decode JSON ``data``."""
        return _json.loads(data)


class PickleSerializer:
    """Pickle, signed with HMAC-SHA256 so that only values this app wrote are unpickled.

    Args:
        key: The signing secret (for example ``SECRET_KEY``); at least 32
            characters, and never stored in the cache.
        protocol: The pickle protocol.

    Raises:
        ImproperlyConfigured: If ``key`` is missing or too short.
    """

    tag = b"p"
    _DIGEST = 32

    def __init__(self, key: str | bytes, *, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        raw = key.encode() if isinstance(key, str) else key
        if len(raw) < 32:
            raise ImproperlyConfigured(
                f"PickleSerializer needs a signing key of at least 32 characters, got "
                f"{len(raw)}. Pass key=SECRET_KEY (the cache must never hold it)."
            )
        # A key of its own, derived once, so the cache signature is never a session one.
        self._key = hashlib.sha256(b"covet.cache.pickle:" + raw).digest()
        self.protocol = protocol

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def dumps(self, value: Any) -> bytes:
        """Pickle ``value`` and put its signature first."""
        payload = pickle.dumps(value, protocol=self.protocol)
        return self._sign(payload) + payload

    def loads(self, data: bytes) -> Any:
        """Check the signature, then unpickle.

        Raises:
            ValueError: If the signature does not match (the data was not written
                with this key): nothing is unpickled.
        """
        signature, payload = data[: self._DIGEST], data[self._DIGEST :]
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise ValueError("The signature of a pickled cache value does not match.")
        return pickle.loads(payload)  # noqa: S301 - signed by us, checked above


class Codec:
    """Encode and decode cache values with one serializer (see the module docs).

    Args:
        serializer: The serializer for values other than ints and bytes.

    Raises:
        ImproperlyConfigured: If the serializer's tag collides with the built-in ones.
    """

    def __init__(self, serializer: Serializer) -> None:
        tag = getattr(serializer, "tag", b"")
        if (
            not isinstance(tag, bytes)
            or len(tag) != 1
            or tag[0] in _INT_START
            or tag[0] in (_BYTES, _ENVELOPE)
        ):
            raise ImproperlyConfigured(
                f"Serializer {serializer!r} has the tag {tag!r}. Give it a one-letter bytes "
                "tag other than b'b', b'x' and the digits, for example tag = b'm'."
            )
        self.serializer = serializer
        self._tag = tag[0]

    def encode(self, value: Any) -> bytes:
        """Return the stored form of ``value``.

        Raises:
            TypeError: If the serializer cannot encode it.
        """
        if type(value) is int:
            return str(value).encode("ascii")
        if isinstance(value, bytes | bytearray | memoryview):
            return b"b" + bytes(value)
        return self.serializer.tag + self.serializer.dumps(value)

    def decode(self, data: bytes, key: str) -> Any:
        """Return the value ``data`` holds, or :data:`MISSING` if it cannot be trusted.

        Untrusted or unreadable data (a bad signature, another serializer's
        tag, malformed JSON) is logged once per read as a warning naming the key.
        """
        if not data:
            return self._reject(key, "it is empty")
        first = data[0]
        if first in _INT_START:
            try:
                return int(data)
            except ValueError:
                return self._reject(key, "it is not a valid integer")
        if first == _BYTES:
            return data[1:]
        if first == _ENVELOPE:
            unwrapped = unwrap(data)
            if unwrapped is None:
                return self._reject(key, "its get_or_set() header is cut short")
            return self.decode(unwrapped[2], key)
        if first != self._tag:
            return self._reject(
                key, f"it was written by another serializer (tag {bytes([first])!r})"
            )
        try:
            return self.serializer.loads(data[1:])
        except (ValueError, TypeError, EOFError, pickle.UnpicklingError) as exc:
            return self._reject(key, f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _reject(key: str, reason: str) -> Any:
        logger.warning("Ignoring the cached value of %r: %s.", key, reason)
        return MISSING


def wrap(data: bytes, expires_at: float, delta: float) -> bytes:
    """Prefix ``data`` with get_or_set's early-expiration header."""
    return _ENVELOPE_HEAD.pack(b"x", expires_at, delta) + data


def unwrap(data: bytes) -> tuple[float, float, bytes] | None:
    """Return ``(expires_at, delta, data)`` of a wrapped value, or None if it is not one."""
    if len(data) < _ENVELOPE_HEAD.size or data[0] != _ENVELOPE:
        return None
    _, expires_at, delta = _ENVELOPE_HEAD.unpack_from(data)
    return expires_at, delta, data[_ENVELOPE_HEAD.size :]
