from __future__ import annotations

import datetime

import pytest

from covet.auth import AbstractAPIToken, AuthenticationMiddleware, BearerTokenBackend
from covet.auth.tokens import hash_token
from covet.exceptions import ImproperlyConfigured
from tests.auth.conftest import client_for
from tests.auth.helpers import make_app, make_user
from tests.auth.models import APIToken, AuthUser

pytestmark = pytest.mark.usefixtures("db")


async def test_create_for_stores_only_the_hash():
    user = await make_user()
    token, record = await APIToken.create_for(user, name="ci")
    assert token.startswith("cvt_") and len(token) >= 40
    stored = await APIToken.objects.get(pk=record.pk)
    assert stored.token_hash == hash_token(token)
    assert token not in (stored.token_hash, stored.prefix, stored.name)
    assert token.startswith(stored.prefix) and len(stored.prefix) == 10
    assert stored.expires_at is None and stored.last_used_at is None
    assert str(stored) == f"{stored.prefix}... (ci)"
    second, _ = await APIToken.create_for(user)
    assert second != token


async def test_bearer_token_authenticates_requests():
    user = await make_user()
    token, record = await APIToken.create_for(user, name="cli")
    async with client_for(make_app()) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.json()["authenticated"] is True
        assert response.json()["user"] == "ann@example.com"
        assert response.json()["method"] == "bearer"
        response = await client.get("/me", headers={"Authorization": f"bearer   {token}  "})
        assert response.json()["authenticated"] is True
        for header in (f"Bearer {token}x", "Bearer cvt_unknown", f"Basic {token}", "Bearer", token):
            response = await client.get("/me", headers={"Authorization": header})
            assert response.json()["authenticated"] is False, header
    stored = await APIToken.objects.get(pk=record.pk)
    assert stored.last_used_at is not None


async def test_last_used_at_is_written_at_most_once_a_minute():
    user = await make_user()
    token, record = await APIToken.create_for(user)
    first = await APIToken.authenticate_token(token)
    assert first is not None and first.last_used_at is not None
    stamp = first.last_used_at
    second = await APIToken.authenticate_token(token)
    assert second is not None
    assert second.last_used_at == (await APIToken.objects.get(pk=record.pk)).last_used_at
    assert second.last_used_at is not None
    assert abs(second.last_used_at - stamp) < datetime.timedelta(seconds=1)
    assert second.user.pk == user.pk  # the user is loaded with the token


async def test_expired_tokens_and_inactive_users_are_refused():
    user = await make_user()
    token, record = await APIToken.create_for(user, expires_in=datetime.timedelta(hours=1))
    assert not record.is_expired
    assert await APIToken.authenticate_token(token) is not None
    await APIToken.objects.filter(pk=record.pk).update(
        expires_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    )
    assert await APIToken.authenticate_token(token) is None
    live, _ = await APIToken.create_for(user)
    user.is_active = False
    await user.save(update_fields=["is_active"])
    async with client_for(make_app()) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {live}"})
        assert response.json()["authenticated"] is False


async def test_deleting_a_token_revokes_it():
    user = await make_user()
    token, record = await APIToken.create_for(user)
    await record.delete()
    assert await APIToken.authenticate_token(token) is None


async def test_tokens_die_with_their_user():
    user = await make_user()
    token, _ = await APIToken.create_for(user)
    await user.delete()
    assert await APIToken.authenticate_token(token) is None


async def test_bearer_only_api_needs_no_session_middleware():
    from covet import Covet, Request

    app = Covet(allowed_hosts=["testserver"])
    app.add_middleware(
        AuthenticationMiddleware, user_model=AuthUser, backends=[BearerTokenBackend(APIToken)]
    )

    @app.get("/whoami")
    async def whoami(request: Request) -> str:
        return str(request.user)

    user = await make_user()
    token, _ = await APIToken.create_for(user)
    async with client_for(app) as client:
        assert (await client.get("/whoami")).text == "AnonymousUser"
        response = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        assert response.text == "ann@example.com"


async def _noop_app(scope: object, receive: object, send: object) -> None:
    return None


def test_token_model_and_middleware_are_validated():
    class NoUser(AbstractAPIToken):
        class Meta:
            abstract = True

    with pytest.raises(ImproperlyConfigured, match="foreign key to your user model"):
        BearerTokenBackend(NoUser)
    with pytest.raises(ImproperlyConfigured):
        BearerTokenBackend(AuthUser)  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured, match="user_model"):
        AuthenticationMiddleware(_noop_app, user_model=APIToken)  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured, match="secret_key"):
        AuthenticationMiddleware(_noop_app, user_model=AuthUser, secret_key="")
    with pytest.raises(ImproperlyConfigured, match="backend"):
        AuthenticationMiddleware(_noop_app, user_model=AuthUser, backends=[object()])  # type: ignore[list-item]
