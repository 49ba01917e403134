"""Parsers for ``application/x-www-form-urlencoded`` and ``multipart/form-data`` bodies.

The multipart parser sits on python-multipart's incremental state machine
and consumes the body chunk by chunk; an urlencoded body, held in memory whole
anyway, is split at once by the same rules. Memory stays bounded by the limits
in :class:`covet.requests.RequestLimits`, whatever the client sends:

* the body iterator given to them already enforces the total size
  (``max_body_size``: an urlencoded body is never larger);
* text fields are bounded by ``max_part_size`` and counted against
  ``max_fields``, files are counted against ``max_files``;
* part headers are bounded in number and size, the boundary in length;
* file data goes into a ``SpooledTemporaryFile`` that moves to an anonymous,
  server-named temporary file past ``spool_max_size``; any write that lands on
  disk runs in a worker thread (see :meth:`covet.datastructures.UploadFile.write`).

A limit that is hit raises ``HTTPException(413)``; a malformed body raises
``HTTPException(400)`` whose detail says what is wrong.
"""

from __future__ import annotations

import codecs
import re
import tempfile
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

from python_multipart.exceptions import FormParserError, MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from covet.datastructures import FormData, Headers, UploadFile
from covet.exceptions import HTTPException

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from covet.requests import RequestLimits

__all__ = (
    "MultipartScanner",
    "check_charset",
    "parse_content_type",
    "parse_multipart",
    "parse_urlencoded",
)


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a ``Content-Type`` value into its lowercased media type and parameters.

    Parameter values are unquoted; the ``filename*``-style extended syntax is
    ignored, as RFC 7578 section 4.2 requires for form data.

    Args:
        value: The header value, for example ``'multipart/form-data; boundary="x"'``.

    Returns:
        The media type and a dict of parameters with lowercased names.
    """
    media, options = parse_options_header(value)
    return media.decode("latin-1"), {
        key.decode("latin-1"): val.decode("latin-1") for key, val in options.items()
    }


def check_charset(charset: str) -> str:
    """Return ``charset`` if Python can decode text in it.

    Args:
        charset: A charset name from a ``Content-Type`` parameter or a ``_charset_`` field.

    Returns:
        The same name.

    Raises:
        HTTPException: 400 when the charset is unknown or is not a text encoding.
    """
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError):
        # ValueError: a name with a NUL ("embedded null character"), which a multipart
        # _charset_ field can carry; found by the fuzzer (issue 16).
        info = None
    # codecs also holds bytes-to-bytes codecs such as base64, which are no charset.
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise HTTPException(400, f"Unknown charset {charset!r}. Send the form as utf-8.")
    return charset


def _decode(data: bytes, charset: str, field: str | None) -> str:
    """Decode a form field's value (of ``field``), or its name when ``field`` is None."""
    try:
        return data.decode(charset)
    except UnicodeDecodeError as exc:
        what = "A form field name" if field is None else f"Form field {field!r}"
        raise HTTPException(
            400, f"{what} is not valid {charset} (byte {exc.start}). Encode the form as {charset}."
        ) from None


def _too_many(kind: str, limit: int, setting: str) -> HTTPException:
    return HTTPException(
        413, f"Form has more than {limit} {kind}. Send at most {limit} (limit {setting})."
    )


#: One field of an urlencoded body: what lies between ``&`` separators (never empty).
_URLENCODED_FIELD = re.compile(rb"[^&]+")


async def parse_urlencoded(
    chunks: AsyncIterator[bytes], *, charset: str, limits: RequestLimits
) -> FormData:
    """Parse an ``application/x-www-form-urlencoded`` body.

    Fields are separated by ``&`` (runs of ``&`` and empty fields are
    skipped); a field's name ends at its first ``=``; ``+`` means space and
    percent escapes are decoded as ``charset`` (an invalid escape is kept as
    sent); a field without ``=`` is kept with an empty value, as browsers and
    Django do. These are python-multipart's rules, which covet followed when it
    parsed with its ``QuerystringParser``; a test compares the two on
    generated bodies. The body is small (its size limit is ``max_body_size``),
    so it is split whole: about three times cheaper than the streaming parser's
    callbacks.

    Args:
        chunks: The request body; it must enforce the total size limit itself.
        charset: The charset the names and values are in.
        limits: Supplies ``max_fields``.

    Returns:
        The fields, in the order they were sent.

    Raises:
        HTTPException: 413 for too many fields (checked before anything is
            decoded); 400 for text that is not in ``charset``.
    """
    parts = [chunk async for chunk in chunks]
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    max_fields = limits.max_fields
    # A body with more separators than fields allowed may be one of a million empty
    # fields: walk it without a list of them, so the 413 comes at field max_fields + 1.
    fields: Iterable[bytes] = (
        data.split(b"&")
        if data.count(b"&") < max_fields
        else (match[0] for match in _URLENCODED_FIELD.finditer(data))
    )
    pairs: list[tuple[bytes, bytes, bytes]] = []
    for field in fields:
        if field:
            if len(pairs) >= max_fields:
                raise _too_many("fields", max_fields, "max_fields")
            pairs.append(field.partition(b"="))

    items: list[tuple[str, str | UploadFile]] = []
    for raw_name, _, raw_value in pairs:
        key = _decode(unquote_to_bytes(raw_name.replace(b"+", b" ")), charset, None)
        items.append((key, _decode(unquote_to_bytes(raw_value.replace(b"+", b" ")), charset, key)))
    return FormData(items)


