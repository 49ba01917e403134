"""Project settings: ``[tool.covet]`` in pyproject.toml, then ``.env``, then the environment.

A covet project is the nearest directory, from the current one upwards, whose
``pyproject.toml`` has a ``[tool.covet]`` table::

    [tool.covet]
    app = "mysite.app:app"
    models = ["mysite.models"]
    migrations = "migrations"
    debug = false
    allowed_hosts = ["example.com", "*.example.com"]
    cache_url = "redis://127.0.0.1:6379/0"

    [tool.covet.caches]
    fragments = "memory://?max_entries=1000"

:func:`load_settings` reads that table, then a ``.env`` file next to it, then
the environment variables ``DATABASE_URL``, ``DATABASE_REPLICA_URLS``, ``CACHE_URL``,
``COVET_DEBUG``, ``SECRET_KEY`` and ``ALLOWED_HOSTS``. Later sources win, except that
``.env`` never overrides a variable that is really set in the environment.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "ENV_VARIABLES",
    "Settings",
    "find_project_root",
    "import_from_string",
    "load_settings",
    "parse_env_file",
    "read_env_file",
)

#: The environment variables that override ``[tool.covet]``, and the setting each sets.
ENV_VARIABLES: Mapping[str, str] = {
    "DATABASE_URL": "database_url",
    "DATABASE_REPLICA_URLS": "database_replica_urls",
    "CACHE_URL": "cache_url",
    "COVET_DEBUG": "debug",
    "SECRET_KEY": "secret_key",
    "ALLOWED_HOSTS": "allowed_hosts",
}

_KNOWN_KEYS = (
    "allowed_hosts",
    "app",
    "cache_url",
    "caches",
    "commands",
    "database_replica_urls",
    "database_url",
    "debug",
    "jobs",
    "migrations",
    "models",
    "secret_key",
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_IMPORT_STRING = re.compile(
    r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$"
)
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved configuration of a covet project.

    Attributes:
        root: The project directory (where ``pyproject.toml`` lives).
        app: The application as ``"module:attribute"``, if configured.
        models: Modules that define the project's models.
        migrations: The absolute path of the migrations directory.
        debug: Whether debug mode is on (never in production).
        allowed_hosts: Host patterns the app answers to (``*.example.com``).
        database_url: The database URL (``sqlite:///app.db``), if configured.
        database_replica_urls: URLs of read replicas of that database, for
            :func:`covet.db.routing.connect_replicas` (``DATABASE_REPLICA_URLS``:
            comma-separated).
        secret_key: The key for signed cookies and tokens, if configured.
        cache_url: The URL of the default cache (``covet.cache.cache``), if configured.
        caches: Named caches (``covet.cache.caches["name"]``): name -> URL.
        commands: Extra CLI commands as ``"module:attribute"`` strings.
        jobs: The ``[tool.covet.jobs]`` table as written (``covet.jobs`` reads it).
        env_file: Variables read from the project's ``.env`` file.
    """

    root: Path
    app: str | None = None
    models: tuple[str, ...] = ()
    migrations: Path = Path("migrations")
    debug: bool = False
    allowed_hosts: tuple[str, ...] = ()
    database_url: str | None = None
    database_replica_urls: tuple[str, ...] = ()
    secret_key: str | None = field(default=None, repr=False)
    cache_url: str | None = None
    caches: Mapping[str, str] = field(default_factory=dict, hash=False)
    commands: tuple[str, ...] = ()
    jobs: Mapping[str, Any] = field(default_factory=dict, compare=False)
    env_file: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def import_app(self) -> Any:
        """Import and return the project's application object.

        The project root is put on ``sys.path`` first, so ``app`` may name a
        package of the project that is not installed.

        Raises:
            ImproperlyConfigured: If ``app`` is not set or cannot be imported.
        """
        if self.app is None:
            raise ImproperlyConfigured(
                f"No application is configured in {str(self.root / 'pyproject.toml')!r}. "
                'Add app = "package.module:app" to its [tool.covet] table.'
            )
        root = str(self.root)
        if root not in sys.path:
            sys.path.insert(0, root)
        return import_from_string(self.app)


