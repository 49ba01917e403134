"""File responses: ``FileResponse`` with validators, conditional requests and ranges."""

from __future__ import annotations

import asyncio
import math
import os
import stat
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from covet.responses.base import Response
from covet.responses.conditional import parse_http_date, parse_range, strong_match, weak_match
from covet.responses.streaming import (
    _ClientGoneError,
    _guarded,
    _TruncatedFileError,
    _until_disconnected,
)

if TYPE_CHECKING:
    import io
    from collections.abc import AsyncIterator, Mapping

    from covet.background import BackgroundTask
    from covet.types import Receive, Scope, Send

__all__ = ("FileResponse",)

_CHUNK_SIZE = 64 * 1024

# Fixes for what the platform's mimetypes database gets wrong or lacks (it varies by OS).
_MEDIA_TYPE_FIXES = {
    ".js": "text/javascript",  # RFC 9239
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".htm": "text/html",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".ico": "image/vnd.microsoft.icon",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".xml": "application/xml",
    ".pdf": "application/pdf",
}

# RFC 6265 section 4.1.1: cookie-name is an RFC 2616 token, cookie-octet excludes
# CTLs, whitespace, DQUOTE, comma, semicolon and backslash.


def _guess_media_type(path: str | os.PathLike[str]) -> str:
    """Return the media type of a file from its name, ``application/octet-stream`` if unknown."""
    import mimetypes  # imported late: only file responses need it
    import pathlib

    name = os.fspath(path)
    fixed = _MEDIA_TYPE_FIXES.get(pathlib.PurePath(name).suffix.lower())
    if fixed is not None:
        return fixed
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


