"""Tests for covet.requests, driven through raw ASGI calls."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import Any

import pytest

from covet.datastructures import Address, FormData, State, UploadFile
from covet.exceptions import HTTPException, ImproperlyConfigured
from covet.requests import (
    DEFAULT_LIMITS,
    ClientDisconnect,
    HTTPConnection,
    Request,
    RequestLimits,
    StreamConsumedError,
    parse_cookies,
)
from tests.asgi import http_scope

Handler = Callable[[Request], Awaitable[Any]]


def make_scope(
    *,
    method: str = "POST",
    path: str = "/",
    query: bytes = b"",
    headers: Iterable[tuple[bytes, bytes]] = (),
    limits: RequestLimits | None = None,
    **extra: Any,
) -> dict[str, Any]:
    scope = http_scope(path, method=method, headers=headers)
    scope["query_string"] = query
    scope["client"] = ("127.0.0.1", 51000)
    if limits is not None:
        scope["covet.limits"] = limits
    scope.update(extra)
    return scope


class Receiver:
    """An ASGI receive that serves body chunks and counts how often it is called."""

    def __init__(self, chunks: Iterable[bytes] = (), *, disconnect: bool = False) -> None:
        items = list(chunks)
        self.messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": chunk, "more_body": i < len(items) - 1}
            for i, chunk in enumerate(items)
        ] or [{"type": "http.request", "body": b"", "more_body": False}]
        if disconnect:
            self.messages[-1]["more_body"] = True
            self.messages.append({"type": "http.disconnect"})
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= len(self.messages):
            return self.messages[self.calls - 1]
        await asyncio.Event().wait()  # like a server: block until the client goes away
        raise AssertionError("unreachable")


async def serve(
    handler: Handler,
    chunks: Iterable[bytes] = (),
    *,
    disconnect: bool = False,
    **scope_kwargs: Any,
) -> tuple[int, Any, Receiver]:
    """Run ``handler`` inside a tiny ASGI app; return (status, payload, receiver)."""
    receiver = Receiver(chunks, disconnect=disconnect)
    sent: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        try:
            result = await handler(request)
            status, body = 200, json.dumps(result).encode()
        except HTTPException as exc:
            status, body = exc.status_code, exc.detail.encode()
        except ClientDisconnect:
            return  # nobody to answer
        finally:
            await request.close()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(make_scope(**scope_kwargs), receiver, send)
    if not sent:
        return 0, None, receiver
    status = sent[0]["status"]
    body = sent[1]["body"]
    payload = json.loads(body) if status == 200 else body.decode()
    return status, payload, receiver


# --- scope properties -------------------------------------------------------------------------


def test_url_uses_host_header_scheme_path_and_query() -> None:
    scope = make_scope(
        path="/items/5",
        query=b"a=1&b=2",
        headers=[],
        scheme="https",
    )
    scope["headers"] = [(b"host", b"example.com:8443")]
    request = Request(scope)
    assert request.url == "https://example.com:8443/items/5?a=1&b=2"
    assert request.url.path == "/items/5"
    assert request.url.port == 8443
    assert request.url.is_secure


def test_url_honours_root_path_whether_or_not_path_includes_it() -> None:
    inside = Request(make_scope(path="/api/items", root_path="/api"))
    outside = Request(make_scope(path="/items", root_path="/api"))
    assert str(inside.url) == "http://testserver/api/items"
    assert str(outside.url) == "http://testserver/api/items"
    # "/apix" does not start with the root path "/api" on a segment boundary.
    assert str(Request(make_scope(path="/apix", root_path="/api")).url) == (
        "http://testserver/api/apix"
    )


def test_url_falls_back_to_server_without_host_header() -> None:
    scope = make_scope(path="/p", server=("10.0.0.1", 8000))
    scope["headers"] = []
    assert str(Request(scope).url) == "http://10.0.0.1:8000/p"
    scope = make_scope(path="/p", server=("::1", 443), scheme="https")
    scope["headers"] = []
    assert str(Request(scope).url) == "https://[::1]/p"
    scope = make_scope(path="/p", server=None)
    scope["headers"] = []
    assert str(Request(scope).url) == "/p"


def test_url_reencodes_decoded_path() -> None:
    request = Request(make_scope(path="/a b/caf\u00e9/x?y#z"))
    assert request.url.path == "/a%20b/caf%C3%A9/x%3Fy%23z"
    assert request.url.query == ""


def test_base_url_includes_root_path() -> None:
    assert str(Request(make_scope(path="/api/x", root_path="/api")).base_url) == (
        "http://testserver/api/"
    )
    assert str(Request(make_scope()).base_url) == "http://testserver/"
    scope = make_scope(path="/sub/x", root_path="/sub", app_root_path="")
    assert str(Request(scope).base_url) == "http://testserver/"


def test_url_for_builds_absolute_url_from_app() -> None:
    class App:
        def url_path_for(self, name: str, /, **params: Any) -> str:
            assert name == "item"
            return f"/items/{params['item_id']}"

    request = Request(make_scope(path="/api/x", root_path="/api", app=App()))
    assert request.url_for("item", item_id=3) == "http://testserver/api/items/3"


def test_app_missing_is_a_clear_error() -> None:
    with pytest.raises(ImproperlyConfigured, match="scope\\['app'\\]"):
        _ = Request(make_scope()).app


def test_headers_are_case_insensitive_and_multi_valued() -> None:
    request = Request(
        make_scope(headers=[(b"accept", b"text/html"), (b"accept", b"application/json")])
    )
    assert request.headers["Accept"] == "text/html"
    assert request.headers.getlist("ACCEPT") == ["text/html", "application/json"]
    assert "accept" in request.headers
    assert request.headers is request.headers  # cached


def test_query_params_are_a_multidict() -> None:
    request = Request(make_scope(query=b"tag=a&tag=b&empty=&q=caf%C3%A9+x"))
    params = request.query_params
    assert params.getlist("tag") == ["a", "b"]
    assert params["tag"] == "b"
    assert params["empty"] == ""
    assert params["q"] == "café x"
    assert "missing" not in params
    assert len(params) == 3


def test_cookies_from_several_headers_and_edge_cases() -> None:
    request = Request(
        make_scope(
            headers=[
                (b"cookie", b'session=abc; theme="dark mode"; session=older'),
                (b"cookie", b"lang=fr; ;  ; noequals; name=caf\xc3\xa9"),
            ]
        )
    )
    assert request.cookies == {
        "session": "abc",
        "theme": "dark mode",
        "lang": "fr",
        "": "noequals",
        "name": "café",
    }


def test_cookies_tolerate_garbage() -> None:
    assert parse_cookies("") == {}
    assert parse_cookies(";;;") == {}
    assert parse_cookies("a==b=c") == {"a": "=b=c"}
    assert parse_cookies('q="a\\"b\\\\c"') == {"q": 'a"b\\c'}
    assert parse_cookies('o="caf\\303\\251"') == {"o": "café"}
    assert parse_cookies('x="') == {"x": '"'}
    # Bytes that are not UTF-8 are read as latin-1 instead of failing.
    request = Request(make_scope(headers=[(b"cookie", b"k=\xff")]))
    assert request.cookies == {"k": "\xff"}
    assert Request(make_scope()).cookies == {}


def test_client_path_params_and_state() -> None:
    scope = make_scope(path_params={"id": 3})
    request = Request(scope)
    assert request.client == Address("127.0.0.1", 51000)
    assert request.client.host == "127.0.0.1"
    assert request.path_params == {"id": 3}
    request.state.user_id = 7
    assert scope["state"] == {"user_id": 7}
    assert Request(scope).state.user_id == 7
    assert Request(make_scope(client=None)).client is None
    assert Request(make_scope()).path_params == {}


def test_state_object_in_scope_is_used_as_is() -> None:
    state = State()
    request = Request(make_scope(state=state))
    assert request.state is state


def test_session_and_user_need_middleware() -> None:
    request = Request(make_scope())
    with pytest.raises(ImproperlyConfigured, match="SessionMiddleware"):
        _ = request.session
    with pytest.raises(ImproperlyConfigured, match="authentication middleware"):
        _ = request.user
    request = Request(make_scope(session={"a": 1}, user="ann"))
    assert request.session == {"a": 1}
    assert request.user == "ann"


def test_http_connection_works_for_websocket_scopes() -> None:
    scope = make_scope(type="websocket", scheme="ws", path="/ws", query=b"t=1")
    connection = HTTPConnection(scope)
    assert str(connection.url) == "ws://testserver/ws?t=1"
    assert connection.query_params["t"] == "1"


def test_method_and_receive() -> None:
    receiver = Receiver()
    request = Request(make_scope(method="PATCH"), receiver)
    assert request.method == "PATCH"
    assert request.receive is receiver


async def test_body_without_receive_is_a_clear_error() -> None:
    with pytest.raises(ImproperlyConfigured, match="receive"):
        await Request(make_scope()).body()


# --- body ---------------------------------------------------------------------------------------


async def test_body_is_read_once_and_cached() -> None:
    async def handler(request: Request) -> Any:
        first = await request.body()
        second = await request.body()
        assert first is second
        return first.decode()

    status, payload, receiver = await serve(handler, [b"hello ", b"world"])
    assert (status, payload) == (200, "hello world")
    assert receiver.calls == 2


async def test_empty_body() -> None:
    async def handler(request: Request) -> Any:
        return [(await request.body()).decode(), [c async for c in request.stream()]]

    assert (await serve(handler, method="GET"))[:2] == (200, ["", []])


async def test_stream_yields_chunks_and_cannot_be_replayed() -> None:
    async def handler(request: Request) -> Any:
        chunks = [chunk.decode() async for chunk in request.stream()]
        with pytest.raises(StreamConsumedError, match="already consumed"):
            await request.body()
        with pytest.raises(StreamConsumedError):
            async for _ in request.stream():
                pass
        return chunks

    status, payload, _ = await serve(handler, [b"a", b"", b"b", b"c"])
    assert (status, payload) == (200, ["a", "b", "c"])


async def test_partial_stream_then_stream_again_raises() -> None:
    async def handler(request: Request) -> Any:
        stream = request.stream()
        first = await stream.__anext__()
        with pytest.raises(StreamConsumedError):
            await request.json()
        return first.decode()

    assert (await serve(handler, [b"1", b"2"]))[:2] == (200, "1")


async def test_stream_after_body_replays_cached_body() -> None:
    async def handler(request: Request) -> Any:
        await request.body()
        return [chunk.decode() async for chunk in request.stream()]

    status, payload, receiver = await serve(handler, [b"ab", b"cd"])
    assert (status, payload) == (200, ["abcd"])
    assert receiver.calls == 2


async def test_content_length_over_limit_is_refused_before_reading() -> None:
    async def handler(request: Request) -> Any:
        return (await request.body()).decode()

    big = DEFAULT_LIMITS.max_body_size + 1
    status, detail, receiver = await serve(
        handler, [b"x"], headers=[(b"content-length", str(big).encode())]
    )
    assert status == 413
    assert str(big) in detail
    assert "max_body_size" in detail
    assert receiver.calls == 0


async def test_chunked_body_is_counted_and_stopped_at_limit() -> None:
    limits = RequestLimits(max_body_size=10)

    async def handler(request: Request) -> Any:
        return (await request.body()).decode()

    chunks = [b"1234", b"5678", b"9abc", b"never", b"read"]
    status, detail, receiver = await serve(handler, chunks, limits=limits)
    assert status == 413
    assert "10-byte limit" in detail
    assert receiver.calls == 3  # stopped at the chunk that crossed the limit

    async def streamer(request: Request) -> Any:
        return [chunk.decode() async for chunk in request.stream()]

    status, _, receiver = await serve(streamer, chunks, limits=limits)
    assert status == 413
    assert receiver.calls == 3


async def test_body_exactly_at_limit_is_accepted() -> None:
    async def handler(request: Request) -> Any:
        return len(await request.body())

    limits = RequestLimits(max_body_size=8)
    status, payload, _ = await serve(
        handler,
        [b"1234", b"5678"],
        headers=[(b"content-length", b"8")],
        limits=limits,
    )
    assert (status, payload) == (200, 8)


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (b"abc", 400),
        (b"-1", 400),
        (b"1.5", 400),
        (b"", 400),
        (b"5, 6", 400),
        (b"99999999999999999999999999", 413),
        (b"0000000000000000000000003", 200),
        (b"9" * 5000, 413),
        (b"3, 3", 200),
    ],
)
async def test_content_length_validation(value: bytes, status: int) -> None:
    async def handler(request: Request) -> Any:
        return (await request.body()).decode()

    result, _, _ = await serve(handler, [b"abc"], headers=[(b"content-length", value)])
    assert result == status


async def test_conflicting_content_length_headers() -> None:
    async def handler(request: Request) -> Any:
        return (await request.body()).decode()

    headers = [(b"content-length", b"3"), (b"content-length", b"4")]
    status, detail, receiver = await serve(handler, [b"abc"], headers=headers)
    assert status == 400
    assert "Conflicting Content-Length" in detail
    assert receiver.calls == 0


async def test_client_disconnect_mid_body_raises_and_sends_nothing() -> None:
    seen: list[BaseException] = []

    async def handler(request: Request) -> Any:
        try:
            return (await request.body()).decode()
        except ClientDisconnect as exc:
            seen.append(exc)
            raise

    status, payload, _ = await serve(handler, [b"partial"], disconnect=True)
    assert (status, payload) == (0, None)
    assert len(seen) == 1


async def test_is_disconnected() -> None:
    request = Request(make_scope(), Receiver([b"x"], disconnect=True))
    # The pending body message is kept for the body readers, not lost.
    assert await request.is_disconnected() is False
    assert await request.is_disconnected() is False
    with pytest.raises(ClientDisconnect):
        await request.body()
    assert await request.is_disconnected() is True

    receiver = Receiver([b"done"])
    request = Request(make_scope(), receiver)
    assert await request.body() == b"done"
    # Nothing more to receive: the check must not block.
    assert await asyncio.wait_for(request.is_disconnected(), 1) is False

    disconnected: list[dict[str, Any]] = [{"type": "http.disconnect"}]

    async def receive_disconnect() -> dict[str, Any]:
        return disconnected[0]

    request = Request(make_scope(), receive_disconnect)
    assert await request.is_disconnected() is True
    with pytest.raises(ClientDisconnect):
        await request.body()


async def test_unknown_messages_are_skipped() -> None:
    messages: Iterator[dict[str, Any]] = iter(
        [
            {"type": "http.something"},
            {"type": "http.request", "body": b"ok", "more_body": False},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    assert await Request(make_scope(), receive).body() == b"ok"


# --- json ---------------------------------------------------------------------------------------


async def test_json_is_parsed_and_cached() -> None:
    async def handler(request: Request) -> Any:
        data = await request.json()
        assert await request.json() is data
        return data

    status, payload, _ = await serve(handler, [b'{"a": [1, ', b'2], "b": "caf\xc3\xa9"}'])
    assert (status, payload) == (200, {"a": [1, 2], "b": "café"})


async def test_json_on_get_is_allowed_and_bom_is_ignored() -> None:
    async def handler(request: Request) -> Any:
        return await request.json()

    status, payload, _ = await serve(handler, [b'\xef\xbb\xbf{"x": 1}'], method="GET")
    assert (status, payload) == (200, {"x": 1})


async def test_malformed_json_detail_names_position() -> None:
    async def handler(request: Request) -> Any:
        return await request.json()

    status, detail, _ = await serve(handler, [b'{\n  "a": 1,\n  "b": }'])
    assert status == 400
    assert "Malformed JSON at line 3, column" in detail


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b'{"a": "\xff"}', "not valid UTF-8 (byte 7)"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON"),
        (b"NaN", "Malformed JSON"),
        (b"{} {}", "Malformed JSON"),
    ],
)
async def test_bad_json_is_400(body: bytes, needle: str) -> None:
    async def handler(request: Request) -> Any:
        return await request.json()

    status, detail, _ = await serve(handler, [body])
    assert status == 400
    assert needle in detail


async def test_oversized_json_is_413() -> None:
    async def handler(request: Request) -> Any:
        return await request.json()

    limits = RequestLimits(max_json_size=16, max_body_size=1000)
    body = json.dumps({"key": "x" * 32}).encode()
    status, detail, receiver = await serve(
        handler,
        [body],
        headers=[(b"content-length", str(len(body)).encode())],
        limits=limits,
    )
    assert status == 413
    assert "max_json_size" in detail
    assert receiver.calls == 0
    status, _, _ = await serve(handler, [body[:10], body[10:]], limits=limits)
    assert status == 413


async def test_json_with_too_many_values_is_413_before_decoding() -> None:
    # Issue 16: 2.4 MB of "[]," is 800,000 lists, about a second of decoding on the
    # event loop; the separators are counted instead, in a millisecond.
    async def handler(request: Request) -> Any:
        return await request.json()

    bomb = b"[" + b"[]," * 800_000 + b"[]]"
    status, detail, _ = await serve(handler, [bomb])
    assert status == 413
    assert "max_json_items" in detail
    limits = RequestLimits(max_json_items=10)
    status, detail, _ = await serve(handler, [b"[1,2,3,4,5,6,7,8,9,10,11]"], limits=limits)
    assert (status, "max_json_items" in detail) == (413, True)
    status, payload, _ = await serve(handler, [b"[1,2,3,4,5,6,7,8,9,10]"], limits=limits)
    assert (status, payload) == (200, list(range(1, 11)))


async def test_json_limit_may_exceed_body_limit() -> None:
    async def handler(request: Request) -> Any:
        return await request.json()

    limits = RequestLimits(max_json_size=1000, max_body_size=4)
    status, payload, _ = await serve(handler, [b'{"a": 1}'], limits=limits)
    assert (status, payload) == (200, {"a": 1})


# --- forms --------------------------------------------------------------------------------------

FORM = (b"content-type", b"application/x-www-form-urlencoded")


async def form_items(request: Request) -> Any:
    form = await request.form()
    assert await request.form() is form
    return [[k, v if isinstance(v, str) else f"file:{v.filename}"] for k, v in form.multi_items()]


async def test_urlencoded_form() -> None:
    status, payload, _ = await serve(
        form_items, [b"a=1&b=x+y&a=caf%C3%A9", b"&empty=&flag"], headers=[FORM]
    )
    assert status == 200
    assert payload == [["a", "1"], ["b", "x y"], ["a", "café"], ["empty", ""], ["flag", ""]]


async def test_urlencoded_form_on_get_and_after_body() -> None:
    async def handler(request: Request) -> Any:
        await request.body()
        return await form_items(request)

    status, payload, _ = await serve(handler, [b"q=1"], headers=[FORM], method="GET")
    assert (status, payload) == (200, [["q", "1"]])


async def test_urlencoded_charset() -> None:
    latin = (b"content-type", b"application/x-www-form-urlencoded; charset=latin-1")
    status, payload, _ = await serve(form_items, [b"name=caf%E9"], headers=[latin])
    assert (status, payload) == (200, [["name", "café"]])

    status, detail, _ = await serve(form_items, [b"name=caf%E9"], headers=[FORM])
    assert status == 400
    assert "Form field 'name' is not valid utf-8" in detail

    unknown = (b"content-type", b"application/x-www-form-urlencoded; charset=klingon")
    status, detail, _ = await serve(form_items, [b"a=1"], headers=[unknown])
    assert status == 400
    assert "Unknown charset 'klingon'" in detail

    not_text = (b"content-type", b"application/x-www-form-urlencoded; charset=base64")
    assert (await serve(form_items, [b"a=1"], headers=[not_text]))[0] == 400


async def test_urlencoded_too_many_fields() -> None:
    limits = RequestLimits(max_fields=3)
    status, detail, _ = await serve(form_items, [b"a=1&b=2&c=3&d=4"], headers=[FORM], limits=limits)
    assert status == 413
    assert "more than 3 fields" in detail
    status, _, _ = await serve(form_items, [b"a=1&b=2&c=3"], headers=[FORM], limits=limits)
    assert status == 200


async def test_urlencoded_size_limit() -> None:
    limits = RequestLimits(max_body_size=8)
    status, detail, _ = await serve(
        form_items, [b"a=12345", b"6789"], headers=[FORM], limits=limits
    )
    assert status == 413
    assert "max_body_size" in detail


async def test_form_with_wrong_content_type_is_415() -> None:
    status, detail, _ = await serve(
        form_items, [b"{}"], headers=[(b"content-type", b"application/json")]
    )
    assert status == 415
    assert "application/json" in detail
    status, _, _ = await serve(form_items, [b"a=1"])
    assert status == 415


async def test_form_without_content_type_and_body_is_empty() -> None:
    status, payload, _ = await serve(form_items, method="GET")
    assert (status, payload) == (200, [])


async def test_multipart_form_through_request_and_close() -> None:
    files: list[UploadFile] = []

    async def handler(request: Request) -> Any:
        form = await request.form()
        upload = form["doc"]
        assert isinstance(upload, UploadFile)
        files.append(upload)
        return [form["title"], upload.filename, (await upload.read()).decode()]

    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="title"\r\n\r\n'
        b"Hello\r\n"
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="doc"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n"
        b"file body\r\n"
        b"--XyZ--\r\n"
    )
    headers = [(b"content-type", b"multipart/form-data; boundary=XyZ")]
    status, payload, _ = await serve(handler, [body[:30], body[30:]], headers=headers)
    assert (status, payload) == (200, ["Hello", "a.txt", "file body"])
    assert files[0].file.closed  # Request.close() closed the form's files


async def test_multipart_total_size_limit() -> None:
    limits = RequestLimits(max_multipart_size=64, max_body_size=1_000_000)
    headers = [(b"content-type", b"multipart/form-data; boundary=b")]
    chunk = b"--b\r\nContent-Disposition: form-data; name=f; filename=x\r\n\r\n" + b"x" * 100
    status, detail, _ = await serve(
        form_items, [chunk, b"\r\n--b--\r\n"], headers=headers, limits=limits
    )
    assert status == 413
    assert "max_multipart_size" in detail


async def test_multipart_boundary_errors_through_request() -> None:
    for value, needle in [
        (b"multipart/form-data", "no boundary"),
        (b"multipart/form-data; boundary=" + b"b" * 300, "300 bytes long"),
    ]:
        status, detail, receiver = await serve(
            form_items, [b"--b--\r\n"], headers=[(b"content-type", value)]
        )
        assert status == 400
        assert needle in detail
        assert receiver.calls == 0


async def test_close_without_form_is_harmless() -> None:
    request = Request(make_scope())
    await request.close()
    form = FormData([("a", "1")])
    await form.close()


# --- limits -------------------------------------------------------------------------------------


def test_request_limits_defaults_and_validation() -> None:
    assert DEFAULT_LIMITS.max_body_size == 2_621_440
    assert DEFAULT_LIMITS.max_multipart_size == 10_485_760
    assert DEFAULT_LIMITS.max_part_header_size == 4224
    assert dataclasses.replace(DEFAULT_LIMITS, max_files=5).max_files == 5
    with pytest.raises(ImproperlyConfigured, match="max_fields must be a positive int, got 0"):
        RequestLimits(max_fields=0)
    with pytest.raises(ImproperlyConfigured, match="got True"):
        RequestLimits(max_files=True)
    with pytest.raises(ImproperlyConfigured, match="got '10'"):
        RequestLimits(max_body_size="10")  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_LIMITS.max_body_size = 1  # type: ignore[misc]


def test_request_uses_default_limits_without_scope_key() -> None:
    assert Request(make_scope()).limits is DEFAULT_LIMITS
    custom = RequestLimits(max_body_size=5)
    assert Request(make_scope(limits=custom)).limits is custom


@pytest.mark.parametrize("use_orjson", [True, False], ids=["orjson", "stdlib"])
async def test_json_errors_are_the_same_on_both_decoders(
    use_orjson: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import covet._json

    monkeypatch.setattr(covet._json, "USE_ORJSON", use_orjson)

    async def handler(request: Request) -> Any:
        return await request.json()

    status, detail, _ = await serve(handler, [b"[1,\n 2,,]"])
    assert status == 400
    assert detail.startswith("Malformed JSON at line 2, column 4")
    status, detail, _ = await serve(handler, [b'"\xc3"'])
    assert status == 400
    assert "not valid UTF-8 (byte 1)" in detail
    assert (await serve(handler, [b'{"ok": true}']))[:2] == (200, {"ok": True})


# --- through a covet application --------------------------------------------------------------


def test_limits_per_app_and_per_route_through_covet_app() -> None:
    from covet import Covet
    from covet.testing import TestClient

    app = Covet(limits=RequestLimits(max_body_size=100, max_multipart_size=1000))

    @app.post("/small")
    async def small(request: Request) -> dict[str, int]:
        return {"n": len(await request.body())}

    @app.post("/upload", limits=RequestLimits(max_multipart_size=3_000_000, spool_max_size=1024))
    async def upload(request: Request) -> dict[str, Any]:
        form = await request.form()
        file = form["file"]
        assert isinstance(file, UploadFile)
        try:
            return {"title": form["title"], "name": file.filename, "size": file.size}
        finally:
            await request.close()

    @app.post("/echo")
    async def echo(request: Request) -> Any:
        return await request.json()

    with TestClient(app) as client:
        assert client.post("/small", content=b"x" * 100).json() == {"n": 100}
        response = client.post("/small", content=b"x" * 101)
        assert response.status_code == 413
        assert "100-byte limit" in response.text
        chunked = client.post("/small", content=iter([b"x" * 60, b"y" * 60]))
        assert chunked.status_code == 413

        files = {"file": ("big.bin", b"z" * 2_000_000)}
        response = client.post("/upload", files=files, data={"title": "t"})
        assert response.json() == {"title": "t", "name": "big.bin", "size": 2_000_000}

        response = client.post("/echo", content=b'{"a": }')
        assert response.status_code == 400
        assert "line 1, column 7" in response.text
        assert client.post("/echo", json={"a": [1]}).json() == {"a": [1]}


# --- refusing a body closes the HTTP/1 connection ---------------------------------------------


async def _serve_app_raw(
    chunks: Iterable[bytes],
    *,
    path: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
    http_version: str = "1.1",
) -> tuple[int, dict[bytes, bytes], Receiver]:
    """Send one request through a Covet app; return (status, response headers, receiver)."""
    from covet import Covet

    app = Covet(debug=True, limits=RequestLimits(max_body_size=10, max_fields=2))

    @app.post("/body")
    async def body(request: Request) -> int:
        return len(await request.body())

    @app.post("/stream")
    async def stream(request: Request) -> int:
        return sum([len(chunk) async for chunk in request.stream()])

    @app.post("/json")
    async def json_(request: Request) -> Any:
        return await request.json()

    @app.post("/form")
    async def form(request: Request) -> int:
        return len(await request.form())

    receiver = Receiver(chunks)
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = make_scope(path=path, headers=headers, http_version=http_version)
    await app(scope, receiver, send)
    start = sent[0]
    return start["status"], dict(start["headers"]), receiver


async def test_refused_body_closes_the_http1_connection() -> None:
    # Refused from Content-Length: nothing was read, so the server must not keep the
    # connection alive and swallow the announced 10 GiB.
    status, headers, receiver = await _serve_app_raw(
        [b"x"], path="/body", headers=[(b"content-length", b"10737418240")]
    )
    assert (status, headers.get(b"connection"), receiver.calls) == (413, b"close", 0)
    # Counted while streaming (chunked): stopped part-way, the rest is unread.
    for path in ("/body", "/stream"):
        status, headers, receiver = await _serve_app_raw([b"123456", b"789abc", b"more"], path=path)
        assert (status, headers.get(b"connection"), receiver.calls) == (413, b"close", 2)
    # A form refused part-way: too many fields, and a malformed multipart body.
    urlencoded = [(b"content-type", b"application/x-www-form-urlencoded")]
    status, headers, _ = await _serve_app_raw(
        [b"a=1&b=2&", b"c=3", b""], path="/form", headers=urlencoded
    )
    assert (status, headers.get(b"connection")) == (413, b"close")
    multipart = [(b"content-type", b"multipart/form-data; boundary=xyz")]
    status, headers, _ = await _serve_app_raw(
        [b"garbage", b"more"], path="/form", headers=multipart
    )
    assert (status, headers.get(b"connection")) == (400, b"close")


async def test_error_after_the_whole_body_keeps_the_connection() -> None:
    # Malformed JSON is found after the body was read in full: keep-alive is fine.
    status, headers, _ = await _serve_app_raw([b"{", b"bad"], path="/json")
    assert status == 400
    assert b"connection" not in headers
    # Too many fields found in the last chunk: the body is complete, nothing to drain.
    urlencoded = [(b"content-type", b"application/x-www-form-urlencoded")]
    status, headers, _ = await _serve_app_raw([b"a=1&b=2&c=3"], path="/form", headers=urlencoded)
    assert status == 413
    assert b"connection" not in headers


async def test_refused_body_adds_no_connection_header_on_http2() -> None:
    # RFC 9113 section 8.2.2: connection-specific header fields are malformed in HTTP/2.
    status, headers, _ = await _serve_app_raw(
        [b"x"], path="/body", headers=[(b"content-length", b"100")], http_version="2"
    )
    assert status == 413
    assert b"connection" not in headers
