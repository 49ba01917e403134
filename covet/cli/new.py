"""``covet new``: scaffold a project that runs, migrates and passes its tests out of the box.

The files come from ``covet/cli/scaffold/``: every ``*-tpl`` file is rendered
with :class:`string.Template` (``${name}`` placeholders, so Jinja2's braces in
the HTML templates need no escaping), ``__project__`` in a path becomes the
package name and a leading ``dot-`` becomes ``.`` (``dot-env-tpl`` ->
``.env``). The migrations directory is copied from covet's
``migrations_template`` and gets an initial revision generated from the
example model, so ``covet migrate --check`` is clean right away.
"""

from __future__ import annotations

import keyword
import os
import re
import secrets
import shlex
import string
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from covet import __version__
from covet.cli._common import echo, fail, info, success
from covet.config import ENV_VARIABLES
from covet.exceptions import DISTRIBUTION, ImproperlyConfigured

__all__ = (
    "DATABASES",
    "RESERVED_NAMES",
    "SCAFFOLD",
    "DatabaseChoice",
    "create_migrations",
    "new_command",
    "render_project",
    "validate_name",
)

#: The directory of the project template files.
SCAFFOLD = Path(__file__).resolve().parent / "scaffold"

_NAME = re.compile(r"[a-z][a-z0-9_]*")

#: Names a project may not take: they would shadow a module it imports.
RESERVED_NAMES: frozenset[str] = frozenset(sys.stdlib_module_names) | frozenset(
    {
        "aiomysql",
        "aiosqlite",
        "alembic",
        "app",
        "asyncpg",
        "click",
        "covet",
        "h11",
        "httpx",
        "jinja2",
        "migrations",
        "multipart",
        "orjson",
        "pytest",
        "python_multipart",
        "site",
        "sqlalchemy",
        "static",
        "templates",
        "test",
        "tests",
        "uvicorn",
        "watchfiles",
    }
)


@dataclass(frozen=True, slots=True)
class DatabaseChoice:
    """What ``--db`` puts in the project.

    Attributes:
        extra: The covet extra that installs the driver (``""`` for none).
        url: The ``DATABASE_URL`` template; ``{name}`` is the project name.
        setup: The shell command creating that database (``{name}`` too), or
            ``""`` when nothing needs creating.
    """

    extra: str
    url: str
    setup: str = ""


#: The choices of ``--db``.
DATABASES: dict[str, DatabaseChoice] = {
    "sqlite": DatabaseChoice("", "sqlite:///{name}.sqlite3"),
    "postgres": DatabaseChoice(
        "postgres",
        "postgresql://postgres@127.0.0.1:5432/{name}",
        "createdb -h 127.0.0.1 -U postgres {name}",
    ),
    "mysql": DatabaseChoice(
        "mysql",
        "mysql://root@127.0.0.1:3306/{name}",
        "mysql -h 127.0.0.1 -u root -e 'CREATE DATABASE {name} CHARACTER SET utf8mb4'",
    ),
}


