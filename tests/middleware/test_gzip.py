from __future__ import annotations

import asyncio
import gzip
import zlib
from typing import TYPE_CHECKING, Any

import pytest

from covet.exceptions import ImproperlyConfigured
from covet.middleware import GZipMiddleware
from covet.middleware.gzip import accepts_gzip
from covet.testing import TestClient

if TYPE_CHECKING:
    import httpx

    from covet.types import Message


async def unused_receive() -> Message:
    raise AssertionError("the middleware must not read the request here")


async def unused_send(message: Message) -> None:
    raise AssertionError(f"the middleware must not send {message!r} here")


BIG = b"x" * 1000


def make_app(body: bytes = BIG, status: int = 200, headers=(), chunks=None):
    async def app(scope, receive, send):
        raw = [(b"content-type", b"text/plain; charset=utf-8"), *headers]
        if chunks is None:
            raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        if chunks is None:
            await send({"type": "http.response.body", "body": body})
            return
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


def get(
    app, accept: str | None = "gzip, deflate", method: str = "GET", **options: Any
) -> tuple[httpx.Response, bytes]:
    client = TestClient(GZipMiddleware(app, **options))
    headers = {"Accept-Encoding": accept} if accept is not None else {}
    if accept is None:
        del client.headers["accept-encoding"]  # httpx sends "gzip, deflate" by default
    # Read the raw (still compressed) bytes: httpx would otherwise decode them.
    with client.stream(method, "/", headers=headers) as response:
        raw = b"".join(response.iter_raw())
    return response, raw


def test_compresses_when_gzip_is_accepted():
    response, raw = get(make_app())
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["content-length"] == str(len(raw))
    assert len(raw) < len(BIG)
    assert gzip.decompress(raw) == BIG


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("br, gzip;q=0.5", True),
        ("gzip; q=1.0", True),
        ("x-gzip", True),
        ("*", True),
        ("*;q=0.1", True),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("gzip;q=0, *", False),
        ("*;q=0", False),
        ("identity", False),
        ("br", False),
        ("gzipfoo", False),
        ("", False),
        ("gzip;q=abc", False),
        ("gzip;q=1.2.3", False),
        ("deflate, gzip", True),
    ],
)
def test_accepts_gzip(accept, expected):
    assert accepts_gzip(accept) is expected


def test_q_zero_disables_compression_but_still_varies():
    response, raw = get(make_app(), accept="gzip;q=0")
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding"
    assert raw == BIG


def test_no_accept_encoding_is_left_alone():
    response, raw = get(make_app(), accept=None)
    assert "content-encoding" not in response.headers
    assert response.headers["content-length"] == "1000"
    assert raw == BIG


def test_below_minimum_size_is_left_alone():
    response, raw = get(make_app(b"small"))
    assert "content-encoding" not in response.headers
    assert raw == b"small"
    assert response.headers["vary"] == "Accept-Encoding"
    response, raw = get(make_app(b"small"), minimum_size=0)
    assert response.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == b"small"


def test_already_encoded_responses_are_left_alone():
    body = gzip.compress(BIG)
    response, raw = get(make_app(body, headers=[(b"content-encoding", b"gzip")]))
    assert raw == body
    assert "vary" not in response.headers


@pytest.mark.parametrize(
    "content_type",
    [
        b"text/event-stream",
        b"image/png",
        b"video/mp4",
        b"Audio/OGG; codecs=opus",
        b"application/zip",
    ],
)
def test_excluded_media_types(content_type):
    app = make_app(headers=[(b"content-type", content_type)])
    response, raw = get(app)
    assert "content-encoding" not in response.headers
    assert raw == BIG


def test_custom_exclusions_replace_the_defaults():
    app = make_app(headers=[(b"content-type", b"image/png")])
    response, _ = get(app, exclude_media_types=["application/json"])
    assert response.headers["content-encoding"] == "gzip"
    json_app = make_app(headers=[(b"content-type", b"application/json")])
    response, _ = get(json_app, exclude_media_types=["application/json"])
    assert "content-encoding" not in response.headers


def test_svg_is_compressed():
    response, _ = get(make_app(headers=[(b"content-type", b"image/svg+xml")]))
    assert response.headers["content-encoding"] == "gzip"


@pytest.mark.parametrize("status", [204, 206, 304])
def test_statuses_without_transformable_body_are_left_alone(status):
    body = b"" if status != 206 else BIG
    response, raw = get(make_app(body, status=status))
    assert "content-encoding" not in response.headers
    assert raw == body


def test_content_range_is_never_compressed():
    app = make_app(headers=[(b"content-range", b"bytes 0-999/5000")])
    response, raw = get(app)
    assert "content-encoding" not in response.headers
    assert raw == BIG


