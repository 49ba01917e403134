from __future__ import annotations

import asyncio
import datetime
import email.utils
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from covet import Covet
from covet.background import BackgroundTask, BackgroundTasks
from covet.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from covet.responses.conditional import parse_range
from covet.testing import TestClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
    from pathlib import Path

    from covet.types import ASGIApp, Message

# -- a minimal ASGI server for tests -------------------------------------------------------------


@dataclass
class Result:
    status: int
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes
    messages: list[Message] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = self.getlist(name)
        return values[0] if values else None

    def getlist(self, name: str) -> list[str]:
        key = name.lower().encode()
        return [v.decode("latin-1") for k, v in self.raw_headers if k == key]


class DisconnectedError(OSError):
    pass


async def call_asgi(
    app: ASGIApp,
    *,
    method: str = "GET",
    path: str = "/",
    headers: Sequence[tuple[str, str]] = (),
    extensions: dict[str, Any] | None = None,
    disconnect_after: int | None = None,
    send_raises_after: int | None = None,
    scope: dict[str, Any] | None = None,
) -> Result:
    """Call ``app`` like a server would and collect what it sends.

    ``disconnect_after=n`` makes ``receive()`` report ``http.disconnect`` once ``n``
    body chunks were sent; ``send_raises_after=n`` makes ``send()`` raise OSError
    after ``n`` body chunks, as ASGI 2.4 servers do.
    """
    full_scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "extensions": extensions or {},
    }
    if scope:
        full_scope.update(scope)
    messages: list[Message] = []
    gone = asyncio.Event()
    request_sent = False
    chunks = 0

    async def receive() -> Message:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal chunks
        if message["type"] == "http.response.body":
            if send_raises_after is not None and chunks >= send_raises_after:
                raise DisconnectedError("client went away")
            chunks += 1
            if not message.get("more_body", False):
                gone.set()
        messages.append(message)
        if disconnect_after is not None and chunks >= disconnect_after:
            gone.set()
            await asyncio.sleep(0.01)

    await asyncio.wait_for(app(full_scope, receive, send), timeout=10)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return Result(start["status"], list(start["headers"]), body, messages)


# -- Response and friends -------------------------------------------------------------------------


async def test_response_bytes_and_content_length() -> None:
    result = await call_asgi(Response(b"hello", media_type="application/octet-stream"))
    assert result.status == 200
    assert result.body == b"hello"
    assert result.header("content-length") == "5"
    assert result.header("content-type") == "application/octet-stream"


async def test_response_str_is_encoded_and_text_gets_charset() -> None:
    result = await call_asgi(Response("héllo", media_type="text/plain"))
    assert result.body == "héllo".encode()
    assert result.header("content-length") == "6"
    assert result.header("content-type") == "text/plain; charset=utf-8"


def test_response_without_content_or_media_type() -> None:
    response = Response(status_code=204)
    assert response.body == b""
    assert "content-length" not in response.headers
    assert "content-type" not in response.headers
    assert Response().headers["content-length"] == "0"


def test_response_rejects_other_content_types() -> None:
    with pytest.raises(TypeError, match="content must be bytes or str, not 'dict'"):
        Response({"a": 1})


def test_explicit_headers_win() -> None:
    response = PlainTextResponse("x", headers={"Content-Type": "text/csv", "X-Thing": "1"})
    assert response.headers.getlist("content-type") == ["text/csv"]
    assert response.headers["x-thing"] == "1"


def test_content_length_headers_of_any_size() -> None:
    # Small lengths come from a table filled on first use; large ones are formatted.
    for size in (0, 1, 13, 4095, 4096, 70_000):
        for _ in range(2):
            response = PlainTextResponse("x" * size)
            assert response.headers["content-length"] == str(size)
            assert response.raw_headers[0] == (b"content-length", str(size).encode())