class MultipartScanner:
    """Walk a ``multipart/form-data`` body part by part; subclasses decide what to keep.

    The scanner validates the boundary, collects each part's headers (bounded
    in number and size by the limits, which python-multipart enforces) and
    calls :meth:`start_part`, :meth:`part_data` and :meth:`end_part`.
    :func:`parse_multipart` keeps every field and file; the CSRF middleware
    keeps only its token field. Errors are ``HTTPException``: 400 for a bad
    boundary or a malformed body, 413 for oversized part headers.

    Args:
        boundary: The ``boundary`` parameter of the ``Content-Type`` header.
        limits: Supplies the boundary and part-header limits.

    Raises:
        HTTPException: 400 when the boundary is missing, too long or invalid.
    """

    def __init__(self, boundary: str, limits: RequestLimits) -> None:
        if not boundary:
            raise HTTPException(
                400, "Multipart Content-Type has no boundary parameter. Add boundary=... to it."
            )
        if len(boundary) > limits.max_boundary_length:
            raise HTTPException(
                400,
                f"Multipart boundary is {len(boundary)} bytes long; the limit is "
                f"{limits.max_boundary_length}. Use a shorter boundary (RFC 2046 allows 70).",
            )
        self.limits = limits
        self.ended = False
        self.headers: list[tuple[bytes, bytes]] = []
        self._header_name = bytearray()
        self._header_value = bytearray()
        try:
            self.parser = MultipartParser(
                boundary.encode("latin-1"),
                {
                    "on_part_begin": self._on_part_begin,
                    "on_header_begin": self._on_header_begin,
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_part_data": self.part_data,
                    "on_part_end": self.end_part,
                    "on_end": self._on_end,
                },
                max_header_count=limits.max_part_headers,
                max_header_size=limits.max_part_header_size,
            )
        except (FormParserError, UnicodeEncodeError) as exc:
            raise HTTPException(400, f"Invalid multipart boundary {boundary!r}: {exc}.") from None

    def _on_part_begin(self) -> None:
        self.headers = []

    def _on_header_begin(self) -> None:
        self._header_name.clear()
        self._header_value.clear()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name.extend(data[start:end])

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value.extend(data[start:end])

    def _on_header_end(self) -> None:
        self.headers.append((bytes(self._header_name).lower(), bytes(self._header_value)))

    def _on_headers_finished(self) -> None:
        self.start_part(self.headers)

    def _on_end(self) -> None:
        self.ended = True

    def start_part(self, headers: list[tuple[bytes, bytes]]) -> None:
        """Begin a part whose headers (lower-cased names) are ``headers``."""

    def part_data(self, data: bytes, start: int, end: int) -> None:
        """Take ``data[start:end]``, the next piece of the current part's content."""

    def end_part(self) -> None:
        """Finish the current part."""

    def write(self, chunk: bytes) -> None:
        """Parse the next chunk of the body.

        Raises:
            HTTPException: 413 for oversized part headers, 400 for a malformed body.
        """
        try:
            self.parser.write(chunk)
        except MultipartParseError as exc:
            if "Maximum header" in str(exc):
                raise HTTPException(
                    413,
                    f"A multipart part has more than {self.limits.max_part_headers} headers or "
                    f"a header longer than {self.limits.max_part_header_size} bytes.",
                ) from None
            raise HTTPException(400, f"Malformed multipart body: {exc}.") from None


