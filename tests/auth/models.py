"""Models for the auth tests; table names are unique per test run."""

from __future__ import annotations

import secrets

from covet.auth import AbstractAPIToken, AbstractUser
from covet.db import CASCADE, fields

RUN = secrets.token_hex(3)


class AuthUser(AbstractUser):
    first_name = fields.CharField(max_length=50, default="")

    class Meta:
        table = f"auth_users_{RUN}"


class NamedUser(AbstractUser):
    USERNAME_FIELD = "username"
    username = fields.CharField(max_length=150, unique=True)

    class Meta:
        table = f"auth_named_users_{RUN}"


class APIToken(AbstractAPIToken):
    user = fields.ForeignKey(AuthUser, related_name="api_tokens", on_delete=CASCADE)

    class Meta:
        table = f"auth_tokens_{RUN}"