def test_subclass_class_attributes_shape_every_response() -> None:
    class Latin1(PlainTextResponse):
        charset = "latin-1"

    class Csv(Response):
        media_type = "text/csv"

    latin = Latin1("café")
    assert latin.body == "café".encode("latin-1")
    assert latin.headers["content-type"] == "text/plain; charset=latin-1"
    assert Csv("a,b").headers["content-type"] == "text/csv; charset=utf-8"
    assert Csv("a,b", media_type="text/tab-separated-values").headers["content-type"] == (
        "text/tab-separated-values; charset=utf-8"
    )


def test_subclass_setting_media_type_per_instance_is_honoured() -> None:
    # A subclass with its own __init__ may set media_type or charset on the instance:
    # the class-level fast path must not hide that.
    class Chosen(PlainTextResponse):
        def __init__(self, content: str, kind: str) -> None:
            self.media_type = kind
            self.charset = "latin-1"
            super().__init__(content)

    response = Chosen("é", "text/markdown")
    assert response.headers["content-type"] == "text/markdown; charset=latin-1"
    assert response.body == "é".encode("latin-1")


def test_subclass_with_its_own_render_and_headers() -> None:
    class Shouting(PlainTextResponse):
        def render(self, content: Any) -> bytes:
            return str(content).upper().encode()

    class Tagged(PlainTextResponse):
        def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
            super().init_headers(headers)
            self.raw_headers.append((b"x-tagged", b"1"))

    assert Shouting("hey").body == b"HEY"
    assert Shouting("hey").headers["content-length"] == "3"
    assert Tagged("x").headers["x-tagged"] == "1"


def test_invalid_media_type_fails_per_response() -> None:
    class Broken(Response):
        media_type = "text/plain\r\nX-Injected: 1"

    with pytest.raises(ValueError, match="CR, LF and NUL"):
        Broken("x")


async def test_only_responses_sending_like_response_are_sent_inline() -> None:
    from covet.responses import SENDS_PLAIN

    class Custom(PlainTextResponse):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 299, "headers": []})
            await send({"type": "http.response.body", "body": b"custom"})

    assert {Response, PlainTextResponse, JSONResponse, HTMLResponse} <= SENDS_PLAIN
    assert Custom not in SENDS_PLAIN
    assert StreamingResponse not in SENDS_PLAIN and FileResponse not in SENDS_PLAIN

    app = Covet(allowed_hosts=["testserver"])

    @app.get("/custom")
    async def custom(request: Any) -> Custom:
        return Custom("ignored")

    with TestClient(app) as client:
        answer = client.get("/custom")
    assert (answer.status_code, answer.text) == (299, "custom")


async def test_html_and_plain_text() -> None:
    html = await call_asgi(HTMLResponse("<h1>hi</h1>", status_code=201))
    assert html.status == 201
    assert html.header("content-type") == "text/html; charset=utf-8"
    text = await call_asgi(PlainTextResponse("hi"))
    assert text.header("content-type") == "text/plain; charset=utf-8"


async def test_json_response() -> None:
    result = await call_asgi(JSONResponse({"a": [1, 2.5, None], "é": True}, status_code=201))
    assert result.status == 201
    assert result.body == '{"a":[1,2.5,null],"é":true}'.encode()
    assert result.header("content-type") == "application/json"
    problem = JSONResponse({"title": "x"}, media_type="application/problem+json")
    assert problem.headers["content-type"] == "application/problem+json"
    with pytest.raises(TypeError, match="Object of type 'set'"):
        JSONResponse({1})


@pytest.mark.parametrize(
    "response",
    [
        Response(b"body bytes"),
        PlainTextResponse("some text"),
        JSONResponse({"a": 1}),
        HTMLResponse("<p>x</p>"),
    ],
)
async def test_head_sends_headers_and_no_body(response: Response) -> None:
    result = await call_asgi(response, method="HEAD")
    assert result.body == b""
    assert result.header("content-length") == str(len(response.body))
    assert len(response.body) > 0


async def test_headers_mutations_are_sent() -> None:
    response = Response(b"x")
    response.headers["X-Added"] = "yes"
    response.headers.append("X-Multi", "1")
    response.headers.append("X-Multi", "2")
    result = await call_asgi(response)
    assert result.header("x-added") == "yes"
    assert result.getlist("x-multi") == ["1", "2"]


