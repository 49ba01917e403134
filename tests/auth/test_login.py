from __future__ import annotations

import datetime
from typing import Any

import pytest

from covet.auth import (
    Argon2PasswordHasher,
    LoginThrottle,
    PBKDF2PasswordHasher,
    authenticate,
    get_hashers,
    login,
    logout,
    set_hashers,
)
from covet.auth.login import SESSION_HASH_KEY, SESSION_USER_KEY
from covet.exceptions import HTTPException, ImproperlyConfigured
from covet.requests import Request
from covet.sessions import MemoryStore
from tests.auth.conftest import CHEAP_ARGON2, client_for
from tests.auth.helpers import PASSWORD, make_app, make_user
from tests.auth.models import AuthUser, NamedUser

pytestmark = pytest.mark.usefixtures("db")

CREDENTIALS = {"email": "ann@example.com", "password": PASSWORD}


def _request(client: str = "10.0.0.1") -> Request:
    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "client": (client, 1)}
    return Request(scope)


async def test_login_sets_user_and_last_login():
    user = await make_user()
    assert user.last_login is None
    async with client_for(make_app()) as client:
        assert (await client.get("/me")).json()["authenticated"] is False
        response = await client.post("/login", json=CREDENTIALS)
        assert response.json() == {"ok": True}
        me = (await client.get("/me")).json()
    assert me["authenticated"] is True
    assert me["user"] == "ann@example.com"
    assert me["method"] == "session"
    assert str(me["session"][SESSION_USER_KEY]) == str(user.pk)
    last_login = (await AuthUser.objects.get(pk=user.pk)).last_login
    assert last_login is not None
    assert abs(datetime.datetime.now(datetime.UTC) - last_login) < datetime.timedelta(minutes=1)


async def test_wrong_password_unknown_user_and_inactive_user_fail():
    await make_user()
    await make_user("off@example.com", is_active=False)
    async with client_for(make_app()) as client:
        for email, password in [
            ("ann@example.com", "wrong password!"),
            ("nobody@example.com", PASSWORD),
            ("off@example.com", PASSWORD),
        ]:
            response = await client.post("/login", json={"email": email, "password": password})
            assert response.status_code == 400
        assert (await client.get("/me")).json()["authenticated"] is False


async def test_email_is_matched_case_insensitively():
    await make_user("Ann@Example.COM ")
    assert await AuthUser.objects.filter(email="ann@example.com").exists()
    user = await authenticate(
        _request(),
        email=" ANN@example.com",
        password=PASSWORD,
        user_model=AuthUser,
        throttle=LoginThrottle("100/minute"),
    )
    assert user is not None and user.email == "ann@example.com"


async def test_username_login():
    await NamedUser.create_user(username="grace", email="g@example.com", password=PASSWORD)
    found = await authenticate(
        _request(),
        username="grace",
        password=PASSWORD,
        user_model=NamedUser,
        throttle=LoginThrottle("100/minute"),
    )
    assert found is not None and found.get_username() == "grace"
    with pytest.raises(TypeError, match="exactly one of username= and email="):
        await authenticate(_request(), username="a", email="b", password="x", user_model=NamedUser)
    with pytest.raises(ImproperlyConfigured, match="user model"):
        await authenticate(_request(), username="grace", password=PASSWORD)


async def test_unknown_user_costs_a_dummy_hash_check():
    checks: list[str] = []

    class Spy(Argon2PasswordHasher):
        def dummy_verify(self, password: bytes) -> None:
            checks.append("dummy")
            super().dummy_verify(password)

        def verify(self, password: bytes, encoded: str) -> bool:
            checks.append("verify")
            return super().verify(password, encoded)

    set_hashers([Spy(**CHEAP_ARGON2)])
    await make_user()
    throttle = LoginThrottle("100/minute")
    checks.clear()
    assert (
        await authenticate(
            _request(),
            email="nobody@example.com",
            password="x" * 20,
            user_model=AuthUser,
            throttle=throttle,
        )
        is None
    )
    assert checks == ["dummy", "verify"]  # the dummy check is a real Argon2 verification
    checks.clear()
    assert (
        await authenticate(
            _request(),
            email="ann@example.com",
            password="x" * 20,
            user_model=AuthUser,
            throttle=throttle,
        )
        is None
    )
    assert checks == ["verify"]