def test_head_is_left_alone():
    response, raw = get(make_app(), method="HEAD")
    assert "content-encoding" not in response.headers
    assert response.headers["content-length"] == "1000"
    assert raw == BIG  # passed through untouched (dropping it is the response's job)


def test_etag_is_weakened_and_ranges_no_longer_advertised():
    app = make_app(
        headers=[(b"etag", b'"abc"'), (b"accept-ranges", b"bytes"), (b"vary", b"Cookie")]
    )
    response, _ = get(app)
    assert response.headers["etag"] == 'W/"abc"'
    assert "accept-ranges" not in response.headers
    assert response.headers["vary"] == "Cookie, Accept-Encoding"
    weak = make_app(headers=[(b"etag", b'W/"abc"')])
    assert get(weak)[0].headers["etag"] == 'W/"abc"'


def test_streaming_response_is_compressed_without_content_length():
    chunks = [b"chunk %d " % i * 50 for i in range(5)]
    response, raw = get(make_app(chunks=chunks))
    assert response.headers["content-encoding"] == "gzip"
    assert "content-length" not in response.headers
    assert gzip.decompress(raw) == b"".join(chunks)


def test_streaming_skips_empty_chunks_and_ignores_bad_declared_length():
    chunks = [b"a" * 300, b"", b"b" * 300]
    app = make_app(chunks=chunks, headers=[(b"content-length", b"not-a-number")])
    response, raw = get(app)
    assert response.headers["content-encoding"] == "gzip"
    assert "content-length" not in response.headers
    assert gzip.decompress(raw) == b"a" * 300 + b"b" * 300


async def test_body_before_start_is_passed_on_for_the_server_to_reject():
    sent: list[Message] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.body", "body": b"too early"})

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "headers": [(b"accept-encoding", b"gzip")]}
    await GZipMiddleware(app)(scope, unused_receive, send)
    assert sent == [{"type": "http.response.body", "body": b"too early"}]


def test_streaming_with_small_declared_length_is_left_alone():
    app = make_app(chunks=[b"ab", b"cd"], headers=[(b"content-length", b"4")])
    response, raw = get(app)
    assert "content-encoding" not in response.headers
    assert raw == b"abcd"


async def test_streaming_is_incremental():
    """Each chunk the app sends is flushed, decodable, before the app produces the next."""
    sent: list[Message] = []
    delivered = asyncio.Event()
    chunks = [b"first " * 20, b"second " * 20, b"third " * 20]

    async def app(scope, receive, send):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        for chunk in chunks:
            delivered.clear()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            # The middleware must have passed compressed bytes on already.
            await asyncio.wait_for(delivered.wait(), timeout=1)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    decoded: list[bytes] = []

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body":
            decoded.append(decoder.decompress(message["body"]))
            delivered.set()

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"accept-encoding", b"gzip")],
    }
    await GZipMiddleware(app, minimum_size=10)(scope, receive, send)

    start, *bodies = sent
    assert dict(start["headers"])[b"content-encoding"] == b"gzip"
    assert len(bodies) == 4
    assert decoded[:3] == chunks
    assert [b["more_body"] for b in bodies] == [True, True, True, False]
    assert decoder.eof
    assert b"".join(decoded) == b"".join(chunks)


async def test_extension_messages_flush_the_held_start():
    sent: list[Message] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": "/tmp/file"})

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"accept-encoding", b"gzip")],
    }
    await GZipMiddleware(app)(scope, unused_receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert sent[0]["headers"] == []


async def test_non_http_scopes_pass_through():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    await GZipMiddleware(app)({"type": "lifespan"}, unused_receive, unused_send)
    await GZipMiddleware(app)({"type": "websocket", "headers": []}, unused_receive, unused_send)
    assert seen == ["lifespan", "websocket"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"minimum_size": -1}, "minimum_size"),
        ({"compresslevel": 0}, "compresslevel"),
        ({"compresslevel": 10}, "compresslevel"),
        ({"exclude_media_types": "image/png"}, "not the string"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        GZipMiddleware(make_app(), **options)


async def test_messages_after_the_end_reach_the_server():
    """A buggy app's extra body must not be swallowed: the server reports it."""
    sent: list[Message] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": BIG})
        await send({"type": "http.response.body", "body": b"late"})

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"accept-encoding", b"gzip")],
    }
    await GZipMiddleware(app)(scope, unused_receive, send)
    assert len(sent) == 3
    assert gzip.decompress(sent[1]["body"]) == BIG
    assert sent[2] == {"type": "http.response.body", "body": b"late"}
