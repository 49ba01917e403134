r"""Cache keys: Django's ``KEY_PREFIX:VERSION:key`` format, and the checks every key passes.

A key as stored is ``make_key(key, key_prefix, version)``: ``"site:1:user:42"``
for ``key_prefix="site"`` and the default version 1, ``":1:user:42"`` without a
prefix. Bumping ``version`` (per call, or for the whole cache) makes every old
entry unreachable at once, which is how a deploy that changes the shape of
cached values avoids reading old ones.

The stored key must be at most :data:`MAX_KEY_LENGTH` characters (250, the
memcached limit Django also checks) and must not hold control characters
(``\x00``-``\x1f``, ``\x7f``-``\x9f``): they break log lines and the Redis
protocol's inline form, and usually mean a value was pasted into a key by
mistake. Both raise :class:`~covet.cache.InvalidCacheKeyError` naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from covet.cache.exceptions import InvalidCacheKeyError

__all__ = ("MAX_KEY_LENGTH", "KeyFunction", "make_key", "validate_key")

#: The longest stored key (prefix and version included), in characters.
MAX_KEY_LENGTH = 250

#: ``key_function(key, key_prefix, version) -> stored key``.
KeyFunction = Callable[[str, str, int], str]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def make_key(key: str, key_prefix: str, version: int) -> str:
    """Return the stored form of ``key``: ``f"{key_prefix}:{version}:{key}"`` (Django's)."""
    return f"{key_prefix}:{version}:{key}"


def validate_key(key: str) -> None:
    """Check a stored key (after prefix and version were added).

    Raises:
        InvalidCacheKeyError: If it is longer than :data:`MAX_KEY_LENGTH` or
            holds a control character.
    """
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidCacheKeyError(
            f"Cache key {key[:60]!r}... is {len(key)} characters long, over the limit of "
            f"{MAX_KEY_LENGTH} (prefix and version included). Use a shorter key, or hash the "
            "long part (hashlib.sha256(text.encode()).hexdigest())."
        )
    found = _CONTROL.search(key)
    if found is not None:
        raise InvalidCacheKeyError(
            f"Cache key {key!r} holds the control character {found.group()!r} at position "
            f"{found.start()}. Remove it; keys are printable text."
        )


def check_user_key(key: object) -> str:
    """Return ``key`` if it is a string, else raise :class:`InvalidCacheKeyError`."""
    if not isinstance(key, str):
        raise InvalidCacheKeyError(
            f"Cache keys are strings, got {key!r} ({type(key).__name__}). "
            "Convert it first, for example f'user:{user_id}'."
        )
    return key
