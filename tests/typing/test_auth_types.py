"""Static type pins for covet.auth's public API (checked by mypy; nothing runs under pytest)."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, assert_type

from covet.auth import (
    AbstractAPIToken,
    AbstractUser,
    AnonymousUser,
    PasswordResetTokenGenerator,
    authenticate,
    hash_password,
    login_required,
    requires,
    verify_password,
)
from covet.db import CASCADE, fields
from covet.sessions import Session

if TYPE_CHECKING:
    from covet.requests import Request


class PinnedUser(AbstractUser):
    class Meta:
        table = "typing_pinned_users"


class PinnedToken(AbstractAPIToken):
    user = fields.ForeignKey(PinnedUser, on_delete=CASCADE)

    class Meta:
        table = "typing_pinned_tokens"


@login_required
async def _guarded(request: Request, item_id: int) -> dict[str, int]:
    return {"id": item_id}


@requires("posts.edit")
async def _editor(request: Request) -> str:
    return "ok"


async def _pins(request: Request, user: PinnedUser) -> None:
    assert_type(
        await authenticate(request, email="a", password="b", user_model=PinnedUser),
        PinnedUser | None,
    )
    assert_type(await authenticate(request, email="a", password="b"), AbstractUser | None)
    assert_type(await PinnedUser.create_user(email="a@example.com"), PinnedUser)
    assert_type(await user.check_password("x"), bool)
    assert_type(user.last_login, datetime.datetime | None)
    assert_type(await hash_password("x"), str)
    assert_type(await verify_password("x", None), bool)
    token, record = await PinnedToken.create_for(user)
    assert_type(token, str)
    assert_type(record, PinnedToken)
    assert_type(await PinnedToken.authenticate_token(token), PinnedToken | None)
    assert_type(PasswordResetTokenGenerator("k").make_token(user), str)
    assert_type(await _guarded(request, 1), dict[str, int])
    assert_type(await _editor(request), str)
    # request.session is covet's Session (flush()/cycle_key() type-check without ignores).
    assert_type(request.session, Session)
    assert_type(request.user, AbstractUser | AnonymousUser)
