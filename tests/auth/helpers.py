"""An app wired with sessions and authentication, for the auth tests."""

from __future__ import annotations

from typing import Any

from covet import Covet, JSONResponse, Request
from covet.auth import (
    AbstractUser,
    AuthenticationMiddleware,
    LoginThrottle,
    authenticate,
    change_password,
    login,
    logout,
)
from covet.middleware import CSRFMiddleware, SessionMiddleware
from covet.middleware.csrf import get_csrf_token
from covet.sessions import MemoryStore, SessionStore
from tests.auth.models import APIToken, AuthUser

SECRET = "test-secret-key-0123456789abcdef"
PASSWORD = "a long and fine password"


def make_app(
    *,
    store: SessionStore | None = None,
    csrf: bool = False,
    throttle: LoginThrottle | bool | None = False,
    **auth_options: Any,
) -> Covet:
    """Return an app with session, optional CSRF and auth middleware, and login routes."""
    app = Covet(allowed_hosts=["testserver"])
    app.add_middleware(
        SessionMiddleware, secret_key=SECRET, store=MemoryStore() if store is None else store
    )
    if csrf:
        app.add_middleware(CSRFMiddleware)
    auth_options.setdefault("token_model", APIToken)
    app.add_middleware(
        AuthenticationMiddleware,
        user_model=AuthUser,
        secret_key=SECRET,
        login_throttle=throttle,
        **auth_options,
    )

    @app.post("/login")
    async def do_login(request: Request) -> Any:
        data = await request.json()
        user = await authenticate(request, email=data["email"], password=data["password"])
        if user is None:
            return JSONResponse({"ok": False}, status_code=400)
        await login(request, user)
        return {"ok": True}

    @app.post("/logout")
    async def do_logout(request: Request) -> Any:
        await logout(request)
        return {"ok": True}

    @app.get("/me")
    async def me(request: Request) -> Any:
        return {
            "user": str(request.user),
            "authenticated": request.user.is_authenticated,
            "method": request.scope["auth"].method,
            "session": dict(request.session) if "session" in request.scope else None,
        }

    @app.post("/remember")
    async def remember(request: Request) -> Any:
        request.session.update(await request.json())
        return {"ok": True}

    @app.post("/password")
    async def password(request: Request) -> Any:
        data = await request.json()
        user = request.user
        assert isinstance(user, AbstractUser)
        await change_password(request, user, data["password"])
        return {"ok": True}

    @app.get("/csrf")
    async def csrf_token(request: Request) -> Any:
        return {"token": get_csrf_token(request)}

    return app


async def make_user(
    email: str = "ann@example.com", password: str = PASSWORD, **extra: Any
) -> AuthUser:
    """Create and save a user."""
    return await AuthUser.create_user(email=email, password=password, **extra)
