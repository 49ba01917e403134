"""API bearer tokens and password-reset tokens.

**API tokens.** A project makes a token table by subclassing
:class:`AbstractAPIToken` and adding the foreign key to its user model::

    class APIToken(AbstractAPIToken):
        user = fields.ForeignKey(User, related_name="api_tokens", on_delete=CASCADE)

        class Meta:
            table = "api_tokens"

    token, record = await APIToken.create_for(user, name="deploy script")

``token`` is shown to the user once; only its SHA-256 hash is stored, so a
leaked database does not leak usable tokens. A request authenticates with
``Authorization: Bearer <token>``. The lookup is by hash through a unique
index: with 256 random bits per token there is nothing to learn from timing,
so no constant-time comparison is needed.

**Password-reset tokens.** :class:`PasswordResetTokenGenerator` makes a
token that works for one hour (by default) and stops working as soon as the
password changes or the user logs in. No table is needed: the token is an HMAC
of the user's id, password hash, last login and the time it was made.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
import time
from typing import TYPE_CHECKING, Any, ClassVar, Self

from covet.db import Model, ObjectDoesNotExist, fields
from covet.db.fields import ForeignKey
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ("TOKEN_PREFIX", "AbstractAPIToken", "PasswordResetTokenGenerator", "hash_token")

#: API tokens start with this, so secret scanners and people can recognise them.
TOKEN_PREFIX = "cvt_"  # noqa: S105 - a public prefix, not a secret
_MAX_TOKEN_LENGTH = 256


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest stored for an API token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AbstractAPIToken(Model):
    """An API token for a user, stored as a hash; subclass it and add ``user``.

    Attributes:
        name: What the token is for, shown in token lists.
        token_hash: SHA-256 of the token (the token itself is never stored).
        prefix: The first characters of the token, to tell tokens apart in lists.
        created_at: When the token was made.
        expires_at: When it stops working (None: never).
        last_used_at: When it last authenticated a request (updated at most
            once per ``LAST_USED_RESOLUTION`` seconds, to spare the database).
    """

    #: ``last_used_at`` is written at most this often, in seconds.
    LAST_USED_RESOLUTION: ClassVar[float] = 60.0

    user: Any
    user_id: Any

    name = fields.CharField(max_length=100, default="")
    token_hash = fields.CharField(max_length=64, unique=True)
    prefix = fields.CharField(max_length=16)
    created_at = fields.DateTimeField(default=_now)
    expires_at = fields.DateTimeField(null=True)
    last_used_at = fields.DateTimeField(null=True)

    class Meta:
        """Abstract: a project's subclass makes the table."""

        abstract = True

    @classmethod
    def check_model(cls) -> None:
        """Check that the model is concrete and has a ``user`` foreign key.

        Raises:
            ImproperlyConfigured: Naming what to add.
        """
        field = cls._meta.fields_map.get("user")
        if cls._meta.abstract or not isinstance(field, ForeignKey):
            raise ImproperlyConfigured(
                f"{cls.__name__} needs a foreign key to your user model: add "
                "user = fields.ForeignKey(User, on_delete=CASCADE) to a concrete subclass of "
                "AbstractAPIToken."
            )

    @classmethod
    async def create_for(
        cls,
        user: Model,
        *,
        name: str = "",
        expires_in: datetime.timedelta | None = None,
    ) -> tuple[str, Self]:
        """Create a token for ``user``; return the token (show it once) and the saved row.

        Args:
            user: The user the token acts as.
            name: What the token is for.
            expires_in: How long the token works (None: until deleted).

        Returns:
            ``(token, record)``: the token is not stored anywhere and cannot be
            recovered later.

        Raises:
            ImproperlyConfigured: If the model has no ``user`` foreign key.
        """
        cls.check_model()
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires_at = _now() + expires_in if expires_in is not None else None
        record = await cls.objects.create(
            user=user,
            name=name,
            token_hash=hash_token(token),
            prefix=token[: len(TOKEN_PREFIX) + 6],
            expires_at=expires_at,
        )
        return token, record

    @classmethod
    async def authenticate_token(cls, token: str) -> Self | None:
        """Return the live token record for ``token``, with its ``user`` loaded, or None.

        Expired and unknown tokens give None. ``last_used_at`` is updated.
        """
        if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN_LENGTH:
            return None
        try:
            # get() on the unique hash binds a remembered statement (as filter().first()
            # does from its second call, for about 8,000 instructions more).
            record = await cls.objects.select_related("user").get(token_hash=hash_token(token))
        except ObjectDoesNotExist:
            return None
        now = _now()
        expires: datetime.datetime | None = record.expires_at
        if expires is not None and expires <= now:
            return None
        last: datetime.datetime | None = record.last_used_at
        if last is None or (now - last).total_seconds() >= cls.LAST_USED_RESOLUTION:
            await cls.objects.filter(pk=record.pk).update(last_used_at=now)
            record.last_used_at = now
        return record

    @property
    def is_expired(self) -> bool:
        """Return whether the token has expired."""
        expires: datetime.datetime | None = self.expires_at
        return expires is not None and expires <= _now()

    def __str__(self) -> str:
        return f"{self.prefix}... ({self.name})" if self.name else f"{self.prefix}..."


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