class _MultipartReader(MultipartScanner):
    """The per-request state of one full ``multipart/form-data`` parse."""

    def __init__(self, boundary: str, charset: str, limits: RequestLimits) -> None:
        super().__init__(boundary, limits)
        self.charset = charset
        self.items: list[tuple[str, str | UploadFile]] = []
        self.uploads: list[UploadFile] = []
        # File data seen during one parser.write(); written out (maybe in a thread) after it.
        self.pending: list[tuple[UploadFile, bytes]] = []
        self.fields = 0
        self.name = ""
        self.part_charset: str | None = None
        self.upload: UploadFile | None = None
        self.data = bytearray()

    def start_part(self, headers: list[tuple[bytes, bytes]]) -> None:
        """Check the part's Content-Disposition and open a file or a text field for it."""
        self.upload = None
        self.part_charset = None
        self.data.clear()
        disposition = next((v for k, v in headers if k == b"content-disposition"), None)
        if disposition is None:
            raise HTTPException(400, "A multipart part has no Content-Disposition header.")
        kind, options = parse_options_header(disposition)
        if kind != b"form-data":
            raise HTTPException(
                400,
                f"A multipart part has Content-Disposition {kind.decode('latin-1')!r}. "
                "Use 'form-data' (RFC 7578).",
            )
        raw_name = options.get(b"name")
        if raw_name is None:
            raise HTTPException(400, "A multipart part has no name in its Content-Disposition.")
        self.name = _text(raw_name)
        part_headers = Headers(raw=headers)
        if b"filename" in options:
            if len(self.uploads) >= self.limits.max_files:
                raise _too_many("files", self.limits.max_files, "max_files")
            # Server-chosen anonymous temporary file; the client's filename is metadata only.
            spool = tempfile.SpooledTemporaryFile(max_size=self.limits.spool_max_size)  # noqa: SIM115
            self.upload = UploadFile(
                spool,  # type: ignore[arg-type]
                size=0,
                filename=_text(options[b"filename"]),
                headers=part_headers,
            )
            self.uploads.append(self.upload)
            self.items.append((self.name, self.upload))
        else:
            if self.fields >= self.limits.max_fields:
                raise _too_many("fields", self.limits.max_fields, "max_fields")
            self.fields += 1
            content_type = part_headers.get("content-type")
            if content_type:
                charset = parse_options_header(content_type)[1].get(b"charset")
                if charset:
                    self.part_charset = check_charset(charset.decode("latin-1"))

    def part_data(self, data: bytes, start: int, end: int) -> None:
        """Queue file data for writing, or collect a text field within ``max_part_size``."""
        if self.upload is not None:
            self.pending.append((self.upload, data[start:end]))
            return
        if len(self.data) + (end - start) > self.limits.max_part_size:
            raise HTTPException(
                413,
                f"Form field {self.name!r} is larger than {self.limits.max_part_size} bytes. "
                "Send it as a file, or raise max_part_size.",
            )
        self.data.extend(data[start:end])

    def end_part(self) -> None:
        """Decode a finished text field with its charset."""
        if self.upload is not None:
            return
        charset = self.part_charset or self.charset
        value = _decode(bytes(self.data), charset, self.name)
        if self.name == "_charset_":
            # RFC 7578 section 4.6: the default charset of the text fields that follow.
            self.charset = check_charset(value.strip())
        self.items.append((self.name, value))

    async def feed(self, chunk: bytes) -> None:
        """Parse a chunk, then write the file data it held (off the loop once on disk)."""
        self.write(chunk)
        pending, self.pending = self.pending, []
        for upload, data in pending:
            await upload.write(data)


def _text(value: bytes) -> str:
    """Decode a Content-Disposition parameter: browsers send UTF-8, old clients latin-1."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


async def parse_multipart(
    chunks: AsyncIterator[bytes], *, boundary: str, charset: str, limits: RequestLimits
) -> FormData:
    """Parse a ``multipart/form-data`` body.

    Text parts are decoded with their own ``charset`` parameter, else with
    the value of a preceding ``_charset_`` field, else with ``charset``. A part
    with a ``filename`` parameter (even an empty one) becomes an
    :class:`~covet.datastructures.UploadFile`, rewound to the start. An
    entirely empty body gives an empty form.

    Args:
        chunks: The request body; it must enforce the total size limit itself.
        boundary: The ``boundary`` parameter of the ``Content-Type`` header.
        charset: The default charset of text parts.
        limits: Supplies the field, file, part and header limits.

    Returns:
        The fields and files, in the order they were sent.

    Raises:
        HTTPException: 413 when a limit is hit; 400 for a missing or oversized
            boundary or a malformed body.
    """
    reader = _MultipartReader(boundary, charset, limits)
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            await reader.feed(chunk)
        reader.parser.finalize()
        if received and not reader.ended:
            raise HTTPException(
                400, "Multipart body ended before its closing boundary. Send the complete body."
            )
        for upload in reader.uploads:
            await upload.seek(0)
    except BaseException:
        for upload in reader.uploads:
            await upload.close()
        raise
    return FormData(reader.items)