def test_header_injection_refused() -> None:
    with pytest.raises(ValueError, match="CR, LF and NUL"):
        Response(b"", headers={"X-Evil": "a\r\nSet-Cookie: x=1"})
    response = Response(b"")
    with pytest.raises(ValueError, match="CR, LF and NUL"):
        response.headers["X-Evil"] = "a\nb"


async def test_header_injection_through_raw_list_refused_at_send() -> None:
    response = Response(b"")
    response.raw_headers.append((b"x-evil", b"a\r\nset-cookie: x=1"))
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        await call_asgi(response)


# -- cookies -------------------------------------------------------------------------------------


def test_set_cookie_defaults() -> None:
    response = Response()
    response.set_cookie("sid", "abc123")
    assert response.headers.getlist("set-cookie") == ["sid=abc123; Path=/; HttpOnly; SameSite=Lax"]


def test_set_cookie_all_flags() -> None:
    response = Response()
    when = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    response.set_cookie(
        "__Host-id",
        "v",
        max_age=3600,
        expires=when,
        secure=True,
        httponly=False,
        samesite="none",
        partitioned=True,
    )
    assert response.headers["set-cookie"] == (
        "__Host-id=v; Max-Age=3600; Expires=Wed, 02 Jan 2030 03:04:05 GMT; Path=/; Secure; "
        "SameSite=None; Partitioned"
    )


def test_set_cookie_expires_seconds_and_naive_datetime() -> None:
    response = Response()
    response.set_cookie("a", "1", expires=60, samesite=None, domain="example.com", path=None)
    header = response.headers["set-cookie"]
    expires_text = header.split("Expires=")[1].split(";")[0]
    expires = email.utils.parsedate_to_datetime(expires_text)
    delta = expires - datetime.datetime.now(datetime.UTC)
    assert 55 < delta.total_seconds() <= 61
    assert header.endswith("Domain=example.com; HttpOnly")
    assert "Path" not in header
    assert "SameSite" not in header
    response = Response()
    response.set_cookie("b", "2", expires=datetime.datetime(2030, 1, 1))  # noqa: DTZ001
    assert "Expires=Tue, 01 Jan 2030 00:00:00 GMT" in response.headers["set-cookie"]


def test_set_cookie_samesite_is_case_insensitive() -> None:
    response = Response()
    response.set_cookie("a", "1", samesite="STRICT")  # type: ignore[arg-type]
    assert response.headers["set-cookie"].endswith("SameSite=Strict")


def test_multiple_cookies() -> None:
    response = Response()
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    assert [c.split(";")[0] for c in response.headers.getlist("set-cookie")] == ["a=1", "b=2"]


def test_delete_cookie() -> None:
    response = Response()
    response.delete_cookie("sid", path="/app", domain="example.com")
    assert response.headers["set-cookie"] == (
        "sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/app; "
        "Domain=example.com; HttpOnly; SameSite=Lax"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": "bad name"}, "Invalid cookie name"),
        ({"key": "a;b"}, "Invalid cookie name"),
        ({"key": ""}, "Invalid cookie name"),
        ({"value": "has space"}, "Invalid cookie value"),
        ({"value": "semi;colon"}, "Invalid cookie value"),
        ({"value": "new\r\nline"}, "Invalid cookie value"),
        ({"value": "ünicode"}, "Invalid cookie value"),
        ({"samesite": "sometimes"}, "Invalid samesite value 'sometimes'"),
        ({"samesite": "none"}, "without secure=True"),
        ({"partitioned": True}, "partitioned without secure=True"),
        ({"key": "__Secure-x"}, "__Secure- prefix"),
        ({"key": "__Host-x", "secure": True, "path": "/app"}, "__Host- prefix"),
        ({"key": "__Host-x", "secure": True, "domain": "example.com"}, "__Host- prefix"),
        ({"path": "/a;b"}, "Invalid cookie path"),
        ({"domain": "ex\nample.com"}, "Invalid cookie domain"),
    ],
)
def test_set_cookie_validation(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"key": "name", "value": "value", **kwargs}
    with pytest.raises(ValueError, match=message):
        Response().set_cookie(**arguments)