class PasswordResetTokenGenerator:
    """Make and check password-reset tokens, like Django's.

    A token is ``<time in base 36>-<HMAC>``. The HMAC covers the user's
    primary key, password hash, last login and email, so the token stops
    working once the password is reset (single use), once the user logs in,
    or after ``timeout`` seconds.

    Args:
        secret_key: The app's secret key, or a list of keys, newest first
            (tokens signed by older keys keep working while you rotate).
        timeout: Seconds a token stays valid (default one hour).
        clock: Returns the current Unix time; inject a fake one in tests.

    Raises:
        ImproperlyConfigured: For an empty key or a non-positive timeout.
    """

    key_salt = "covet.auth.PasswordResetTokenGenerator"

    def __init__(
        self,
        secret_key: str | Sequence[str],
        *,
        timeout: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        keys: list[object] = [secret_key] if isinstance(secret_key, str) else list(secret_key)
        if not keys or not all(isinstance(key, str) and key for key in keys):
            raise ImproperlyConfigured(
                f"PasswordResetTokenGenerator got secret_key={secret_key!r}. Pass the app's "
                "secret key (a non-empty string), or a list of keys, newest first."
            )
        if not _positive_int(timeout):
            raise ImproperlyConfigured(
                f"PasswordResetTokenGenerator got timeout={timeout!r}. Pass seconds >= 1."
            )
        self._keys = [hashlib.sha256(f"{self.key_salt}\x00{key}".encode()).digest() for key in keys]
        self.timeout = timeout
        self.clock = clock

    @staticmethod
    def _state(user: Any) -> bytes:
        last_login = getattr(user, "last_login", None)
        # Microseconds dropped: some databases do not keep them, and the value
        # read back must sign the same as the value the token was made from.
        login = ""
        if last_login is not None:
            login = last_login.astimezone(datetime.UTC).replace(microsecond=0).isoformat()
        parts = (str(user.pk), str(user.password), login, str(getattr(user, "email", "")))
        return "\x00".join(parts).encode("utf-8")

    def _sign(self, key: bytes, user: Any, timestamp: int) -> str:
        message = self._state(user) + b"\x00" + str(timestamp).encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()[:40]

    def make_token(self, user: Any) -> str:
        """Return a reset token for ``user`` (a saved user with ``password`` and ``last_login``).

        Raises:
            ValueError: If the user has no primary key.
        """
        if user.pk is None:
            raise ValueError(f"Cannot make a reset token for unsaved user {user!r}. Save it first.")
        timestamp = int(self.clock())
        return f"{_base36(timestamp)}-{self._sign(self._keys[0], user, timestamp)}"

    def check_token(self, user: Any, token: str | None) -> bool:
        """Return whether ``token`` is a valid, unexpired reset token for ``user`` as it is now."""
        if user is None or user.pk is None or not isinstance(token, str) or len(token) > 64:
            return False
        stamp, sep, signature = token.partition("-")
        if not sep or not stamp or len(stamp) > 13 or not stamp.isalnum() or not stamp.isascii():
            return False
        try:
            timestamp = int(stamp, 36)
        except ValueError:
            return False
        age = self.clock() - timestamp
        if age > self.timeout or age < -60:  # a minute of clock skew between workers
            return False
        return any(
            hmac.compare_digest(self._sign(key, user, timestamp).encode(), signature.encode())
            for key in self._keys
        )
