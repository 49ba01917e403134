"""``covet new``: scaffold a project that runs, migrates and passes its tests out of the box.

The files come from ``covet/cli/scaffold/``: every ``*-tpl`` file is rendered
with :class:`string.Template` (``${name}`` placeholders, so Jinja2's braces in
the HTML templates need no escaping), ``__project__`` in a path becomes the
package name and a leading ``dot-`` becomes ``.`` (``dot-env-tpl`` ->
``.env``). The migrations directory is copied from covet's
``migrations_template`` and gets an initial revision generated from the
example model, so ``covet migrate --check`` is clean right away.

Running it again over a project (``--force``) is safe: it only adds the files
that are missing. A file that differs from what it would write is kept
unless ``--overwrite`` is given, ``.env`` (which holds the project's
``SECRET_KEY``) is never replaced, and an existing migration history gets no
new revision.
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
from dataclasses import dataclass, field
from pathlib import Path

import click

from covet import __version__
from covet.cli._common import echo, fail, info, success, warn
from covet.config import ENV_VARIABLES
from covet.exceptions import DISTRIBUTION, ImproperlyConfigured

__all__ = (
    "DATABASES",
    "RESERVED_NAMES",
    "SCAFFOLD",
    "DatabaseChoice",
    "ScaffoldReport",
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


@dataclass(slots=True)
class ScaffoldReport:
    """What :func:`render_project` did with each file, paths relative to the project.

    Attributes:
        created: Files that did not exist and were written.
        replaced: Files that differed and were overwritten (``overwrite=True``).
        unchanged: Files that already held exactly what would be written.
        kept: Files that differ and were left alone (``.env`` always is).
    """

    created: list[Path] = field(default_factory=list)
    replaced: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


#: Never replaced: it holds the project's random SECRET_KEY (a new one logs everyone out).
_SECRETS = Path(".env")


def _write_new(target: Path, data: bytes, *, private: bool) -> None:
    """Write a file that does not exist yet; a private one is never readable by others."""
    if not private:
        target.write_bytes(data)
        return
    # Created with mode 0600, so the secret is never readable by other users, not
    # even between the write and a later chmod.
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    target.chmod(0o600)  # the umask may have cleared more bits than that


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


def render_project(
    directory: Path,
    name: str,
    *,
    db: str = "sqlite",
    overwrite: bool = False,
    location: str | None = None,
) -> ScaffoldReport:
    """Write the project files for ``name`` into ``directory``.

    A missing file is created and one that already holds what would be
    written is left as it is. One that differs is kept unless ``overwrite``
    is true; an existing ``.env`` is always kept, since its ``SECRET_KEY``
    signs every session. Files that are not part of the template are never
    touched.

    Args:
        directory: The project directory (created when missing).
        name: The package name (see :func:`validate_name`).
        db: A key of :data:`DATABASES`.
        overwrite: Replace files that differ from the template (not ``.env``).
        location: The directory as the user gave it, for the README's ``cd``
            line (default: ``name``).

    Returns:
        What happened to each file.
    """
    choice = DATABASES[db]
    # The project serves /metrics (prometheus-client) and its forms validate with pydantic.
    extras = ",".join(sorted({"metrics", "validation", choice.extra} - {""}))
    requirement = f"{DISTRIBUTION}[{extras}]"
    context = {
        "name": name,
        "directory": shlex.quote(location if location is not None else name),
        "requirement": f"{requirement}>={__version__}",
        "secret_key": secrets.token_urlsafe(50),
        "database_url": choice.url.format(name=name),
        "database_setup": choice.setup.format(name=name) + "\n" if choice.setup else "",
        **environment_context(),
    }
    report = ScaffoldReport()
    for source in sorted(SCAFFOLD.rglob("*-tpl")):
        relative = _target_path(source.relative_to(SCAFFOLD), name)
        target = directory / relative
        data = string.Template(source.read_text(encoding="utf-8")).substitute(context).encode()
        if target.exists() or target.is_symlink():
            if target.is_file() and target.read_bytes() == data:
                report.unchanged.append(relative)
                continue
            if relative == _SECRETS or not overwrite or not target.is_file():
                report.kept.append(relative)
                continue
            target.write_bytes(data)
            report.replaced.append(relative)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_new(target, data, private=relative == _SECRETS)
        report.created.append(relative)
    return report


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
# A project that has a migration history keeps it as it is: a revision
# generated here from the template's models would undo the project's changes.
if not any((settings.migrations / "versions").glob("*.py")):
    config = migrations.make_config(settings, echo=lambda text: None)
    if migrations.revision(config, message) is None:
        raise SystemExit("The models produced no initial revision.")
"""


