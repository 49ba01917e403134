"""Import paths users write today keep working after the move into packages."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("old", "new", "names"),
    [
        ("covet.sessions_db", "covet.sessions", ("DatabaseSession", "DatabaseStore")),
        ("covet.ratelimit_db", "covet.ratelimit", ("DatabaseBackend", "RateLimitCounter")),
        ("covet.middleware.sessions", "covet.sessions", ("SessionMiddleware",)),
        ("covet.middleware.ratelimit", "covet.ratelimit", ("RateLimitMiddleware",)),
        ("covet.middleware", "covet.sessions", ("SessionMiddleware",)),
        ("covet.middleware", "covet.auth", ("AuthenticationMiddleware",)),
    ],
)
def test_deprecated_path_gives_the_same_object(old: str, new: str, names: tuple[str, ...]) -> None:
    import importlib

    old_module, new_module = importlib.import_module(old), importlib.import_module(new)
    for name in names:
        assert getattr(old_module, name) is getattr(new_module, name)


def test_importing_sessions_and_ratelimit_registers_no_model() -> None:
    # The database store and backend define models; they load only when asked for,
    # so a project that does not list them gets no extra tables.
    code = (
        "import sys, covet.sessions, covet.ratelimit, covet.middleware, covet.auth\n"
        "print('covet.sessions.database' in sys.modules, 'covet.ratelimit.database' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


def test_sessions_do_not_depend_on_auth() -> None:
    code = "import sys, covet.sessions, covet.sessions.database\nprint('covet.auth' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_unknown_lazy_name_is_an_attribute_error() -> None:
    import covet.middleware
    import covet.ratelimit
    import covet.sessions

    for module in (covet.middleware, covet.sessions, covet.ratelimit):
        with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
            module.Nope  # noqa: B018