class FileResponse(Response):
    """Send a file from disk, with validators, conditional requests and byte ranges.

    The response carries ``Content-Length``, ``Last-Modified``, a strong ``ETag``
    (from the modification time and size) and ``Accept-Ranges: bytes``. For a
    ``200`` response it answers conditional requests: ``If-Match`` and
    ``If-Unmodified-Since`` (412), ``If-None-Match`` and ``If-Modified-Since``
    (304), and ``Range`` (206, ``multipart/byteranges`` for several ranges, 416
    when none is satisfiable) guarded by ``If-Range``. A malformed ``Range``, or
    one with more than 200 ranges, is ignored.

    The file is read in chunks in a worker thread, or handed to the server when it
    supports the ``http.response.pathsend`` extension.

    Args:
        path: The file to send.
        status_code: The HTTP status code; conditional requests and ranges only
            apply to ``200``.
        headers: Extra headers.
        media_type: The ``Content-Type``; guessed from ``filename`` or ``path`` if None.
        background: A task to run after the response is sent.
        filename: Adds ``Content-Disposition`` with this name (RFC 6266, with an
            RFC 5987 ``filename*`` for non-ASCII names).
        stat_result: An ``os.stat()`` result for ``path`` if you already have one.
        content_disposition_type: ``"attachment"`` (download) or ``"inline"``.

    Raises:
        FileNotFoundError: When sent, if ``path`` does not exist (any more).
        IsADirectoryError: When sent, if ``path`` is not a regular file.
    """

    chunk_size = _CHUNK_SIZE

    def __init__(
        self,
        path: str | os.PathLike[str],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
        filename: str | None = None,
        stat_result: os.stat_result | None = None,
        content_disposition_type: Literal["attachment", "inline"] = "attachment",
    ) -> None:
        self.path = os.fspath(path)
        self.status_code = status_code
        self.filename = filename
        self.background = background
        self.media_type = media_type or _guess_media_type(filename or self.path)
        self.init_headers(headers)
        self._given = {key.lower() for key in headers} if headers else set()
        if filename is not None:
            self.headers.setdefault(
                "content-disposition", _content_disposition(content_disposition_type, filename)
            )
        self.stat_result = stat_result
        if stat_result is not None:
            self._set_stat_headers(stat_result)

    def _set_stat_headers(self, stat_result: os.stat_result) -> None:
        import email.utils  # imported late (~5 ms): only dates need it

        values = {
            "content-length": str(stat_result.st_size),
            "last-modified": email.utils.formatdate(stat_result.st_mtime, usegmt=True),
            "etag": f'"{stat_result.st_mtime_ns:x}-{stat_result.st_size:x}"',
            "accept-ranges": "bytes",
        }
        for name, value in values.items():
            if name not in self._given:
                self.headers[name] = value

    def _open(self) -> tuple[io.BufferedReader | None, os.stat_result]:
        """Open and stat the file (called in a worker thread)."""
        import pathlib  # imported late: only file responses need it

        try:
            handle = pathlib.Path(self.path).open("rb")  # noqa: SIM115 - closed by __call__
        except FileNotFoundError:
            raise FileNotFoundError(
                f"File at path {self.path!r} does not exist. Check the path, or catch "
                "FileNotFoundError and return a 404."
            ) from None
        except IsADirectoryError:
            raise IsADirectoryError(
                f"Path {self.path!r} is a directory, not a file. Pass the path of a file."
            ) from None
        try:
            result = os.fstat(handle.fileno())
            if not stat.S_ISREG(result.st_mode):
                raise IsADirectoryError(
                    f"Path {self.path!r} is not a regular file. Pass the path of a file."
                )
        except BaseException:
            handle.close()
            raise
        return handle, result

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the file, or a 304/206/412/416 answer to a conditional request."""
        handle, result = await asyncio.to_thread(self._open)
        try:
            await self._respond(scope, receive, _guarded(send), handle, result)
        except _ClientGoneError:
            pass
        finally:
            if handle is not None:
                await asyncio.to_thread(handle.close)
        if self.background is not None:
            await self.background()

    async def _respond(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        handle: io.BufferedReader | None,
        result: os.stat_result,
    ) -> None:
        # Trust the fstat() of the open file over a stat_result taken earlier.
        self.stat_result = result
        self._set_stat_headers(result)
        size = result.st_size
        method = scope.get("method", "GET")
        request_headers = _request_headers(scope)
        if self.status_code == 200:
            status = self._precondition_status(request_headers, method)
            if status is not None:
                await self._send_bodiless(scope, send, status)
                return
            range_header = request_headers.get("range")
            if range_header is not None and method == "GET" and self._if_range_ok(request_headers):
                ranges = parse_range(range_header, size)
                if ranges == []:
                    await self._send_unsatisfiable(scope, send, size)
                    return
                if ranges is not None:
                    await self._send_ranges(scope, receive, send, handle, ranges, size)
                    return
        self.headers["content-length"] = str(size)
        await send(self._start_message(scope))
        if method == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if "http.response.pathsend" in scope.get("extensions", {}):
            path = await asyncio.to_thread(os.path.abspath, self.path)  # getcwd() is a syscall
            await send({"type": "http.response.pathsend", "path": path})
            return
        assert handle is not None  # noqa: S101 - _open() always returns a handle
        await self._send_file(send, receive, handle, [(0, size - 1)] if size else [], None)

    def _precondition_status(self, headers: dict[str, str], method: str) -> int | None:
        """Evaluate the preconditions of RFC 9110 section 13.2.2, in its order."""
        etag = self.headers["etag"]
        mtime = math.floor(self.stat_result.st_mtime) if self.stat_result else 0
        if_match = headers.get("if-match")
        if if_match is not None:
            if not strong_match(if_match, etag):
                return 412
        else:
            since = headers.get("if-unmodified-since")
            if since is not None:
                moment = parse_http_date(since)
                if moment is not None and mtime > moment:
                    return 412
        if_none_match = headers.get("if-none-match")
        if if_none_match is not None:
            if weak_match(if_none_match, etag):
                return 304 if method in ("GET", "HEAD") else 412
        elif method in ("GET", "HEAD"):
            since = headers.get("if-modified-since")
            if since is not None:
                moment = parse_http_date(since)
                if moment is not None and mtime <= moment:
                    return 304
        return None

    def _if_range_ok(self, headers: dict[str, str]) -> bool:
        if_range = headers.get("if-range")
        if if_range is None:
            return True
        if_range = if_range.strip()
        if if_range.startswith(('"', "W/")):
            return strong_match(if_range, self.headers["etag"]) and if_range != "*"
        moment = parse_http_date(if_range)
        stat_result = self.stat_result
        return (
            moment is not None
            and stat_result is not None
            and (math.floor(stat_result.st_mtime) == moment)
        )

    async def _send_bodiless(self, scope: Scope, send: Send, status: int) -> None:
        if status == 304:
            # RFC 9110 15.4.5: keep only the fields a cache needs to update its entry.
            keep = {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary"}
            keep.add(b"last-modified")
            raw = [(k, v) for k, v in self.headers.raw if k in keep]
        else:
            raw = [(k, v) for k, v in self.headers.raw if k not in _REPRESENTATION_HEADERS]
            raw.append((b"content-length", b"0"))
        self.headers.raw[:] = raw
        await send(self._start_message(scope, status=status))
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_unsatisfiable(self, scope: Scope, send: Send, size: int) -> None:
        raw = [(k, v) for k, v in self.headers.raw if k not in _REPRESENTATION_HEADERS]
        raw.append((b"content-range", f"bytes */{size}".encode("latin-1")))
        raw.append((b"content-length", b"0"))
        self.headers.raw[:] = raw
        await send(self._start_message(scope, status=416))
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_ranges(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        handle: io.BufferedReader | None,
        ranges: list[tuple[int, int]],
        size: int,
    ) -> None:
        assert handle is not None  # noqa: S101 - _open() always returns a handle
        if len(ranges) == 1:
            first, last = ranges[0]
            self.headers["content-range"] = f"bytes {first}-{last}/{size}"
            self.headers["content-length"] = str(last - first + 1)
            await send(self._start_message(scope, status=206))
            await self._send_file(send, receive, handle, ranges, None)
            return
        import secrets  # imported late: only multi-range answers need it

        boundary = secrets.token_hex(16)
        part_type = self.headers.get("content-type") or "application/octet-stream"
        headers = [
            (
                f"--{boundary}\r\nContent-Type: {part_type}\r\n"
                f"Content-Range: bytes {first}-{last}/{size}\r\n\r\n"
            ).encode("latin-1")
            for first, last in ranges
        ]
        trailer = f"--{boundary}--\r\n".encode("latin-1")
        length = sum(
            len(h) + (last - first + 1) + 2
            for h, (first, last) in zip(headers, ranges, strict=True)
        )
        self.headers["content-type"] = f"multipart/byteranges; boundary={boundary}"
        self.headers["content-length"] = str(length + len(trailer))
        await send(self._start_message(scope, status=206))
        await self._send_file(send, receive, handle, ranges, (headers, trailer))

    async def _send_file(
        self,
        send: Send,
        receive: Receive,
        handle: io.BufferedReader,
        ranges: list[tuple[int, int]],
        multipart: tuple[list[bytes], bytes] | None,
    ) -> None:
        chunk_size = self.chunk_size

        async def body() -> AsyncIterator[None]:
            for index, (first, last) in enumerate(ranges):
                if multipart is not None:
                    await send(
                        {
                            "type": "http.response.body",
                            "body": multipart[0][index],
                            "more_body": True,
                        }
                    )
                await asyncio.to_thread(handle.seek, first)
                remaining = last - first + 1
                while remaining > 0:
                    data = await asyncio.to_thread(handle.read, min(chunk_size, remaining))
                    if not data:
                        # The file shrank while being sent; the length promised can't be met.
                        raise _TruncatedFileError(
                            f"File {self.path!r} got shorter while being sent; the response "
                            "is incomplete."
                        )
                    remaining -= len(data)
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                    yield None
                if multipart is not None:
                    await send({"type": "http.response.body", "body": b"\r\n", "more_body": True})
            final = multipart[1] if multipart is not None else b""
            await send({"type": "http.response.body", "body": final, "more_body": False})

        await _until_disconnected(body(), receive)


_REPRESENTATION_HEADERS = frozenset(
    {b"content-length", b"content-type", b"content-range", b"content-disposition"}
)


def _request_headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        # Combine repeated fields as RFC 9110 5.3 allows for list-valued ones.
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _content_disposition(disposition_type: str, filename: str) -> str:
    if any(ch in filename for ch in "\r\n\x00"):
        raise ValueError(f"Invalid filename {filename!r}: CR, LF and NUL are not allowed.")
    quoted = quote(filename, safe="")
    if quoted != filename or '"' in filename or "\\" in filename:
        # RFC 6266 4.3: a plain ASCII fallback plus the exact name as RFC 5987 filename*.
        fallback = filename.encode("ascii", "replace").decode("ascii").replace("\\", "_")
        fallback = fallback.replace('"', "_")
        fallback = "".join(ch if 0x20 <= ord(ch) < 0x7F else "_" for ch in fallback)
        return f"{disposition_type}; filename=\"{fallback}\"; filename*=utf-8''{quoted}"
    return f'{disposition_type}; filename="{filename}"'
