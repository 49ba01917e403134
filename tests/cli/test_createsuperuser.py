"""Tests of ``covet createsuperuser``: prompts, --no-input, password policy, duplicates."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.cli.conftest import covet_argv, run_covet, subprocess_env, write_project

if TYPE_CHECKING:
    from pathlib import Path

MODELS = """
from covet.auth import AbstractUser


class User(AbstractUser):
    class Meta:
        table = "users"
"""

SETUP = """
import asyncio
from covet.db import Database, create_all
from su_site.models import User

async def main():
    async with Database({url!r}):
        await create_all([User])

asyncio.run(main())
"""
STRONG = "a long and unusual passphrase 42"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_project(tmp_path, "su_site", "app = None\n", 'models = ["su_site.models"]')
    (tmp_path / "su_site" / "models.py").write_text(MODELS, "utf-8")
    url = f"sqlite:///{tmp_path / 'su.sqlite3'}"
    (tmp_path / ".env").write_text(f"DATABASE_URL={url}\n")
    setup = subprocess.run(
        [sys.executable, "-c", SETUP.format(url=url)],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert setup.returncode == 0, setup.stderr
    return tmp_path


def _users(project: Path) -> list[tuple[str, int, int]]:
    with sqlite3.connect(project / "su.sqlite3") as conn:
        return conn.execute("SELECT email, is_staff, is_superuser FROM users").fetchall()


def test_no_input_creates_a_staff_superuser(project: Path) -> None:
    result = run_covet(
        "createsuperuser",
        "--no-input",
        "--login",
        "Boss@Example.com",
        cwd=project,
        COVET_SUPERUSER_PASSWORD=STRONG,
    )
    assert result.returncode == 0, result.stderr
    assert "Superuser 'boss@example.com' created" in result.stdout
    assert _users(project) == [("boss@example.com", 1, 1)]
    again = run_covet(
        "createsuperuser",
        "--no-input",
        "--email",  # Django's option name, an alias of --login
        "boss@example.com",
        cwd=project,
        COVET_SUPERUSER_PASSWORD=STRONG,
    )
    assert again.returncode == 1 and "already exists" in again.stderr


def test_prompts_for_login_and_password_twice(project: Path) -> None:
    process = subprocess.run(
        covet_argv("createsuperuser"),
        cwd=project,
        env=subprocess_env(),
        input=f"ann@example.com\n{STRONG}\n{STRONG}\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    assert _users(project) == [("ann@example.com", 1, 1)]


def test_weak_password_and_missing_input_are_refused(project: Path) -> None:
    weak = run_covet(
        "createsuperuser",
        "--no-input",
        "--login",
        "w@example.com",
        cwd=project,
        COVET_SUPERUSER_PASSWORD="password",
    )
    assert weak.returncode == 1 and weak.stderr.startswith("Error:")
    missing = run_covet("createsuperuser", "--no-input", "--login", "w@example.com", cwd=project)
    assert missing.returncode == 1 and "COVET_SUPERUSER_PASSWORD" in missing.stderr
    bad_model = run_covet(
        "createsuperuser",
        "--no-input",
        "--user-model",
        "su_site.models:Nope",
        "--login",
        "x@y.z",
        cwd=project,
        COVET_SUPERUSER_PASSWORD=STRONG,
    )
    assert bad_model.returncode == 1 and "Cannot import the user model" in bad_model.stderr
    assert _users(project) == []
