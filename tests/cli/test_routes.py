"""Tests of ``covet routes``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from covet.cli import main
from covet.cli.routes import RouteInfo, collect_routes
from tests.cli.conftest import write_project

if TYPE_CHECKING:
    from pathlib import Path

APP = """
from covet import Covet, Router
from covet.staticfiles import StaticFiles

app = Covet()

@app.get("/", name="home")
async def home(request):
    return "home"

@app.route("/items/{item_id:int}", methods=["GET", "POST"])
async def item(request, item_id):
    return {"id": item_id}

@app.websocket("/ws")
async def echo(websocket):
    await websocket.accept()

api = Router(prefix="/api")

@api.delete("/things/{name}", name="thing_delete")
def delete_thing(request, name):
    return None

app.include_router(api)

admin = Router()

@admin.get("/users")
async def users(request):
    return []

app.mount("/admin", admin, name="admin")
app.mount("/static", StaticFiles(directory=".", check_dir=False), name="static")
"""

pytestmark = pytest.mark.usefixtures("isolated_imports")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_project(tmp_path, "routes_site", APP)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_routes_table_lists_every_route(project: Path) -> None:
    result = CliRunner().invoke(main, ["routes"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["METHODS", "PATH", "NAME", "HANDLER"]
    rows = [line.split() for line in lines[1:]]
    assert rows == [
        ["GET", "/", "home", "routes_site.app.home"],
        ["GET,POST", "/items/{item_id:int}", "item", "routes_site.app.item"],
        ["WS", "/ws", "echo", "routes_site.app.echo"],
        ["DELETE", "/api/things/{name}", "thing_delete", "routes_site.app.delete_thing"],
        ["GET", "/admin/users", "admin:users", "routes_site.app.users"],
        ["*", "/static/{path}", "static", "covet.staticfiles.StaticFiles"],
    ]


def test_routes_json(project: Path) -> None:
    result = CliRunner().invoke(main, ["routes", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data[0] == {
        "methods": "GET",
        "path": "/",
        "name": "home",
        "handler": "routes_site.app.home",
    }
    assert len(data) == 6


def test_routes_with_explicit_app_outside_a_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "loose_app.py").write_text(
        "from covet import Covet\napp = Covet()\n@app.post('/hook')\nasync def hook(request):\n"
        "    return None\n",
        "utf-8",
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["routes", "--app", "loose_app:app"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].split() == ["POST", "/hook", "hook", "loose_app.hook"]


def test_collect_routes_nested_mount_prefixes() -> None:
    from covet import Covet, Router

    inner = Router()

    @inner.get("/leaf")
    async def leaf(request: object) -> str:
        return "leaf"

    middle = Covet()
    middle.mount("/inner", inner, name="inner")
    outer = Covet()
    outer.mount("/middle", middle)
    assert list(collect_routes(outer.routes)) == [
        RouteInfo("GET", "/middle/inner/leaf", "inner:leaf", f"{__name__}.{leaf.__qualname__}")
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["routes", "--app", "nowhere_at_all:app"], "Could not import module 'nowhere_at_all'"),
        (["routes", "--app", "not an import string"], "must have the form"),
        (["routes", "--app", "routes_site.app:missing"], "has no attribute 'missing'"),
    ],
)
def test_routes_bad_app_is_one_line_error(project: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert message in result.output
    assert result.output.count("\n") == 1
    assert result.output.startswith("Error: ")


def test_routes_outside_a_project_without_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["routes"])
    assert result.exit_code == 1
    assert "No pyproject.toml with a [tool.covet] table" in result.output
    assert result.output.count("\n") == 1
