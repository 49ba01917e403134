"""Run the hostile corpus against a live uvicorn worker and judge every answer.

:func:`run_corpus` starts the app of ``app.py`` in a subprocess (``serve.py``),
sends every :class:`~benchmarks.reliability.hostile.corpus.Case` over its own
raw socket (slow clients all at once, the rest a few at a time), and
meanwhile has a well-behaved client ask ``GET /ping`` every 20 ms from a
thread of its own. It returns a :class:`Report`: one :class:`Outcome` per
case, the well-behaved client's latencies, the worker's peak event-loop lag
and memory (from ``GET /_stats``) and any traceback in the server's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.reliability.hostile.corpus import SECRET, Case, corpus
from covet.protocol import BODY_TIMEOUT, HEADER_TIMEOUT

REPO = Path(__file__).resolve().parents[3]
_ALL_STATUSES = re.compile(rb"(?:^|\r\n)HTTP/1\.[01] (\d{3}) ")
_CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')


@dataclass
class Outcome:
    """What one case got."""

    case: Case
    status: int | None  # the first response's status; None when none came
    closed: bool  # the server closed the connection
    seconds: float
    answer: bytes = b""
    problem: str | None = None
    lag_ms: float | None = None  # the worker's peak loop lag during this case (parallel=0)
    lag_cpu_ms: float | None = None  # the part of it the worker spent running


@dataclass
class Report:
    """Everything one run measured."""

    outcomes: list[Outcome] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # the well-behaved client's, seconds
    ping_errors: list[str] = field(default_factory=list)
    lag_max_ms: float = 0.0
    lag_cpu_max_ms: float = 0.0
    rss_before: int = 0
    rss_after: int = 0
    rss_peak: int = 0
    log_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[Outcome]:
        """Return the cases answered wrongly."""
        return [outcome for outcome in self.outcomes if outcome.problem]

    def summary(self) -> dict[str, Any]:
        """Return the figures as plain data."""
        ordered = sorted(self.latencies)
        groups: dict[str, dict[str, int]] = {}
        for outcome in self.outcomes:
            group = groups.setdefault(outcome.case.group, {"cases": 0, "failed": 0})
            group["cases"] += 1
            group["failed"] += bool(outcome.problem)
        return {
            "cases": len(self.outcomes),
            "failed": len(self.failures),
            "groups": groups,
            "statuses": _count(outcome.status for outcome in self.outcomes),
            "pings": len(ordered),
            "ping_errors": len(self.ping_errors),
            "ping_p50_ms": _ms(ordered, 0.50),
            "ping_p99_ms": _ms(ordered, 0.99),
            "ping_max_ms": round(ordered[-1] * 1000, 1) if ordered else None,
            "loop_lag_max_ms": self.lag_max_ms,
            "loop_lag_cpu_max_ms": self.lag_cpu_max_ms,
            "rss_before_mib": round(self.rss_before / 2**20, 1),
            "rss_after_mib": round(self.rss_after / 2**20, 1),
            "rss_peak_mib": round(self.rss_peak / 2**20, 1),
            "log_problems": len(self.log_problems),
            "seconds": round(self.seconds, 1),
        }


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        key = "closed" if value is None else str(value)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _ms(ordered: list[float], quantile: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * quantile))] * 1000, 1)


def prepare_root(root: Path) -> None:
    """Write the static directory, the Range file and the secret a traversal aims at."""
    (root / "static").mkdir(parents=True, exist_ok=True)
    (root / "static" / "a.txt").write_bytes(b"static file\n")
    (root / "secret.txt").write_bytes(SECRET)
    (root / "big.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    root: Path, port: int, log: Path, *, header_timeout: float | None, body_timeout: float | None
) -> subprocess.Popen[bytes]:
    """Start ``serve.py`` and wait until it answers."""
    argv = [
        sys.executable,
        "-m",
        "benchmarks.reliability.hostile.serve",
        "--root",
        str(root),
        "--port",
        str(port),
    ]
    if header_timeout is not None:
        argv += ["--header-timeout", str(header_timeout)]
    if body_timeout is not None:
        argv += ["--body-timeout", str(body_timeout)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    env["PYTHONUNBUFFERED"] = "1"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log.read_text()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
        else:
            return process
    process.kill()
    raise RuntimeError(f"server did not answer within 30 s: {log.read_text()}")


def _visitor(base: str) -> tuple[bytes, bytes]:
    """Return (Cookie header, CSRF token) of a real visitor of ``/``."""
    response = httpx.get(base + "/")
    match = _CSRF.search(response.content)
    if match is None:
        raise RuntimeError(f"no CSRF token on /: {response.text[:200]}")
    cookie = "; ".join(f"{name}={value}" for name, value in response.cookies.items())
    return cookie.encode(), match.group(1)


def _with_visitor(data: bytes, cookie: bytes, token: bytes) -> bytes:
    head, sep, rest = data.partition(b"\r\n")
    return head + sep + b"Cookie: " + cookie + b"\r\nX-CSRF-Token: " + token + b"\r\n" + rest


def _response_complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if match is not None:
        return len(body) >= int(match.group(1))
    if re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
        return body.endswith(b"0\r\n\r\n")
    return head.startswith((b"HTTP/1.1 1", b"HTTP/1.1 204", b"HTTP/1.1 304"))


@dataclass(frozen=True)
class Timeouts:
    """The server's slow-client timeouts, which the slow cases wait for."""

    header: float = HEADER_TIMEOUT
    body: float = BODY_TIMEOUT

    def deadline(self, case: Case) -> float:
        """Return how long the client waits for ``case`` to be answered or closed."""
        if case.waits_for == "header":
            return self.header + case.deadline
        if case.waits_for == "body":
            # mod_reqtimeout's MinRate: every BODY_MIN_RATE bytes earn a second.
            return self.body * 1.2 + case.deadline
        return case.deadline