def validate_name(name: str) -> str:
    """Return ``name`` when it can be the project's Python package name.

    Raises:
        ImproperlyConfigured: When it is not a lowercase ASCII identifier, is
            a keyword, or would shadow a standard library or dependency module.
    """
    if not _NAME.fullmatch(name):
        suggestion = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
        if suggestion and not suggestion[0].isalpha():
            suggestion = f"project_{suggestion}"
        hint = f", for example {suggestion!r}" if suggestion else ""
        raise ImproperlyConfigured(
            f"Project name {name!r} is not a valid Python package name. Use lowercase "
            f"letters, digits and underscores, starting with a letter{hint}."
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise ImproperlyConfigured(
            f"Project name {name!r} is a Python keyword. Choose another name, like "
            f"{name + '_site'!r}."
        )
    if name in RESERVED_NAMES:
        raise ImproperlyConfigured(
            f"Project name {name!r} would shadow the {name!r} module that the project needs. "
            f"Choose another name, like {name + '_site'!r}."
        )
    return name


def _target_path(relative: Path, name: str) -> Path:
    parts = []
    for part in relative.parts:
        part = part.replace("__project__", name)
        if part.startswith("dot-"):
            part = "." + part[len("dot-") :]
        parts.append(part.removesuffix("-tpl"))
    return Path(*parts)


def environment_context() -> dict[str, str]:
    """Return the README's placeholders naming the Python environment covet runs from.

    The project depends on ``covet-web``, which is installed here (it is not
    on the package index yet), so the README installs the project into this
    same environment: ``${venv}`` is it (``sys.prefix``), ``${python}`` its
    interpreter, and ``${activate}`` the shell line that puts it first on
    ``PATH``. Outside a virtual environment, ``${activate}`` makes one in the
    project (``.venv``) that sees this interpreter's packages, covet included.
    Paths are quoted for POSIX shells.
    """
    python, venv = shlex.quote(sys.executable), shlex.quote(sys.prefix)
    if sys.prefix != sys.base_prefix:
        activate = f"source {shlex.quote(str(Path(sys.prefix) / 'bin' / 'activate'))}"
    else:
        activate = f"{python} -m venv --system-site-packages .venv\nsource .venv/bin/activate"
    return {"python": python, "venv": venv, "activate": activate}


def render_project(directory: Path, name: str, *, db: str = "sqlite") -> list[Path]:
    """Write the project files for ``name`` into ``directory``.

    Existing files with the same names are overwritten; others are left alone.

    Args:
        directory: The project directory (created when missing).
        name: The package name (see :func:`validate_name`).
        db: A key of :data:`DATABASES`.

    Returns:
        The files written, relative to ``directory``, sorted.
    """
    choice = DATABASES[db]
    requirement = f"{DISTRIBUTION}[{choice.extra}]" if choice.extra else DISTRIBUTION
    context = {
        "name": name,
        "requirement": f"{requirement}>={__version__}",
        "secret_key": secrets.token_urlsafe(50),
        "database_url": choice.url.format(name=name),
        "database_setup": choice.setup.format(name=name) + "\n" if choice.setup else "",
        **environment_context(),
    }
    written: list[Path] = []
    for source in sorted(SCAFFOLD.rglob("*-tpl")):
        relative = _target_path(source.relative_to(SCAFFOLD), name)
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        text = string.Template(source.read_text(encoding="utf-8")).substitute(context)
        target.write_text(text, encoding="utf-8")
        written.append(relative)
    # The secret key file must not be readable by other users.
    (directory / ".env").chmod(0o600)
    return sorted(written)


# Runs in a child process: importing the new project's models here would
# register them in this process's model registry for good.
_GENERATE_INITIAL_REVISION = """
import sys
from pathlib import Path

from covet.config import load_settings
from covet.db import migrations

root, url, message = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
settings = load_settings(root, environ={"DATABASE_URL": url})
migrations.init(settings)
config = migrations.make_config(settings, echo=lambda text: None)
# `covet new --force` over a project that has revisions already: bring the
# scratch database to their head, and add a revision only for what they miss.
existing = any((settings.migrations / "versions").glob("*.py"))
if existing:
    migrations.upgrade(config)
path = migrations.revision(config, message)
if path is None and not existing:
    raise SystemExit("The models produced no initial revision.")
"""


def create_migrations(directory: Path, *, message: str = "create notes") -> list[Path]:
    """Copy the migrations template and autogenerate the initial revision from the models.

    The revision is generated against a throwaway SQLite database, in a child
    process, so ``covet migrate`` then creates exactly the models' tables and
    ``covet migrate --check`` is clean. When the directory already holds
    revisions (``covet new --force`` over an earlier project), a revision is
    added only for the changes they do not cover.

    Args:
        directory: The rendered project directory.
        message: The initial revision's message.

    Returns:
        The files created, relative to ``directory``, sorted.

    Raises:
        ImproperlyConfigured: When the revision cannot be generated (the
            child's error output is included).
    """
    package_parent = str(Path(__file__).resolve().parents[2])
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])),
    }
    for variable in ENV_VARIABLES:
        environment.pop(variable, None)
    with tempfile.TemporaryDirectory(prefix="covet-new-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'initial.sqlite3'}"
        process = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", _GENERATE_INITIAL_REVISION, str(directory), url, message],
            cwd=directory,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
    if process.returncode != 0:
        output = process.stderr.strip().splitlines()
        raise ImproperlyConfigured(
            f"Could not generate the initial migration in {str(directory)!r}: "
            f"{output[-1].rstrip('.') if output else 'no output'}. "
            "Run `covet makemigrations -m 'create notes'` inside the project to see why."
        )
    migrations = directory / "migrations"
    return sorted(
        path.relative_to(directory)
        for path in migrations.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )


@click.command("new")
@click.argument("name")
@click.option(
    "--db",
    type=click.Choice(sorted(DATABASES)),
    default="sqlite",
    show_default=True,
    help="The database the project uses; sets DATABASE_URL and the covet extra.",
)
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to create the project; default ./NAME.",
)
@click.option(
    "--force", is_flag=True, help="Write into a non-empty directory, overwriting same-named files."
)
def new_command(name: str, db: str, directory: Path | None, force: bool) -> None:
    """Create a new project called NAME (a Python package name).

    The project has an example Note model with HTML pages, a JSON API,
    templates, a stylesheet, migrations and tests.
    """
    validate_name(name)
    target = directory if directory is not None else Path(name)
    if target.exists() and not target.is_dir():
        fail(f"{str(target)!r} exists and is not a directory. Choose another --directory.")
    if target.is_dir() and any(target.iterdir()) and not force:
        fail(
            f"Directory {str(target)!r} is not empty. Choose another name or --directory, "
            "or pass --force to write into it."
        )
    target.mkdir(parents=True, exist_ok=True)
    written = render_project(target, name, db=db)
    written += create_migrations(target)
    for path in written:
        info(f"  created {path}")
    success(f"Created project {name!r} in {str(target)!r}.")
    echo("Next:")
    echo(f"  cd {target}")
    setup = DATABASES[db].setup
    if setup:
        echo(f"  {setup.format(name=name)}")
    echo("  covet migrate")
    echo("  covet run")
