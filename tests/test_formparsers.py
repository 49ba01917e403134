"""Tests for covet.formparsers: urlencoded and multipart parsing under limits."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covet.datastructures import FormData, UploadFile
from covet.exceptions import HTTPException
from covet.formparsers import (
    check_charset,
    parse_content_type,
    parse_multipart,
    parse_urlencoded,
)
from covet.requests import DEFAULT_LIMITS, RequestLimits

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

BOUNDARY = "----covetBoundary7MA4YWxk"


async def chunks_of(data: bytes | Iterable[bytes], size: int = 0) -> AsyncIterator[bytes]:
    if isinstance(data, bytes):
        if size:
            for i in range(0, len(data), size):
                yield data[i : i + size]
        else:
            yield data
    else:
        for chunk in data:
            yield chunk


def part(
    name: str | None,
    value: bytes,
    *,
    filename: str | None = None,
    headers: Iterable[str] = (),
    disposition: str = "form-data",
) -> bytes:
    lines = [f"--{BOUNDARY}"]
    if name is not None:
        cd = f'Content-Disposition: {disposition}; name="{name}"'
        if filename is not None:
            cd += f'; filename="{filename}"'
        lines.append(cd)
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + value + b"\r\n"


def body_of(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


async def multipart(
    data: bytes | Iterable[bytes],
    *,
    limits: RequestLimits = DEFAULT_LIMITS,
    size: int = 0,
    boundary: str = BOUNDARY,
    charset: str = "utf-8",
) -> FormData:
    return await parse_multipart(
        chunks_of(data, size), boundary=boundary, charset=charset, limits=limits
    )


async def expect_error(status: int, needle: str, data: bytes, **kwargs: Any) -> None:
    with pytest.raises(HTTPException) as info:
        await multipart(data, **kwargs)
    assert info.value.status_code == status
    assert needle in info.value.detail


def test_parse_content_type() -> None:
    assert parse_content_type('Multipart/Form-Data; boundary="a;b"; charset=UTF-8') == (
        "multipart/form-data",
        {"boundary": "a;b", "charset": "UTF-8"},
    )
    assert parse_content_type("text/plain") == ("text/plain", {})


def test_check_charset() -> None:
    assert check_charset("latin-1") == "latin-1"
    # "utf\x00": codecs.lookup() raises ValueError for a NUL, not LookupError (a 500
    # through a multipart _charset_ field until the fuzzer found it, issue 16).
    for bad in ("nope", "base64", "rot13", "utf\x00", "\x00"):
        with pytest.raises(HTTPException) as info:
            check_charset(bad)
        assert info.value.status_code == 400


async def test_urlencoded_streaming_across_chunk_boundaries() -> None:
    data = b"first=a+b&second=%E2%9C%93&first=&lone&%3Dk%3D=v%26"
    for size in (1, 3, len(data)):
        form = await parse_urlencoded(chunks_of(data, size), charset="utf-8", limits=DEFAULT_LIMITS)
        assert form.multi_items() == [
            ("first", "a b"),
            ("second", "\u2713"),
            ("first", ""),
            ("lone", ""),
            ("=k=", "v&"),
        ]


def _python_multipart_fields(data: bytes, chunk: int) -> list[tuple[bytes, bytes]]:
    """The fields python-multipart's streaming QuerystringParser finds (covet's former parser)."""
    from python_multipart.multipart import QuerystringParser

    pairs: list[tuple[bytes, bytes]] = []
    name, value = bytearray(), bytearray()

    def on_field_end() -> None:
        pairs.append((bytes(name), bytes(value)))
        name.clear()
        value.clear()

    parser = QuerystringParser(
        {
            "on_field_name": lambda data, start, end: name.extend(data[start:end]),
            "on_field_data": lambda data, start, end: value.extend(data[start:end]),
            "on_field_end": on_field_end,
        }
    )
    for offset in range(0, len(data), chunk):
        parser.write(data[offset : offset + chunk])
    parser.finalize()
    return pairs


_FORM_BYTES = st.lists(
    st.sampled_from([b"a", b"B", b"=", b"&", b"+", b"%", b"2", b"0", b"F", b"%26", b";", b" "]),
    max_size=40,
).map(b"".join)


@given(data=_FORM_BYTES, chunk=st.integers(min_value=1, max_value=8))
@settings(max_examples=400, deadline=None)
def test_urlencoded_fields_are_python_multipart_s(data: bytes, chunk: int) -> None:
    expected = [
        (
            unquote_to_bytes(name.replace(b"+", b" ")).decode("latin-1"),
            unquote_to_bytes(value.replace(b"+", b" ")).decode("latin-1"),
        )
        for name, value in _python_multipart_fields(data, chunk)
    ]
    parsed = asyncio.run(
        parse_urlencoded(chunks_of(data, chunk), charset="latin-1", limits=DEFAULT_LIMITS)
    )
    assert parsed.multi_items() == expected


async def test_urlencoded_field_limit_counts_fields_not_separators() -> None:
    limits = RequestLimits(max_fields=3)
    # Many empty fields are no fields: within the limit, by either way of splitting.
    for data in (b"&&a=1&&&b&&c=3&&", b"&" * 10_000 + b"a=1&b&c=3" + b"&" * 10_000):
        form = await parse_urlencoded(chunks_of(data, 7), charset="utf-8", limits=limits)
        assert form.multi_items() == [("a", "1"), ("b", ""), ("c", "3")]
    for data in (b"a&b&c&d", b"&" * 10_000 + b"a&b&c&d"):
        with pytest.raises(HTTPException) as info:
            await parse_urlencoded(chunks_of(data, 7), charset="utf-8", limits=limits)
        assert info.value.status_code == 413


async def test_urlencoded_too_many_fields_wins_over_undecodable_text() -> None:
    # The count comes before any decoding, as with the streaming parser: a flood of
    # fields is a 413 wherever its first bad byte is.
    with pytest.raises(HTTPException) as info:
        await parse_urlencoded(
            chunks_of(b"%FF=1&b&c&d"), charset="utf-8", limits=RequestLimits(max_fields=3)
        )
    assert info.value.status_code == 413
    with pytest.raises(HTTPException) as info:
        await parse_urlencoded(chunks_of(b"a=%FF"), charset="utf-8", limits=DEFAULT_LIMITS)
    assert info.value.status_code == 400
    assert info.value.detail.startswith("Form field 'a' is not valid utf-8")


async def test_urlencoded_field_name_must_decode() -> None:
    with pytest.raises(HTTPException) as info:
        await parse_urlencoded(chunks_of(b"%FF=1"), charset="utf-8", limits=DEFAULT_LIMITS)
    assert info.value.status_code == 400
    assert "field name" in info.value.detail


async def test_multipart_fields_and_several_files() -> None:
    data = body_of(
        part("title", b"Report"),
        part(
            "doc",
            b"first file\r\nwith lines",
            filename="a.txt",
            headers=["Content-Type: text/plain"],
        ),
        part(
            "doc",
            b"\x00\x01binary",
            filename="b.bin",
            headers=["Content-Type: application/octet-stream"],
        ),
        part("note", "caf\u00e9".encode()),
        part("empty", b"", filename=""),
    )
    for size in (0, 1, 7, 64):
        form = await multipart(data, size=size)
        try:
            assert form["title"] == "Report"
            assert form["note"] == "café"
            docs = form.getlist("doc")
            assert [d.filename for d in docs if isinstance(d, UploadFile)] == ["a.txt", "b.bin"]
            first, second = docs
            assert isinstance(first, UploadFile)
            assert isinstance(second, UploadFile)
            assert await first.read() == b"first file\r\nwith lines"
            assert first.size == len(b"first file\r\nwith lines")
            assert first.content_type == "text/plain"
            assert first.headers["content-disposition"].startswith("form-data")
            assert await second.read() == b"\x00\x01binary"
            assert second.content_type == "application/octet-stream"
            empty = form["empty"]
            assert isinstance(empty, UploadFile)
            assert empty.filename == ""
            assert empty.size == 0
            assert [k for k, _ in form.multi_items()] == ["title", "doc", "doc", "note", "empty"]
        finally:
            await form.close()
        assert first.file.closed
        assert second.file.closed


async def test_multipart_filename_is_metadata_only() -> None:
    data = body_of(part("f", b"x", filename="../../etc/p\u00e4sswd"))
    form = await multipart(data)
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.filename == "../../etc/p\u00e4sswd"
    # The data lives in a server-made anonymous spool, never at a client-chosen path.
    assert isinstance(upload.file, tempfile.SpooledTemporaryFile)
    await form.close()


async def test_upload_spools_to_disk_past_threshold_off_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rollover_threads: list[int] = []
    original = tempfile.SpooledTemporaryFile.rollover

    def rollover(self: tempfile.SpooledTemporaryFile[bytes]) -> None:
        rollover_threads.append(threading.get_ident())
        original(self)

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", rollover)
    limits = RequestLimits(spool_max_size=1024)
    big = bytes(range(256)) * 20  # 5120 bytes
    data = body_of(part("small", b"tiny", filename="s"), part("big", big, filename="b"))
    form = await multipart(data, limits=limits, size=700)
    small, large = form["small"], form["big"]
    assert isinstance(small, UploadFile)
    assert isinstance(large, UploadFile)
    assert small.file._rolled is False  # type: ignore[attr-defined]
    assert large.file._rolled is True  # type: ignore[attr-defined]
    assert not large._in_memory
    assert len(rollover_threads) == 1
    assert rollover_threads[0] != threading.get_ident()  # written from a worker thread
    assert await large.read() == big
    assert large.size == len(big)
    await large.seek(10)
    assert await large.read(5) == big[10:15]
    await form.close()
    assert large.file.closed


async def test_too_many_fields_and_files() -> None:
    limits = RequestLimits(max_fields=2, max_files=1)
    ok = body_of(part("a", b"1"), part("b", b"2"), part("f", b"x", filename="f"))
    form = await multipart(ok, limits=limits)
    assert len(form) == 3
    await form.close()
    await expect_error(
        413,
        "more than 2 fields",
        body_of(part("a", b"1"), part("b", b"2"), part("c", b"3")),
        limits=limits,
    )
    await expect_error(
        413,
        "more than 1 files",
        body_of(part("f", b"x", filename="f"), part("g", b"y", filename="g")),
        limits=limits,
    )


async def test_files_are_closed_when_parsing_fails() -> None:
    created: list[UploadFile] = []
    original = UploadFile.__init__

    def spy(self: UploadFile, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        created.append(self)

    limits = RequestLimits(max_files=1)
    data = body_of(part("f", b"x", filename="f"), part("g", b"y", filename="g"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(UploadFile, "__init__", spy)
        with pytest.raises(HTTPException):
            await multipart(data, limits=limits)
    assert len(created) == 1
    assert created[0].file.closed


async def test_oversized_text_part() -> None:
    limits = RequestLimits(max_part_size=10)
    await expect_error(
        413, "'big' is larger than 10 bytes", body_of(part("big", b"x" * 11)), limits=limits
    )
    form = await multipart(
        body_of(part("ok", b"x" * 10), part("file", b"y" * 50, filename="f")), limits=limits
    )
    assert form["ok"] == "x" * 10
    await form.close()


async def test_oversized_part_headers() -> None:
    limits = RequestLimits(max_part_headers=3, max_part_header_size=100)
    many = body_of(part("a", b"1", headers=[f"X-H{i}: v" for i in range(3)]))
    await expect_error(413, "more than 3 headers", many, limits=limits)
    long = body_of(part("a", b"1", headers=["X-Long: " + "v" * 200]))
    await expect_error(413, "longer than 100 bytes", long, limits=limits, size=16)
    fine = body_of(part("a", b"1", headers=["X-H: v", "X-I: w"]))
    form = await multipart(fine, limits=limits)
    assert form["a"] == "1"


async def test_missing_and_long_boundary() -> None:
    await expect_error(400, "no boundary", body_of(part("a", b"1")), boundary="")
    long = "b" * 257
    await expect_error(400, "257 bytes long", b"--" + long.encode() + b"--\r\n", boundary=long)
    await expect_error(400, "Invalid multipart boundary", b"x", boundary="caf\u00e9\u2713")


async def test_garbage_and_truncated_multipart() -> None:
    await expect_error(400, "Malformed multipart body", b"this is not multipart at all")
    truncated = body_of(part("a", b"1"))[:-12]
    await expect_error(400, "ended before its closing boundary", truncated)
    await expect_error(
        400, "Malformed multipart body", f"--{BOUNDARY}\r\nBad Header\r\n\r\nx".encode()
    )


async def test_part_without_disposition_or_name() -> None:
    await expect_error(400, "no Content-Disposition", body_of(part(None, b"x", headers=["X-A: b"])))
    nameless = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; filename="a"\r\n\r\nx\r\n'
        f"--{BOUNDARY}--\r\n"
    )
    await expect_error(400, "no name", nameless.encode())
    await expect_error(400, "'attachment'", body_of(part("a", b"x", disposition="attachment")))


async def test_empty_multipart_body_gives_empty_form() -> None:
    assert len(await multipart(b"")) == 0
    assert len(await multipart(f"--{BOUNDARY}--\r\n".encode())) == 0


async def test_charsets_of_text_parts() -> None:
    data = body_of(
        part("plain", "é".encode()),
        part("latin", "é".encode("latin-1"), headers=["Content-Type: text/plain; charset=latin-1"]),
        part("_charset_", b"iso-8859-1"),
        part("after", "ü".encode("latin-1")),
    )
    form = await multipart(data)
    assert form["plain"] == "é"
    assert form["latin"] == "é"
    assert form["_charset_"] == "iso-8859-1"
    assert form["after"] == "ü"
    await expect_error(400, "Form field 'x' is not valid utf-8", body_of(part("x", b"\xff")))
    await expect_error(400, "Unknown charset 'nope'", body_of(part("_charset_", b"nope")))
    await expect_error(400, "Unknown charset", body_of(part("_charset_", b"\x00")))
    await expect_error(
        400,
        "Unknown charset",
        body_of(part("a", b"x", headers=["Content-Type: text/plain; charset=nope"])),
    )


async def test_non_utf8_filename_falls_back_to_latin1() -> None:
    raw = (
        f"--{BOUNDARY}\r\n".encode()
        + b'Content-Disposition: form-data; name="f"; filename="\xe9t\xe9.txt"\r\n\r\nx\r\n'
        + f"--{BOUNDARY}--\r\n".encode()
    )
    form = await multipart(raw)
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.filename == "été.txt"
    await form.close()