async def _send_case(
    port: int, case: Case, cookie: bytes, token: bytes, timeouts: Timeouts
) -> Outcome:
    started = time.monotonic()
    deadline = timeouts.deadline(case)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
    answer = bytearray()
    closed = False

    async def send() -> None:
        data = _with_visitor(case.data, cookie, token) if case.csrf and case.data else case.data
        try:
            for piece, pause in case.pieces:
                if piece:
                    writer.write(piece)
                    await writer.drain()
                await asyncio.sleep(pause)
            if data:
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            return

    sender = asyncio.create_task(send())
    try:
        async with asyncio.timeout(deadline):
            while True:
                # Once a whole answer is in, wait a little for a second (smuggled) one;
                # a case waiting for a timeout waits for the close.
                complete = case.waits_for is None and _response_complete(bytes(answer))
                quiet = 0.5 if complete else None
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), quiet)
                except TimeoutError:
                    break
                except (ConnectionError, OSError):
                    closed = True
                    break
                if not chunk:
                    closed = True
                    break
                answer += chunk
    except TimeoutError:
        pass
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sender
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()
    seconds = time.monotonic() - started
    # The first final status (a 100 Continue is interim).
    finals = [int(code) for code in _ALL_STATUSES.findall(bytes(answer)) if int(code) >= 200]
    status = finals[0] if finals else None
    outcome = Outcome(case, status, closed, seconds, bytes(answer[:2000]))
    outcome.problem = _judge(case, status, closed, bytes(answer), deadline)
    return outcome


def _judge(
    case: Case, status: int | None, closed: bool, answer: bytes, deadline: float
) -> str | None:
    if any(int(code) >= 500 for code in _ALL_STATUSES.findall(answer)):
        return f"answered {status}"
    if case.waits_for is not None and not (closed and b"HTTP/1.1 408 " in answer):
        return f"not answered 408 and closed within {deadline:.0f} s"
    if case.forbidden is not None and case.forbidden in answer:
        return f"answer contains {case.forbidden!r}"
    if case.group == "smuggling" and b"pong" in answer:
        return "the smuggled request was answered"
    if status is None:
        return None if closed else f"no answer and still open after {deadline:.0f} s"
    if status not in case.allowed:
        return f"answered {status}, expected one of {sorted(case.allowed)[:6]}"
    return None


