"""Start-up cost and memory: ``import covet`` and a scaffolded project's worker, against Starlette.

Three measurements, each in fresh interpreters, interleaved so that the shared
machine's load falls on both contenders alike:

1. **Import time**: ``python -X importtime -c "import X"``, summing the
   cumulative time of the top-level imports the statement added (the
   interpreter's own start-up is left out); the median of ``--runs`` runs.
   ``starlette`` is the bare package (``import starlette`` loads almost
   nothing), ``starlette (surface)`` imports what ``import covet`` gives a user:
   the application, routing, requests, responses, websockets, exceptions and
   the test client's absence aside.
2. **Import RSS**: ``VmRSS`` after the import minus ``VmRSS`` of ``python -c
   pass``, and how many modules the import loaded.
3. **Worker RSS**: a project made by ``covet new`` (SQLite, migrated) served by
   uvicorn, and a Starlette app doing the same kinds of work (Jinja2 pages, a
   signed-cookie session, SQLAlchemy async over aiosqlite, pydantic, the
   Prometheus client), each warmed up with ``--warmup`` requests on every page,
   then ``VmRSS`` read from ``/proc/PID/status``.

Run from the repository root::

    .venv/bin/python benchmarks/startup/run.py
    .venv/bin/python benchmarks/startup/run.py --runs 15 --skip-worker
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
COVET_CLI = [PY, "-c", "from covet.cli import main; main()"]

IMPORTS = {
    "covet": "import covet",
    "starlette": "import starlette",
    "starlette (surface)": (
        "import starlette.applications, starlette.routing, starlette.requests, "
        "starlette.responses, starlette.websockets, starlette.exceptions"
    ),
}

RSS_SNIPPET = (
    "import sys\n{stmt}\n"
    "for line in open('/proc/self/status'):\n"
    "    if line.startswith('VmRSS:'):\n"
    "        print(line.split()[1], len(sys.modules))\n"
)

_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # Production settings, as a deployed worker runs; the debug row sets COVET_DEBUG=1
    # itself (what the .env of `covet new` sets, for development).
    env["COVET_DEBUG"] = "0"
    return env


def import_us(stmt: str) -> int:
    """Return the microseconds the top-level imports of ``stmt`` took (``-X importtime``)."""
    proc = subprocess.run(
        [PY, "-X", "importtime", "-c", stmt], capture_output=True, text=True, env=_env(), check=True
    )
    # Each top-level import (no indentation) carries its dependencies' time; the site
    # modules the interpreter loads before running -c are recorded before a "-c" marker
    # that does not exist, so compare with the same interpreter running "pass".
    return sum(
        int(m.group(2))
        for line in proc.stderr.splitlines()
        if (m := _LINE.match(line)) and not m.group(3) and m.group(4) not in _BASELINE
    )


def _baseline_modules() -> set[str]:
    proc = subprocess.run(
        [PY, "-X", "importtime", "-c", "pass"], capture_output=True, text=True, check=True
    )
    return {m.group(4) for line in proc.stderr.splitlines() if (m := _LINE.match(line))}


_BASELINE: set[str] = set()


def import_rss(stmt: str) -> tuple[int, int]:
    """Return ``(VmRSS kB, modules loaded)`` of a fresh interpreter after ``stmt``."""
    out = subprocess.run(
        [PY, "-c", RSS_SNIPPET.format(stmt=stmt)],
        capture_output=True,
        text=True,
        env=_env(),
        check=True,
    ).stdout.split()
    return int(out[0]), int(out[1])


def measure_imports(runs: int) -> None:
    """Print the import-time and import-RSS table."""
    _BASELINE.update(_baseline_modules())
    times: dict[str, list[int]] = {name: [] for name in IMPORTS}
    rss: dict[str, list[int]] = {name: [] for name in [*IMPORTS, "(python -c pass)"]}
    mods: dict[str, int] = {}
    for _ in range(runs):
        for name, stmt in IMPORTS.items():
            times[name].append(import_us(stmt))
            kb, n = import_rss(stmt)
            rss[name].append(kb)
            mods[name] = n
        kb, n = import_rss("pass")
        rss["(python -c pass)"].append(kb)
        mods["(python -c pass)"] = n
    base_rss = statistics.median(rss["(python -c pass)"])
    base_mods = mods["(python -c pass)"]
    covet_ms = statistics.median(times["covet"]) / 1000
    print(f"\nImport, median of {runs} fresh interpreters ({sys.version.split()[0]})\n")
    print("| Import | Time (ms) | vs covet | Extra RSS (MB) | Modules loaded |")
    print("|---|---:|---:|---:|---:|")
    for name in IMPORTS:
        ms = statistics.median(times[name]) / 1000
        extra = (statistics.median(rss[name]) - base_rss) / 1024
        print(
            f"| `{IMPORTS[name]}` | {ms:.1f} | {ms / covet_ms:.2f} | {extra:.1f} "
            f"| {mods[name] - base_mods} |"
        )


STARLETTE_APP = '''
"""A Starlette app doing the kinds of work a covet scaffold does, for the RSS comparison."""
import contextlib
from pathlib import Path

from jinja2 import DictLoader, Environment
from prometheus_client import Counter
from pydantic import BaseModel
from sqlalchemy import Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent
engine = create_async_engine(f"sqlite+aiosqlite:///{HERE / 'peer.sqlite3'}")
Session = async_sessionmaker(engine, expire_on_commit=False)
REQUESTS = Counter("peer_requests", "Requests")


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))


class NoteIn(BaseModel):
    title: str


env = Environment(loader=DictLoader({
    "base.html": "<!doctype html><title>{% block title %}{% endblock %}</title>"
                 "{% block body %}{% endblock %}",
    "login.html": "{% extends 'base.html' %}{% block body %}<form method=post>"
                  "<input name=csrf value='{{ token }}'><input name=email></form>{% endblock %}",
    "list.html": "{% extends 'base.html' %}{% block body %}<ul>{% for n in notes %}"
                 "<li>{{ n.title }}</li>{% endfor %}</ul>{% endblock %}",
}), autoescape=True)
templates = Jinja2Templates(env=env)


async def login(request):
    REQUESTS.inc()
    request.session.setdefault("csrf", "x" * 32)
    return templates.TemplateResponse(request, "login.html", {"token": request.session["csrf"]})


async def notes(request):
    REQUESTS.inc()
    async with Session() as s:
        rows = (await s.execute(select(Note).limit(20))).scalars().all()
    return templates.TemplateResponse(request, "list.html", {"notes": rows})


async def api_notes(request):
    REQUESTS.inc()
    async with Session() as s:
        rows = (await s.execute(select(Note).limit(20))).scalars().all()
    return JSONResponse([NoteIn(title=r.title).model_dump() for r in rows])


async def up(request):
    return PlainTextResponse("ok")


@contextlib.asynccontextmanager
async def lifespan(app):
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with Session() as s, s.begin():
        if not (await s.execute(select(Note).limit(1))).first():
            s.add_all(Note(title=f"Note {i}") for i in range(20))
    yield
    await engine.dispose()


(HERE / "static").mkdir(exist_ok=True)
app = Starlette(
    routes=[
        Route("/", notes), Route("/login", login), Route("/api/notes", api_notes),
        Route("/up", up), Mount("/static", StaticFiles(directory=HERE / "static")),
    ],
    middleware=[
        Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"]),
        Middleware(SessionMiddleware, secret_key="s" * 32),
    ],
    lifespan=lifespan,
)
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS line.")


def _get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": "127.0.0.1"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def serve_rss(
    cwd: Path, app: str | None, paths: list[str], warmup: int, debug: bool = False
) -> tuple[int, dict[str, int]]:
    """Serve ``app`` in ``cwd``, warm it up on ``paths``; return (VmRSS kB, statuses).

    uvicorn serves ``app``; with None, ``covet run`` serves the project in ``cwd``
    (one process: it checks the database, then serves in the same interpreter).
    ``debug`` serves with ``COVET_DEBUG=1``, which also compares the models with the
    schema (in a child process).
    """
    port = _free_port()
    env = _env()
    if debug:
        env["COVET_DEBUG"] = "1"
    env["PYTHONPATH"] = str(cwd) + os.pathsep + env["PYTHONPATH"]
    if app is None:
        env["COVET_ACCESS_LOG"] = "0"
        command = [*COVET_CLI, "run", "--port", str(port)]
    else:
        command = [PY, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(port, "/up")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{app} did not start (exit {proc.poll()}).") from None
                time.sleep(0.2)
        statuses = {}
        for _ in range(warmup):
            for path in paths:
                statuses[path] = _get(port, path)
        time.sleep(0.5)
        return _rss_kb(proc.pid), statuses
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure_workers(warmup: int, runs: int) -> None:
    """Print the worker RSS table: a scaffolded covet project against the Starlette peer."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        env = _env()
        subprocess.run(
            [*COVET_CLI, "new", "notesite", "--directory", str(base / "site")],
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*COVET_CLI, "migrate"],
            cwd=base / "site",
            env=env,
            check=True,
            capture_output=True,
        )
        peer = base / "peer"
        peer.mkdir()
        (peer / "peer_app.py").write_text(textwrap.dedent(STARLETTE_APP))
        covet_paths = ["/login", "/up", "/", "/api/notes", "/static/style.css", "/missing"]
        peer_paths = ["/login", "/up", "/", "/api/notes", "/missing"]
        site = base / "site"
        # Row name -> what serve_rss() serves: directory, app (None: `covet run`), paths, debug.
        rows: dict[str, tuple[Path, str | None, list[str], bool]] = {
            "covet (scaffold)": (site, "notesite.app:app", covet_paths, False),
            "covet (scaffold, `covet run`)": (site, None, covet_paths, False),
            "covet (scaffold, `covet run`, debug)": (site, None, covet_paths, True),
            "starlette": (peer, "peer_app:app", peer_paths, False),
        }
        results: dict[str, list[int]] = {name: [] for name in rows}
        codes: dict[str, dict[str, int]] = {}
        for _ in range(runs):
            for name, (cwd, app, paths, debug) in rows.items():
                kb, codes[name] = serve_rss(cwd, app, paths, warmup, debug=debug)
                results[name].append(kb)
    covet_mb = statistics.median(results["covet (scaffold)"]) / 1024
    print(f"\nWorker RSS after {warmup} rounds of requests, median of {runs} runs\n")
    print("| App | VmRSS (MB) | vs covet | Paths (status) |")
    print("|---|---:|---:|---|")
    for name, values in results.items():
        mb = statistics.median(values) / 1024
        paths = ", ".join(f"{p} {s}" for p, s in codes[name].items())
        print(f"| {name} | {mb:.1f} | {mb / covet_mb:.2f} | {paths} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per import")
    parser.add_argument("--warmup", type=int, default=50, help="request rounds per worker")
    parser.add_argument("--worker-runs", type=int, default=3, help="workers started per app")
    parser.add_argument("--skip-imports", action="store_true")
    parser.add_argument("--skip-worker", action="store_true")
    args = parser.parse_args()
    if not args.skip_imports:
        measure_imports(args.runs)
    if not args.skip_worker:
        measure_workers(args.warmup, args.worker_runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