def test_quoted_cookie_value_is_allowed() -> None:
    response = Response()
    response.set_cookie("a", '"quoted"')
    assert response.headers["set-cookie"].startswith('a="quoted";')


# -- redirects ------------------------------------------------------------------------------------


async def test_redirect() -> None:
    result = await call_asgi(RedirectResponse("/next?x=1"))
    assert result.status == 307
    assert result.header("location") == "/next?x=1"
    assert result.body == b""
    assert result.header("content-length") == "0"
    assert RedirectResponse("https://example.com/", status_code=303).status_code == 303


def test_redirect_quotes_unsafe_characters() -> None:
    response = RedirectResponse("/a b/ü?q=ö")
    assert response.headers["location"] == "/a%20b/%C3%BC?q=%C3%B6"
    evil = RedirectResponse("/x\r\nSet-Cookie: pwned=1")
    assert evil.headers["location"] == "/x%0D%0ASet-Cookie:%20pwned=1"
    assert "set-cookie" not in evil.headers


# -- streaming ------------------------------------------------------------------------------------


async def test_streaming_async_iterable() -> None:
    async def numbers() -> AsyncIterator[str]:
        for n in range(3):
            yield f"{n},"

    result = await call_asgi(StreamingResponse(numbers(), media_type="text/csv"))
    assert result.body == b"0,1,2,"
    assert result.header("content-type") == "text/csv; charset=utf-8"
    assert result.header("content-length") is None
    bodies = [m for m in result.messages if m["type"] == "http.response.body"]
    assert [m["more_body"] for m in bodies] == [True, True, True, False]


async def test_streaming_sync_iterable_runs_in_thread() -> None:
    threads: list[int] = []

    def chunks() -> Iterator[bytes]:
        for part in (b"a", b"b", b"c"):
            threads.append(threading.get_ident())
            yield part

    result = await call_asgi(StreamingResponse(chunks()))
    assert result.body == b"abc"
    assert threads
    assert threading.get_ident() not in threads


async def test_streaming_list_and_bad_chunk() -> None:
    assert (await call_asgi(StreamingResponse(["x", b"y"]))).body == b"xy"
    with pytest.raises(TypeError, match="chunks must be bytes or str, got 'int'"):
        await call_asgi(StreamingResponse([1]))  # type: ignore[list-item]
    with pytest.raises(TypeError, match="must be an iterable of chunks"):
        StreamingResponse(b"not chunks")  # type: ignore[arg-type]


async def test_streaming_error_in_body_propagates() -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"first"
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        await call_asgi(StreamingResponse(broken()))


async def test_streaming_stops_on_disconnect() -> None:
    produced: list[int] = []
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            n = 0
            while True:
                produced.append(n)
                n += 1
                yield b"x" * 10
                await asyncio.sleep(0)
        finally:
            closed.set()

    ran = asyncio.Event()

    async def after() -> None:
        ran.set()

    response = StreamingResponse(endless(), background=BackgroundTask(after))
    result = await call_asgi(response, disconnect_after=3)
    assert closed.is_set()
    assert ran.is_set()
    assert 3 <= len(produced) < 50
    assert result.body.startswith(b"x" * 30)


async def test_streaming_sync_iterator_stops_on_disconnect() -> None:
    produced: list[int] = []

    def endless() -> Iterator[bytes]:
        n = 0
        while True:
            produced.append(n)
            n += 1
            yield b"y"

    await call_asgi(StreamingResponse(endless()), disconnect_after=2)
    await asyncio.sleep(0.05)
    count = len(produced)
    assert count < 100
    await asyncio.sleep(0.05)
    assert len(produced) == count


async def test_streaming_stops_when_send_raises() -> None:
    produced: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            produced.append(1)
            yield b"z"

    result = await call_asgi(StreamingResponse(endless()), send_raises_after=2)
    assert result.body == b"zz"
    assert len(produced) <= 3


