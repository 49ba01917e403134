"""Coverage-guided fuzzing (atheris) of the request parsers covet owns (issue 16).

    .venv/bin/python -m benchmarks.reliability.fuzz --list
    .venv/bin/python -m benchmarks.reliability.fuzz range --seconds 600
    .venv/bin/python -m benchmarks.reliability.fuzz all --seconds 60      # each target in turn
    .venv/bin/python -m benchmarks.reliability.fuzz asgi -- -max_len=65536 corpus/  # libFuzzer

Targets (each a function of the fuzzer's bytes that raises only on a bug):

* ``cookies``: ``parse_cookies()`` never raises.
* ``range``: ``parse_range()`` returns None or in-bounds, sorted,
  non-overlapping ranges, never more than 200.
* ``headers``: ``Headers``, ``QueryParams``, ``URL``, ``parse_content_type()``,
  ``check_charset()`` and ``parse_http_date()`` on arbitrary bytes: only a
  4xx ``HTTPException`` may come out.
* ``convertors``: every converter's ``convert()`` accepts what its regex
  matches or raises ValueError, and ``to_string(convert(x))`` matches again.
* ``router``: the URL matcher on arbitrary paths and methods.
* ``asgi``: a whole request (method, path, query, headers, cookies, body)
  through an app with the scaffold's middleware (sessions, CSRF) and a form,
  multipart, JSON and Range endpoint: never a 5xx, never an exception.

A crash is written by libFuzzer as ``crash-<sha1>`` in the working
directory; ``--reproduce FILE`` runs one input again without atheris'
instrumentation. Every crash found becomes a regression test in
``tests/reliability/test_fuzz.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping

TARGETS = ("cookies", "range", "headers", "convertors", "router", "asgi")


def _text(data: Any, size: int = 200) -> str:
    return str(data.ConsumeUnicodeNoSurrogates(size))


class Targets:
    """The fuzz targets; built after atheris has instrumented covet's modules."""

    def __init__(self) -> None:
        from covet import Covet, FileResponse, Request
        from covet.convertors import CONVERTOR_TYPES
        from covet.datastructures import URL, Headers, QueryParams, UploadFile
        from covet.exceptions import HTTPException
        from covet.formparsers import check_charset, parse_content_type
        from covet.middleware import CSRFMiddleware, SessionMiddleware, csrf_exempt
        from covet.requests import parse_cookies
        from covet.responses.conditional import parse_http_date, parse_range

        self.HTTPException = HTTPException
        self.parse_cookies = parse_cookies
        self.parse_range = parse_range
        self.Headers, self.QueryParams, self.URL = Headers, QueryParams, URL
        self.parse_content_type, self.check_charset = parse_content_type, check_charset
        self.parse_http_date = parse_http_date
        self._convertors = dict(CONVERTOR_TYPES)
        self.loop = asyncio.new_event_loop()
        self.scratch = Path(tempfile.mkdtemp(prefix="covet-fuzz-"))
        (self.scratch / "file.bin").write_bytes(bytes(range(256)) * 16)

        app = Covet(allowed_hosts=["testserver"])
        app.add_middleware(SessionMiddleware, secret_key="fuzz-secret-key-0123456789abcdef")
        app.add_middleware(CSRFMiddleware)
        scratch = self.scratch

        async def describe(request: Request) -> dict[str, Any]:
            form = await request.form()
            out: dict[str, Any] = {}
            for key, value in form.multi_items():
                out[key] = len(await value.read()) if isinstance(value, UploadFile) else value
            await form.close()
            return out

        @app.post("/upload")
        @csrf_exempt
        async def upload(request: Request) -> dict[str, Any]:
            return await describe(request)

        @app.post("/form")
        async def form(request: Request) -> dict[str, Any]:
            return await describe(request)

        @app.post("/json")
        @csrf_exempt
        async def json_body(request: Request) -> Any:
            return {"data": await request.json()}

        @app.get("/file")
        async def file(request: Request) -> FileResponse:
            return FileResponse(scratch / "file.bin")

        @app.get("/items/{item_id:int}/{slug:slug}")
        async def item(request: Request, item_id: int, slug: str) -> dict[str, Any]:
            request.session["seen"] = item_id
            return {"id": item_id, "slug": slug}

        @app.get("/u/{value:uuid}/{x:float}/{rest:path}")
        async def mixed(request: Request, value: Any, x: float, rest: str) -> dict[str, Any]:
            return {"u": str(value), "x": x, "rest": rest}

        self.app = app
        self._router = app.router
        self.loop.run_until_complete(self._startup())

    async def _startup(self) -> None:
        messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await asyncio.Event().wait()
            return {}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        # Run startup only: the app freezes its routes and middleware stack.
        task = asyncio.ensure_future(
            self.app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        )
        while not sent:
            await asyncio.sleep(0)
        task.cancel()

    def _host_is_valid(self, raw: list[tuple[bytes, bytes]]) -> bool:
        from covet._hosts import split_host

        host = next((value for key, value in raw if key == b"host"), None)
        return host is None or split_host(host.decode("latin-1")) is not None

    def _allowed(self, exc: BaseException) -> bool:
        status = getattr(exc, "status_code", None)
        return isinstance(exc, self.HTTPException) and status is not None and 400 <= status < 500

    # Targets.

    def cookies(self, data: bytes) -> None:
        """Parse any Cookie header: never raise."""
        self.parse_cookies(data.decode("latin-1"))

    def range(self, data: bytes) -> None:
        """Parse any Range header against a few sizes and check the answer."""
        import atheris

        provider = atheris.FuzzedDataProvider(data)
        size = provider.ConsumeIntInRange(0, 1 << 40)
        header = provider.ConsumeBytes(provider.remaining_bytes()).decode("latin-1")
        ranges = self.parse_range(header, size)
        if ranges is None:
            return
        assert len(ranges) <= 200, len(ranges)
        previous = -2
        for first, last in ranges:
            assert 0 <= first <= last < size, (first, last, size)
            assert first > previous, ranges  # sorted, merged: no overlap
            previous = last

    def headers(self, data: bytes) -> None:
        """Build and read headers, query strings and URLs from any bytes."""
        import atheris

        provider = atheris.FuzzedDataProvider(data)
        raw = [
            (provider.ConsumeBytes(20).lower(), provider.ConsumeBytes(60))
            for _ in range(provider.ConsumeIntInRange(0, 6))
        ]
        query = provider.ConsumeBytes(120)
        path = "/" + _text(provider, 80)  # an ASGI server always gives an absolute path
        value = provider.ConsumeBytes(provider.remaining_bytes()).decode("latin-1")
        try:
            headers = self.Headers(raw=raw)
            for key in headers:
                headers.getlist(key)
            dict(headers.items())
            params = self.QueryParams(query)
            list(params.multi_items())
            url = self.URL(
                scope={
                    "type": "http",
                    "scheme": "http",
                    "path": path,
                    "raw_path": path.encode("utf-8", "surrogateescape"),
                    "query_string": query,
                    "headers": raw,
                    "server": ("testserver", 80),
                    "root_path": "",
                }
            )
            str(url)
            try:
                _ = url.hostname, url.port, url.path, url.query
            except ValueError:
                # urllib's contract for a malformed netloc ("[", "a:99999"). A request never
                # gets here with one: the app answers 400 to a Host that fails covet's
                # grammar check before any handler reads request.url. So only a Host that
                # passes the check must parse.
                if self._host_is_valid(raw):
                    raise
            self.parse_content_type(value)
            self.parse_http_date(value)
            self.check_charset(value[:40])
        except Exception as exc:
            if not self._allowed(exc):
                raise

    def convertors(self, data: bytes) -> None:
        """Convert what each regex matches; round-trip what converts."""
        text = data.decode("utf-8", "replace")
        for name, convertor in self._convertors.items():
            if re.fullmatch(convertor.regex, text) is None:
                continue
            try:
                value = convertor.convert(text)
            except ValueError:
                continue
            again = convertor.to_string(value)
            assert re.fullmatch(convertor.regex, again), (name, text, again)
            assert convertor.convert(again) == value, (name, text, again)

    def router(self, data: bytes) -> None:
        """Match any path and method."""
        import atheris

        provider = atheris.FuzzedDataProvider(data)
        method = provider.PickValueInList(["GET", "POST", "HEAD", "PUT", "OPTIONS", "get", ""])
        path = "/" + _text(provider, 300)
        scope = {"type": "http", "path": path, "method": method, "root_path": ""}
        self._router.resolve(scope)
        # The same lookup for a websocket: the other index.
        self._router.resolve({**scope, "type": "websocket"})

    def asgi(self, data: bytes) -> None:
        """Send a whole request through the app: never a 5xx, never an exception."""
        import atheris

        provider = atheris.FuzzedDataProvider(data)
        method = provider.PickValueInList(["GET", "POST", "HEAD", "PUT"])
        path = provider.PickValueInList(
            ["/upload", "/form", "/json", "/file", "/items/1/a-b", "/u/", "/"]
        ) + _text(provider, 60)
        host = provider.PickValueInList([b"testserver", b"testserver:80", b""])
        headers = [(b"host", host + provider.ConsumeBytes(provider.ConsumeIntInRange(0, 3)))]
        content_type = provider.PickValueInList(
            [
                b"multipart/form-data; boundary=B",
                b"application/x-www-form-urlencoded",
                b"application/json",
                b"",
            ]
        ) + provider.ConsumeBytes(provider.ConsumeIntInRange(0, 40))
        headers.append((b"content-type", content_type))
        for name in (b"cookie", b"range", b"x-csrf-token", b"origin", b"if-range", b"accept"):
            if provider.ConsumeBool():
                headers.append((name, provider.ConsumeBytes(provider.ConsumeIntInRange(0, 80))))
        query = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 60))
        body = provider.ConsumeBytes(provider.remaining_bytes())
        if provider.ConsumeBool():
            headers.append((b"content-length", str(len(body)).encode()))
        status = self.loop.run_until_complete(self._request(method, path, query, headers, body))
        assert status is not None and status < 500, status

    async def _request(
        self, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> int | None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("utf-8", "surrogateescape"),
            "root_path": "",
            "query_string": query,
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": {},
        }
        chunks = [body[:300], body[300:]]
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            if chunks:
                return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await self.app(scope, receive, send)
        return status[0] if status else None


