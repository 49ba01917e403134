"""Authentication and authorization: users, password hashing, login, guards and tokens.

::

    from covet.auth import AbstractUser, AuthenticationMiddleware, authenticate, login

    class User(AbstractUser):
        class Meta:
            table = "users"

    app.add_middleware(SessionMiddleware, secret_key=SECRET_KEY, store=DatabaseStore())
    app.add_middleware(AuthenticationMiddleware, user_model=User, secret_key=SECRET_KEY)

See ``docs/auth.md`` for the whole flow.
"""

from __future__ import annotations

from covet.auth.decorators import login_required, requires, safe_redirect_url, wants_json
from covet.auth.hashers import (
    MAX_PASSWORD_BYTES,
    Argon2PasswordHasher,
    BasePasswordHasher,
    PasswordTooLongError,
    PBKDF2PasswordHasher,
    check_password,
    get_hashers,
    hash_password,
    is_password_usable,
    make_unusable_password,
    needs_rehash,
    set_hashers,
    set_hashing_workers,
    verify_password,
)
from covet.auth.login import (
    AuthConfig,
    LoginThrottle,
    authenticate,
    change_password,
    login,
    logout,
    update_session_auth_hash,
)
from covet.auth.middleware import (
    AuthBackend,
    AuthenticationMiddleware,
    AuthInfo,
    BearerTokenBackend,
    SessionBackend,
)
from covet.auth.models import AbstractUser, AnonymousUser
from covet.auth.passwords import (
    DEFAULT_POLICY,
    PasswordPolicy,
    WeakPasswordError,
    validate_password,
)
from covet.auth.tokens import AbstractAPIToken, PasswordResetTokenGenerator

__all__ = (
    "DEFAULT_POLICY",
    "MAX_PASSWORD_BYTES",
    "AbstractAPIToken",
    "AbstractUser",
    "AnonymousUser",
    "Argon2PasswordHasher",
    "AuthBackend",
    "AuthConfig",
    "AuthInfo",
    "AuthenticationMiddleware",
    "BasePasswordHasher",
    "BearerTokenBackend",
    "LoginThrottle",
    "PBKDF2PasswordHasher",
    "PasswordPolicy",
    "PasswordResetTokenGenerator",
    "PasswordTooLongError",
    "SessionBackend",
    "WeakPasswordError",
    "authenticate",
    "change_password",
    "check_password",
    "get_hashers",
    "hash_password",
    "is_password_usable",
    "login",
    "login_required",
    "logout",
    "make_unusable_password",
    "needs_rehash",
    "requires",
    "safe_redirect_url",
    "set_hashers",
    "set_hashing_workers",
    "update_session_auth_hash",
    "validate_password",
    "verify_password",
    "wants_json",
)
