"""Two real `covet run` servers share a broker: messages, presence and SSE cross between them.

Each backend that spans processes (Redis, PostgreSQL) runs the same chat
project twice, on two ports: a message published through one server reaches
websockets connected to the other, presence lists the sockets of both, and
a killed server's sockets drop out of presence within ``presence_ttl``.
The first server runs on granian and the second on uvicorn, so websockets
and server-sent events are exercised through both servers `covet run` offers.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.channels.conftest import (
    backend_url,
    drop_prefix,
    require_postgres,
    require_redis,
    unique_prefix,
)
from tests.cli.conftest import free_port, start_covet, stop_server, wait_for_server, write_project

if TYPE_CHECKING:
    import subprocess
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.slow

APP = """
import os

from covet import Covet, Request, WebSocket
from covet.channels import Channels

channels = Channels(
    os.environ["CHANNELS_URL"],
    prefix=os.environ["CHANNELS_PREFIX"],
    presence_ttl=1.5,
    history=50,
)
app = Covet(allowed_hosts=["127.0.0.1"], on_shutdown=[channels.close])


@app.get("/health")
async def health(request: Request) -> str:
    return "ok"


@app.post("/rooms/{room}")
async def publish(request: Request, room: str) -> dict:
    return {"id": await channels.publish(room, await request.json())}


@app.get("/rooms/{room}/members")
async def members(request: Request, room: str) -> list:
    return sorted(member.info["name"] for member in await channels.presence(room))


@app.get("/rooms/{room}/events")
async def events(request: Request, room: str):
    return channels.event_stream(request, room, keepalive=1)


@app.websocket("/rooms/{room}/ws")
async def chat(websocket: WebSocket, room: str) -> None:
    await websocket.accept()
    name = websocket.query_params["name"]
    async with channels.socket(websocket, presence={"name": name}) as sock:
        await sock.join(room)
        await websocket.send_json({"type": "joined", "worker": os.getpid()})
        async for text in websocket.iter_text():
            await channels.publish(room, {"from": name, "text": text})
"""


class Servers:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, server: str = "uvicorn") -> str:
        """Serve the project with ``covet run --server SERVER``; return its ``host:port``."""
        port = free_port()
        process = start_covet(
            "run", "--port", str(port), "--server", server, cwd=self.root, **self.env
        )
        self.processes.append(process)
        wait_for_server(f"http://127.0.0.1:{port}/health", process)
        return f"127.0.0.1:{port}"


@pytest.fixture(params=["redis", "postgres"])
async def servers(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Servers]:
    backend: str = request.param
    if backend == "redis":
        await require_redis()
    else:
        require_postgres()
    prefix = unique_prefix(backend).rstrip("_:") + ("_" if backend == "postgres" else ":")
    root = write_project(tmp_path, "chatroom", APP)
    env = {"CHANNELS_URL": backend_url(backend), "CHANNELS_PREFIX": prefix}
    state = Servers(root, env)
    try:
        yield state
    finally:
        for process in state.processes:
            if process.poll() is None:
                stop_server(process, signal.SIGTERM)
            else:
                process.communicate(timeout=10)  # closes its pipes
        await drop_prefix(backend, prefix)


async def receive(websocket: Any) -> Any:
    return json.loads(await asyncio.wait_for(websocket.recv(), 10))


async def test_a_message_crosses_workers_and_presence_spans_them(servers: Servers) -> None:
    first, second = servers.start("granian"), servers.start()
    async with (
        connect(f"ws://{first}/rooms/lobby/ws?name=ann") as ann,
        connect(f"ws://{second}/rooms/lobby/ws?name=bob") as bob,
        httpx.AsyncClient(timeout=10) as http,
    ):
        joined = [await receive(ann), await receive(bob)]
        assert joined[0]["worker"] != joined[1]["worker"]  # two processes
        # A request on the second server reaches the socket on the first, and the reverse.
        response = await http.post(f"http://{second}/rooms/lobby", json={"text": "hello"})
        assert response.json() == {"id": 1}
        for socket in (ann, bob):
            assert await receive(socket) == {
                "type": "message",
                "channel": "lobby",
                "id": 1,
                "data": {"text": "hello"},
            }
        await ann.send("hi bob")
        assert (await receive(bob))["data"] == {"from": "ann", "text": "hi bob"}
        assert (await receive(ann))["id"] == 2
        for server in (first, second):
            members = await http.get(f"http://{server}/rooms/lobby/members")
            assert members.json() == ["ann", "bob"]

        # The second server dies without a chance to clean up: bob expires.
        servers.processes[1].send_signal(signal.SIGKILL)
        servers.processes[1].wait(10)
        deadline = time.monotonic() + 10
        members = await http.get(f"http://{first}/rooms/lobby/members")
        while time.monotonic() < deadline:
            members = await http.get(f"http://{first}/rooms/lobby/members")
            if members.json() == ["ann"]:
                break
            await asyncio.sleep(0.2)
        assert members.json() == ["ann"]


async def test_sse_on_one_worker_resumes_what_another_published(servers: Servers) -> None:
    first, second = servers.start("granian"), servers.start()
    async with httpx.AsyncClient(timeout=10) as http:
        for n in range(1, 4):
            await http.post(f"http://{second}/rooms/news", json=n)
        url = f"http://{first}/rooms/news/events"
        async with http.stream("GET", url, headers={"Last-Event-ID": "1"}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines: list[str] = []
            published = False
            async for line in stream.aiter_lines():
                lines.append(line)
                ids = [entry for entry in lines if entry.startswith("id: ")]
                if ids == ["id: 2", "id: 3"] and not published:
                    published = True
                    await http.post(f"http://{second}/rooms/news", json=4)
                if len(ids) == 3 and line.startswith("data: "):
                    break
    assert [entry for entry in lines if entry.startswith("id: ")] == ["id: 2", "id: 3", "id: 4"]
    data = [json.loads(entry[6:]) for entry in lines if entry.startswith("data: ")]
    assert [item["data"] for item in data] == [2, 3, 4]