def _target(name: str) -> Callable[[bytes], None]:
    return getattr(Targets(), name)  # type: ignore[no-any-return]


def fuzz(name: str, seconds: int, extra: list[str]) -> None:
    """Run atheris on one target for ``seconds`` (libFuzzer's ``-max_total_time``)."""
    import atheris

    with atheris.instrument_imports(include=["covet", "python_multipart"]):
        target = _target(name)
    atheris.Setup(
        [sys.argv[0], f"-max_total_time={seconds}", "-rss_limit_mb=2048", *extra],
        target,
    )
    atheris.Fuzz()


def reproduce(name: str, path: Path) -> None:
    """Run one saved input through a target, without instrumentation."""
    _target(name)(path.read_bytes())
    print(f"{path}: no crash")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("target", nargs="?", choices=(*TARGETS, "all"))
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--reproduce", type=Path)
    parser.add_argument("libfuzzer", nargs="*", help="flags after -- go to libFuzzer")
    args = parser.parse_args()
    if args.list or args.target is None:
        print("\n".join(TARGETS))
        return 0
    if args.reproduce is not None:
        reproduce(args.target, args.reproduce)
        return 0
    if args.target != "all":
        fuzz(args.target, args.seconds, args.libfuzzer)
        return 0
    failed = 0
    for name in TARGETS:
        print(f"== {name}", flush=True)
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.reliability.fuzz",
                name,
                "--seconds",
                str(args.seconds),
            ],
            check=False,
        )
        failed |= run.returncode != 0
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