async def test_streaming_head_does_not_iterate() -> None:
    started = False

    async def body() -> AsyncIterator[bytes]:
        nonlocal started
        started = True
        yield b"never"

    result = await call_asgi(
        StreamingResponse(body(), headers={"Content-Length": "5"}), method="HEAD"
    )
    assert result.body == b""
    assert result.header("content-length") == "5"
    assert not started


# -- background tasks through responses -----------------------------------------------------------


async def test_background_runs_after_body_is_sent() -> None:
    order: list[str] = []
    sent_before: list[int] = []
    messages_seen: list[Message] = []

    async def task(tag: str) -> None:
        sent_before.append(len(messages_seen))
        order.append(tag)

    response = Response(b"done", background=BackgroundTask(task, "one"))

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        messages_seen.append(message)

    await response({"type": "http", "method": "GET", "headers": []}, receive, send)
    assert order == ["one"]
    assert sent_before == [2]


async def test_background_tasks_on_response() -> None:
    order: list[str] = []
    tasks = BackgroundTasks()

    def sync_task(value: str) -> None:
        order.append(f"sync:{value}")

    async def async_task(value: str) -> None:
        order.append(f"async:{value}")

    tasks.add_task(sync_task, "a")
    tasks.add_task(async_task, value="b")
    await call_asgi(JSONResponse({"ok": True}, background=tasks))
    assert order == ["sync:a", "async:b"]


# -- files ----------------------------------------------------------------------------------------

CONTENT = bytes(range(256)) * 40  # 10240 bytes
MTIME = 1_700_000_000  # 2023-11-14 22:13:20 UTC


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(CONTENT)
    os.utime(path, (MTIME, MTIME))
    return path


async def test_file_response_headers(data_file: Path) -> None:
    result = await call_asgi(FileResponse(data_file))
    assert result.status == 200
    assert result.body == CONTENT
    assert result.header("content-length") == str(len(CONTENT))
    assert result.header("content-type") == "application/octet-stream"
    assert result.header("accept-ranges") == "bytes"
    assert result.header("last-modified") == "Tue, 14 Nov 2023 22:13:20 GMT"
    etag = result.header("etag")
    assert etag is not None
    assert etag.startswith('"')
    assert etag.endswith('"')


async def test_file_response_chunks_and_etag_changes(data_file: Path) -> None:
    response = FileResponse(data_file)
    response.chunk_size = 4096
    result = await call_asgi(response)
    assert result.body == CONTENT
    assert len([m for m in result.messages if m["type"] == "http.response.body"]) == 4
    first = result.header("etag")
    data_file.write_bytes(CONTENT + b"!")
    os.utime(data_file, (MTIME, MTIME))
    assert (await call_asgi(FileResponse(data_file))).header("etag") != first