def import_from_string(path: str) -> Any:
    """Import the object named by ``"package.module:attribute"``.

    The attribute part may be dotted (``"mysite.main:app.router"``).

    Args:
        path: The import string.

    Returns:
        The object.

    Raises:
        ImproperlyConfigured: If the string is malformed, the module cannot be
            imported (the underlying error is chained and named), or the
            attribute does not exist.
    """
    if not _IMPORT_STRING.match(path):
        raise ImproperlyConfigured(
            f"Import string {path!r} must have the form 'package.module:attribute'. "
            'Write it like "mysite.app:app".'
        )
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"Could not import module {module_name!r} (from {path!r}): "
            f"{type(exc).__name__}: {exc}. Check the module path and that its package is "
            "importable from the project root."
        ) from exc
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImproperlyConfigured(
                f"Module {module_name!r} has no attribute {attribute!r} (from {path!r}). "
                "Check the name after the colon."
            ) from None
    return obj


def find_project_root(start: Path | None = None) -> Path | None:
    """Return the nearest directory at or above ``start`` that is a covet project.

    A directory is a covet project when its ``pyproject.toml`` has a
    ``[tool.covet]`` table; other ``pyproject.toml`` files are skipped.

    Args:
        start: Where to begin; the current directory by default.

    Returns:
        The project directory, or ``None`` when there is none.
    """
    current = (start or Path.cwd()).resolve()
    if current.is_file():
        current = current.parent
    for directory in (current, *current.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file() and "covet" in _read_pyproject(candidate).get("tool", {}):
            return directory
    return None


def _read_pyproject(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise ImproperlyConfigured(
            f"{str(path)!r} is not valid TOML: {exc}. Fix the syntax error."
        ) from exc


def parse_env_file(text: str, *, source: str = ".env") -> dict[str, str]:
    r"""Parse the ``KEY=VALUE`` lines of a ``.env`` file.

    Blank lines and ``#`` comments are skipped, and a leading ``export`` is
    allowed. Values may be bare (a `` #`` starts a trailing comment, and
    surrounding whitespace is dropped), in single quotes (taken literally) or
    in double quotes (``\n``, ``\t``, ``\"`` and ``\\`` escapes). Quoted
    values may span lines. No variable interpolation is done.

    Args:
        text: The file's contents.
        source: The file name used in error messages.

    Returns:
        The variables, in file order; a repeated key keeps its last value.

    Raises:
        ImproperlyConfigured: On a line that is not ``KEY=VALUE`` or an
            unterminated quote, naming the line number.
    """
    values: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index].strip()
        index += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith(("export ", "export\t")):
            line = line[len("export") :].lstrip()
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not sep or not _ENV_KEY.match(key):
            raise ImproperlyConfigured(
                f"Line {number} of {source!r} is not a KEY=VALUE assignment: {line!r}. "
                "Write it as NAME=value, or start it with # to comment it out."
            )
        rest = rest.lstrip()
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            body = rest[1:]
            # Read further lines until the closing quote (multi-line values).
            while True:
                end = _closing_quote(body, quote)
                if end is not None:
                    break
                if index >= len(lines):
                    raise ImproperlyConfigured(
                        f"Line {number} of {source!r} opens a {quote} quote that is never "
                        f"closed: {line!r}. Add the closing {quote}."
                    )
                body += "\n" + lines[index]
                index += 1
            value, trailing = body[:end], body[end + 1 :].strip()
            if trailing and not trailing.startswith("#"):
                raise ImproperlyConfigured(
                    f"Line {number} of {source!r} has text after the closing quote: "
                    f"{trailing!r}. Move it inside the quotes or after a #."
                )
            values[key] = _unescape(value) if quote == '"' else value
        else:
            comment = re.search(r"\s#", rest)
            if comment:
                rest = rest[: comment.start()]
            values[key] = rest.strip()
    return values


def _closing_quote(body: str, quote: str) -> int | None:
    position = 0
    while position < len(body):
        char = body[position]
        if char == "\\" and quote == '"':
            position += 2
            continue
        if char == quote:
            return position
        position += 1
    return None


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), value)


