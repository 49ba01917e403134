"""Acknowledged writes through a scaffolded app while its database server restarts.

The scenario behind ``docs/reliability.md``'s write-load figures, shared by the
short test (``tests/reliability/test_write_load.py``) and the full run
(``benchmarks/reliability/run.py write-load``):

1. A private PostgreSQL or MariaDB server (:mod:`tests.reliability.servers`).
2. A project made by ``covet new``, migrated with ``covet migrate``, with one
   user and an API token made by the project's ``covet createtoken``, served by
   ``covet run --workers 2`` in production mode.
3. A separate client process (``python -m tests.reliability.write_load client``)
   posts notes to ``POST /api/notes`` (bearer token: a token lookup, then an
   INSERT, per request) from ``clients`` kept-alive connections until
   ``writes`` notes were acknowledged with 201, noting every response.
4. Meanwhile the server is restarted ``restarts`` times, evenly spread over the
   run; a probe notes when the server answers again after each.

Afterwards every acknowledged note id is looked up in the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from covet.db import Database
from tests.reliability.servers import PrivateMariaDB, PrivatePostgres, PrivateServer, free_port

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("Figures", "run_write_load")

REPO = Path(__file__).resolve().parents[2]
SERVERS: dict[str, type[PrivateServer]] = {"postgres": PrivatePostgres, "mysql": PrivateMariaDB}
#: The command line of ``covet`` with this interpreter.
COVET = [sys.executable, "-c", "import sys; from covet.cli import main; sys.exit(main())"]
REQUEST_TIMEOUT = 15.0  # seconds; a response slower than this counts as a hang


@dataclass
class Figures:
    """What one run measured."""

    backend: str
    writes: int
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    #: Responses other than 201 and 503-with-Retry-After (first few kept).
    bad: list[str] = field(default_factory=list)
    #: Requests that got no response within REQUEST_TIMEOUT, or a connection error.
    hangs: int = 0
    errors: list[str] = field(default_factory=list)
    lost_writes: int = 0
    #: Per restart: seconds from the restart to the server answering again.
    outages: list[float] = field(default_factory=list)
    #: Per restart: seconds from the server answering to the app's last 503 (<= 0: before).
    last_503_after_answering: list[float] = field(default_factory=list)
    #: Per restart: seconds from the server answering to the app's next 201.
    first_201_after_answering: list[float] = field(default_factory=list)
    duration: float = 0.0
    server_log_problems: list[str] = field(default_factory=list)

    @property
    def recovery(self) -> float:
        """The worst time to recovery: later of last 503 and first 201, after the server answers."""
        worst = [
            max(a, b)
            for a, b in zip(
                self.last_503_after_answering, self.first_201_after_answering, strict=True
            )
        ]
        return max(worst, default=0.0)

    def as_dict(self) -> dict[str, Any]:
        """Return the figures as JSON-ready data."""
        return {
            "backend": self.backend,
            "acknowledged": self.statuses.get(201, 0),
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "bad": self.bad[:5],
            "hangs": self.hangs,
            "errors": self.errors[:5],
            "lost_writes": self.lost_writes,
            "outages_s": [round(x, 2) for x in self.outages],
            "last_503_after_answering_s": [round(x, 3) for x in self.last_503_after_answering],
            "first_201_after_answering_s": [round(x, 3) for x in self.first_201_after_answering],
            "recovery_s": round(self.recovery, 3),
            "duration_s": round(self.duration, 1),
            "server_log_problems": self.server_log_problems[:5],
        }


# -- the client process ---------------------------------------------------------------


async def _client_main(base: str, token: str, writes: int, clients: int) -> None:
    """Post notes until ``writes`` were acknowledged; print one JSON line per event.

    Lines: ``{"ack": N}`` every 100 acknowledgements (progress, for the
    restarts), then ``{"done": ...}`` with every response's time and status and
    the acknowledged ids.
    """
    acknowledged: dict[int, str] = {}
    timeline: list[tuple[float, int]] = []
    bad: list[str] = []
    errors: list[str] = []
    hangs = 0
    headers = {"authorization": f"Bearer {token}", "accept": "application/json"}

    async def one_client(number: int) -> None:
        nonlocal hangs
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(
            base_url=base, headers=headers, timeout=REQUEST_TIMEOUT, limits=limits
        ) as client:
            while len(acknowledged) < writes:
                title = f"w{number}-{secrets.token_hex(6)}"
                try:
                    response = await client.post("/api/notes", json={"title": title})
                except httpx.HTTPError as exc:
                    hangs += 1
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                status = response.status_code
                timeline.append((time.monotonic(), status))
                if status == 201:
                    acknowledged[int(response.json()["id"])] = title
                    if len(acknowledged) % 100 == 0:
                        print(json.dumps({"ack": len(acknowledged)}), flush=True)
                elif status != 503 or not response.headers.get("retry-after", "").isdigit():
                    bad.append(f"{status} {dict(response.headers)} {response.text[:300]}")
                else:
                    await asyncio.sleep(0.01)  # a client backs off a little after a 503

    await asyncio.gather(*(one_client(n) for n in range(clients)))
    done = {"acknowledged": acknowledged, "timeline": timeline, "bad": bad, "errors": errors}
    print(json.dumps({"done": done, "hangs": hangs}), flush=True)


# -- the orchestrator -----------------------------------------------------------------


def _covet(*args: str, cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(
        [*COVET, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"covet {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "SECRET_KEY", "COVET_DEBUG", "ALLOWED_HOSTS"}
        and not k.startswith("PYTEST_")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


SEED_SNIPPET = """
import asyncio
from covet.auth import hash_password
from covet.config import load_settings
from covet.db import Database
from loadsite.models import APIToken, User

