from __future__ import annotations

import pytest

from covet import Covet, Request
from covet.auth import (
    AnonymousUser,
    AuthenticationMiddleware,
    BearerTokenBackend,
    SessionBackend,
)
from covet.auth.models import AbstractUser, session_auth_hash
from covet.exceptions import ImproperlyConfigured
from covet.testing import TestClient
from tests.auth.models import APIToken, AuthUser, NamedUser


def test_anonymous_user():
    anonymous = AnonymousUser()
    assert not anonymous.is_authenticated and anonymous.is_anonymous
    assert anonymous.pk is None
    assert anonymous.id is None
    assert not anonymous.is_active and not anonymous.is_staff and not anonymous.is_superuser
    assert not anonymous.has_perm("x") and not anonymous.has_perms(["x"])
    assert anonymous.has_perms([])
    assert anonymous.get_permissions() == frozenset()
    assert anonymous.get_username() == ""
    assert anonymous == AnonymousUser() and hash(anonymous) == hash(AnonymousUser())
    assert str(anonymous) == "AnonymousUser" and repr(anonymous) == "AnonymousUser()"


def test_permissions():
    user = AuthUser(email="a@example.com", permissions=["posts.view", "posts.edit"])
    assert user.is_authenticated and not user.is_anonymous
    assert user.has_perm("posts.edit") and not user.has_perm("posts.delete")
    assert user.has_perms(["posts.view", "posts.edit"])
    assert not user.has_perms(["posts.view", "posts.delete"])
    user.is_active = False
    assert not user.has_perm("posts.view")
    root = AuthUser(email="r@example.com", is_superuser=True)
    assert root.has_perm("anything")
    assert (
        AuthUser(email="w@example.com", permissions="posts.view").get_permissions() == frozenset()
    )


async def test_passwords_on_the_model():
    user = AuthUser(email="a@example.com")
    assert not user.has_usable_password()  # the default is unusable, and unique
    assert user.password != AuthUser(email="b@example.com").password
    await user.set_password("a fine password")
    assert user.has_usable_password()
    assert await user.check_password("a fine password")  # unsaved: no re-hash attempted
    user.set_unusable_password()
    assert not await user.check_password("a fine password")
    await user.set_password(None)
    assert not user.has_usable_password()


def test_usernames_and_session_auth_hash():
    assert AuthUser.normalize_username(" Ann@Example.COM ") == "ann@example.com"
    assert NamedUser.normalize_username(" Grace ") == "Grace"
    assert str(NamedUser(username="grace", email="g@example.com")) == "grace"
    user = AuthUser(email="a@example.com", password="argon2$x")
    assert user.get_session_auth_hash("k") == session_auth_hash("argon2$x", "k")
    assert user.get_session_auth_hash("k") != user.get_session_auth_hash("other key")
    assert user.get_session_auth_hash() != user.get_session_auth_hash("k")
    assert "argon2" not in user.get_session_auth_hash("k")


async def _app(scope: object, receive: object, send: object) -> None:
    return None


def test_middleware_options_are_validated():
    with pytest.raises(ImproperlyConfigured, match="abstract"):
        AuthenticationMiddleware(_app, user_model=AbstractUser)
    with pytest.raises(ImproperlyConfigured, match="login_throttle"):
        AuthenticationMiddleware(_app, user_model=AuthUser, login_throttle="5/minute")  # type: ignore[arg-type]
    middleware = AuthenticationMiddleware(_app, user_model=AuthUser, login_throttle=False)
    assert middleware.config.throttle is None and not middleware.config.bearer
    assert [type(b) for b in middleware.backends] == [SessionBackend]
    middleware = AuthenticationMiddleware(_app, user_model=AuthUser, token_model=APIToken)
    assert [type(b) for b in middleware.backends] == [SessionBackend, BearerTokenBackend]
    assert middleware.config.bearer and middleware.config.throttle is not None


def test_session_backend_needs_session_middleware():
    app = Covet(allowed_hosts=["testserver"])
    app.add_middleware(AuthenticationMiddleware, user_model=AuthUser)

    @app.get("/")
    async def home(request: Request) -> str:
        return str(request.user)

    with pytest.raises(ImproperlyConfigured, match="SessionMiddleware"):
        TestClient(app).get("/")


def test_lifespan_passes_through():
    app = Covet(allowed_hosts=["testserver"])
    app.add_middleware(AuthenticationMiddleware, user_model=AuthUser, backends=[])

    @app.get("/")
    async def home(request: Request) -> str:
        return str(request.user)

    with TestClient(app) as client:
        assert client.get("/").text == "AnonymousUser"
