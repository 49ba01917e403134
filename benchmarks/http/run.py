"""Benchmark covet's HTTP path against a bare ASGI app, Starlette and other peers.

Every app runs under identical uvicorn settings (one worker, httptools,
uvloop, no access log, loopback only) and is loaded with ``wrk``. In every
round the apps run back to back on each endpoint, in shuffled order, and
ratios to bare ASGI are taken within the round, so drift in background load
cancels out. Besides requests per second, the worker's CPU time per request
is reported: on a shared machine it is the steadier figure.

Also measured: ``import`` time in a fresh interpreter and the resident memory
of an idle worker, for covet beside Starlette; and covet with 1 versus 500
parametrised routes, hitting the last one, to show routing stays flat. Every
Python child runs with its bytecode cached (in a directory under the system
temporary directory, not in the repository), as for an installed package.

Run from the repository root::

    .venv/bin/python benchmarks/http/run.py                # about 2.5 minutes
    .venv/bin/python benchmarks/http/run.py --duration 2 --rounds 1 --only bare,starlette
    .venv/bin/python benchmarks/http/run.py --server uvicorn,granian --only bare,covet

``--only`` also takes BlackSheep, Falcon, Litestar and FastAPI when the script
runs from an environment with the ``bench`` extra (see ``EXTRA_PEERS``).

With ``--server uvicorn,granian`` every app also runs under granian (one
worker, its ASGI interface, uvloop, no access log), as ``APP@granian``, in the
same interleaved rounds; ratios stay relative to bare ASGI under uvicorn.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

# (label, uvicorn app import path)
SERVERS = {
    "bare": "benchmarks.http.bare_app:app",
    "starlette": "benchmarks.http.starlette_app:app",
    "covet": "benchmarks.http.covet_app:app",
    "covet-1-route": "benchmarks.http.covet_app:app_1",
    "covet-500-routes": "benchmarks.http.covet_app:app_500",
}
#: More peers, chosen with ``--only``. They are not covet dependencies: they come with the
#: ``bench`` extra, installed in an environment of its own, whose interpreter runs the script:
#:
#:     python3 -m venv /tmp/bench-venv && /tmp/bench-venv/bin/pip install -e '.[bench]'
#:     /tmp/bench-venv/bin/python benchmarks/http/instructions.py --only bare,covet,blacksheep
EXTRA_PEERS = {
    "blacksheep": "benchmarks.http.blacksheep_app:app",
    "falcon": "benchmarks.http.falcon_app:app",
    "litestar": "benchmarks.http.litestar_app:app",
    "fastapi": "benchmarks.http.fastapi_app:app",
}
#: What ``--only`` runs by default: the apps this repository's own environment has.
DEFAULT_APPS = tuple(SERVERS)
SERVERS.update(EXTRA_PEERS)
#: What each peer of ``EXTRA_PEERS`` imports (see ``require_installed()``).
PEER_MODULES = {name: (name,) for name in EXTRA_PEERS}
MAIN_APPS = ("bare", "starlette", "covet")
#: The apps that serve the four endpoints (the routing apps serve one route each).
ENDPOINT_APPS = (*MAIN_APPS, *EXTRA_PEERS)
#: The HTTP servers ``--server`` chooses from; apps under granian are named ``APP@granian``.
HTTP_SERVERS = ("uvicorn", "granian")
# (label, path, expected body)
ENDPOINTS = (
    ("plaintext", "/plaintext", b"Hello, World!"),
    ("json", "/json", b'{"message":"Hello, World!"}'),
    ("route /r99/{id:int}", "/r99/12345", b'{"route":99,"id":12345}'),
    ("static /static99", "/static99", b"static 99"),
)
ROUTING = (
    ("covet-1-route", "/r0/12345", b'{"route":0,"id":12345}'),
    ("covet-500-routes", "/r499/12345", b'{"route":499,"id":12345}'),
)
IMPORTS = {
    "covet": "import covet",
    "starlette": (
        "import starlette.applications, starlette.requests, starlette.responses, starlette.routing"
    ),
}
# Every Python child runs with its bytecode cached, as an installed package would: covet
# runs from source here and Starlette from site-packages with .pyc files, so compiling
# covet on each start would be charged to its import time and memory. The cache lives
# outside the repository, which stays clean.
PYCACHE = Path(tempfile.gettempdir()) / "covet-benchmark-pycache"
# What a server imports (uvicorn's httptools/uvloop/lifespan modules load at startup).
_SERVER_IMPORTS = (
    "import uvicorn.main, uvicorn.loops.uvloop, uvicorn.protocols.http.httptools_impl, "
    "uvicorn.lifespan.on"
)
_RPS_RE = re.compile(r"Requests/sec:\s+([0-9.]+)")
_TOTAL_RE = re.compile(r"(\d+) requests in ")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_ERRORS_RE = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)|Socket errors:.*")


@dataclass
class Server:
    """A running uvicorn process serving one app."""

    name: str
    target: str
    port: int
    process: subprocess.Popen[bytes]
    idle_rss_kib: int = 0
    loaded_rss_kib: int = 0
    results: dict[str, list[float]] = field(default_factory=dict)
    cpu_per_request: dict[str, list[float]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def python_env() -> dict[str, str]:
    """Return the environment for a Python child: repository on the path, bytecode cached.

    A ``PYTHONPATH`` already set stays on the path after the repository (the
    Cython probe's compiled floor lives there).
    """
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONPYCACHEPREFIX": str(PYCACHE)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def warm_bytecode(targets: list[str]) -> None:
    """Compile everything the servers and the import timings load, before measuring."""
    modules = sorted({target.partition(":")[0] for target in targets})
    statements = [_SERVER_IMPORTS, *(f"import {module}" for module in modules), *IMPORTS.values()]
    subprocess.run([PYTHON, "-c", "\n".join(statements)], check=True, cwd=ROOT, env=python_env())


def split_list(text: str) -> list[str]:
    """Return the items of a comma-separated option, blanks dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


def pick_apps(parser: argparse.ArgumentParser, text: str, known: Iterable[str]) -> list[str]:
    """Return the apps named in ``--only``; an unknown name is a usage error naming the choices."""
    names = split_list(text)
    choices = list(known)
    unknown = sorted(set(names) - set(choices))
    if unknown:
        parser.error(f"unknown app(s) {unknown}; choose from {', '.join(choices)}")
    return names


def require_installed(
    parser: argparse.ArgumentParser, names: Iterable[str], needs: Mapping[str, Iterable[str]]
) -> None:
    """Make it a usage error to choose an app whose modules (``needs[app]``) are missing.

    The peers are not covet dependencies but the ``bench`` extra's; the error says how to
    make an environment that has them, instead of a traceback from a worker.
    """
    missing = sorted(
        {module for name in names for module in needs.get(name, ()) if find_spec(module) is None}
    )
    if missing:
        parser.error(
            f"{', '.join(missing)} not installed for {sys.executable}. The peers are not covet "
            "dependencies but the bench extra's: python3 -m venv /tmp/bench-venv && "
            "/tmp/bench-venv/bin/pip install -e '.[bench]', then run this script with "
            "/tmp/bench-venv/bin/python."
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) if match else 0


def _pinned(cpu: int | None) -> Any:
    """Return a preexec_fn pinning the child to ``cpu`` (None: no pinning)."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def server_command(server: str, target: str, port: int) -> list[str]:
    """Return the command serving ``target`` on ``port`` with one worker of ``server``."""
    if server == "granian":
        return [
            PYTHON, "-m", "granian", target, "--interface", "asgi",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    return [
        PYTHON, "-m", "uvicorn", target,
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning", "--lifespan", "on",
    ]  # fmt: skip


def app_label(name: str, server: str) -> str:
    """Return the name an app is reported under: ``APP`` under uvicorn, ``APP@granian`` else."""
    return name if server == "uvicorn" else f"{name}@{server}"


def process_tree(pid: int) -> list[int]:
    """Return ``pid`` and all its descendants (granian serves from a child process)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        children.setdefault(int(stat.rpartition(")")[2].split()[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def tree_cpu_seconds(pids: list[int]) -> float:
    """Return the user + system CPU time the processes ``pids`` have used so far."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


def tree_rss_kib(pid: int) -> int:
    """Return the RSS of the largest process of the tree: the worker (KiB)."""
    return max(rss_kib(member) for member in process_tree(pid))


def start_server(name: str, target: str, cpu: int | None = None, server: str = "uvicorn") -> Server:
    port = free_port()
    command = server_command(server, target, port)
    process = subprocess.Popen(command, cwd=ROOT, env=python_env(), preexec_fn=_pinned(cpu))
    instance = Server(name, target, port, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name}: {server} exited with code {process.returncode}.")
        try:
            with urllib.request.urlopen(instance.url("/plaintext"), timeout=1):
                break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    else:
        stop_server(instance)
        raise SystemExit(f"{name}: {server} did not answer on port {port} within 30 s.")
    time.sleep(0.5)
    instance.idle_rss_kib = tree_rss_kib(process.pid)
    return instance


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def check_endpoint(server: Server, path: str, expected: bytes) -> None:
    """Fail loudly if an app answers wrongly: a fast wrong answer is no result."""
    with urllib.request.urlopen(server.url(path), timeout=5) as response:
        body = response.read()
        status = response.status
    if status != 200 or body != expected:
        raise SystemExit(f"{server.name} {path}: got {status} {body!r}, expected 200 {expected!r}.")


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # Fields 14 and 15 of proc(5), counted after the ")" that ends the name.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def run_wrk(
    url: str, duration: float, connections: int, threads: int, cpu: int | None = None
) -> tuple[float, int]:
    """Load ``url`` with wrk; return requests per second and requests completed."""
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--timeout", "5s", url,
    ]  # fmt: skip
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, preexec_fn=_pinned(cpu)
    ).stdout
    if _ERRORS_RE.search(output):
        raise SystemExit(f"wrk reported errors for {url}:\n{output}")
    rps = _RPS_RE.search(output)
    total = _TOTAL_RE.search(output)
    if rps is None or total is None:
        raise SystemExit(f"Could not read the request rate from wrk output:\n{output}")
    return float(rps.group(1)), int(total.group(1))


def import_time(statement: str, samples: int) -> float:
    """Return the median seconds ``statement`` takes in a fresh interpreter."""
    code = (
        "import time\n"
        "start = time.perf_counter()\n"
        f"{statement}\n"
        "print(time.perf_counter() - start)\n"
    )
    env = python_env()
    timings = []
    for _ in range(samples):
        result = subprocess.run(
            [PYTHON, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env
        )
        timings.append(float(result.stdout.strip()))
    return statistics.median(timings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per cell")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--import-samples", type=int, default=15, help="fresh interpreters")
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT_APPS),
        help=(
            f"comma-separated subset of: {', '.join(SERVERS)} (the default: "
            f"{', '.join(DEFAULT_APPS)}; the others need their framework installed)"
        ),
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin servers to the first allowed CPU and wrk to the second (Linux)",
    )
    parser.add_argument(
        "--server",
        default="uvicorn",
        help="uvicorn, granian, or both (comma-separated): the HTTP server(s) each app runs under",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    args = parser.parse_args(argv)

    if shutil.which("wrk") is None:
        print("wrk is not installed. Install it with: apt-get install -y wrk", file=sys.stderr)
        return 2
    selected = pick_apps(parser, args.only, SERVERS)
    require_installed(parser, selected, PEER_MODULES)
    http_servers = pick_apps(parser, args.server, HTTP_SERVERS)
    # (label, app, server): the main apps under every server; routing under the first.
    instances = [
        (app_label(name, server), name, server)
        for server in http_servers
        for name in selected
        if name in ENDPOINT_APPS or server == http_servers[0]
    ]
    args.main_labels = [
        app_label(name, server)
        for server in http_servers
        for name in ENDPOINT_APPS
        if name in selected
    ]
    args.base_label = app_label("bare", http_servers[0])

    # A group is measured back to back in every round (in shuffled order), so
    # ratios are taken between runs seconds apart: drift in background load
    # cancels out, which medians of absolute figures alone would not do.
    groups: list[tuple[str, list[tuple[str, str, bytes]]]] = [
        (endpoint, [(name, path, body) for name in args.main_labels])
        for endpoint, path, body in ENDPOINTS
    ]
    routing = [(name, path, body) for name, path, body in ROUTING if name in selected]
    if routing:
        groups.append(("routing", routing))
    groups = [(endpoint, members) for endpoint, members in groups if members]
    cells = [
        (name, endpoint, path, body) for endpoint, members in groups for name, path, body in members
    ]
    estimate = len(cells) * args.rounds * args.duration + len(instances) * 2
    print(f"Python {sys.version.split()[0]} on {os.cpu_count()} CPU(s); about {estimate:.0f} s.")

    server_cpu: int | None = None
    wrk_cpu: int | None = None
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            parser.error("--pin needs at least two CPUs")
        server_cpu, wrk_cpu = cpus[0], cpus[1]

    warm_bytecode([SERVERS[name] for name in selected])
    servers: dict[str, Server] = {}
    try:
        for name, app, server in instances:
            servers[name] = start_server(name, SERVERS[app], server_cpu, server)
        for name, _, path, body in cells:
            check_endpoint(servers[name], path, body)
        for server in servers.values():  # warm up: caches, JIT-free but lazy imports
            run_wrk(server.url("/plaintext"), 1, args.connections, args.threads, wrk_cpu)
        rng = random.Random(0)
        for round_index in range(args.rounds):
            order = groups[:]
            rng.shuffle(order)
            for label, members in order:
                for name, path, _ in rng.sample(members, len(members)):
                    server = servers[name]
                    pids = process_tree(server.process.pid)
                    before = tree_cpu_seconds(pids)
                    rps, total = run_wrk(
                        server.url(path), args.duration, args.connections, args.threads, wrk_cpu
                    )
                    used = tree_cpu_seconds(pids) - before
                    server.results.setdefault(label, []).append(rps)
                    server.cpu_per_request.setdefault(label, []).append(used / total * 1e6)
            print(f"round {round_index + 1}/{args.rounds} done", flush=True)
        for server in servers.values():
            server.loaded_rss_kib = tree_rss_kib(server.process.pid)
    finally:
        for server in servers.values():
            stop_server(server)

    imports = {
        name: import_time(statement, args.import_samples)
        for name, statement in IMPORTS.items()
        if name in selected
    }
    report(servers, imports, args)
    if args.json:
        raw = {
            "settings": vars(args) | {"json": str(args.json)},
            "requests_per_second": {n: s.results for n, s in servers.items()},
            "server_cpu_us_per_request": {n: s.cpu_per_request for n, s in servers.items()},
            "rss_kib": {n: [s.idle_rss_kib, s.loaded_rss_kib] for n, s in servers.items()},
            "import_seconds": imports,
        }
        args.json.write_text(json.dumps(raw, indent=2))
    return 0


def ratios(numerator: list[float], denominator: list[float]) -> tuple[float, float, float]:
    """Return the median, lowest and highest of the per-round ratios."""
    values = [a / b for a, b in zip(numerator, denominator, strict=True)]
    return statistics.median(values), min(values), max(values)


def report(servers: dict[str, Server], imports: dict[str, float], args: argparse.Namespace) -> None:
    print()
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, {args.rounds} "
        "interleaved round(s). req/s: median over rounds. ratio: median over rounds of "
        "(app req/s / bare req/s in the same round), with its min-max range."
    )
    names = [name for name in args.main_labels if name in servers]
    bare = args.base_label
    header = f"{'endpoint':<21}" + "".join(f"{name:>30}" for name in names)
    print(header)
    print("-" * len(header))
    for label, _, _ in ENDPOINTS:
        row = f"{label:<21}"
        base = servers[bare].results[label] if bare in servers else None
        for name in names:
            results = servers[name].results[label]
            cell = f"{statistics.median(results):,.0f}"
            if base is not None and name != bare:
                middle, low, high = ratios(results, base)
                cell += f" {middle:.2f} [{low:.2f}-{high:.2f}]"
            row += f"{cell:>30}"
        print(row)
    print()
    print(
        "Server CPU time per request in microseconds (median over rounds); the ratio "
        "bare/app is the capacity per core relative to bare ASGI, robust to background load."
    )
    print(header)
    print("-" * len(header))
    for label, _, _ in ENDPOINTS:
        row = f"{label:<21}"
        base = servers[bare].cpu_per_request[label] if bare in servers else None
        for name in names:
            results = servers[name].cpu_per_request[label]
            cell = f"{statistics.median(results):.1f}"
            if base is not None and name != bare:
                middle, low, high = ratios(base, results)
                cell += f" {middle:.2f} [{low:.2f}-{high:.2f}]"
            row += f"{cell:>30}"
        print(row)
    if "covet-1-route" in servers and "covet-500-routes" in servers:
        one = servers["covet-1-route"].results["routing"]
        many = servers["covet-500-routes"].results["routing"]
        middle, low, high = ratios(many, one)
        print()
        print("Routing flatness (covet, hitting the last parametrised route):")
        print(f"  1 route      {statistics.median(one):>10,.0f} req/s  (/r0/{{id:int}})")
        print(f"  500 routes   {statistics.median(many):>10,.0f} req/s  (/r499/{{id:int}})")
        print(f"  500 / 1      {middle:.2f} [{low:.2f}-{high:.2f}]")
        one_cpu = servers["covet-1-route"].cpu_per_request["routing"]
        many_cpu = servers["covet-500-routes"].cpu_per_request["routing"]
        middle, low, high = ratios(many_cpu, one_cpu)
        print(
            f"  CPU us/request: {statistics.median(one_cpu):.1f} vs "
            f"{statistics.median(many_cpu):.1f}; 500 / 1 = {middle:.2f} [{low:.2f}-{high:.2f}]"
        )
    print()
    print("Idle / after-load worker RSS (MiB):")
    for name, server in servers.items():
        print(
            f"  {name:<18} {server.idle_rss_kib / 1024:>6.1f} / {server.loaded_rss_kib / 1024:.1f}"
        )
    if imports:
        print()
        print(f"Import time, fresh interpreter, median of {args.import_samples}:")
        for name, seconds in imports.items():
            print(f"  {name:<18} {seconds * 1000:>6.1f} ms   ({IMPORTS[name]})")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
