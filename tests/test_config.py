"""Tests for covet.config: project discovery, precedence, .env parsing and errors."""

from __future__ import annotations

import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from covet.config import (
    ENV_VARIABLES,
    Settings,
    find_project_root,
    import_from_string,
    load_settings,
    parse_env_file,
    read_env_file,
)
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from pathlib import Path


def write_project(root: Path, table: str = "", *, env: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "site"\n\n[tool.covet]\n' + textwrap.dedent(table), encoding="utf-8"
    )
    if env is not None:
        (root / ".env").write_text(textwrap.dedent(env), encoding="utf-8")
    return root


def test_defaults_for_a_minimal_project(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    settings = load_settings(root, environ={})
    assert settings == Settings(root=root.resolve(), migrations=root.resolve() / "migrations")
    assert settings.app is None
    assert settings.models == ()
    assert settings.debug is False
    assert settings.allowed_hosts == ()
    assert settings.database_url is None
    assert settings.secret_key is None
    assert settings.commands == ()


def test_pyproject_values_are_read(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        """
        app = "mysite.app:app"
        models = ["mysite.models", "mysite.blog.models"]
        migrations = "db/migrations"
        debug = true
        allowed_hosts = ["example.com", "*.example.com"]
        database_url = "sqlite:///site.db"
        secret_key = "from-pyproject"
        commands = ["mysite.cli:seed"]
        """,
    )
    settings = load_settings(root, environ={})
    assert settings.app == "mysite.app:app"
    assert settings.models == ("mysite.models", "mysite.blog.models")
    assert settings.migrations == root.resolve() / "db" / "migrations"
    assert settings.debug is True
    assert settings.allowed_hosts == ("example.com", "*.example.com")
    assert settings.database_url == "sqlite:///site.db"
    assert settings.secret_key == "from-pyproject"
    assert settings.commands == ("mysite.cli:seed",)
    assert "from-pyproject" not in repr(settings)


def test_precedence_pyproject_then_env_file_then_environment(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        """
        database_url = "sqlite:///pyproject.db"
        secret_key = "pyproject"
        debug = false
        allowed_hosts = ["pyproject.test"]
        """,
        env="""
        DATABASE_URL=sqlite:///dotenv.db
        SECRET_KEY=dotenv
        COVET_DEBUG=yes
        UNRELATED=kept
        """,
    )
    only_files = load_settings(root, environ={})
    assert only_files.database_url == "sqlite:///dotenv.db"
    assert only_files.secret_key == "dotenv"
    assert only_files.debug is True
    assert only_files.allowed_hosts == ("pyproject.test",)
    assert only_files.env_file["UNRELATED"] == "kept"

    environment = {
        "DATABASE_URL": "postgresql://env/db",
        "COVET_DEBUG": "0",
        "ALLOWED_HOSTS": " a.test, *.b.test ,,",
    }
    settings = load_settings(root, environ=environment)
    assert settings.database_url == "postgresql://env/db"
    assert settings.debug is False
    assert settings.secret_key == "dotenv"
    assert settings.allowed_hosts == ("a.test", "*.b.test")


def test_real_environment_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_project(tmp_path, env="SECRET_KEY=dotenv\n")
    monkeypatch.setenv("SECRET_KEY", "real")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(root)
    settings = load_settings()
    assert settings.secret_key == "real"
    assert settings.root == root.resolve()


def test_env_file_does_not_change_os_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COVET_TEST_ONLY_VARIABLE", raising=False)
    root = write_project(tmp_path, env="COVET_TEST_ONLY_VARIABLE=1\n")
    load_settings(root)
    import os

    assert "COVET_TEST_ONLY_VARIABLE" not in os.environ


def test_project_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    root = write_project(tmp_path / "site")
    nested = root / "pkg" / "sub"
    nested.mkdir(parents=True)
    # A pyproject.toml without [tool.covet] on the way up is skipped.
    (root / "pkg" / "pyproject.toml").write_text('[project]\nname = "inner"\n')
    assert find_project_root(nested) == root.resolve()
    assert load_settings(nested, environ={}).root == root.resolve()
    module = nested / "mod.py"
    module.write_text("")
    assert find_project_root(module) == root.resolve()


def test_no_project_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\n')
    assert find_project_root(tmp_path) is None
    with pytest.raises(ImproperlyConfigured, match=r"No pyproject.toml with a \[tool.covet\]"):
        load_settings(tmp_path, environ={})


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.covet\n")
    with pytest.raises(ImproperlyConfigured, match="is not valid TOML"):
        load_settings(tmp_path, environ={})


def test_unknown_key_lists_the_known_keys(tmp_path: Path) -> None:
    root = write_project(tmp_path, 'app = "a:b"\ndatabase = "x"\nsecrets = 1\n')
    with pytest.raises(ImproperlyConfigured) as info:
        load_settings(root, environ={})
    message = str(info.value)
    assert "unknown key(s) 'database', 'secrets'" in message
    assert (
        "Known keys are: allowed_hosts, app, cache_url, caches, commands, "
        "database_replica_urls, database_url, debug, jobs, migrations, models, secret_key."
        in message
    )


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ('app = "mysite.app"', "app must have the form 'package.module:attribute'"),
        ('app = "my site:app"', "app must have the form"),
        ("app = 3", "app must be a string, got 3"),
        ('models = "mysite.models"', "models must be a list of strings"),
        ("allowed_hosts = [1]", "allowed_hosts must be a list of strings"),
        ('commands = ["nocolon"]', "commands must have the form"),
        ('debug = "yes"', "debug must be true or false, got 'yes'"),
        ("migrations = 1", "migrations must be a string"),
    ],
)
def test_bad_values_are_clear_errors(tmp_path: Path, table: str, error: str) -> None:
    root = write_project(tmp_path, table + "\n")
    with pytest.raises(ImproperlyConfigured, match=error.replace("[", r"\[")):
        load_settings(root, environ={})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("TRUE", True), ("on", True), ("Yes", True), ("0", False), ("off", False)],
)
def test_boolean_environment_values(tmp_path: Path, value: str, expected: bool) -> None:
    root = write_project(tmp_path)
    assert load_settings(root, environ={"COVET_DEBUG": value}).debug is expected


