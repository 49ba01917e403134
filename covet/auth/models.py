"""The user model base class and the anonymous user.

A project defines its user table by subclassing :class:`AbstractUser`::

    class User(AbstractUser):
        class Meta:
            table = "users"

Users log in with their email address by default. To log in with a
username instead, add the field and name it in ``USERNAME_FIELD``::

    class User(AbstractUser):
        USERNAME_FIELD = "username"
        username = fields.CharField(max_length=150, unique=True)

Permissions are deliberately simple: ``permissions`` is a JSON list of
strings such as ``"posts.edit"``; :meth:`AbstractUser.has_perm` checks it, and
superusers have every permission.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from typing import TYPE_CHECKING, Any, ClassVar, Self

from covet.auth.hashers import (
    check_password,
    hash_password,
    is_password_usable,
    make_unusable_password,
)
from covet.db import Model, fields

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ("AbstractUser", "AnonymousUser", "session_auth_hash")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def session_auth_hash(password: str, secret_key: str | None = None) -> str:
    """Return the value a session keeps to notice that the password changed.

    It is an HMAC of the stored password hash: a new password (or a re-hash)
    changes it, and it reveals nothing about the hash itself.

    Args:
        password: The encoded password hash stored for the user.
        secret_key: The application secret; without it a fixed key is used.
    """
    key = hashlib.sha256(b"covet.auth.session-auth-hash\x00" + (secret_key or "").encode()).digest()
    return hmac.new(key, password.encode("utf-8"), hashlib.sha256).hexdigest()


class AbstractUser(Model):
    """The fields and behaviour of a user account; subclass it to make the users table.

    Attributes:
        USERNAME_FIELD: The field users log in with (``"email"`` by default).
        email: The email address, unique (stored as given to ``create_user()``,
            which lower-cases it).
        password: The encoded password hash (never the password).
        is_active: Inactive users cannot log in, and their sessions and tokens
            stop working.
        is_staff: Free for the project to use (for example: may use the admin pages).
        is_superuser: Has every permission.
        permissions: A list of permission names, such as ``["posts.edit"]``.
        date_joined: When the account was created.
        last_login: When the user last logged in (None if never).
    """

    USERNAME_FIELD: ClassVar[str] = "email"

    email = fields.CharField(max_length=254, unique=True)
    password = fields.CharField(max_length=255, default=make_unusable_password)
    is_active = fields.BooleanField(default=True)
    is_staff = fields.BooleanField(default=False)
    is_superuser = fields.BooleanField(default=False)
    permissions = fields.JSONField(default=list)
    date_joined = fields.DateTimeField(default=_now)
    last_login = fields.DateTimeField(null=True)

    class Meta:
        """Abstract: a project's subclass makes the table."""

        abstract = True

    # -- identity -------------------------------------------------------------------------

    @property
    def is_authenticated(self) -> bool:
        """Return True: a user object is a logged-in user (see :class:`AnonymousUser`)."""
        return True

    @property
    def is_anonymous(self) -> bool:
        """Return False (see :class:`AnonymousUser`)."""
        return False

    def get_username(self) -> str:
        """Return the value of ``USERNAME_FIELD``."""
        return str(getattr(self, self.USERNAME_FIELD))

    @classmethod
    def normalize_username(cls, value: str) -> str:
        """Return the canonical form of a login name: stripped, and lower-cased for emails.

        Lower-casing the whole address (not only the domain) is what users
        expect: ``Ann@Example.com`` and ``ann@example.com`` are one account.
        """
        value = value.strip()
        return value.lower() if cls.USERNAME_FIELD == "email" else value

    @classmethod
    async def create_user(cls, *, password: str | None = None, **values: Any) -> Self:
        """Create and save a user, normalising the login name and hashing ``password``.

        Args:
            password: The password; None leaves the account without a usable one.
            values: The other fields, for example ``email="ann@example.com"``.

        Returns:
            The saved user.

        Raises:
            PasswordTooLongError: If the password is over 4096 bytes.
            IntegrityError: If the login name is taken.
            ValidationError: If a field value is invalid.
        """
        for name in {cls.USERNAME_FIELD, "email"}:
            value = values.get(name)
            if isinstance(value, str):
                value = cls.normalize_username(value) if name == cls.USERNAME_FIELD else value
                values[name] = value.strip().lower() if name == "email" else value
        user = cls(**values)
        await user.set_password(password)
        await user.save(force_insert=True)
        return user

    # -- password -------------------------------------------------------------------------

    async def set_password(self, raw_password: str | None) -> None:
        """Hash ``raw_password`` (off the event loop) into ``password``; None makes it unusable.

        The user is not saved: call ``await user.save()`` afterwards. Check
        the password against a policy first with
        :func:`~covet.auth.passwords.validate_password`.

        Raises:
            PasswordTooLongError: If the password is over 4096 bytes.
        """
        if raw_password is None:
            self.password = make_unusable_password()
        else:
            self.password = await hash_password(raw_password)

    def set_unusable_password(self) -> None:
        """Make sure no password logs this user in (for single sign-on accounts)."""
        self.password = make_unusable_password()

    def has_usable_password(self) -> bool:
        """Return whether some password can log this user in."""
        return is_password_usable(self.password)

    async def check_password(self, raw_password: str) -> bool:
        """Return whether ``raw_password`` is this user's password (checked off the loop).

        When it matches a hash made by an older algorithm or with older
        parameters, the password is re-hashed with the current ones and saved
        (only the ``password`` column), so hashes upgrade as users log in.
        """
        matches, upgrade = await check_password(raw_password, self.password)
        if matches and upgrade and self.pk is not None:
            self.password = await hash_password(raw_password)
            await self.save(update_fields=["password"])
        return matches

    def get_session_auth_hash(self, secret_key: str | None = None) -> str:
        """Return the HMAC of the password hash that logged-in sessions must match."""
        return session_auth_hash(self.password, secret_key)

    # -- permissions ----------------------------------------------------------------------

    def get_permissions(self) -> frozenset[str]:
        """Return the permission names granted to this user."""
        value = self.permissions
        if not isinstance(value, list | tuple | set | frozenset):
            return frozenset()
        return frozenset(str(item) for item in value)

    def has_perm(self, perm: str) -> bool:
        """Return whether the user holds ``perm``; active superusers hold them all."""
        if not self.is_active:
            return False
        return self.is_superuser or perm in self.get_permissions()

    def has_perms(self, perms: Iterable[str]) -> bool:
        """Return whether the user holds every permission in ``perms``."""
        return all(self.has_perm(perm) for perm in perms)

    def __str__(self) -> str:
        return self.get_username()


class AnonymousUser:
    """The user of a request nobody is logged in to: not authenticated, no permissions."""

    pk: None = None
    id: None = None
    is_active = False
    is_staff = False
    is_superuser = False

    @property
    def is_authenticated(self) -> bool:
        """Return False."""
        return False

    @property
    def is_anonymous(self) -> bool:
        """Return True."""
        return True

    def get_username(self) -> str:
        """Return an empty string."""
        return ""

    def get_permissions(self) -> frozenset[str]:
        """Return no permissions."""
        return frozenset()

    def has_perm(self, perm: str) -> bool:
        """Return False: anonymous users hold no permission."""
        return False

    def has_perms(self, perms: Iterable[str]) -> bool:
        """Return False unless ``perms`` is empty."""
        return not list(perms)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AnonymousUser)

    def __hash__(self) -> int:
        return hash(AnonymousUser)

    def __str__(self) -> str:
        return "AnonymousUser"

    def __repr__(self) -> str:
        return "AnonymousUser()"