async def test_login_rotates_the_session_id_against_fixation():
    await make_user()
    store = MemoryStore()
    app = make_app(store=store)
    async with client_for(app) as attacker:
        await attacker.post("/remember", json={"lang": "en"})
        planted = attacker.cookies["session"]
        planted_keys = set(store._data)
        assert len(planted_keys) == 1
    async with client_for(app) as victim:
        victim.cookies.set("session", planted, domain="testserver.local")
        assert (await victim.get("/me")).json()["session"] == {"lang": "en"}
        await victim.post("/login", json=CREDENTIALS)
        after = victim.cookies["session"]
        me = (await victim.get("/me")).json()
    assert after != planted
    assert me["authenticated"] is True
    assert me["session"]["lang"] == "en"  # data survives the new id
    assert not planted_keys & set(store._data)  # the planted id is gone from the store
    async with client_for(app) as attacker:
        attacker.cookies.set("session", planted, domain="testserver.local")
        assert (await attacker.get("/me")).json()["authenticated"] is False


async def test_logging_in_as_someone_else_drops_the_previous_session_data():
    await make_user()
    await make_user("bob@example.com")
    async with client_for(make_app()) as client:
        await client.post("/login", json=CREDENTIALS)
        await client.post("/remember", json={"cart": [1, 2]})
        await client.post("/login", json={"email": "bob@example.com", "password": PASSWORD})
        session = (await client.get("/me")).json()["session"]
    assert "cart" not in session
    assert session[SESSION_USER_KEY] is not None


async def test_logout_flushes_the_session():
    await make_user()
    store = MemoryStore()
    async with client_for(make_app(store=store)) as client:
        await client.post("/login", json=CREDENTIALS)
        await client.post("/remember", json={"cart": [1]})
        before = set(store._data)
        assert (await client.post("/logout")).json() == {"ok": True}
        me = (await client.get("/me")).json()
    assert me["authenticated"] is False
    assert me["session"] == {}
    assert not before & set(store._data)


async def test_password_change_ends_other_sessions_but_not_this_one():
    await make_user()
    app = make_app()
    async with client_for(app) as laptop, client_for(app) as phone:
        await laptop.post("/login", json=CREDENTIALS)
        await phone.post("/login", json=CREDENTIALS)
        assert (await phone.get("/me")).json()["authenticated"] is True
        old_cookie = laptop.cookies["session"]
        response = await laptop.post("/password", json={"password": "another fine password"})
        assert response.status_code == 200
        assert laptop.cookies["session"] != old_cookie  # new id for the surviving session
        assert (await laptop.get("/me")).json()["authenticated"] is True
        phone_view = (await phone.get("/me")).json()
        assert phone_view["authenticated"] is False
        assert phone_view["session"] == {}  # the stale session was flushed
        response = await phone.post("/login", json=CREDENTIALS)
        assert response.status_code == 400
        response = await phone.post(
            "/login", json={"email": "ann@example.com", "password": "another fine password"}
        )
        assert response.status_code == 200


async def test_password_change_elsewhere_ends_the_session():
    user = await make_user()
    async with client_for(make_app()) as client:
        await client.post("/login", json=CREDENTIALS)
        await user.set_password("changed by an admin")
        await user.save(update_fields=["password"])
        assert (await client.get("/me")).json()["authenticated"] is False


async def test_deactivated_or_deleted_user_is_anonymous():
    user = await make_user()
    async with client_for(make_app()) as client:
        await client.post("/login", json=CREDENTIALS)
        user.is_active = False
        await user.save(update_fields=["is_active"])
        assert (await client.get("/me")).json()["authenticated"] is False
        user.is_active = True
        await user.save(update_fields=["is_active"])
        assert (await client.get("/me")).json()["authenticated"] is True
        await user.delete()
        me = (await client.get("/me")).json()
        assert me["authenticated"] is False
        assert me["session"] == {}