def create_migrations(directory: Path, *, message: str = "create notes") -> list[Path]:
    """Copy the migrations template and autogenerate the initial revision from the models.

    The revision is generated against a throwaway SQLite database, in a child
    process, so ``covet migrate`` then creates exactly the models' tables and
    ``covet migrate --check`` is clean. Existing files are left alone, and
    when the directory already holds revisions (``covet new --force`` over a
    project) no revision is generated: that is ``covet makemigrations``' job.

    Args:
        directory: The rendered project directory.
        message: The initial revision's message.

    Returns:
        The files created, relative to ``directory``, sorted (no revision
        among them when the project had its own).

    Raises:
        ImproperlyConfigured: When the revision cannot be generated (the
            child's error output is included).
    """
    migrations = directory / "migrations"
    before = _project_files(migrations)
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
    return sorted(path.relative_to(directory) for path in _project_files(migrations) - before)


def _project_files(directory: Path) -> set[Path]:
    if not directory.is_dir():
        return set()
    return {
        path for path in directory.rglob("*") if path.is_file() and "__pycache__" not in path.parts
    }


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
    "--force",
    is_flag=True,
    help="Write into a non-empty directory: add the missing files, keep the others.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Also replace files that differ from the template (implies --force; never .env).",
)
def new_command(name: str, db: str, directory: Path | None, force: bool, overwrite: bool) -> None:
    """Create a new project called NAME (a Python package name).

    The project has an example Note model with HTML pages, a JSON API,
    templates, a stylesheet, migrations and tests. Over an existing project
    (--force) only missing files are added: files you changed, .env and the
    migration history are kept, unless --overwrite replaces changed files.
    """
    validate_name(name)
    target = directory if directory is not None else Path(name)
    if target.exists() and not target.is_dir():
        fail(f"{str(target)!r} exists and is not a directory. Choose another --directory.")
    if target.is_dir() and any(target.iterdir()) and not (force or overwrite):
        fail(
            f"Directory {str(target)!r} is not empty. Choose another name or --directory, "
            "or pass --force to add the missing files to it (changed files are kept)."
        )
    target.mkdir(parents=True, exist_ok=True)
    location = shlex.quote(str(target))
    report = render_project(target, name, db=db, overwrite=overwrite, location=str(target))
    migrations = create_migrations(target)
    for label, paths in (
        ("created", sorted(report.created + migrations)),
        ("replaced", report.replaced),
        ("unchanged", report.unchanged),
        ("kept", report.kept),
    ):
        for path in paths:
            info(f"  {label} {path}")
    changed = _report_kept(report)
    if report.unchanged or report.kept or report.replaced:
        added = len(report.created) + len(migrations)
        success(
            f"Updated project {name!r} in {str(target)!r}: added {added} missing file(s), "
            f"replaced {len(report.replaced)}, kept {changed} that differ."
        )
        if not any(path.parent.name == "versions" for path in migrations):
            info("  The migration history is kept: no revision was generated.")
    else:
        success(f"Created project {name!r} in {str(target)!r}.")
    echo("Next:")
    echo(f"  cd {location}")
    setup = DATABASES[db].setup
    if setup:
        echo(f"  {setup.format(name=name)}")
    echo("  covet migrate")
    echo("  covet run")
    echo("README.md has the rest: installing the project with its test tools, pytest, the API.")


def _report_kept(report: ScaffoldReport) -> int:
    """Warn about kept files that differ; return how many (``.env`` is not counted).

    ``.env`` always differs from a fresh render (its SECRET_KEY is random) and
    is never replaced, so counting it would report a change on every re-run.
    """
    changed = [path for path in report.kept if path != _SECRETS]
    if changed:
        shown = ", ".join(str(path) for path in changed[:5])
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        warn(
            f"Kept {len(changed)} existing file(s) that differ from the template: "
            f"{shown}{more}. Pass --overwrite to replace them."
        )
    if _SECRETS in report.kept:
        info("  .env is kept: it holds the project's SECRET_KEY and is never replaced.")
    return len(changed)