def read_env_file(path: Path) -> dict[str, str]:
    """Read and parse the ``.env`` file at ``path``; a missing file gives ``{}``.

    Raises:
        ImproperlyConfigured: If the file is malformed (see :func:`parse_env_file`).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return parse_env_file(text, source=str(path))


def _parse_bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be a boolean, got {value!r}. Use one of 1/0, true/false, yes/no, on/off."
    )


def _expect_str(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ImproperlyConfigured(
        f"{where} {key} must be a string, got {value!r}. Write it in double quotes."
    )


def _expect_str_list(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ImproperlyConfigured(
        f'{where} {key} must be a list of strings, got {value!r}. Write it like ["a", "b"].'
    )


def _expect_str_table(table: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = table.get(key, {})
    if isinstance(value, dict) and all(isinstance(item, str) for item in value.values()):
        return dict(value)
    raise ImproperlyConfigured(
        f"{where} {key} must be a table of strings, got {value!r}. Write it as [tool.covet.{key}] "
        'with lines like name = "memory://".'
    )


def _check_import_string(value: str, key: str, where: str) -> str:
    if not _IMPORT_STRING.match(value):
        raise ImproperlyConfigured(
            f"{where} {key} must have the form 'package.module:attribute', got {value!r}. "
            'Write it like "mysite.app:app".'
        )
    return value


def load_settings(
    start: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """Find the project from ``start`` and load its settings.

    Sources, from weakest to strongest: ``[tool.covet]`` in ``pyproject.toml``,
    the ``.env`` file in the project root, then the environment variables
    named in :data:`ENV_VARIABLES`. ``.env`` never overrides a variable that is
    set in the real environment. ``ALLOWED_HOSTS`` is a comma-separated list.

    Args:
        start: Where to look for the project; the current directory by default.
        environ: The environment to read; ``os.environ`` by default.

    Returns:
        The settings.

    Raises:
        ImproperlyConfigured: If there is no covet project, ``[tool.covet]``
            has an unknown key or a value of the wrong type, ``app`` is not an
            import string, a boolean does not parse, or ``.env`` is malformed.
    """
    origin = (start or Path.cwd()).resolve()
    root = find_project_root(origin)
    if root is None:
        raise ImproperlyConfigured(
            f"No pyproject.toml with a [tool.covet] table was found in {str(origin)!r} or "
            "its parents. Run the command inside a covet project, or create one with "
            "`covet new NAME`."
        )
    pyproject = root / "pyproject.toml"
    table = _read_pyproject(pyproject)["tool"]["covet"]
    where = f"[tool.covet] in {str(pyproject)!r}:"
    if not isinstance(table, dict):
        raise ImproperlyConfigured(f"{where} must be a table, got {table!r}. Write [tool.covet].")
    unknown = sorted(set(table) - set(_KNOWN_KEYS))
    if unknown:
        raise ImproperlyConfigured(
            f"{where} unknown key(s) {', '.join(map(repr, unknown))}. "
            f"Known keys are: {', '.join(_KNOWN_KEYS)}."
        )

    app = _expect_str(table, "app", where)
    if app is not None:
        _check_import_string(app, "app", where)
    commands = _expect_str_list(table, "commands", where)
    for command in commands:
        _check_import_string(command, "commands", where)
    debug = table.get("debug", False)
    if not isinstance(debug, bool):
        raise ImproperlyConfigured(f"{where} debug must be true or false, got {debug!r}.")
    migrations = _expect_str(table, "migrations", where) or "migrations"
    jobs = table.get("jobs", {})
    if not isinstance(jobs, dict):
        raise ImproperlyConfigured(
            f"{where} jobs must be a table, got {jobs!r}. Write it as [tool.covet.jobs]."
        )
    values: dict[str, Any] = {
        "app": app,
        "models": _expect_str_list(table, "models", where),
        "migrations": root / migrations,
        "debug": debug,
        "allowed_hosts": _expect_str_list(table, "allowed_hosts", where),
        "database_url": _expect_str(table, "database_url", where),
        "database_replica_urls": _expect_str_list(table, "database_replica_urls", where),
        "secret_key": _expect_str(table, "secret_key", where),
        "cache_url": _expect_str(table, "cache_url", where),
        "caches": _expect_str_table(table, "caches", where),
        "commands": commands,
        "jobs": jobs,
    }

    env_file = read_env_file(root / ".env")
    real_environ = os.environ if environ is None else environ
    environment = {**env_file, **real_environ}
    for variable, setting in ENV_VARIABLES.items():
        if variable not in environment:
            continue
        raw = environment[variable]
        origin_name = variable if variable in real_environ else f"{variable} in .env"
        if setting == "debug":
            values[setting] = _parse_bool(raw, origin_name)
        elif setting in ("allowed_hosts", "database_replica_urls"):
            values[setting] = tuple(item.strip() for item in raw.split(",") if item.strip())
        else:
            values[setting] = raw or None
    return Settings(root=root, env_file=env_file, **values)
