"""Count the CPU instructions a live uvicorn worker spends per request, with callgrind.

``run.py`` measures requests per second and CPU time, which a shared machine
blurs by ±0.05 in the ratios. Instructions executed do not depend on what
else the machine runs: callgrind (valgrind) counts them exactly, so the same
code gives the same count to within about 1% (a garbage collection landing in
one run and not the other is most of that). This script starts each app's
uvicorn worker under callgrind with the same settings as ``run.py``, sends it
a fixed number of sequential keep-alive requests from a plain socket client
(outside valgrind), stops it, and does it again with more requests; the
difference divided by the extra requests is the worker's cost per request,
with start-up and shutdown cancelled out. The ratio ``bare / app`` is the
capacity per core relative to bare ASGI, if every instruction cost the same
time (they do not quite: cache misses are not counted).

Needs ``valgrind`` (``apt-get install -y valgrind``). Run from the repository
root (about 4 minutes with the defaults)::

    .venv/bin/python benchmarks/http/instructions.py
    .venv/bin/python benchmarks/http/instructions.py --only bare,covet --paths /plaintext
    .venv/bin/python benchmarks/http/instructions.py --only bare,covet,scaffold --paths /plaintext
    .venv/bin/python benchmarks/http/instructions.py --only scaffold --paths /page
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.http.run import (  # noqa: E402
    EXTRA_PEERS,
    MAIN_APPS,
    PEER_MODULES,
    free_port,
    pick_apps,
    python_env,
    require_installed,
    split_list,
    warm_bytecode,
)
from benchmarks.http.run import SERVERS as PEERS  # noqa: E402

SERVERS = {
    **{name: PEERS[name] for name in MAIN_APPS},
    **EXTRA_PEERS,
    # Not a peer: the floor for any framework with request and response objects.
    "minimal": "benchmarks.http.minimal_app:app",
    # covet behind the middleware stack `covet new` scaffolds (/plaintext, /json, /page).
    "scaffold": "benchmarks.http.scaffold_app:app",
}
PATHS = ("/plaintext", "/json", "/r99/12345", "/static99")
_LENGTH = re.compile(rb"content-length: *(\d+)", re.IGNORECASE)
_COLLECTED = re.compile(rb"Collected : (\d+)")


def collected(stderr: bytes) -> int | None:
    """Return the instruction total callgrind printed on ``stderr``, if it did."""
    match = _COLLECTED.search(stderr)
    return None if match is None else int(match.group(1))


def have_valgrind() -> bool:
    """Say whether valgrind is installed, telling how to install it if not."""
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install -y valgrind", file=sys.stderr)
        return False
    return True


def connect(port: int, process: subprocess.Popen[bytes]) -> socket.socket:
    """Wait (up to 300 s: valgrind starts slowly on a busy machine) for the worker."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"uvicorn exited with code {process.returncode} under valgrind.")
        try:
            return socket.create_connection(("127.0.0.1", port))
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"uvicorn did not accept connections on port {port} within 300 s.")


def extra_headers(app: str, path: str) -> bytes:
    """Return the request header lines ``app`` needs on ``path`` (the scaffold's cookie)."""
    if app != "scaffold":
        return b""
    from benchmarks.http.scaffold_app import REQUEST_HEADERS

    return b"".join(name + b": " + value + b"\r\n" for name, value in REQUEST_HEADERS.get(path, ()))


