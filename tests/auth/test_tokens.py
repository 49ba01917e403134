from __future__ import annotations

import datetime

import pytest

from covet.auth import PasswordResetTokenGenerator
from covet.exceptions import ImproperlyConfigured
from tests.auth.helpers import make_user
from tests.auth.models import AuthUser

pytestmark = pytest.mark.usefixtures("db")

SECRET = "reset-secret"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_token_is_valid_for_its_user_until_it_expires():
    clock = Clock()
    generator = PasswordResetTokenGenerator(SECRET, clock=clock)
    user = await make_user()
    other = await make_user("bob@example.com")
    token = generator.make_token(user)
    assert generator.check_token(user, token)
    # Checked against the user as read back from the database.
    reloaded = await AuthUser.objects.get(pk=user.pk)
    assert generator.check_token(reloaded, token)
    assert not generator.check_token(other, token)
    clock.now += 3600
    assert generator.check_token(user, token)
    clock.now += 1
    assert not generator.check_token(user, token)


async def test_token_is_single_use_password_change_invalidates_it():
    generator = PasswordResetTokenGenerator(SECRET)
    user = await make_user()
    token = generator.make_token(user)
    assert generator.check_token(user, token)
    await user.set_password("the new password")
    await user.save(update_fields=["password"])
    assert not generator.check_token(user, token)
    assert not generator.check_token(await AuthUser.objects.get(pk=user.pk), token)


async def test_login_invalidates_the_token():
    generator = PasswordResetTokenGenerator(SECRET)
    user = await make_user()
    user.last_login = datetime.datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=datetime.UTC)
    await user.save(update_fields=["last_login"])
    user = await AuthUser.objects.get(pk=user.pk)
    token = generator.make_token(user)
    assert generator.check_token(user, token)
    assert user.last_login is not None
    user.last_login = user.last_login + datetime.timedelta(minutes=5)
    await user.save(update_fields=["last_login"])
    assert not generator.check_token(await AuthUser.objects.get(pk=user.pk), token)


async def test_email_change_invalidates_the_token():
    generator = PasswordResetTokenGenerator(SECRET)
    user = await make_user()
    token = generator.make_token(user)
    user.email = "new@example.com"
    assert not generator.check_token(user, token)


async def test_other_secret_or_tampering_is_refused_and_keys_rotate():
    clock = Clock()
    old = PasswordResetTokenGenerator("old-secret", clock=clock)
    user = await make_user()
    token = old.make_token(user)
    assert not PasswordResetTokenGenerator("new-secret", clock=clock).check_token(user, token)
    rotated = PasswordResetTokenGenerator(["new-secret", "old-secret"], clock=clock)
    assert rotated.check_token(user, token)
    assert rotated.make_token(user) != token  # new tokens use the newest key
    stamp, signature = token.split("-")
    tampered = [
        f"{stamp}-{signature[:-1]}{'0' if signature[-1] != '0' else '1'}",
        f"{int(stamp, 36) + 1:x}-{signature}",
        signature,
        "",
        "-",
        "zzzzzzzzzzzzzzzzzz-" + signature,
        "é-" + signature,
        f"{stamp}-{signature}é",
        "x" * 100,
        None,
    ]
    for bad in tampered:
        assert not old.check_token(user, bad)
    assert not old.check_token(AuthUser(email="unsaved@example.com"), token)


async def test_token_from_the_future_is_refused():
    clock = Clock()
    generator = PasswordResetTokenGenerator(SECRET, clock=clock)
    user = await make_user()
    token = generator.make_token(user)
    clock.now -= 3600
    assert not generator.check_token(user, token)


def test_generator_options_are_validated():
    with pytest.raises(ImproperlyConfigured):
        PasswordResetTokenGenerator("")
    with pytest.raises(ImproperlyConfigured):
        PasswordResetTokenGenerator([])
    with pytest.raises(ImproperlyConfigured):
        PasswordResetTokenGenerator("s", timeout=0)
    with pytest.raises(ValueError, match="unsaved"):
        PasswordResetTokenGenerator("s").make_token(AuthUser(email="x@example.com"))