async def test_file_response_media_type_and_filename(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text("<p>hi</p>")
    result = await call_asgi(FileResponse(path))
    assert result.header("content-type") == "text/html; charset=utf-8"
    assert result.header("content-disposition") is None
    download = await call_asgi(FileResponse(path, filename="report.csv"))
    assert download.header("content-type") == "text/csv; charset=utf-8"
    assert download.header("content-disposition") == 'attachment; filename="report.csv"'
    inline = FileResponse(path, filename="naïve €.pdf", content_disposition_type="inline")
    assert inline.headers["content-disposition"] == (
        "inline; filename=\"na?ve ?.pdf\"; filename*=utf-8''na%C3%AFve%20%E2%82%AC.pdf"
    )
    assert inline.media_type == "application/pdf"


async def test_file_response_head(data_file: Path) -> None:
    result = await call_asgi(FileResponse(data_file), method="HEAD")
    assert result.body == b""
    assert result.header("content-length") == str(len(CONTENT))


async def test_file_response_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    result = await call_asgi(FileResponse(path))
    assert result.status == 200
    assert result.body == b""
    assert result.header("content-length") == "0"
    ranged = await call_asgi(FileResponse(path), headers=[("Range", "bytes=0-")])
    assert ranged.status == 416
    assert ranged.header("content-range") == "bytes */0"


async def test_file_response_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        await call_asgi(FileResponse(tmp_path / "nope.txt"))
    with pytest.raises(IsADirectoryError, match=r"not a regular file|is a directory"):
        await call_asgi(FileResponse(tmp_path))


async def test_file_response_pathsend(data_file: Path) -> None:
    result = await call_asgi(FileResponse(data_file), extensions={"http.response.pathsend": {}})
    assert result.messages[-1] == {"type": "http.response.pathsend", "path": str(data_file)}
    assert result.header("content-length") == str(len(CONTENT))


async def test_file_response_stops_on_disconnect(data_file: Path) -> None:
    response = FileResponse(data_file)
    response.chunk_size = 512
    result = await call_asgi(response, disconnect_after=2)
    assert 2 <= len(result.body) // 512 < 20


async def test_file_response_stops_when_send_raises(data_file: Path) -> None:
    ran: list[bool] = []
    response = FileResponse(data_file, background=BackgroundTask(ran.append, True))
    response.chunk_size = 512
    result = await call_asgi(response, send_raises_after=3)
    assert result.body == CONTENT[:1536]
    assert ran == [True]


# -- conditional requests -------------------------------------------------------------------------


async def etag_of(path: Path) -> str:
    etag = (await call_asgi(FileResponse(path), method="HEAD")).header("etag")
    assert etag is not None
    return etag


async def test_if_none_match(data_file: Path) -> None:
    etag = await etag_of(data_file)
    for value in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        result = await call_asgi(FileResponse(data_file), headers=[("If-None-Match", value)])
        assert result.status == 304, value
        assert result.body == b""
        assert result.header("etag") == etag
        assert result.header("content-length") is None
        assert result.header("content-type") is None
    result = await call_asgi(FileResponse(data_file), headers=[("If-None-Match", '"other"')])
    assert result.status == 200
    assert result.body == CONTENT


async def test_if_none_match_head(data_file: Path) -> None:
    etag = await etag_of(data_file)
    result = await call_asgi(
        FileResponse(data_file), method="HEAD", headers=[("If-None-Match", etag)]
    )
    assert result.status == 304


async def test_if_modified_since(data_file: Path) -> None:
    same = email.utils.formatdate(MTIME, usegmt=True)
    later = email.utils.formatdate(MTIME + 60, usegmt=True)
    earlier = email.utils.formatdate(MTIME - 60, usegmt=True)
    for value, status in ((same, 304), (later, 304), (earlier, 200), ("garbage", 200)):
        result = await call_asgi(FileResponse(data_file), headers=[("If-Modified-Since", value)])
        assert result.status == status, value
    # If-None-Match takes precedence over If-Modified-Since.
    result = await call_asgi(
        FileResponse(data_file),
        headers=[("If-None-Match", '"other"'), ("If-Modified-Since", later)],
    )
    assert result.status == 200


async def test_if_match_and_if_unmodified_since(data_file: Path) -> None:
    etag = await etag_of(data_file)
    assert (await call_asgi(FileResponse(data_file), headers=[("If-Match", etag)])).status == 200
    failed = await call_asgi(FileResponse(data_file), headers=[("If-Match", '"other"')])
    assert failed.status == 412
    assert failed.body == b""
    weak = await call_asgi(FileResponse(data_file), headers=[("If-Match", f"W/{etag}")])
    assert weak.status == 412
    earlier = email.utils.formatdate(MTIME - 60, usegmt=True)
    result = await call_asgi(FileResponse(data_file), headers=[("If-Unmodified-Since", earlier)])
    assert result.status == 412


async def test_conditionals_ignored_for_non_200(data_file: Path) -> None:
    etag = await etag_of(data_file)
    result = await call_asgi(
        FileResponse(data_file, status_code=404),
        headers=[("If-None-Match", etag), ("Range", "bytes=0-1")],
    )
    assert result.status == 404
    assert result.body == CONTENT


# -- ranges ---------------------------------------------------------------------------------------


async def test_single_range(data_file: Path) -> None:
    result = await call_asgi(FileResponse(data_file), headers=[("Range", "bytes=10-19")])
    assert result.status == 206
    assert result.body == CONTENT[10:20]
    assert result.header("content-range") == f"bytes 10-19/{len(CONTENT)}"
    assert result.header("content-length") == "10"


@pytest.mark.parametrize(
    ("spec", "start", "stop"),
    [
        ("bytes=10240-", None, None),
        ("bytes=-100", len(CONTENT) - 100, len(CONTENT)),
        ("bytes=-99999", 0, len(CONTENT)),
        ("bytes=10000-", 10000, len(CONTENT)),
        ("bytes=10000-99999", 10000, len(CONTENT)),
        ("BYTES = 0-0", 0, 1),
    ],
)
async def test_range_forms(data_file: Path, spec: str, start: int | None, stop: int | None) -> None:
    result = await call_asgi(FileResponse(data_file), headers=[("Range", spec)])
    if start is None:
        assert result.status == 416
        return
    assert result.status == 206
    assert result.body == CONTENT[start:stop]
    assert result.header("content-range") == f"bytes {start}-{stop - 1}/{len(CONTENT)}"  # type: ignore[operator]


def parse_multipart(result: Result) -> list[tuple[dict[str, str], bytes]]:
    content_type = result.header("content-type")
    assert content_type is not None
    assert content_type.startswith("multipart/byteranges; boundary=")
    boundary = content_type.split("boundary=")[1].encode()
    assert result.body.endswith(b"--" + boundary + b"--\r\n")
    parts = []
    for raw in result.body.split(b"--" + boundary)[1:-1]:
        head, _, data = raw[2:].partition(b"\r\n\r\n")
        assert data.endswith(b"\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        parts.append((headers, data[:-2]))
    return parts


async def test_multiple_ranges(data_file: Path) -> None:
    result = await call_asgi(FileResponse(data_file), headers=[("Range", "bytes=0-9, 100-109,-5")])
    assert result.status == 206
    assert result.header("content-length") == str(len(result.body))
    parts = parse_multipart(result)
    size = len(CONTENT)
    assert [p[1] for p in parts] == [CONTENT[0:10], CONTENT[100:110], CONTENT[-5:]]
    assert [p[0]["Content-Range"] for p in parts] == [
        f"bytes 0-9/{size}",
        f"bytes 100-109/{size}",
        f"bytes {size - 5}-{size - 1}/{size}",
    ]
    assert {p[0]["Content-Type"] for p in parts} == {"application/octet-stream"}


async def test_overlapping_ranges_are_merged(data_file: Path) -> None:
    result = await call_asgi(
        FileResponse(data_file), headers=[("Range", "bytes=50-99,0-59,100-120,500-510,505-")]
    )
    parts = parse_multipart(result)
    assert [p[0]["Content-Range"].split()[1].split("/")[0] for p in parts] == [
        "0-120",
        f"500-{len(CONTENT) - 1}",
    ]
    single = await call_asgi(FileResponse(data_file), headers=[("Range", "bytes=0-9,5-19,20-29")])
    assert single.status == 206
    assert single.header("content-range") == f"bytes 0-29/{len(CONTENT)}"
    assert single.body == CONTENT[:30]


async def test_too_many_ranges_ignored(data_file: Path) -> None:
    many = ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(201))
    result = await call_asgi(FileResponse(data_file), headers=[("Range", f"bytes={many}")])
    assert result.status == 200
    assert result.body == CONTENT
    allowed = ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(200))
    result = await call_asgi(FileResponse(data_file), headers=[("Range", f"bytes={allowed}")])
    assert result.status == 206
    assert len(parse_multipart(result)) == 200