async def main():
    async with Database(load_settings().database_url):
        user = await User.objects.create(
            email='load@example.com', password=await hash_password('x' * 16)
        )
        token, _ = await APIToken.create_for(user, name='load')
    print(token)

asyncio.run(main())
"""


def scaffold(root: Path) -> Path:
    """Run ``covet new loadsite`` in ``root``; return the project directory."""
    _covet("new", "loadsite", cwd=root, env=_env())
    return root / "loadsite"


def make_project(project: Path, url: str) -> tuple[dict[str, str], str]:
    """Migrate ``project`` onto ``url`` and make a user and an API token; return (env, token).

    The same as ``covet migrate``, signing up and ``covet createtoken``.
    """
    env = _env(
        DATABASE_URL=url,
        SECRET_KEY=secrets.token_urlsafe(32),
        COVET_DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    env["PYTHONPATH"] = os.pathsep.join([str(project), env["PYTHONPATH"]])
    _covet("migrate", cwd=project, env=env)
    seeded = subprocess.run(
        [sys.executable, "-c", SEED_SNIPPET],
        cwd=project,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    return env, seeded.stdout.strip()


async def _answers(url: str) -> bool:
    db = Database(url, alias=f"probe_{secrets.token_hex(4)}", min_size=0, max_size=1, timeout=1)
    try:
        await db.connect()
        return bool(await db.fetch_val("SELECT 1") == 1)
    except Exception:  # noqa: BLE001 - not answering yet
        return False
    finally:
        with contextlib.suppress(Exception):
            await db.disconnect()


def _restart_and_probe(server: PrivateServer, url: str) -> tuple[float, float]:
    """Restart ``server``; return (restart started, first probe answered after it went down)."""
    restart = threading.Thread(target=server.restart)
    started = time.monotonic()
    restart.start()
    went_down = False
    while time.monotonic() < started + 120:
        up = asyncio.run(_answers(url))
        if not up:
            went_down = True
        elif went_down or not restart.is_alive():
            answering = time.monotonic()
            restart.join(120)
            return started, answering
        time.sleep(0.02)
    raise RuntimeError("the database server did not answer within 120 s of its restart")


_KILL_ALL = {
    "postgres": (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'"
    ),
    "mysql": (
        "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
        "AND COMMAND <> 'Daemon'"
    ),
}


async def _kill_sessions(url: str, backend: str) -> int:
    """End every other client session on the server (mid-statement, mid-transaction)."""
    async with Database(url, alias=f"killer_{secrets.token_hex(4)}", min_size=1) as db:
        if backend == "postgres":
            return len(await db.fetch_all(_KILL_ALL[backend]))
        killed = 0
        for (victim,) in await db.fetch_all(_KILL_ALL[backend]):
            with contextlib.suppress(Exception):  # it may have ended meanwhile
                await db.execute(f"KILL {int(victim)}")
                killed += 1
        return killed


def _kill_and_probe(server: PrivateServer, url: str) -> tuple[float, float]:
    """Kill every session of the app on ``server``; return (killed at, killed at)."""
    started = time.monotonic()
    asyncio.run(_kill_sessions(url, server.backend))
    return started, started


async def _stored(url: str, ids: list[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    async with Database(url, alias=f"check_{secrets.token_hex(4)}") as db:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join(f":i{n}" for n in range(len(chunk)))
            rows = await db.fetch_all(
                f"SELECT id, title FROM notes WHERE id IN ({marks})",  # noqa: S608 - placeholders
                {f"i{n}": i for n, i in enumerate(chunk)},
            )
            found.update({int(r[0]): str(r[1]) for r in rows})
    return found


def _log_problems(log: str) -> list[str]:
    """Return the server log lines that show a 500, a traceback or a raw driver error."""
    problems = []
    for line in log.splitlines():
        said = line
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                record.pop("logger", None)  # asyncpg's pool logs on "asyncpg.pool" by design
                said = json.dumps(record)
        if any(
            word in said
            for word in ("Traceback", '" 500', "status=500", "InternalClientError", "pymysql.err")
        ):
            problems.append(line[:400])
    return problems


def run_write_load(
    backend: str,
    *,
    writes: int,
    clients: int = 16,
    restarts: int = 1,
    workdir: Path,
    server: PrivateServer | None = None,
    project: Path | None = None,
    fault: str = "restart",
) -> Figures:
    """Run the scenario once; return its figures.

    Args:
        backend: ``"postgres"`` or ``"mysql"``.
        writes: Acknowledged writes to reach.
        clients: Kept-alive client connections.
        restarts: Server restarts, evenly spread over the run.
        workdir: Where the project and the logs go.
        server: A running private server of ``backend`` to use (a new database
            on it); by default a new server is started and removed.
        project: A project made by :func:`scaffold` to reuse; by default one
            is made in ``workdir``.
        fault: ``"restart"`` restarts the server; ``"kill"`` instead ends every
            session of the app on the server (``pg_terminate_backend()``,
            ``KILL``), mid-statement and mid-transaction, ``restarts`` times.
    """
    figures = Figures(backend=backend, writes=writes)
    with contextlib.ExitStack() as stack:
        if server is None:
            server = stack.enter_context(SERVERS[backend]())
        url = asyncio.run(server.create_database(f"load_{secrets.token_hex(4)}"))
        project = project or scaffold(workdir)
        env, token = make_project(project, url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log_path = workdir / "server.log"
        with log_path.open("w") as log:
            app = subprocess.Popen(
                [*COVET, "run", "--port", str(port), "--workers", "2", "--no-check"],
                cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if httpx.get(f"{base}/up", timeout=2).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if app.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the app did not start:\n{log_path.read_text()}")
                    time.sleep(0.1)
                fault_at = _kill_and_probe if fault == "kill" else _restart_and_probe
                figures = _drive(
                    server, url, base, token, writes, clients, restarts, figures, fault_at
                )
            finally:
                app.send_signal(signal.SIGTERM)
                try:
                    app.wait(30)
                except subprocess.TimeoutExpired:
                    app.kill()
                    app.wait()
        figures.server_log_problems = _log_problems(log_path.read_text("utf-8", "replace"))
    return figures


def _drive(
    server: PrivateServer,
    url: str,
    base: str,
    token: str,
    writes: int,
    clients: int,
    restarts: int,
    figures: Figures,
    fault_at: Callable[[PrivateServer, str], tuple[float, float]],
) -> Figures:
    marks = [writes * (n + 1) // (restarts + 1) for n in range(restarts)]
    started = time.monotonic()
    client = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.write_load", "client", base, token,
         str(writes), str(clients)],
        cwd=REPO, env=_env(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    windows: list[tuple[float, float]] = []
    result: dict[str, Any] = {}
    assert client.stdout is not None
    with client.stdout:
        for line in client.stdout:
            event = json.loads(line)
            if "ack" in event and marks and event["ack"] >= marks[0]:
                marks.pop(0)
                windows.append(fault_at(server, url))
            elif "done" in event:
                result = event
    client.wait(60)
    figures.duration = time.monotonic() - started
    if not result:
        raise RuntimeError(f"the client process ended with {client.returncode} and no result")
    done = result["done"]
    timeline = [(float(t), int(s)) for t, s in done["timeline"]]
    for _t, status in timeline:
        figures.statuses[status] = figures.statuses.get(status, 0) + 1
    figures.requests = len(timeline)
    figures.bad, figures.errors, figures.hangs = done["bad"], done["errors"], result["hangs"]
    acknowledged = {int(k): v for k, v in done["acknowledged"].items()}
    stored = asyncio.run(_stored(url, sorted(acknowledged)))
    figures.lost_writes = sum(1 for i, title in acknowledged.items() if stored.get(i) != title)
    for n, (restart_started, answering) in enumerate(windows):
        until = windows[n + 1][0] if n + 1 < len(windows) else float("inf")
        figures.outages.append(answering - restart_started)
        in_window = [(t, s) for t, s in timeline if restart_started <= t < until]
        last_503 = max((t for t, s in in_window if s == 503), default=restart_started)
        first_201 = min((t for t, s in in_window if s == 201 and t >= answering), default=None)
        figures.last_503_after_answering.append(last_503 - answering)
        figures.first_201_after_answering.append(
            float("inf") if first_201 is None else first_201 - answering
        )
    return figures


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.reliability.write_load client BASE TOKEN WRITES CLIENTS`` (internal)."""
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    client = sub.add_parser("client")
    client.add_argument("base")
    client.add_argument("token")
    client.add_argument("writes", type=int)
    client.add_argument("clients", type=int)
    args = parser.parse_args(argv)
    asyncio.run(_client_main(args.base, args.token, args.writes, args.clients))


if __name__ == "__main__":
    main()
