"""The app the hostile-input corpus is run against: the scaffold's middleware and every parser.

Served by ``covet run`` (one uvicorn worker with covet's server limits). It has
the scaffold's middleware (security headers, signed-cookie sessions, CSRF,
static files) and one endpoint per parser an attacker can reach: an
urlencoded/multipart form behind CSRF, an exempt multipart upload, a JSON
endpoint, a Range-capable file, path convertors and a websocket echo.

``GET /_stats`` reports the worker's peak event-loop lag (a task that sleeps
5 ms and notes how late it wakes), its resident memory and its peak, so the
harness measures the server from the inside as well as from a client.
``HOSTILE_ROOT`` names the directory holding ``static/`` and ``big.bin``.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from covet import Covet, FileResponse, HTMLResponse, Request, WebSocket
from covet.datastructures import UploadFile
from covet.middleware import (
    CSRFMiddleware,
    SecurityHeadersMiddleware,
    SessionMiddleware,
    csrf_exempt,
)
from covet.middleware.csrf import get_csrf_token
from covet.staticfiles import StaticFiles

ROOT = Path(os.environ.get("HOSTILE_ROOT", "."))
SECRET_KEY = "hostile-corpus-secret-key-0123456789abcdef"
LAG_TICK = 0.005

_lag = {"max": 0.0, "cpu_max": 0.0}


async def _watch_loop() -> None:
    # "max" is how late the loop woke this task (wall clock): on a shared machine it
    # includes time the OS gave other processes. "cpu_max" is the part of that lateness
    # this thread spent running (thread CPU time): the loop blocked by the worker's own code.
    while True:
        started, cpu_started = time.perf_counter(), time.thread_time()
        await asyncio.sleep(LAG_TICK)
        late = time.perf_counter() - started - LAG_TICK
        cpu = time.thread_time() - cpu_started
        _lag["max"] = max(_lag["max"], late)
        _lag["cpu_max"] = max(_lag["cpu_max"], min(late, cpu))


def _memory() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            fields[key] = int(value.split()[0]) * 1024
    return fields


_tasks: set[asyncio.Task[None]] = set()


async def _start_watch() -> None:
    _tasks.add(asyncio.get_running_loop().create_task(_watch_loop()))


app = Covet(allowed_hosts=["127.0.0.1", "localhost"], on_startup=[_start_watch])
app.add_middleware(SecurityHeadersMiddleware)
app.add_middleware(SessionMiddleware, secret_key=SECRET_KEY)
app.add_middleware(CSRFMiddleware)
app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")


@app.get("/")
async def home(request: Request) -> HTMLResponse:
    visits = int(request.session.get("visits", 0)) + 1
    request.session["visits"] = visits
    token = get_csrf_token(request)
    return HTMLResponse(f'<form><input name="csrf_token" value="{token}"></form>{visits}')


@app.get("/ping")
async def ping(request: Request) -> str:
    return "pong"


@app.get("/_stats")
async def stats(request: Request) -> dict[str, Any]:
    reset = request.query_params.get("reset") == "1"
    figures = {
        "lag_max_ms": round(_lag["max"] * 1000, 2),
        "lag_cpu_max_ms": round(_lag["cpu_max"] * 1000, 2),
        **_memory(),
    }
    if reset:
        _lag["max"] = _lag["cpu_max"] = 0.0
    return figures


async def _describe_form(request: Request) -> dict[str, Any]:
    form = await request.form()
    described: dict[str, Any] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            described[key] = {"file": value.filename, "size": len(await value.read())}
        else:
            described[key] = len(value)
    await form.close()
    return described


@app.post("/form")
async def form(request: Request) -> dict[str, Any]:
    return await _describe_form(request)


@app.post("/upload")
@csrf_exempt
async def upload(request: Request) -> dict[str, Any]:
    return await _describe_form(request)


@app.post("/json")
@csrf_exempt
async def json_endpoint(request: Request) -> dict[str, Any]:
    data = await request.json()
    return {"type": type(data).__name__}


@app.get("/file")
async def big_file(request: Request) -> FileResponse:
    return FileResponse(ROOT / "big.bin")


@app.get("/items/{item_id:int}")
async def item(request: Request, item_id: int) -> dict[str, int]:
    return {"id": item_id}


@app.get("/uuid/{value:uuid}")
async def by_uuid(request: Request, value: Any) -> dict[str, str]:
    return {"uuid": str(value)}


@app.get("/files/{rest:path}")
async def by_path(request: Request, rest: str) -> dict[str, str]:
    return {"path": rest}


@app.get("/echo")
async def echo(request: Request) -> dict[str, Any]:
    return {
        "query": dict(request.query_params),
        "cookies": sorted(request.cookies),
        "host": request.url.hostname,
        "scheme": request.url.scheme,
        "client": request.client.host if request.client else None,
    }


@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    async for message in websocket.iter_text():
        await websocket.send_text(message)