async def test_unsatisfiable_range(data_file: Path) -> None:
    result = await call_asgi(FileResponse(data_file), headers=[("Range", "bytes=20000-20010")])
    assert result.status == 416
    assert result.header("content-range") == f"bytes */{len(CONTENT)}"
    assert result.header("content-length") == "0"
    assert result.body == b""


@pytest.mark.parametrize(
    "spec",
    [
        "bytes=abc",
        "bytes=5-1",
        "items=0-5",
        "bytes=",
        "bytes=1-2-3",
        "bytes=--5",
        "0-5",
        "bytes=²-³",
        "bytes=1-²",
    ],
)
async def test_malformed_range_ignored(data_file: Path, spec: str) -> None:
    result = await call_asgi(FileResponse(data_file), headers=[("Range", spec)])
    assert result.status == 200
    assert result.body == CONTENT


async def test_range_ignored_for_head(data_file: Path) -> None:
    result = await call_asgi(
        FileResponse(data_file), method="HEAD", headers=[("Range", "bytes=0-1")]
    )
    assert result.status == 200
    assert result.header("content-length") == str(len(CONTENT))


async def test_if_range(data_file: Path) -> None:
    etag = await etag_of(data_file)
    date = email.utils.formatdate(MTIME, usegmt=True)
    other_date = email.utils.formatdate(MTIME + 1, usegmt=True)
    cases = [(etag, 206), ('"stale"', 200), (f"W/{etag}", 200), (date, 206), (other_date, 200)]
    for value, status in cases:
        result = await call_asgi(
            FileResponse(data_file), headers=[("Range", "bytes=0-3"), ("If-Range", value)]
        )
        assert result.status == status, value


