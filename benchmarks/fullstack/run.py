"""Benchmark a real site four ways: covet as scaffolded, Django, Starlette + SQLAlchemy, raw ASGI.

The same small site (``common.py`` says what each endpoint does) is built
with covet (the app ``covet new`` generates, its middleware untouched),
Django 5 (its default MIDDLEWARE, async views, the async ORM API), Starlette
with SQLAlchemy's async ORM and equivalent middleware, and a hand-written raw
ASGI baseline over asyncpg or aiosqlite. Each runs on PostgreSQL (a private
schema per site, dropped afterwards) and on SQLite (a temporary file), under
identical server settings (one worker; uvicorn with httptools, uvloop and no
access log, as ``benchmarks/http/run.py``; or granian with ``--server
granian``), and is loaded with ``wrk`` as a logged-in user: the page (count +
20 rows through the ORM, a Jinja2 template with a CSRF input), the JSON list,
and the form POST that writes one row (session cookie and CSRF token sent).

Every cell of a round runs back to back in shuffled order, and ratios to the
baseline are taken within the round, so drift in background load cancels out.
Reported: requests per second and the ratio to the baseline, the server's CPU
time per request (from ``/proc``, the worker and its children, so granian's
threads count too), worker RSS after the load, and the app's import time in a
fresh interpreter. The database server's own CPU is not counted: it is the
same queries for every site.

Run from the repository root::

    .venv/bin/python benchmarks/fullstack/run.py               # about 8 minutes
    .venv/bin/python benchmarks/fullstack/run.py --db postgres --only covet,baseline --rounds 2
    .venv/bin/python benchmarks/fullstack/run.py --server uvicorn,granian --only covet,baseline
    .venv/bin/python benchmarks/fullstack/run.py --instructions 50  # exact; about 15 minutes
    .venv/bin/python benchmarks/fullstack/run.py --profile     # where covet's time goes

On a machine whose PostgreSQL serves other work too, the wrk rates follow the database
server's load; ``--instructions`` counts what each worker executes per request (callgrind),
which does not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import http.cookiejar
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.fullstack import common  # noqa: E402
from benchmarks.http.run import (  # noqa: E402
    PYCACHE,
    free_port,
    pick_apps,
    process_tree,
    ratios,
    require_installed,
    tree_cpu_seconds,
    tree_rss_kib,
)

PYTHON = sys.executable
HERE = Path(__file__).resolve().parent
POSTGRES_URL = os.environ.get(
    "COVET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PROJECT = "benchsite"

#: site -> (ASGI target, setup command as a module, login path)
SITES: dict[str, tuple[str, str, str]] = {
    "baseline": (
        "benchmarks.fullstack.baseline_site:app",
        "benchmarks.fullstack.baseline_site",
        "/fs/login",
    ),
    "covet": ("benchmarks.fullstack.covet_site:app", "benchmarks.fullstack.covet_site", "/login"),
    "starlette": (
        "benchmarks.fullstack.starlette_site:app",
        "benchmarks.fullstack.starlette_site",
        "/fs/login",
    ),
    "django": (
        "benchmarks.fullstack.django_site.asgi:application",
        "benchmarks.fullstack.django_site.setup",
        "/fs/login",
    ),
}
#: What the peer sites import beyond covet's own dependencies (the ``bench`` extra).
SITE_MODULES = {
    "starlette": ("starlette", "sqlalchemy"),
    "django": ("django", "psycopg", "psycopg_pool"),
}
DATABASES = ("postgres", "sqlite")
SERVERS = ("uvicorn", "granian")
ENDPOINTS = ("page", "json", "post")
_RPS_RE = re.compile(r"Requests/sec:\s+([0-9.]+)")
_TOTAL_RE = re.compile(r"(\d+) requests in ")
_UNEXPECTED_RE = re.compile(r"unexpected: (\d+) status (\d+)")
_WRK_ERRORS_RE = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)|Socket errors:.*")
_CSRF_RE = re.compile(r'name="(csrf_token|csrfmiddlewaretoken)" value="([^"]+)"')


@dataclass
class Instance:
    """One site on one database under one server: its process and its measurements."""

    site: str
    db: str
    server: str
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    reader_cookie: str = ""
    writer_cookie: str = ""
    post_body: str = ""
    rss_kib: int = 0
    rps: dict[str, list[float]] = field(default_factory=dict)
    cpu_us: dict[str, list[float]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.site if self.server == "uvicorn" else f"{self.site}@{self.server}"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


# -- databases and the scaffold ---------------------------------------------------------


def scaffold(directory: Path) -> Path:
    """Generate the covet project with ``covet new`` (its migration included); return its root."""
    subprocess.run(
        [PYTHON, "-c", "from covet.cli import main; main()", "new", PROJECT, "--db", "sqlite"],
        cwd=directory,
        env=python_env(None),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return directory / PROJECT


def python_env(project: Path | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return a Python child's environment: repository (and project) on the path, .pyc cached."""
    path = [str(ROOT)] + ([str(project)] if project is not None else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "PYTHONPYCACHEPREFIX": str(PYCACHE)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env | (extra or {})


async def _postgres(statements: list[str]) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def database_url(db: str, site: str, run_id: str, workdir: Path) -> str:
    if db == "postgres":
        return f"{POSTGRES_URL}?search_path=fs_{run_id}_{site}"
    return f"sqlite:///{workdir / f'{site}.sqlite3'}"


def prepare(instance: Instance, project: Path) -> None:
    """Create the instance's tables and seed its users and notes, in its own interpreter."""
    env, cwd = instance.env, ROOT
    if instance.site == "covet":
        cwd = project
        subprocess.run(
            [PYTHON, "-c", "from covet.cli import main; main()", "migrate"],
            cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    module = SITES[instance.site][1]
    subprocess.run([PYTHON, "-m", module, "setup"], cwd=cwd, env=env, check=True)


# -- servers ----------------------------------------------------------------------------


def server_command(server: str, target: str, port: int) -> list[str]:
    """Return the command serving ``target`` with one worker, as ``benchmarks/http/run.py`` does."""
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
        "--no-access-log", "--log-level", "warning",
        # Django's ASGI handler refuses lifespan messages; "auto" lets uvicorn go on.
        "--lifespan", "auto" if target.startswith("benchmarks.fullstack.django") else "on",
    ]  # fmt: skip


def _pinned(cpu: int | None) -> Any:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


#: Seconds a request may take: long enough for a worker under valgrind.
HTTP_TIMEOUT = 30.0


def start(
    instance: Instance,
    project: Path,
    cpu: int | None,
    prefix: list[str] | None = None,
    wrapper: list[str] | None = None,
) -> None:
    """Start the instance's server and wait until it answers.

    ``prefix`` replaces ``-m uvicorn`` (the profiler wrapper takes uvicorn's
    arguments); ``wrapper`` goes before the whole command (valgrind).
    """
    instance.port = free_port()
    command = server_command(instance.server, SITES[instance.site][0], instance.port)
    if prefix:
        command = [PYTHON, *prefix, *command[3:]]
    command = [*(wrapper or ()), *command]
    cwd = project if instance.site == "covet" else ROOT
    instance.process = subprocess.Popen(command, cwd=cwd, env=instance.env, preexec_fn=_pinned(cpu))
    deadline = time.monotonic() + (600 if wrapper else 60)
    while time.monotonic() < deadline:
        if instance.process.poll() is not None:
            raise SystemExit(
                f"{instance.name} ({instance.db}): the server exited with code "
                f"{instance.process.returncode}."
            )
        try:
            with urllib.request.urlopen(instance.url(SITES[instance.site][2]), timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    stop(instance)
    raise SystemExit(f"{instance.name} ({instance.db}) did not answer in time.")


def stop(instance: Instance) -> None:
    process = instance.process
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- logging in and checking -------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def login(instance: Instance, email: str) -> tuple[str, str]:
    """Log in as ``email`` through the site's login form; return the Cookie header and a token."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    login_url = instance.url(SITES[instance.site][2])
    with opener.open(login_url, timeout=HTTP_TIMEOUT) as response:
        form = response.read().decode()
    fields = {"email": email, "password": common.PASSWORD}
    found = _CSRF_RE.search(form)
    if found:
        fields[found.group(1)] = found.group(2)
    data = urllib.parse.urlencode(fields).encode()
    try:
        opener.open(urllib.request.Request(login_url, data=data), timeout=HTTP_TIMEOUT * 4)
    except urllib.error.HTTPError as exc:
        if exc.code != 303:
            raise SystemExit(
                f"{instance.name} ({instance.db}): login answered {exc.code}: {exc.read()[:300]!r}"
            ) from exc
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    page = fetch(instance, "/fs/page", cookie)
    token = _CSRF_RE.search(page.decode())
    if token is None:
        raise SystemExit(f"{instance.name} ({instance.db}): no CSRF input on /fs/page.")
    return cookie, f"{token.group(1)}={urllib.parse.quote(token.group(2))}"


def fetch(instance: Instance, path: str, cookie: str, body: str | None = None) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=HTTP_TIMEOUT)
    headers = {"Cookie": cookie}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection.request("POST" if body is not None else "GET", path, body=body, headers=headers)
    response = connection.getresponse()
    content = response.read()
    connection.close()
    expected = 303 if body is not None else 200
    if response.status != expected:
        raise SystemExit(
            f"{instance.name} ({instance.db}) {path}: got {response.status}, expected "
            f"{expected}: {content[:300]!r}"
        )
    return content


def check(instance: Instance) -> None:
    """Fail loudly when a site answers wrongly: a fast wrong answer is no result."""
    page = fetch(instance, "/fs/page", instance.reader_cookie).decode()
    if f"Your notes ({common.NOTES})" not in page or page.count("<li>") != common.PAGE_SIZE:
        raise SystemExit(f"{instance.name} ({instance.db}): /fs/page lacks the 20 notes:\n{page}")
    if "Note number 24 &amp; &lt;friends&gt;" not in page:
        raise SystemExit(f"{instance.name} ({instance.db}): /fs/page does not escape titles.")
    notes = json.loads(fetch(instance, "/fs/notes.json", instance.reader_cookie))
    if len(notes) != common.PAGE_SIZE or notes[0]["title"] != "Note number 24 & <friends>":
        raise SystemExit(f"{instance.name} ({instance.db}): /fs/notes.json is wrong: {notes!r}")
    before = _note_count(fetch(instance, "/fs/page", instance.writer_cookie))
    fetch(instance, "/fs/notes", instance.writer_cookie, instance.post_body)
    if _note_count(fetch(instance, "/fs/page", instance.writer_cookie)) != before + 1:
        raise SystemExit(f"{instance.name} ({instance.db}): the POST wrote no note.")


def _note_count(page: bytes) -> int:
    """Return the count a page shows in its "Your notes (N)" heading."""
    found = re.search(rb"Your notes \((\d+)\)", page)
    if found is None:
        raise SystemExit(f"No note count on the page:\n{page[:500]!r}")
    return int(found.group(1))


# -- load -------------------------------------------------------------------------------


def run_wrk(
    instance: Instance, endpoint: str, args: argparse.Namespace, cpu: int | None
) -> tuple[float, int]:
    """Load one endpoint of ``instance`` with wrk; return requests per second and requests done."""
    path, method, cookie, body, expect = {
        "page": ("/fs/page", "GET", instance.reader_cookie, "", "200"),
        "json": ("/fs/notes.json", "GET", instance.reader_cookie, "", "200"),
        "post": ("/fs/notes", "POST", instance.writer_cookie, instance.post_body, "303"),
    }[endpoint]
    env = {
        **os.environ,
        "FS_METHOD": method,
        "FS_COOKIE": cookie,
        "FS_BODY": body,
        "FS_EXPECT": expect,
    }
    command = [
        "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration:g}s",
        "--timeout", "10s", "-s", str(HERE / "wrk.lua"), instance.url(path),
    ]  # fmt: skip
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, env=env, preexec_fn=_pinned(cpu)
    ).stdout
    unexpected = _UNEXPECTED_RE.search(output)
    if _WRK_ERRORS_RE.search(output) or unexpected is None or unexpected.group(1) != "0":
        raise SystemExit(
            f"wrk reported errors for {instance.name} ({instance.db}) {path}:\n{output}"
        )
    rps, total = _RPS_RE.search(output), _TOTAL_RE.search(output)
    if rps is None or total is None:
        raise SystemExit(f"Could not read the request rate from wrk output:\n{output}")
    return float(rps.group(1)), int(total.group(1))


def import_time(instance: Instance, samples: int, project: Path) -> float:
    """Return the median seconds importing the site's app takes in a fresh interpreter."""
    module = SITES[instance.site][0].partition(":")[0]
    code = (
        f"import time\nstart = time.perf_counter()\nimport {module}\n"
        "print(time.perf_counter() - start)\n"
    )
    cwd = project if instance.site == "covet" else ROOT
    timings = []
    for _ in range(samples):
        result = subprocess.run(
            [PYTHON, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=cwd,
            env=instance.env,
        )
        timings.append(float(result.stdout.strip().splitlines()[-1]))
    return statistics.median(timings)


# -- the run ----------------------------------------------------------------------------


def make_instances(
    args: argparse.Namespace, run_id: str, workdir: Path, project: Path
) -> list[Instance]:
    secret = secrets.token_urlsafe(32)
    instances = []
    for db in args.dbs:
        for site in args.sites:
            url = database_url(db, site, run_id, workdir)
            extra = {"FULLSTACK_DATABASE_URL": url, "FULLSTACK_SECRET": secret}
            if site == "covet":
                # The scaffold's settings, in production mode (the generated .env says debug).
                extra |= {
                    "DATABASE_URL": url,
                    "SECRET_KEY": secret,
                    "COVET_DEBUG": "0",
                    "ALLOWED_HOSTS": "127.0.0.1,localhost",
                }
            if site == "django":
                extra["DJANGO_SETTINGS_MODULE"] = "benchmarks.fullstack.django_site.settings"
            env = python_env(project if site == "covet" else None, extra)
            instances.extend(Instance(site, db, server, env) for server in args.servers)
    return instances


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--import-samples", type=int, default=5, help="fresh interpreters per site")
    parser.add_argument("--only", default=",".join(SITES), help=f"subset of: {', '.join(SITES)}")
    parser.add_argument("--db", default=",".join(DATABASES), help="postgres, sqlite or both")
    parser.add_argument(
        "--server", default="uvicorn", help="uvicorn, granian or both (comma-separated)"
    )
    parser.add_argument(
        "--endpoints", default=",".join(ENDPOINTS), help="subset of: page, json, post"
    )
    parser.add_argument(
        "--pin", action="store_true", help="servers on the first CPU, wrk on the second"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: cProfile the covet and baseline workers on the first of --endpoints "
        "and --db (the PostgreSQL page unless told) and print where the time goes, per request",
    )
    parser.add_argument(
        "--instructions",
        type=int,
        metavar="N",
        help="instead: count each worker's instructions per request with callgrind over N "
        "sequential requests (exact on a busy machine; needs valgrind)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    args = parser.parse_args(argv)
    if args.instructions is not None and shutil.which("valgrind") is None:
        print(
            "valgrind is not installed. Install it with: apt-get install -y valgrind",
            file=sys.stderr,
        )
        return 2
    if shutil.which("wrk") is None:
        print("wrk is not installed. Install it with: apt-get install -y wrk", file=sys.stderr)
        return 2
    args.sites = pick_apps(parser, args.only, SITES)
    require_installed(parser, args.sites, SITE_MODULES)
    args.dbs = pick_apps(parser, args.db, DATABASES)
    args.servers = pick_apps(parser, args.server, SERVERS)
    args.endpoint_list = pick_apps(parser, args.endpoints, ENDPOINTS)
    if args.instructions is not None or args.profile:
        args.servers = ["uvicorn"]  # both wrap uvicorn's command line
    if "baseline" not in args.sites and not args.profile:
        parser.error("--only must include baseline: every ratio is to it")
    if args.profile:
        args.sites = [site for site in ("baseline", "covet") if site in args.sites] or ["covet"]
        args.dbs = args.dbs[:1]  # the first database named (PostgreSQL unless --db says)

    server_cpu = wrk_cpu = None
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            parser.error("--pin needs at least two CPUs")
        server_cpu, wrk_cpu = cpus[0], cpus[1]

    run_id = secrets.token_hex(4)
    workdir = Path(tempfile.mkdtemp(prefix="covet-fullstack-"))
    schemas = [f"fs_{run_id}_{site}" for site in args.sites] if "postgres" in args.dbs else []
    instances: list[Instance] = []
    try:
        if schemas:
            asyncio.run(_postgres([f'CREATE SCHEMA "{schema}"' for schema in schemas]))
        project = scaffold(workdir)
        instances = make_instances(args, run_id, workdir, project)
        print(
            f"Python {sys.version.split()[0]} on {os.cpu_count()} CPU(s); run {run_id} in {workdir}"
        )
        prepared: set[tuple[str, str]] = set()
        for instance in instances:
            if (instance.site, instance.db) not in prepared:
                prepare(instance, project)
                prepared.add((instance.site, instance.db))
        if args.profile:
            return profile(instances, project, args, server_cpu, wrk_cpu, workdir)
        if args.instructions is not None:
            report_instructions(count_instructions(instances, project, args, workdir), args)
            return 0
        for instance in instances:
            start(instance, project, server_cpu)
            instance.reader_cookie, _ = login(instance, common.READER)
            instance.writer_cookie, token = login(instance, common.WRITER)
            instance.post_body = f"{token}&title=Written+by+wrk&body=One+row+per+request."
            check(instance)
        cells = [(inst, endpoint) for inst in instances for endpoint in args.endpoint_list]
        print(
            f"{len(cells)} cells x {args.rounds} rounds x {args.duration:g} s: about "
            f"{len(cells) * (args.rounds + 1) * args.duration:.0f} s.",
            flush=True,
        )
        for instance, endpoint in cells:  # warm up: caches, pools, lazy imports
            run_wrk(
                instance, endpoint, argparse.Namespace(**{**vars(args), "duration": 1}), wrk_cpu
            )
        rng = random.Random(0)
        groups = [(db, endpoint) for db in args.dbs for endpoint in args.endpoint_list]
        for round_index in range(args.rounds):
            rng.shuffle(groups)
            for db, endpoint in groups:
                members = [inst for inst in instances if inst.db == db]
                for instance in rng.sample(members, len(members)):
                    assert instance.process is not None
                    pids = process_tree(instance.process.pid)
                    before = tree_cpu_seconds(pids)
                    rps, total = run_wrk(instance, endpoint, args, wrk_cpu)
                    used = tree_cpu_seconds(pids) - before
                    instance.rps.setdefault(endpoint, []).append(rps)
                    instance.cpu_us.setdefault(endpoint, []).append(used / total * 1e6)
            print(f"round {round_index + 1}/{args.rounds} done", flush=True)
        for instance in instances:
            assert instance.process is not None
            instance.rss_kib = tree_rss_kib(instance.process.pid)
            stop(instance)
        imports = {}
        for instance in instances:
            if instance.site not in imports:
                imports[instance.site] = import_time(instance, args.import_samples, project)
    finally:
        for instance in instances:
            stop(instance)
        if schemas:
            asyncio.run(
                _postgres([f'DROP SCHEMA IF EXISTS "{schema}" CASCADE' for schema in schemas])
            )
        shutil.rmtree(workdir, ignore_errors=True)
    report(instances, imports, args)
    if args.json:
        raw = {
            "settings": {k: v for k, v in vars(args).items() if k != "json"},
            "results": [
                {
                    "site": i.site,
                    "db": i.db,
                    "server": i.server,
                    "rps": i.rps,
                    "cpu_us_per_request": i.cpu_us,
                    "rss_kib": i.rss_kib,
                }
                for i in instances
            ],
            "import_seconds": imports,
        }
        args.json.write_text(json.dumps(raw, indent=2))
    return 0


# -- instructions -----------------------------------------------------------------------

_TOTALS_RE = re.compile(r"^(?:summary|totals): (\d+)", re.MULTILINE)


def _endpoint_request(instance: Instance, endpoint: str) -> tuple[bytes, bytes]:
    """Return the raw HTTP/1.1 request for ``endpoint`` and the status line it must get."""
    path, method, cookie, body = {
        "page": ("/fs/page", "GET", instance.reader_cookie, ""),
        "json": ("/fs/notes.json", "GET", instance.reader_cookie, ""),
        "post": ("/fs/notes", "POST", instance.writer_cookie, instance.post_body),
    }[endpoint]
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{instance.port}\r\nCookie: {cookie}\r\n"
    if body:
        head += "Content-Type: application/x-www-form-urlencoded\r\n"
        head += f"Content-Length: {len(body)}\r\n"
    status = b"HTTP/1.1 303" if method == "POST" else b"HTTP/1.1 200"
    return (head + "\r\n" + body).encode(), status


def request_many(instance: Instance, endpoint: str, count: int) -> None:
    """Send ``count`` requests one after another on one keep-alive connection."""
    raw, status = _endpoint_request(instance, endpoint)
    with socket.create_connection(("127.0.0.1", instance.port), timeout=HTTP_TIMEOUT) as conn:
        pending = b""
        for _ in range(count):
            conn.sendall(raw)
            while True:
                head, separator, rest = pending.partition(b"\r\n\r\n")
                if separator:
                    if not head.startswith(status):
                        raise SystemExit(f"{instance.name} {endpoint}: got {head[:60]!r}.")
                    found = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
                    size = int(found.group(1)) if found else 0
                    if found is None and b"chunked" in head.lower():
                        raise SystemExit(f"{instance.name} {endpoint}: chunked answer.")
                    if len(rest) >= size:
                        pending = rest[size:]
                        break
                chunk = conn.recv(65536)
                if not chunk:
                    raise SystemExit(f"{instance.name} {endpoint}: the connection closed.")
                pending += chunk


def _callgrind(pid: int, *options: str) -> None:
    subprocess.run(
        ["callgrind_control", *options, str(pid)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600,
    )  # fmt: skip


def count_instructions(
    instances: list[Instance], project: Path, args: argparse.Namespace, workdir: Path
) -> dict[tuple[str, str, str], float]:
    """Return the instructions each worker executes per request, by (site, db, endpoint).

    Each worker runs under callgrind with instrumentation off while it starts,
    logs in and warms up; then, per endpoint, the counters are zeroed,
    instrumentation is switched on for ``--instructions`` sequential requests on
    one keep-alive connection, and the dump's total is divided by them. Exact
    and repeatable whatever else the machine runs (a fixed hash seed); the
    database server's work is not counted.
    """
    global HTTP_TIMEOUT
    HTTP_TIMEOUT = 300.0
    counts: dict[tuple[str, str, str], float] = {}
    for instance in instances:
        out = workdir / f"callgrind.{instance.site}.{instance.db}"
        instance.env = {**instance.env, "PYTHONHASHSEED": "0"}
        wrapper = ["valgrind", "-q", "--tool=callgrind", "--instr-atstart=no",
                   f"--callgrind-out-file={out}"]  # fmt: skip
        print(f"{instance.name} ({instance.db}): starting under callgrind", flush=True)
        start(instance, project, None, wrapper=wrapper)
        assert instance.process is not None
        pid = instance.process.pid
        try:
            instance.reader_cookie, _ = login(instance, common.READER)
            instance.writer_cookie, token = login(instance, common.WRITER)
            instance.post_body = f"{token}&title=Written+by+wrk&body=One+row+per+request."
            check(instance)
            for dump, endpoint in enumerate(args.endpoint_list, start=1):
                request_many(instance, endpoint, 20)  # warm: lazy imports, caches, pools
                _callgrind(pid, "-i", "on")
                _callgrind(pid, "-z")
                request_many(instance, endpoint, args.instructions)
                _callgrind(pid, "-d")
                _callgrind(pid, "-i", "off")
                text = Path(f"{out}.{dump}").read_text(errors="replace")
                found = _TOTALS_RE.search(text)
                if found is None:
                    raise SystemExit(f"No total in the callgrind dump {out}.{dump}.")
                counts[(instance.site, instance.db, endpoint)] = (
                    int(found.group(1)) / args.instructions
                )
                print(
                    f"  {endpoint}: {counts[(instance.site, instance.db, endpoint)]:,.0f} "
                    "instructions per request",
                    flush=True,
                )
        finally:
            stop(instance)
    return counts


def report_instructions(
    counts: dict[tuple[str, str, str], float], args: argparse.Namespace
) -> None:
    print()
    print(
        f"Instructions per request in the server worker (callgrind, {args.instructions} "
        "sequential keep-alive requests after a warm-up, uvicorn); the ratio is baseline/site: "
        "capacity per core relative to the baseline, the database server excluded."
    )
    sites = [site for site in ORDER if site in args.sites]
    for db in args.dbs:
        print()
        print(DB_TITLES[db])
        header = f"{'endpoint':<9}" + "".join(f"{site:>22}" for site in sites)
        print(header)
        print("-" * len(header))
        for endpoint in args.endpoint_list:
            base = counts.get(("baseline", db, endpoint))
            row = f"{endpoint:<9}"
            for site in sites:
                value = counts[(site, db, endpoint)]
                cell = f"{value / 1000:,.0f}k"
                if base is not None and site != "baseline":
                    cell += f" {base / value:.2f}"
                row += f"{cell:>22}"
            print(row)
    page = {site: counts.get((site, "postgres", "page")) for site in ORDER}
    if page["covet"] is not None:
        print()
        print("Targets (page, PostgreSQL, by instructions per request):")
        for other, goal, text in (
            ("baseline", 0.80, "covet / baseline     >= 0.80"),
            ("starlette", 1.00, "covet / starlette    >  1.00"),
            ("django", 3.00, "covet / django       >= 3.00"),
        ):
            other_count = page[other]
            if other_count is not None:
                value = other_count / page["covet"]
                met = value > goal if goal == 1.00 else value >= goal
                print(f"  {text}: {value:.2f}  {'met' if met else 'MISSED'}")


# -- the report -------------------------------------------------------------------------

DB_TITLES = {"postgres": "PostgreSQL", "sqlite": "SQLite"}
ORDER = ("baseline", "covet", "starlette", "django")


def _columns(instances: list[Instance], db: str) -> list[Instance]:
    chosen = [i for i in instances if i.db == db]
    return sorted(chosen, key=lambda i: (SERVERS.index(i.server), ORDER.index(i.site)))


def _reference(columns: list[Instance], servers: list[str]) -> Instance:
    return next(i for i in columns if i.site == "baseline" and i.server == servers[0])


def _cell(values: list[float], base: list[float] | None, fmt: str) -> str:
    text = format(statistics.median(values), fmt)
    if base is not None:
        middle, low, high = ratios(values, base)
        text += f" {middle:.2f} [{low:.2f}-{high:.2f}]"
    return text


def report(instances: list[Instance], imports: dict[str, float], args: argparse.Namespace) -> None:
    print()
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, {args.rounds} "
        "interleaved "
        "round(s), one worker per server. Cells: median over rounds, then the median ratio to "
        "the baseline in the same round [min-max]. For CPU, the ratio is baseline/site: "
        "capacity per core relative to the baseline."
    )
    for db in args.dbs:
        columns = _columns(instances, db)
        base = _reference(columns, args.servers)
        for title, attribute, fmt, invert in (
            ("requests per second", "rps", ",.0f", False),
            ("server CPU microseconds per request", "cpu_us", ".0f", True),
        ):
            print()
            print(f"{DB_TITLES[db]}: {title}")
            header = f"{'endpoint':<9}" + "".join(f"{i.name:>27}" for i in columns)
            print(header)
            print("-" * len(header))
            for endpoint in args.endpoint_list:
                reference = getattr(base, attribute)[endpoint]
                row = f"{endpoint:<9}"
                for instance in columns:
                    values = getattr(instance, attribute)[endpoint]
                    if instance is base:
                        cell = _cell(values, None, fmt)
                    elif invert:
                        middle, low, high = ratios(reference, values)
                        cell = (
                            f"{statistics.median(values):{fmt}} {middle:.2f} [{low:.2f}-{high:.2f}]"
                        )
                    else:
                        cell = _cell(values, reference, fmt)
                    row += f"{cell:>27}"
                print(row)
    _targets(instances, args)
    print()
    print("Worker RSS after the load (MiB):")
    for instance in instances:
        print(f"  {instance.name:<20} {DB_TITLES[instance.db]:<11} {instance.rss_kib / 1024:6.1f}")
    print()
    print(f"Import time of the app module, fresh interpreter, median of {args.import_samples}:")
    for site, seconds in imports.items():
        print(f"  {site:<20} {seconds * 1000:6.0f} ms   ({SITES[site][0].partition(':')[0]})")


def _targets(instances: list[Instance], args: argparse.Namespace) -> None:
    """Print issue 17's targets for the page on PostgreSQL, measured in this run.

    Each is shown twice: as a ratio of requests per second and as a ratio of
    the worker's CPU time per request (capacity per core). The verdict follows
    the CPU time: on a machine whose database server is busy with other work,
    the rates follow the database, not the worker. ``--instructions`` gives the
    exact figure.
    """
    if "postgres" not in args.dbs or "page" not in args.endpoint_list:
        return
    found = {i.site: i for i in instances if i.db == "postgres" and i.server == args.servers[0]}
    if "covet" not in found:
        return
    covet = found["covet"]
    print()
    print(
        "Targets (page, PostgreSQL; ratios within a round, median [min-max]; the verdict "
        "follows CPU time per request, see --instructions for the exact figure):"
    )
    for other, goal, text in (
        ("baseline", 0.80, "covet / baseline     >= 0.80"),
        ("starlette", 1.00, "covet / starlette    >  1.00"),
        ("django", 3.00, "covet / django       >= 3.00"),
    ):
        if other not in found:
            continue
        rate = ratios(covet.rps["page"], found[other].rps["page"])
        cpu = ratios(found[other].cpu_us["page"], covet.cpu_us["page"])
        met = cpu[0] >= goal if goal != 1.00 else cpu[0] > goal
        print(
            f"  {text}: req/s {rate[0]:.2f} [{rate[1]:.2f}-{rate[2]:.2f}], "
            f"CPU {cpu[0]:.2f} [{cpu[1]:.2f}-{cpu[2]:.2f}]  {'met' if met else 'MISSED'}"
        )


# -- the profile ------------------------------------------------------------------------

#: (label, test on the file name of a profiled function), first match wins.
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("covet sessions", ("covet/sessions", "covet/sessions_db")),
    ("covet auth", ("covet/auth",)),
    ("covet CSRF", ("covet/middleware/csrf",)),
    ("covet security headers", ("covet/middleware/security",)),
    ("covet errors layer", ("covet/middleware/errors", "covet/errorpages")),
    ("covet metrics + prometheus", ("covet/metrics", "prometheus_client")),
    ("covet ORM", ("covet/db",)),
    (
        "templates (covet + jinja2)",
        ("covet/templates", "jinja2", "markupsafe", "benchmarks/fullstack/templates"),
    ),
    ("covet core (app, routing, request, response)", ("covet/",)),
    ("asyncpg", ("asyncpg",)),
    ("itsdangerous / hmac / base64", ("itsdangerous", "hmac.py", "base64.py")),
    ("uvicorn + httptools", ("uvicorn", "httptools")),
    ("asyncio / uvloop", ("asyncio", "uvloop")),
    ("site code", ("benchmarks/fullstack",)),
    ("datetime / json / stdlib", ("python3", "lib/python")),
)


def _area(filename: str, function: str) -> str:
    if filename == "~":
        return "C functions (builtins, driver, loop)"
    for label, needles in AREAS:
        if any(needle in filename for needle in needles):
            return label
    return "other"


def profile(
    instances: list[Instance],
    project: Path,
    args: argparse.Namespace,
    server_cpu: int | None,
    wrk_cpu: int | None,
    workdir: Path,
) -> int:
    """cProfile each site's worker under wrk; print self time per request by area.

    The endpoint profiled is the first of ``--endpoints`` (the page unless told),
    on the first database of ``--db``.
    """
    import pstats

    results: dict[str, tuple[int, dict[str, float], pstats.Stats]] = {}
    duration = max(args.duration, 10.0)
    endpoint = args.endpoint_list[0]
    for instance in instances:
        output = workdir / f"{instance.site}.prof"
        start(
            instance,
            project,
            server_cpu,
            prefix=["-m", "benchmarks.fullstack.profiled", str(output)],
        )
        assert instance.process is not None
        instance.reader_cookie, _ = login(instance, common.READER)
        instance.writer_cookie, token = login(instance, common.WRITER)
        instance.post_body = f"{token}&title=Written+by+wrk&body=One+row+per+request."
        check(instance)
        run_wrk(instance, endpoint, argparse.Namespace(**{**vars(args), "duration": 2}), wrk_cpu)
        instance.process.send_signal(signal.SIGUSR1)
        _, total = run_wrk(
            instance, endpoint, argparse.Namespace(**{**vars(args), "duration": duration}), wrk_cpu
        )
        instance.process.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while not output.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        stop(instance)
        stats = pstats.Stats(str(output))
        areas: dict[str, float] = {}
        for (filename, _, function), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
            area = _area(filename, function)
            areas[area] = areas.get(area, 0.0) + tottime
        results[instance.site] = (total, areas, stats)
    print()
    print(
        f"Self time per request under cProfile ({args.dbs[0]} {endpoint}, "
        f"wrk -c{args.connections} for {duration:g} s, uvicorn, after a 2 s warm-up), CPU time. "
        "cProfile inflates every Python call, so read the shares and the differences, "
        "not the absolute figures."
    )
    labels = sorted(
        {a for _, areas, _ in results.values() for a in areas},
        key=lambda a: -max(r[1].get(a, 0.0) / r[0] for r in results.values()),
    )
    names = list(results)
    print(f"{'area':<46}" + "".join(f"{name + ' us':>14}{'%':>6}" for name in names))
    for label in labels:
        row = f"{label:<46}"
        for name in names:
            total, areas, _ = results[name]
            whole = sum(areas.values())
            spent = areas.get(label, 0.0)
            row += f"{spent / total * 1e6:>14.0f}{spent / whole * 100:>6.1f}"
        print(row)
    row = f"{'total':<46}"
    for name in names:
        total, areas, _ = results[name]
        row += f"{sum(areas.values()) / total * 1e6:>14.0f}{100:>6.1f}"
    print(row)
    if "covet" in results:
        print()
        print("covet's own functions with the most self time (all callers together):")
        results["covet"][2].sort_stats("tottime").print_stats("/covet/", 25)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