def request_many(conn: socket.socket, port: int, path: str, count: int, extra: bytes = b"") -> None:
    """Send ``count`` GET requests one after another on one keep-alive connection."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode() + extra + b"\r\n"
    pending = b""
    for _ in range(count):
        conn.sendall(request)
        while True:
            head, separator, rest = pending.partition(b"\r\n\r\n")
            if separator:
                if not head.startswith(b"HTTP/1.1 200"):
                    raise SystemExit(f"{path}: unexpected answer {head[:40]!r}.")
                match = _LENGTH.search(head)
                if match is None:
                    raise SystemExit(f"{path}: the answer has no Content-Length.")
                size = int(match.group(1))
                if len(rest) >= size:
                    pending = rest[size:]
                    break
            chunk = conn.recv(65536)
            if not chunk:
                raise SystemExit(f"{path}: the server closed the connection.")
            pending += chunk


def serve(app: str, path: str, requests: int, tool: list[str]) -> bytes:
    """Run ``app``'s worker (under ``tool``, a command prefix), serve ``requests``, stop it.

    Returns:
        What the worker (or the tool) wrote on stderr.
    """
    port = free_port()
    # A fixed hash seed: string hashing must not change the count from one run to the next.
    env = {**python_env(), "PYTHONHASHSEED": "0"}
    command = [
        *tool, sys.executable, "-m", "uvicorn", SERVERS[app],
        "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        with connect(port, process) as conn:
            request_many(conn, port, path, requests, extra_headers(app, path))
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return err


def warm_workers(apps: list[str], paths: list[str]) -> None:
    """Serve one request on each path from each app's worker, outside valgrind.

    ``warm_bytecode()`` compiles what the servers import up front, but a worker
    also imports modules as it starts (uvicorn's websockets protocol, the app's
    own start-up imports). Compiled in the short run and found cached by the
    long one, they made a fresh machine's first count nonsense (a negative
    count for bare); one real start of each worker compiles them all.
    """
    for app in apps:
        for path in paths:
            serve(app, path, 1, [])


def count_instructions(app: str, path: str, requests: int, workdir: Path) -> int:
    """Return the instructions a worker executes from start to shutdown, serving ``requests``."""
    out = workdir / f"callgrind.{app}.{requests}"
    try:
        err = serve(
            app, path, requests, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        )
    finally:
        out.unlink(missing_ok=True)
    total = collected(err)
    if total is None:
        raise SystemExit(f"callgrind printed no total for {app}:\n{err.decode(errors='replace')}")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        default=",".join(MAIN_APPS),
        help=(
            f"comma-separated apps among {', '.join(SERVERS)} "
            "(minimal: /plaintext, /json; scaffold: /plaintext, /json, /page)"
        ),
    )
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated paths")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=MODULE:APP",
        help="count one more ASGI app, importable from PYTHONPATH (cython_probe.py --floor)",
    )
    parser.add_argument("--requests", type=int, default=500, help="requests in the short run")
    parser.add_argument("--extra", type=int, default=1000, help="extra requests in the long run")
    args = parser.parse_args(argv)
    if not have_valgrind():
        return 2
    for extra in args.also:
        name, _, target = extra.partition("=")
        if not name or ":" not in target:
            parser.error(f"--also takes NAME=MODULE:APP, got {extra!r}")
        SERVERS[name] = target
    apps = pick_apps(parser, args.only, SERVERS)
    require_installed(parser, apps, PEER_MODULES)
    paths = split_list(args.paths)

    # Compiled once beforehand, so the short run does not pay for bytecode the long one reuses.
    warm_bytecode([SERVERS[app] for app in apps])
    warm_workers(apps, paths)
    per_request: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="covet-callgrind-") as tmp:
        for path in paths:
            for app in apps:
                short = count_instructions(app, path, args.requests, Path(tmp))
                long = count_instructions(app, path, args.requests + args.extra, Path(tmp))
                per_request[app, path] = (long - short) / args.extra
                print(f"{app:14} {path:12} {per_request[app, path]:>10,.0f}", flush=True)

    print(
        "\nInstructions per request in the uvicorn worker (callgrind); "
        "in brackets, bare / app (capacity per core relative to bare ASGI)."
    )
    print(f"{'path':14}" + "".join(f"{app:>22}" for app in apps))
    for path in paths:
        cells = []
        for app in apps:
            value = per_request[app, path]
            bare = per_request.get(("bare", path))
            ratio = f" [{bare / value:.3f}]" if bare is not None and app != "bare" else ""
            cells.append(f"{value:,.0f}{ratio}".rjust(22))
        print(f"{path:14}" + "".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
