"""Fixtures of the admin tests: a database on every backend and an app with the admin.

The database fixture follows tests/auth/conftest.py: package-scoped, one private
schema (PostgreSQL) or database (MySQL) per backend, dropped at the end.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import pytest_asyncio

from covet import Covet
from covet.admin import Admin, AdminLogEntry, ModelAdmin, action
from covet.auth import (
    Argon2PasswordHasher,
    AuthenticationMiddleware,
    LoginThrottle,
    PBKDF2PasswordHasher,
    set_hashers,
)
from covet.middleware import CSRFMiddleware, SessionMiddleware
from tests.admin.models import Article, Label, Remark, StaffUser, Sticker, Topic, Writer
from tests.db.conftest import BACKENDS, models_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from covet.db.database import Database

MODELS = [StaffUser, Writer, Topic, Article, Remark, Label, Sticker, AdminLogEntry]
SECRET = "admin-test-secret-" + "x" * 32
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def cheap_hashers() -> Iterator[None]:
    set_hashers(
        [Argon2PasswordHasher(time_cost=1, memory_cost=1024), PBKDF2PasswordHasher(iterations=1000)]
    )
    yield
    set_hashers(None)


@pytest_asyncio.fixture(scope="package", loop_scope="session", params=BACKENDS)
async def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    async with models_database(request.param, "covet_adm", tmp_path_factory, MODELS) as db:
        yield db


@pytest_asyncio.fixture(loop_scope="session")
async def db(database: Database) -> AsyncIterator[Database]:
    """Yield ``database`` with every table empty."""
    for model in reversed(MODELS):
        await model.objects.all().delete()
    yield database


class ArticleAdmin(ModelAdmin):
    list_display = ("title", "writer", "status", "published", "views")
    search_fields = ("title", "writer__name")
    list_filter = ("published", "status", "writer", "created")
    readonly_fields = ("views",)
    actions = ("publish",)
    inlines = ("remarks",)
    list_per_page = 3

    @action(label="Publish the selected articles")
    async def publish(self, request: Any, queryset: Any) -> str:
        n = await queryset.update(published=True)
        return f"{n} published."


def make_app() -> tuple[Covet, Admin]:
    app = Covet()
    app.add_middleware(SessionMiddleware, secret_key=SECRET)
    app.add_middleware(
        AuthenticationMiddleware,
        user_model=StaffUser,
        secret_key=SECRET,
        login_throttle=LoginThrottle("5/minute"),
    )
    app.add_middleware(CSRFMiddleware)
    admin = Admin(app, path="/admin")
    admin.register(Writer, search_fields=["name"])
    admin.register(Article, ArticleAdmin)
    admin.register(Remark)
    admin.register(Topic, search_fields=["name"])
    admin.register(Label)
    admin.register(StaffUser, list_display=["email", "is_staff"], search_fields=["email"])
    return app, admin


class Browser:
    """An httpx client that logs in and posts forms with their CSRF token."""

    def __init__(self, app: Covet) -> None:
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
        )
        self.token = ""

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.get(url, **kwargs)
        found = _CSRF.search(response.text)
        if found:
            self.token = found.group(1)
        return response

    async def post(self, url: str, data: Any = None, **kwargs: Any) -> httpx.Response:
        if not self.token:
            await self.get("/admin/login")
        if isinstance(data, dict):
            data = {**data, "csrf_token": self.token}
        elif data is not None:
            merged: dict[str, list[str]] = {"csrf_token": [self.token]}
            for key, value in data:
                merged.setdefault(key, []).append(value)
            data = merged
        response = await self.client.post(url, data=data, **kwargs)
        found = _CSRF.search(response.text)
        if found:
            self.token = found.group(1)
        return response

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        await self.get("/admin/login")
        response = await self.post("/admin/login", {"username": email, "password": password})
        if response.status_code == 303:
            await self.get("/admin/")  # login rotates the CSRF secret: take a fresh token
        return response


@pytest_asyncio.fixture(loop_scope="session")
async def site(db: Database) -> AsyncIterator[tuple[Covet, Admin]]:
    yield make_app()


async def make_user(email: str, *, staff: bool = True, superuser: bool = False, perms=()) -> Any:
    return await StaffUser.create_user(
        email=email,
        password=PASSWORD,
        is_staff=staff,
        is_superuser=superuser,
        permissions=list(perms),
    )


@pytest_asyncio.fixture(loop_scope="session")
async def boss(site: tuple[Covet, Admin]) -> AsyncIterator[Browser]:
    """A logged-in superuser's browser."""
    await make_user("boss@example.com", superuser=True)
    browser = Browser(site[0])
    response = await browser.login("boss@example.com")
    assert response.status_code == 303, response.text
    yield browser
    await browser.client.aclose()
