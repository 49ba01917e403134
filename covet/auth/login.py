"""Logging in and out: ``authenticate``, ``login``, ``logout`` and password changes.

A typical login handler::

    @app.post("/login")
    async def do_login(request):
        form = await request.form()
        user = await authenticate(request, email=form.get("email", ""),
                                  password=form.get("password", ""))
        if user is None:
            return HTMLResponse("Wrong email or password.", status_code=400)
        await login(request, user)
        return RedirectResponse(safe_redirect_url(request, request.query_params.get("next")),
                                status_code=303)

:func:`authenticate` counts attempts per client IP and login name (5 a minute
by default) and answers ``429`` with ``Retry-After`` beyond that. It takes as
long for an unknown user as for a wrong password. :func:`login` gives the
session a new id (so an id planted before login is useless), rotates the
CSRF token, and records the user and a hash of their password hash: when the
password changes, every other session of that user stops being logged in.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import time
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from covet.auth.hashers import check_password
from covet.auth.models import AbstractUser, AnonymousUser
from covet.exceptions import HTTPException, ImproperlyConfigured
from covet.ratelimit import RateLimitBackend, RateLimiter, key_by_ip
from covet.sessions.stores import SESSION_USER_KEY, Session

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from covet.requests import HTTPConnection

__all__ = (
    "SESSION_HASH_KEY",
    "SESSION_USER_KEY",
    "AuthConfig",
    "LoginThrottle",
    "authenticate",
    "change_password",
    "get_auth_config",
    "login",
    "logout",
    "update_session_auth_hash",
)

U = TypeVar("U", bound=AbstractUser)

#: The session key holding :meth:`AbstractUser.get_session_auth_hash` at login.
SESSION_HASH_KEY = "_auth_user_hash"
_SCOPE_KEY = "covet.auth"
# Longer login names cannot exist (emails are at most 254 characters): skip the query.
_MAX_LOGIN_NAME_LENGTH = 1024


class LoginThrottle:
    """Limit login attempts per client IP address and login name (ASVS 6.3.1).

    Every attempt counts, successful or not, and is counted before the
    password is checked, so concurrent guesses cannot slip past the limit.
    Beyond the limit :meth:`check` raises ``HTTPException(429)`` with
    ``Retry-After``.

    The default backend keeps counts in this process: with several workers,
    pass ``backend=RedisBackend(...)`` (or a database backend) so all workers
    share the count.

    Args:
        rate: Attempts allowed, for example ``"5/minute"`` (the default).
        backend: Where counts live (default: this process's memory).
        trusted_proxies: Proxies whose ``X-Forwarded-For`` is believed (see
            :func:`covet.ratelimit.client_ip`).
        clock: Returns the current Unix time; inject a fake one in tests.
    """

    def __init__(
        self,
        rate: str = "5/minute",
        *,
        backend: RateLimitBackend | None = None,
        trusted_proxies: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limiter = RateLimiter(rate, algorithm="sliding-window", backend=backend, clock=clock)
        self.trusted_proxies = tuple(trusted_proxies)
        self._client_key = key_by_ip(trusted_proxies=self.trusted_proxies)  # validates them

    def key(self, connection: HTTPConnection, login_name: str) -> str:
        """Return the counter key for this client and login name (the name is hashed)."""
        name = hashlib.sha256(login_name.strip().casefold().encode("utf-8")).hexdigest()[:32]
        return f"covet.login:{self._client_key(connection)}|{name}"

    async def check(self, connection: HTTPConnection, login_name: str) -> None:
        """Count one attempt; refuse it beyond the rate.

        Raises:
            HTTPException: ``429 Too Many Requests`` with ``Retry-After``.
        """
        result = await self.limiter.hit(self.key(connection, login_name))
        if not result.allowed:
            headers = result.headers()
            raise HTTPException(
                429,
                f"Too many login attempts. Try again in {headers['Retry-After']} seconds.",
                headers={"Retry-After": headers["Retry-After"]},
            )


@dataclasses.dataclass(frozen=True, slots=True)
class AuthConfig:
    """What the authentication middleware tells the login functions, in ``scope["covet.auth"]``.

    Attributes:
        user_model: The project's user model.
        secret_key: Keys the session auth hash (None: a fixed key).
        throttle: The login throttle used by :func:`authenticate`.
        bearer: Whether bearer tokens are accepted (the 401 answer then says so).
    """

    user_model: type[AbstractUser]
    secret_key: str | None
    throttle: LoginThrottle | None
    bearer: bool = False


_default_throttle: LoginThrottle | None = None


def get_auth_config(connection: HTTPConnection) -> AuthConfig | None:
    """Return the configuration the authentication middleware put in the scope, if any."""
    config = connection.scope.get(_SCOPE_KEY)
    return config if isinstance(config, AuthConfig) else None


def _throttle_for(config: AuthConfig | None) -> LoginThrottle | None:
    global _default_throttle
    if config is not None:
        return config.throttle
    if _default_throttle is None:
        _default_throttle = LoginThrottle()
    return _default_throttle


def _session(connection: HTTPConnection, action: str) -> Session:
    session = connection.scope.get("session")
    if not isinstance(session, Session):
        raise ImproperlyConfigured(
            f"{action} needs SessionMiddleware, which is not installed. Add it with "
            "app.add_middleware(SessionMiddleware, secret_key=...) before AuthenticationMiddleware."
        )
    return session


def _session_pk(user: AbstractUser) -> Any:
    """Return the user's primary key as stored in the (JSON) session."""
    pk = user.pk
    if pk is None:
        raise ValueError(f"Cannot log in {user!r}: it has no primary key. Save it first.")
    return pk if isinstance(pk, int | str) else str(pk)


def _rotate_csrf(connection: HTTPConnection) -> None:
    if "covet.csrf" in connection.scope:
        from covet.middleware.csrf import rotate_csrf_token  # optional layer: import on use

        rotate_csrf_token(connection)


@overload
async def authenticate(
    connection: HTTPConnection,
    *,
    password: str,
    username: str | None = None,
    email: str | None = None,
    user_model: type[U],
    throttle: LoginThrottle | Literal[False] | None = None,
) -> U | None: ...
@overload
async def authenticate(
    connection: HTTPConnection,
    *,
    password: str,
    username: str | None = None,
    email: str | None = None,
    user_model: None = None,
    throttle: LoginThrottle | Literal[False] | None = None,
) -> AbstractUser | None: ...
async def authenticate(
    connection: HTTPConnection,
    *,
    password: str,
    username: str | None = None,
    email: str | None = None,
    user_model: type[AbstractUser] | None = None,
    throttle: LoginThrottle | Literal[False] | None = None,
) -> AbstractUser | None:
    """Return the active user with this login name and password, or None.

    Pass the login name as ``email=`` or ``username=`` (either is looked up in
    the model's ``USERNAME_FIELD``). An unknown user costs as much time as a
    wrong password (a dummy hash is checked). A correct password stored with
    old hashing parameters is re-hashed. Inactive users get None.

    Args:
        connection: The request (its client IP counts towards the throttle).
        password: The password typed.
        username: The login name, or use ``email``.
        email: The login name, or use ``username``.
        user_model: The user model (default: the middleware's).
        throttle: The login throttle (default: the middleware's, else a
            5/minute in-process one); False disables throttling for this call.

    Returns:
        The user, or None for wrong credentials.

    Raises:
        HTTPException: 429 when the throttle refuses the attempt.
        ImproperlyConfigured: Without ``user_model`` and without the middleware.
        TypeError: Unless exactly one of ``username`` and ``email`` is given.
    """
    if (username is None) == (email is None):
        raise TypeError(
            f"authenticate() needs exactly one of username= and email=, got username={username!r} "
            f"and email={email!r}."
        )
    name = username if username is not None else email
    assert name is not None  # noqa: S101 - checked just above
    config = get_auth_config(connection)
    model: type[Any] | None = user_model or (config.user_model if config else None)
    if model is None:
        raise ImproperlyConfigured(
            "authenticate() does not know the user model. Pass user_model=User, or install "
            "AuthenticationMiddleware(user_model=User)."
        )
    limiter = None if throttle is False else throttle or _throttle_for(config)
    if limiter is not None:
        await limiter.check(connection, str(name))
    user = None
    # Typed as str, but handlers pass request data through: a JSON number or list
    # must give a failed login, not a 500.
    given: tuple[object, object] = (name, password)
    if isinstance(given[0], str) and isinstance(given[1], str):
        normalized = model.normalize_username(name)
        if 0 < len(normalized) <= _MAX_LOGIN_NAME_LENGTH:
            user = await model.objects.filter(**{model.USERNAME_FIELD: normalized}).first()
    else:
        password = ""
    if user is None:
        await check_password(password, None)  # the same work as for a real account
        return None
    if not await user.check_password(password) or not user.is_active:
        return None
    result: AbstractUser = user
    return result


async def login(connection: HTTPConnection, user: AbstractUser) -> None:
    """Log ``user`` in on this session.

    The session gets a new id (its data is kept, or dropped when another user
    was logged in), the CSRF token is rotated when CSRF protection is
    installed, ``last_login`` is saved, and ``request.user`` becomes ``user``.

    Raises:
        ImproperlyConfigured: Without SessionMiddleware.
        ValueError: If the user has not been saved.
    """
    session = _session(connection, "login()")
    pk = _session_pk(user)
    config = get_auth_config(connection)
    secret = config.secret_key if config else None
    if session.get(SESSION_USER_KEY, pk) != pk:
        session.flush()
    else:
        session.cycle_key()
    session[SESSION_USER_KEY] = pk
    session[SESSION_HASH_KEY] = user.get_session_auth_hash(secret)
    _rotate_csrf(connection)
    user.last_login = datetime.datetime.now(datetime.UTC)
    await user.save(update_fields=["last_login"])
    connection.scope["user"] = user


async def logout(connection: HTTPConnection) -> None:
    """Log out: drop all session data, give the session a new id, and forget the user.

    Raises:
        ImproperlyConfigured: Without SessionMiddleware.
    """
    session = _session(connection, "logout()")
    session.flush()
    _rotate_csrf(connection)
    connection.scope["user"] = AnonymousUser()


def update_session_auth_hash(connection: HTTPConnection, user: AbstractUser) -> None:
    """Keep this session logged in after ``user``'s password changed (others end).

    Call it after saving a new password for the logged-in user. The session
    also gets a new id.

    Raises:
        ImproperlyConfigured: Without SessionMiddleware.
    """
    session = _session(connection, "update_session_auth_hash()")
    if user.pk is None or session.get(SESSION_USER_KEY) != _session_pk(user):
        return
    config = get_auth_config(connection)
    session.cycle_key()
    session[SESSION_HASH_KEY] = user.get_session_auth_hash(config.secret_key if config else None)


async def change_password(
    connection: HTTPConnection, user: AbstractUser, new_password: str
) -> None:
    """Set and save ``user``'s new password; this session stays logged in, others end.

    Validate the password first (:func:`~covet.auth.passwords.validate_password`).

    Raises:
        PasswordTooLongError: If the password is over 4096 bytes.
    """
    await user.set_password(new_password)
    await user.save(update_fields=["password"])
    if "session" in connection.scope:
        update_session_auth_hash(connection, user)