def _ping(base: str, stop: threading.Event, report: Report) -> None:
    with httpx.Client(base_url=base, timeout=5) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                response = client.get("/ping")
            except httpx.HTTPError as exc:
                report.ping_errors.append(f"{type(exc).__name__}: {exc}")
            else:
                if response.status_code != 200:
                    report.ping_errors.append(f"status {response.status_code}")
                report.latencies.append(time.perf_counter() - started)
            time.sleep(0.02)


async def _run_cases(
    port: int, cases: list[Case], parallel: int, cookie: bytes, token: bytes, timeouts: Timeouts
) -> list[Outcome]:
    slow = [case for case in cases if case.pieces]
    fast = [case for case in cases if not case.pieces]
    limiter = asyncio.Semaphore(parallel)

    async def limited(case: Case) -> Outcome:
        async with limiter:
            return await _send_case(port, case, cookie, token, timeouts)

    if parallel == 0:
        # One case at a time, each with the worker's loop lag while it ran.
        outcomes = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as stats:
            for case in fast:
                await stats.get("/_stats?reset=1")
                outcome = await _send_case(port, case, cookie, token, timeouts)
                figures = (await stats.get("/_stats")).json()
                outcome.lag_ms = figures["lag_max_ms"]
                outcome.lag_cpu_ms = figures["lag_cpu_max_ms"]
                outcomes.append(outcome)
        return outcomes

    return list(
        await asyncio.gather(
            *(_send_case(port, case, cookie, token, timeouts) for case in slow),
            *(limited(case) for case in fast),
        )
    )


_LOG_PROBLEMS = re.compile(r"Traceback|Exception in ASGI|ERROR|Error:|exception", re.IGNORECASE)


def run_corpus(
    root: Path,
    *,
    cases: list[Case] | None = None,
    parallel: int = 4,
    header_timeout: float | None = None,
    body_timeout: float | None = None,
) -> Report:
    """Serve the app from ``root`` (a scratch directory), run the corpus and return the report.

    ``parallel`` cases run at once (the slow ones all together besides); with
    ``parallel=0`` the fast cases run one by one, each with its own loop-lag
    figure, and the slow ones are left out.
    """
    prepare_root(root)
    port = free_port()
    log = root / "server.log"
    base = f"http://127.0.0.1:{port}"
    report = Report()
    process = start_server(
        root, port, log, header_timeout=header_timeout, body_timeout=body_timeout
    )
    try:
        cookie, token = _visitor(base)
        before = httpx.get(base + "/_stats?reset=1").json()
        report.rss_before = before["VmRSS"]
        stop = threading.Event()
        pinger = threading.Thread(target=_ping, args=(base, stop, report), daemon=True)
        started = time.monotonic()
        pinger.start()
        try:
            timeouts = Timeouts(header_timeout or HEADER_TIMEOUT, body_timeout or BODY_TIMEOUT)
            chosen = cases if cases is not None else corpus()
            report.outcomes = asyncio.run(
                _run_cases(port, chosen, parallel, cookie, token, timeouts)
            )
        finally:
            stop.set()
            pinger.join()
        report.seconds = time.monotonic() - started
        after = httpx.get(base + "/_stats").json()
        report.lag_max_ms = after["lag_max_ms"]
        report.lag_cpu_max_ms = after["lag_cpu_max_ms"]
        report.rss_after = after["VmRSS"]
        report.rss_peak = after["VmHWM"]
    finally:
        process.terminate()
        try:
            process.wait(timeout=35)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    text = log.read_text("utf-8", "replace")
    report.log_problems = [line for line in text.splitlines() if _LOG_PROBLEMS.search(line)]
    return report
