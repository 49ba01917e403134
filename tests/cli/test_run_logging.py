"""``covet run`` writes covet's JSON access log in every worker, instead of uvicorn's."""

from __future__ import annotations

import json
import signal
from typing import TYPE_CHECKING

import httpx

from tests.cli.conftest import free_port, start_covet, stop_server, wait_for_server, write_project

if TYPE_CHECKING:
    from pathlib import Path

APP = """
from covet import Covet

app = Covet(allowed_hosts=["127.0.0.1"])


@app.get("/items/{item_id:int}", name="item")
async def item(request, item_id: int):
    return {"id": item_id}
"""


def test_run_writes_json_access_log_not_uvicorns(tmp_path: Path) -> None:
    root = write_project(tmp_path, "logsite", APP)
    port = free_port()
    process = start_covet("run", "--port", str(port), "--no-check", cwd=root)
    base = f"http://127.0.0.1:{port}"
    wait_for_server(f"{base}/items/1", process)
    assert httpx.get(f"{base}/items/42?x=1").status_code == 200
    code, _, err = stop_server(process, signal.SIGTERM)
    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "covet.access"]
    assert [a["path"] for a in access] == ["/items/1", "/items/42"], err
    assert access[1]["route"] == "item" and access[1]["status"] == 200
    assert access[1]["request_id"] != access[0]["request_id"]
    assert not [line for line in lines if line["logger"] == "uvicorn.access"], err
    assert any(line["logger"] == "uvicorn.error" for line in lines), err


def test_run_access_log_off_leaves_uvicorns_on(tmp_path: Path) -> None:
    root = write_project(tmp_path, "logsite", APP)
    port = free_port()
    process = start_covet("run", "--port", str(port), "--no-check", cwd=root, COVET_ACCESS_LOG="0")
    wait_for_server(f"http://127.0.0.1:{port}/items/1", process)
    code, _, err = stop_server(process, signal.SIGTERM)
    assert code == 0, err
    assert '"covet.access"' not in err and '"uvicorn.access"' in err, err
