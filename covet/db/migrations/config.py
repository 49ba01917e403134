"""Migration settings: alembic's configuration built from the project, and its models.

covet runs alembic without an ``alembic.ini``: :func:`make_config` builds the
configuration from the project settings (``[tool.covet]`` and
``DATABASE_URL``). This module also holds what every other part of
:mod:`covet.db.migrations` shares: the errors, the revision listing type, the
shipped template and the project's models.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from covet.exceptions import CovetError, ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Callable

    import sqlalchemy as sa
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from covet.config import Settings
    from covet.db.models import Model

__all__ = (
    "FILE_TEMPLATE",
    "LOCK_TIMEOUT",
    "MERGE_HINT",
    "MYSQL_WARNING",
    "MigrationError",
    "RenameRequiredError",
    "RevisionInfo",
    "init",
    "make_config",
    "project_models",
    "target_metadata",
    "template_directory",
)

MERGE_HINT: Final = 'covet migrations merge -m "merge"'
#: The file name pattern of new revisions: they sort by creation time.
FILE_TEMPLATE: Final = (
    "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s"
)
#: Seconds a run waits for another run's migration lock before giving up.
LOCK_TIMEOUT: Final = 600.0
MYSQL_WARNING: Final = (
    "Warning: MySQL cannot roll back DDL, so a revision that fails part-way stays partly applied."
)

# Keys of Config.attributes through which covet passes Python objects to env.py.
_SETTINGS: Final = "covet.settings"
_ECHO: Final = "covet.echo"
_COMMAND: Final = "covet.command"
_MODELS: Final = "covet.models"
_LOCK_TIMEOUT: Final = "covet.lock_timeout"
_BLANK: Final = "covet.blank"
_MEMORY: Final = "sqlite:///:memory:"


class MigrationError(CovetError):
    """A migration command failed; the message says what happened and what to do."""


class RenameRequiredError(MigrationError):
    """Autogenerate found a possible rename and no one said whether it is one."""


@dataclass(frozen=True, slots=True)
class RevisionInfo:
    """One revision script, as listed by :func:`history` and :func:`heads`.

    Attributes:
        revision: The revision id.
        down_revisions: The revisions it follows (two or more for a merge).
        message: Its message (the first line of its docstring).
        is_head: Whether no revision follows it.
        is_branch_point: Whether two or more revisions follow it.
        path: The script file.
    """

    revision: str
    down_revisions: tuple[str, ...]
    message: str
    is_head: bool
    is_branch_point: bool
    path: Path

    @property
    def is_merge(self) -> bool:
        """Tell whether this revision joins two or more branches."""
        return len(self.down_revisions) > 1

    def __str__(self) -> str:
        parents = ", ".join(self.down_revisions) or "<base>"
        marks = "".join(
            mark
            for flag, mark in (
                (self.is_head, " (head)"),
                (self.is_branch_point, " (branchpoint)"),
                (self.is_merge, " (merge)"),
            )
            if flag
        )
        return f"{parents} -> {self.revision}{marks}, {self.message}"


# -- project, template and configuration ----------------------------------------------------


def template_directory() -> Path:
    """Return the directory of the migrations template shipped with covet.

    In a wheel it is ``covet/migrations_template``; in a source checkout it
    is ``migrations_template`` at the top of the repository.

    Raises:
        ImproperlyConfigured: The template is missing from the installation.
    """
    package = Path(__file__).resolve().parents[2]  # covet/, from covet/db/migrations/
    for candidate in (package / "migrations_template", package.parent / "migrations_template"):
        if (candidate / "env.py").is_file():
            return candidate
    raise ImproperlyConfigured(
        f"The migrations template is missing from the covet installation at {str(package)!r}. "
        "Reinstall covet."
    )


def init(settings: Settings) -> Path:
    """Create the project's migrations directory from the template, if it is missing.

    Copies ``env.py``, ``script.py.mako`` and ``README`` and creates an
    empty ``versions/`` directory. Existing files are left alone.

    Args:
        settings: The project settings (``settings.migrations`` is the target).

    Returns:
        The migrations directory.
    """
    directory = settings.migrations
    (directory / "versions").mkdir(parents=True, exist_ok=True)
    source = template_directory()
    for name in ("env.py", "script.py.mako", "README"):
        target = directory / name
        if not target.exists():
            shutil.copyfile(source / name, target)
    return directory


def _files(directory: Path) -> set[Path]:
    if not directory.is_dir():
        return set()
    return {
        path for path in directory.rglob("*") if path.is_file() and "__pycache__" not in path.parts
    }


def _default_echo(message: str) -> None:
    sys.stderr.write(message + "\n")


def make_config(
    settings: Settings,
    *,
    echo: Callable[[str], None] | None = None,
    stdout: Any = None,
    lock_timeout: float = LOCK_TIMEOUT,
) -> Config:
    """Build alembic's configuration for the project (no ``alembic.ini`` needed).

    Args:
        settings: The project settings (from :func:`covet.config.load_settings`).
        echo: Where notices and warnings go (default: standard error).
        stdout: Where SQL of ``--sql`` runs goes (default: standard output).
        lock_timeout: Seconds to wait for another run's migration lock.

    Returns:
        An :class:`alembic.config.Config`; pass it to the commands of this module.
    """
    import argparse

    from alembic.config import Config

    out = stdout if stdout is not None else sys.stdout
    # quiet: covet reports through ``echo``; the SQL of --sql runs goes to ``out``.
    config = Config(stdout=out, output_buffer=out, cmd_opts=argparse.Namespace(quiet=True))
    config.set_main_option("script_location", str(settings.migrations))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option("truncate_slug_length", "40")
    config.attributes[_SETTINGS] = settings
    config.attributes[_ECHO] = echo or _default_echo
    config.attributes[_LOCK_TIMEOUT] = lock_timeout
    return config


def _settings(config: Config) -> Settings:
    settings = config.attributes.get(_SETTINGS)
    if settings is None:
        from covet.config import load_settings

        settings = load_settings()
        config.attributes[_SETTINGS] = settings
    return settings


def _echo(config: Config, message: str) -> None:
    echo: Callable[[str], None] = config.attributes.get(_ECHO, _default_echo)
    echo(message)


def _script_directory(config: Config, *, create: bool = False) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    settings = _settings(config)
    if not (settings.migrations / "env.py").is_file():
        if not create:
            raise MigrationError(
                f"There is no migrations directory at {str(settings.migrations)!r}. "
                'Create the first revision with `covet makemigrations -m "initial"`.'
            )
        init(settings)
        _echo(config, f"Created the migrations directory {str(settings.migrations)!r}.")
    return ScriptDirectory.from_config(config)


def _single_head(script: ScriptDirectory) -> None:
    heads = script.get_heads()
    if len(heads) > 1:
        raise MigrationError(
            f"There are {len(heads)} heads ({', '.join(sorted(heads))}): two branches of "
            f"migrations were made in parallel. Join them with `{MERGE_HINT}`, then run the "
            "command again."
        )


# -- models and metadata --------------------------------------------------------------------


def project_models(settings: Settings) -> list[type[Model]]:
    """Import the project's model modules and return their concrete models.

    Models are the :class:`~covet.db.Model` subclasses found in the modules
    named by ``settings.models``, plus every model they reference through a
    foreign key (many-to-many join models are added by the schema builder).

    Raises:
        ImproperlyConfigured: A module cannot be imported.
    """
    import importlib

    from covet.db.fields import ForeignKey
    from covet.db.models import Model

    root = str(settings.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    found: dict[type[Model], None] = {}
    for name in settings.models:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"Could not import the models module {name!r}: {type(exc).__name__}: {exc}. "
                "Check [tool.covet] models in pyproject.toml."
            ) from exc
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Model)
                and value is not Model
                and not value._meta.abstract
            ):
                found[value] = None
    queue = list(found)
    while queue:
        model = queue.pop()
        for item in model._meta.concrete_fields:
            if isinstance(item, ForeignKey) and item.related_model not in found:
                found[item.related_model] = None
                queue.append(item.related_model)
    return list(found)


def target_metadata(settings: Settings, *, ops: Any = None) -> sa.MetaData:
    """Return the SQLAlchemy ``MetaData`` of the project's models (what autogenerate targets).

    Args:
        settings: The project settings.
        ops: The database's operations, for MySQL table options.
    """
    from covet.db.schema import build_metadata

    return build_metadata(project_models(settings), ops=ops)