def test_bad_boolean_is_a_clear_error(tmp_path: Path) -> None:
    root = write_project(tmp_path, env="COVET_DEBUG=maybe\n")
    with pytest.raises(ImproperlyConfigured, match=r"COVET_DEBUG in \.env must be a boolean"):
        load_settings(root, environ={})
    with pytest.raises(ImproperlyConfigured, match="COVET_DEBUG must be a boolean, got 'sure'"):
        load_settings(root, environ={"COVET_DEBUG": "sure"})


def test_env_variables_table() -> None:
    assert dict(ENV_VARIABLES) == {
        "DATABASE_URL": "database_url",
        "CACHE_URL": "cache_url",
        "COVET_DEBUG": "debug",
        "SECRET_KEY": "secret_key",
        "ALLOWED_HOSTS": "allowed_hosts",
        "DATABASE_REPLICA_URLS": "database_replica_urls",
    }


# -- .env parsing --------------------------------------------------------------------


def test_env_file_syntax() -> None:
    text = textwrap.dedent(
        r"""
        # a comment

        PLAIN=value
        SPACED = spaced value  # trailing comment
        export EXPORTED=1
        EMPTY=
        HASH=abc#not-a-comment
        SINGLE='literal \n $HOME # kept'
        DOUBLE="line1\nline2\t\"quoted\" \\ # kept" # comment
        EQUALS=a=b=c
        MULTI="first
        second"
        REPEAT=1
        REPEAT=2
        dotted.key=ok
        """
    )
    assert parse_env_file(text) == {
        "PLAIN": "value",
        "SPACED": "spaced value",
        "EXPORTED": "1",
        "EMPTY": "",
        "HASH": "abc#not-a-comment",
        "SINGLE": r"literal \n $HOME # kept",
        "DOUBLE": 'line1\nline2\t"quoted" \\ # kept',
        "EQUALS": "a=b=c",
        "MULTI": "first\nsecond",
        "REPEAT": "2",
        "dotted.key": "ok",
    }


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("JUST_A_WORD\n", "Line 1 of '.env' is not a KEY=VALUE assignment: 'JUST_A_WORD'"),
        ("\n\n=value\n", "Line 3 of '.env' is not a KEY=VALUE"),
        ("BAD KEY=1\n", "not a KEY=VALUE"),
        ('OPEN="never closed\nNEXT=1\n', 'opens a " quote that is never closed'),
        ("OPEN='x\n", "opens a ' quote"),
        ('AFTER="x" junk\n', "text after the closing quote: 'junk'"),
    ],
)
def test_env_file_errors_name_the_line(text: str, error: str) -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        parse_env_file(text)
    assert error in str(info.value)


