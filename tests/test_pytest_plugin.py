"""Tests for covet.pytest_plugin, run in throwaway projects with pytester."""

from __future__ import annotations

import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

pytest_plugins = ["pytester"]

# The inner runs load only covet's plugin, not pytest-asyncio (unconfigured there).
# An installed covet registers the plugin through its entry point already; loading
# it again under its module name would make pytest refuse a second registration.
_INSTALLED = any(ep.value == "covet.pytest_plugin" for ep in entry_points(group="pytest11"))
PLUGIN = ("-p", "no:asyncio") if _INSTALLED else ("-p", "covet.pytest_plugin", "-p", "no:asyncio")

APP_MODULE = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started"] = "yes"
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = ("PROJECT_NAME:" + scope["state"].get("started", "no")).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
"""


def make_project(pytester: pytest.Pytester, module: str, name: str = "project") -> None:
    pytester.makefile(
        ".toml",
        pyproject=f'[project]\nname = "{name}"\n\n[tool.covet]\napp = "{module}:app"\n',
    )
    pytester.makepyfile(**{module: APP_MODULE.replace("PROJECT_NAME", name)})


def test_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    with pyproject.open("rb") as file:
        data = tomllib.load(file)
    assert data["project"]["entry-points"]["pytest11"] == {"covet": "covet.pytest_plugin"}


def test_client_fixture_uses_the_configured_app_with_lifespan(pytester: pytest.Pytester) -> None:
    make_project(pytester, "plugin_site_one")
    pytester.makepyfile(
        test_site="""
        def test_home(client):
            assert client.get("/").text == "project:yes"

        def test_app(app):
            import plugin_site_one
            assert app is plugin_site_one.app
        """
    )
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=2)


def test_app_fixture_can_be_overridden_in_conftest(pytester: pytest.Pytester) -> None:
    make_project(pytester, "plugin_site_two")
    pytester.makeconftest(
        """
        import pytest

        async def other(scope, receive, send):
            if scope["type"] != "http":
                return
            await send({"type": "http.response.start", "status": 201, "headers": []})
            await send({"type": "http.response.body", "body": b"override"})

        @pytest.fixture
        def app():
            return other
        """
    )
    pytester.makepyfile(
        test_site="""
        def test_home(client):
            response = client.get("/")
            assert (response.status_code, response.text) == (201, "override")
        """
    )
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1)


def test_non_covet_projects_are_unaffected(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject='[project]\nname = "plain"\n')
    pytester.makepyfile(
        test_plain="""
        def test_plain():
            assert 1 + 1 == 2

        def test_uses_client(client):
            pass
        """
    )
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ImproperlyConfigured: No pyproject.toml with a ?tool.covet?*"])


def test_project_without_app_setting_errors_only_when_used(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject='[project]\nname = "p"\n\n[tool.covet]\n')
    pytester.makepyfile(
        test_p="""
        def test_fine():
            pass

        def test_needs_app(app):
            pass
        """
    )
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*No application is configured*"])


def test_plugin_module_imports_nothing_heavy_at_load() -> None:
    source = (Path(__file__).resolve().parents[1] / "covet" / "pytest_plugin.py").read_text()
    top_level_imports = [
        line for line in source.splitlines() if line.startswith(("import ", "from "))
    ]
    assert all("httpx" not in line and "covet.testing" not in line for line in top_level_imports)