def test_parse_range_directly() -> None:
    assert parse_range("bytes=0-0", 1) == [(0, 0)]
    assert parse_range("bytes=0-4,2-8,10-12", 20) == [(0, 8), (10, 12)]
    assert parse_range("bytes=0-4,5-9", 20) == [(0, 9)]
    assert parse_range("bytes=-0", 20) == []
    assert parse_range("bytes=30-", 20) == []
    assert parse_range("bytes=, 1-2 ,", 20) == [(1, 2)]
    assert parse_range("bytes=1-2,x", 20) is None
    # Many overlapping ranges collapse into one (no amplification).
    assert parse_range("bytes=" + ",".join(["0-"] * 200), 20) == [(0, 19)]


# -- through a covet app and its TestClient -------------------------------------------------------


def test_responses_through_the_test_client(data_file: Path) -> None:
    app = Covet()
    done: list[str] = []

    @app.get("/stream")
    async def stream(request: Any) -> StreamingResponse:
        async def body() -> AsyncIterator[str]:
            for part in ("a", "b", "c"):
                yield part

        return StreamingResponse(body(), media_type="text/plain")

    @app.get("/file")
    async def file(request: Any) -> FileResponse:
        return FileResponse(data_file, filename="data.bin")

    @app.get("/cookie")
    async def cookie(request: Any) -> JSONResponse:
        response = JSONResponse({"ok": True}, background=BackgroundTask(done.append, "bg"))
        response.set_cookie("sid", "abc", secure=True)
        return response

    with TestClient(app) as client:
        streamed = client.get("/stream")
        assert streamed.text == "abc"
        assert streamed.headers["content-type"] == "text/plain; charset=utf-8"
        ranged = client.get("/file", headers={"Range": "bytes=5-9"})
        assert ranged.status_code == 206
        assert ranged.content == CONTENT[5:10]
        assert client.head("/file").headers["content-length"] == str(len(CONTENT))
        cookie_response = client.get("/cookie")
        assert cookie_response.json() == {"ok": True}
        assert cookie_response.headers["set-cookie"] == (
            "sid=abc; Path=/; Secure; HttpOnly; SameSite=Lax"
        )
        assert done == ["bg"]


async def test_streaming_receive_failure_propagates() -> None:
    async def body() -> AsyncIterator[bytes]:
        while True:
            yield b"x"
            await asyncio.sleep(0.01)

    async def receive() -> Message:
        raise RuntimeError("receive broke")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(RuntimeError, match="receive broke"):
        await StreamingResponse(body())({"type": "http", "method": "GET"}, receive, send)
    assert sent[0]["type"] == "http.response.start"
