"""``covet createsuperuser``: make a staff superuser account, for the admin pages.

The user model is found among the project's ``models`` modules (the one
concrete :class:`~covet.auth.AbstractUser` subclass), or named with
``--user-model module:Class``. The password is asked twice on the terminal,
or read from ``COVET_SUPERUSER_PASSWORD`` with ``--no-input`` (for scripts and
containers), and checked against the password policy.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from covet.cli._common import fail, project_settings, success

if TYPE_CHECKING:
    from covet.auth import AbstractUser

__all__ = ("createsuperuser_command", "find_user_model")

PASSWORD_ENV = "COVET_SUPERUSER_PASSWORD"  # noqa: S105 - the variable's name, not a password


def find_user_model(modules: tuple[str, ...], spec: str | None) -> type[AbstractUser]:
    """Return the user model named by ``spec``, else the one defined in ``modules``.

    Raises:
        click.ClickException: When none, or more than one, is found.
    """
    from covet.auth import AbstractUser
    from covet.db.models import registered_models

    if spec:
        module_name, _, attribute = spec.partition(":")
        try:
            model = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            fail(f"Cannot import the user model {spec!r}: {exc}. Use --user-model module:Class.")
        if not (isinstance(model, type) and issubclass(model, AbstractUser)):
            fail(f"{spec!r} is not an AbstractUser subclass.")
        return model
    for name in modules:
        importlib.import_module(name)
    found = [
        m
        for m in registered_models()
        if issubclass(m, AbstractUser) and not m._meta.abstract and m.__module__ in modules
    ]
    if len(found) != 1:
        names = ", ".join(f"{m.__module__}:{m.__name__}" for m in found) or "none"
        fail(
            f"Found {len(found)} user models in [tool.covet] models ({names}). "
            "Name one with --user-model module:Class."
        )
    return found[0]


async def _create(
    url: str, model: type[AbstractUser], login: str, password: str, values: dict[str, Any]
) -> AbstractUser:
    from covet.auth import validate_password
    from covet.auth.passwords import WeakPasswordError
    from covet.db import Database

    async with Database(url):
        field = model.USERNAME_FIELD
        normalized = model.normalize_username(login)
        if await model.objects.filter(**{field: normalized}).exists():
            fail(f"A user with {field} {normalized!r} already exists.")
        candidate = model(**{field: normalized, **values})
        try:
            validate_password(password, candidate)
        except WeakPasswordError as exc:
            fail(str(exc))
        return await model.create_user(
            password=password, is_staff=True, is_superuser=True, **{field: login}, **values
        )


@click.command("createsuperuser")
@click.option(
    "--login",
    "--email",
    "--username",
    "login",
    help="The email (or the USERNAME_FIELD) of the account; --email and --username are aliases.",
)
@click.option("--user-model", help="The user model as module:Class (default: found in models).")
@click.option("--database-url", help="The database (default: the project's DATABASE_URL).")
@click.option(
    "--no-input",
    is_flag=True,
    help=f"Ask nothing: needs --login and the password in ${PASSWORD_ENV}.",
)
def createsuperuser_command(
    login: str | None, user_model: str | None, database_url: str | None, no_input: bool
) -> None:
    """Create a staff superuser who can log in to the admin pages."""
    settings = project_settings(None)
    assert settings is not None  # noqa: S101 - project_settings(None) raises without a project
    url = database_url or settings.database_url
    if not url:
        fail("DATABASE_URL is not set. Add it to .env or pass --database-url.")
    if str(settings.root) not in sys.path:
        sys.path.insert(0, str(settings.root))  # the project's own modules, as `covet jobs` does
    model = find_user_model(settings.models, user_model)
    field = model.USERNAME_FIELD
    if no_input:
        password = os.environ.get(PASSWORD_ENV, "")
        if not login or not password:
            fail(f"--no-input needs --login and the password in the {PASSWORD_ENV} variable.")
    else:
        login = login or click.prompt(field.replace("_", " ").capitalize())
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Password (again)")
    assert login is not None  # noqa: S101 - prompted or checked above
    user = asyncio.run(_create(url, model, login, password, {}))
    success(f"Superuser {user.get_username()!r} created; log in at /admin/.")
