"""The backends' creation objects: test-database DDL and URLs, migration lock, without a server.

The migration engine and lock run for real in ``test_migrations.py`` and the
test databases in ``test_pytest_plugin.py``; this file pins what each backend
answers, and that a backend which forgets a method says which one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from covet.db.backends.base import BaseCreation, url_with_option, url_with_path
from covet.db.database import Database

if TYPE_CHECKING:
    from pathlib import Path


def _creation(url: str) -> BaseCreation:
    return Database(url, alias=f"creation-{abs(hash(url))}").backend.creation


def test_postgres_test_database_is_a_schema() -> None:
    creation = _creation("postgresql://u:p@db:5433/app?sslmode=require")
    url = creation.test_database_url("postgresql://u:p@db:5433/app?sslmode=require", "t_1")
    assert url == "postgresql://u:p@db:5433/app?sslmode=require&search_path=t_1"
    assert creation.create_test_database_sql("t_1") == ('CREATE SCHEMA "t_1"',)
    assert creation.drop_test_database_sql("t_1") == ('DROP SCHEMA IF EXISTS "t_1" CASCADE',)
    assert creation.creates_test_database
    assert creation.migration_lock_file() is None


def test_mysql_test_database_is_a_database_with_the_binary_collation() -> None:
    creation = _creation("mysql://root@db/app")
    assert creation.test_database_url("mysql://root@db/app?x=1", "t_1") == "mysql://root@db/t_1?x=1"
    # utf8mb4_bin until connect() finds the server's own binary collation.
    assert creation.create_test_database_sql("t_1") == (
        "CREATE DATABASE `t_1` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
    )
    assert creation.drop_test_database_sql("t_1") == ("DROP DATABASE IF EXISTS `t_1`",)


def test_sqlite_uses_the_configured_database_and_a_lock_file(tmp_path: Path) -> None:
    creation = _creation(f"sqlite:///{tmp_path}/app.db")
    assert not creation.creates_test_database
    assert creation.test_database_url("sqlite:///x.db", "t_1") == "sqlite:///x.db"
    assert creation.create_test_database_sql("t_1") == ()
    assert creation.migration_lock_file() == str((tmp_path / "app.db").resolve())
    assert _creation("sqlite:///:memory:").migration_lock_file() is None
    # The file lock is the whole lock: nothing to take on the connection.
    assert creation.acquire_migration_lock(None, 1.0) is True


def test_the_migration_lock_is_per_database() -> None:
    one = _creation("postgresql://db/app").migration_lock_id()
    assert one == _creation("postgresql://db/app").migration_lock_id()
    assert one != _creation("postgresql://db/other").migration_lock_id()
    assert one != _creation("postgresql://db/app?search_path=s").migration_lock_id()


def test_url_helpers() -> None:
    assert url_with_path("mysql://u@h:1/a?q=1", "b") == "mysql://u@h:1/b?q=1"
    assert url_with_option("postgresql://h/a?k=1&s=2", "k", "3") == "postgresql://h/a?s=2&k=3"


def test_a_backend_without_creation_methods_names_them() -> None:
    # The base class only keeps its backend; any backend will do.
    creation = BaseCreation(_creation("sqlite:///:memory:").backend)
    with pytest.raises(
        NotImplementedError, match=r"BaseCreation does not implement migration_engine"
    ):
        creation.migration_engine()
    with pytest.raises(NotImplementedError, match=r"acquire_migration_lock\(\)"):
        creation.acquire_migration_lock(None, 1.0)
    with pytest.raises(NotImplementedError, match=r"release_migration_lock\(\)"):
        creation.release_migration_lock(None)