def test_read_env_file_missing_and_present(tmp_path: Path) -> None:
    assert read_env_file(tmp_path / ".env") == {}
    (tmp_path / ".env").write_text("A=1\n")
    assert read_env_file(tmp_path / ".env") == {"A": "1"}
    (tmp_path / ".env").write_text("oops\n")
    with pytest.raises(ImproperlyConfigured, match=r"Line 1 of '.*\.env'"):
        read_env_file(tmp_path / ".env")


# -- imports ------------------------------------------------------------------------------


def test_import_from_string_resolves_dotted_attributes() -> None:
    assert import_from_string("os.path:join") is __import__("os").path.join
    assert import_from_string("covet.config:Settings.import_app") is Settings.import_app


@pytest.mark.parametrize("value", ["os.path", "os:", ":join", "os path:join", "os:join()"])
def test_import_from_string_rejects_malformed_strings(value: str) -> None:
    with pytest.raises(
        ImproperlyConfigured, match=r"must have the form 'package\.module:attribute'"
    ):
        import_from_string(value)


def test_import_from_string_reports_missing_modules_and_attributes() -> None:
    with pytest.raises(
        ImproperlyConfigured, match=r"Could not import module 'no_such_mod_xyz\.app'"
    ) as info:
        import_from_string("no_such_mod_xyz.app:app")
    assert "ModuleNotFoundError" in str(info.value)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    with pytest.raises(ImproperlyConfigured, match="Module 'os' has no attribute 'nope'"):
        import_from_string("os:nope")


def test_import_from_string_reports_errors_inside_the_module(tmp_path: Path) -> None:
    (tmp_path / "covet_cfg_broken_mod.py").write_text("import no_such_dependency_xyz\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ImproperlyConfigured, match="no_such_dependency_xyz"):
            import_from_string("covet_cfg_broken_mod:app")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("covet_cfg_broken_mod", None)


def test_import_app_adds_the_project_root_to_sys_path(tmp_path: Path) -> None:
    root = write_project(tmp_path, 'app = "covet_cfg_site.main:application"\n')
    package = root / "covet_cfg_site"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "main.py").write_text("application = object()\n")
    settings = load_settings(root, environ={})
    try:
        app = settings.import_app()
        assert app is sys.modules["covet_cfg_site.main"].application
    finally:
        if str(root.resolve()) in sys.path:
            sys.path.remove(str(root.resolve()))
        sys.modules.pop("covet_cfg_site.main", None)
        sys.modules.pop("covet_cfg_site", None)


def test_import_app_without_app_is_a_clear_error(tmp_path: Path) -> None:
    settings = load_settings(write_project(tmp_path), environ={})
    with pytest.raises(ImproperlyConfigured, match=r"Add app = \"package.module:app\""):
        settings.import_app()


def test_jobs_table_is_kept_for_covet_jobs(tmp_path: Path) -> None:
    root = write_project(tmp_path, 'app = "a:b"\n\n[tool.covet.jobs]\nconcurrency = 3\n')
    assert load_settings(root, environ={}).jobs == {"concurrency": 3}
    bad = write_project(tmp_path, 'app = "a:b"\njobs = 3\n')
    with pytest.raises(ImproperlyConfigured, match="jobs must be a table, got 3"):
        load_settings(bad, environ={})


def test_database_replica_urls_from_pyproject_and_environment(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        """
        database_url = "postgresql://primary/app"
        database_replica_urls = ["postgresql://r1/app", "postgresql://r2/app"]
        """,
    )
    assert load_settings(root, environ={}).database_replica_urls == (
        "postgresql://r1/app",
        "postgresql://r2/app",
    )
    environ = {"DATABASE_REPLICA_URLS": "postgresql://r3/app, postgresql://r4/app,"}
    assert load_settings(root, environ=environ).database_replica_urls == (
        "postgresql://r3/app",
        "postgresql://r4/app",
    )
    assert load_settings(root, environ={"DATABASE_REPLICA_URLS": ""}).database_replica_urls == ()
    bad = write_project(tmp_path / "bad", 'database_replica_urls = "postgresql://r1/app"\n')
    with pytest.raises(ImproperlyConfigured, match="database_replica_urls"):
        load_settings(bad, environ={})