async def test_tampered_session_user_id_is_ignored():
    await make_user()
    async with client_for(make_app()) as client:
        await client.post(
            "/remember", json={SESSION_USER_KEY: "not-a-number", SESSION_HASH_KEY: "x"}
        )
        assert (await client.get("/me")).json()["authenticated"] is False


async def test_login_rehashes_a_password_stored_with_old_parameters():
    old = PBKDF2PasswordHasher(iterations=500)
    set_hashers([old])
    user = await make_user()
    assert user.password.startswith("pbkdf2_sha256$500$")
    set_hashers([Argon2PasswordHasher(**CHEAP_ARGON2), old])
    async with client_for(make_app()) as client:
        assert (await client.post("/login", json=CREDENTIALS)).status_code == 200
        # The session stored the hash of the new hash: it stays logged in.
        assert (await client.get("/me")).json()["authenticated"] is True
    await user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")
    assert get_hashers()[0].verify(PASSWORD.encode(), user.password)


async def test_login_throttle_answers_429_with_retry_after():
    await make_user()
    app = make_app(throttle=LoginThrottle("5/minute"))
    async with client_for(app) as client:
        wrong = {"email": "ann@example.com", "password": "wrong password"}
        for _ in range(5):
            assert (await client.post("/login", json=wrong)).status_code == 400
        refused = await client.post("/login", json=CREDENTIALS)
        assert refused.status_code == 429
        # The sliding-window counter weighs the previous window linearly, so a
        # burst at the start of a window is free again only after 1 + (1 - 4/5)
        # windows: up to 72 s for 5/minute, depending on where in the minute we are.
        assert 1 <= int(refused.headers["retry-after"]) <= 72
        # Another account from the same address is counted separately.
        other = {"email": "bob@example.com", "password": "whatever password"}
        assert (await client.post("/login", json=other)).status_code == 400


async def test_default_throttle_is_five_per_minute():
    throttle = LoginThrottle()
    request = _request()
    for _ in range(5):
        await throttle.check(request, "Ann@example.com")
    with pytest.raises(HTTPException) as info:
        await throttle.check(request, "ann@example.com ")
    assert info.value.status_code == 429
    assert "Retry-After" in (info.value.headers or {})
    await throttle.check(_request("10.0.0.2"), "ann@example.com")


async def test_login_rotates_the_csrf_token():
    await make_user()
    async with client_for(make_app(csrf=True)) as client:
        token = (await client.get("/csrf")).json()["token"]
        headers = {"X-CSRF-Token": token}
        assert (await client.post("/login", json=CREDENTIALS, headers=headers)).status_code == 200
        # The token from before login no longer works; a fresh one does.
        assert (await client.post("/remember", json={}, headers=headers)).status_code == 403
        fresh = (await client.get("/csrf")).json()["token"]
        response = await client.post("/remember", json={}, headers={"X-CSRF-Token": fresh})
        assert response.status_code == 200


async def test_login_and_logout_need_session_middleware():
    user = await make_user()
    with pytest.raises(ImproperlyConfigured, match="SessionMiddleware"):
        await login(_request(), user)
    with pytest.raises(ImproperlyConfigured, match="SessionMiddleware"):
        await logout(_request())
    with pytest.raises(ValueError, match="no primary key"):
        scope = {
            "type": "http",
            "headers": [],
            "session": __import__("covet.sessions").sessions.Session(),
        }
        await login(Request(scope), AuthUser(email="x@example.com"))


async def test_malformed_credentials_fail_quietly():
    await make_user()
    throttle = LoginThrottle("100/minute")
    cases: list[tuple[Any, Any]] = [
        (42, PASSWORD),
        ("ann@example.com", None),
        ("x" * 5000, PASSWORD),
        ("", PASSWORD),
        ("ann@example.com", "p" * 5000),
    ]
    for email, password in cases:
        found = await authenticate(
            _request(),
            email=email,
            password=password,
            user_model=AuthUser,
            throttle=throttle,
        )
        assert found is None
    assert (
        await authenticate(
            _request(),
            email="ann@example.com",
            password=PASSWORD,
            user_model=AuthUser,
            throttle=False,
        )
        is not None
    )
