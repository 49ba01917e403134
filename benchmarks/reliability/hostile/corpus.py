"""The hostile-input corpus: raw HTTP/1.1 requests an attacker can send, generated.

Each :class:`Case` is the exact bytes put on the wire (optionally in timed
pieces, for slow clients) and the statuses it may get. Every case must be
answered with one of its ``allowed`` statuses or have its connection closed,
never a 5xx, and a case may name bytes (``forbidden``) that must never
appear in the answer (the secret file a traversal aims at).

The groups are the ones of issue 16: request smuggling shapes, oversized and
malformed headers, slow clients, multipart bombs, JSON bombs, Range bombs,
path traversal encodings, poisoned Host and X-Forwarded-* headers, and
invalid UTF-8 in every part of a request.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Any client error; a case that may also succeed says so.
CLIENT_ERRORS = frozenset(range(400, 500))
#: What an ignorable or harmless input may get: success, redirect or client error.
NOT_SERVER_ERRORS = frozenset(range(200, 500))

#: The content of the file a traversal aims at (outside the static directory).
SECRET = b"HOSTILE-SECRET-4f1c2a"


@dataclass(frozen=True)
class Case:
    """One hostile request.

    Attributes:
        group: The attack family (for the summary table).
        name: What this request tries.
        data: The bytes sent at once (after ``pieces`` when both are given).
        pieces: ``(bytes, delay_after)`` chunks for slow clients.
        allowed: Statuses that count as a correct answer; a closed connection
            without any answer always counts as correct.
        forbidden: Bytes that must never appear in the answer.
        csrf: Add the session cookie and ``X-CSRF-Token`` of a real visitor,
            so the request reaches the handler's parser instead of stopping at CSRF.
        deadline: Seconds the client waits for an answer or a close.
        waits_for: ``"header"`` or ``"body"``: the case ends by that server
            timeout, so the client waits for it (plus the deadline).
    """

    group: str
    name: str
    data: bytes = b""
    pieces: tuple[tuple[bytes, float], ...] = ()
    allowed: frozenset[int] = CLIENT_ERRORS
    forbidden: bytes | None = None
    csrf: bool = False
    deadline: float = 15.0
    waits_for: str | None = None


def request(
    method: str,
    target: str | bytes,
    headers: list[tuple[bytes | str, bytes | str]] | None = None,
    body: bytes = b"",
    *,
    host: bytes = b"127.0.0.1",
    content_length: bool = True,
) -> bytes:
    """Return a raw request; ``headers`` are sent as given, after ``Host``."""
    target_bytes = target.encode("latin-1") if isinstance(target, str) else target
    lines = [method.encode() + b" " + target_bytes + b" HTTP/1.1", b"Host: " + host]
    for name, value in headers or []:
        name_b = name.encode("latin-1") if isinstance(name, str) else name
        value_b = value.encode("latin-1") if isinstance(value, str) else value
        lines.append(name_b + b": " + value_b)
    if body and content_length:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _multipart(parts: list[bytes], boundary: bytes = b"xYzZy", *, final: bool = True) -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + boundary + b"--\r\n" if final else b"")


def _mp_headers(boundary: bytes = b"xYzZy") -> list[tuple[bytes | str, bytes | str]]:
    return [(b"Content-Type", b"multipart/form-data; boundary=" + boundary)]


def smuggling() -> list[Case]:
    """CL+TE, duplicate and malformed Content-Length, obfuscated Transfer-Encoding."""
    smuggled = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    cases = [
        Case(
            "smuggling",
            "CL and TE: chunked together (CL.TE)",
            b"POST /json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 6\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
        ),
        Case(
            "smuggling",
            "TE: chunked then CL (TE.CL)",
            b"POST /json HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Length: 4\r\n\r\n5c\r\n" + smuggled + b"\r\n0\r\n\r\n",
        ),
        Case(
            "smuggling",
            "two different Content-Length",
            b"POST /json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n"
            b"Content-Length: 40\r\n\r\n{}" + smuggled,
        ),
        Case(
            "smuggling",
            "Content-Length list '2, 2'",
            b"POST /json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2, 2\r\n\r\n{}",
        ),
        Case(
            "smuggling",
            "negative Content-Length",
            b"POST /json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n{}",
        ),
        Case(
            "smuggling",
            "Content-Length with a plus sign",
            b"POST /json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: +2\r\n\r\n{}",
        ),
        Case(
            "smuggling",
            "Content-Length of 2**64",
            b"POST /json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 18446744073709551616"
            b"\r\n\r\n{}",
        ),
        Case(
            "smuggling",
            "chunk size overflow",
            b"POST /json HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"ffffffffffffffffffff\r\nab\r\n0\r\n\r\n",
        ),
        Case(
            "smuggling",
            "chunk extension with a bare LF",
            b"POST /json HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2;x\n{}\r\n0\r\n\r\n",
        ),
        Case(
            "smuggling",
            "bare LF line endings in headers",
            b"POST /json HTTP/1.1\nHost: 127.0.0.1\nContent-Length: 2\nX: y\r\n\r\n{}",
            allowed=NOT_SERVER_ERRORS,
        ),
        Case(
            "smuggling",
            "header folded with obs-fold",
            b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\r\n b\r\n\r\n",
            allowed=NOT_SERVER_ERRORS,
        ),
        Case(
            "smuggling",
            "space before the header colon",
            b"POST /json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length : 2\r\n\r\n{}",
        ),
        Case(
            "smuggling",
            "HTTP/1.0 request with chunked TE",
            b"POST /json HTTP/1.0\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\n{}\r\n0\r\n\r\n",
            allowed=NOT_SERVER_ERRORS,
        ),
        Case(
            "smuggling",
            "two Host headers",
            b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n",
        ),
    ]
    for te in (
        b"Transfer-Encoding: xchunked",
        b"Transfer-Encoding : chunked",
        b"Transfer-Encoding: chunked, identity",
        b"Transfer-Encoding: identity, chunked",
        b"Transfer-Encoding:\tchunked",
        b"Transfer-Encoding: \x0bchunked",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x",
        b"Transfer-Encoding: CHUNKED",
        b"Transfer-Encoding: chunk",
        b" Transfer-Encoding: chunked",
        b"X: y\r\n Transfer-Encoding: chunked",
        b"Transfer_Encoding: chunked",
    ):
        cases.append(
            Case(
                "smuggling",
                f"TE obfuscation {te.decode('latin-1')!r} with Content-Length",
                b"POST /json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n"
                + te
                + b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
                + smuggled,
                # Some of these are legal (CHUNKED is case-insensitive): they decode
                # as one request. What must never happen is a second, smuggled answer,
                # which the harness checks separately.
                allowed=NOT_SERVER_ERRORS,
            )
        )
    return cases


def headers() -> list[Case]:
    """Oversized and malformed request lines and headers."""
    return [
        Case("headers", "request line of 64 KiB", request("GET", "/ping?" + "a" * 65536)),
        Case("headers", "request line of 1 MiB", request("GET", "/" + "a" * (1 << 20))),
        Case("headers", "one header of 64 KiB", request("GET", "/ping", [("X-Big", "a" * 65536)])),
        Case(
            "headers",
            "one header of 1 MiB",
            request("GET", "/ping", [("X-Big", "a" * (1 << 20))]),
        ),
        Case(
            "headers",
            "header name of 64 KiB",
            request("GET", "/ping", [("X" * 65536, "a")]),
        ),
        Case(
            "headers",
            "1,000 headers",
            request("GET", "/ping", [(f"X-H{i}", "v") for i in range(1000)]),
        ),
        Case(
            "headers",
            "10,000 headers",
            request("GET", "/ping", [(f"X-H{i}", "v") for i in range(10000)]),
        ),
        Case(
            "headers",
            "cookie header of 256 KiB, 20,000 cookies",
            request("GET", "/", [("Cookie", "; ".join(f"c{i}=v" for i in range(20000)))]),
        ),
        Case("headers", "NUL in a header value", request("GET", "/ping", [("X-A", b"a\x00b")])),
        Case("headers", "CR alone in a header value", request("GET", "/ping", [("X-A", b"a\rb")])),
        Case(
            "headers",
            "header without a colon",
            b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nNoColon\r\n\r\n",
        ),
        Case("headers", "header name with a space", request("GET", "/ping", [("X A", "b")])),
        Case("headers", "unknown HTTP version", b"GET /ping HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n"),
        Case("headers", "HTTP/2 preface on HTTP/1.1", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        Case("headers", "garbage instead of a request", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc"),
        Case("headers", "method of 10 KiB", request("G" * 10240, "/ping")),
        Case(
            "headers",
            "lowercase method",
            request("get", "/ping"),
        ),
        Case(
            "headers",
            "TRACE",
            request("TRACE", "/ping"),
        ),
        Case(
            "headers",
            "CONNECT with an authority target",
            request("CONNECT", "127.0.0.1:1"),
        ),
        Case(
            "headers",
            "asterisk target",
            request("OPTIONS", "*"),
            allowed=NOT_SERVER_ERRORS,
        ),
        Case(
            "headers",
            "Expect: 100-continue with no body",
            request("POST", "/json", [("Expect", "100-continue"), ("Content-Length", "10")]),
            waits_for="body",
        ),
        Case(
            "headers",
            "Content-Type of 64 KiB on a form",
            request(
                "POST",
                "/upload",
                [("Content-Type", "multipart/form-data; " + "a=b; " * 13000)],
                b"x",
            ),
        ),
        Case(
            "headers",
            "Accept of 8 KiB with 1,000 media ranges",
            request(
                "GET", "/nope", [("Accept", ", ".join(f"t{i}/s;q=0.{i % 9}" for i in range(1000)))]
            ),
        ),
    ]


def slow() -> list[Case]:
    """Slowloris (a head that never ends) and slow bodies; each keeps sending until cut off."""
    head = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    post = (
        b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/"
        b"x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
    )
    timed_out = frozenset({408})
    return [
        Case(
            "slow",
            "slowloris: a header line every 0.5 s, never finished",
            pieces=((head, 0.5), *((b"X-a: b\r\n", 0.5),) * 400),
            allowed=timed_out,
            waits_for="header",
        ),
        Case(
            "slow",
            "slowloris: one byte of the request line every 0.5 s",
            pieces=tuple((bytes([byte]), 0.5) for byte in b"GET /ping?" + b"a" * 400),
            allowed=timed_out,
            waits_for="header",
        ),
        Case(
            "slow",
            "connection opened, nothing sent",
            pieces=((b"", 200.0),),
            allowed=timed_out,
            waits_for="header",
        ),
        Case(
            "slow",
            "slow body: 10 bytes every 0.5 s of a 100 KB form",
            pieces=((post, 0.5), *((b"a=bbbbbbbb", 0.5),) * 400),
            allowed=timed_out,
            waits_for="body",
        ),
        Case(
            "slow",
            "kept-alive connection: one request, then a head that never ends",
            pieces=(
                (b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0.5),
                *((bytes([byte]), 0.5) for byte in b"GET /ping?" + b"a" * 400),
            ),
            allowed=frozenset({200}),  # the first answer; then the 408 and the close
            waits_for="header",
        ),
    ]


def multipart() -> list[Case]:
    """Multipart bombs: many parts, huge part headers, no final boundary, bad boundaries."""
    many_fields = _multipart(
        [f'Content-Disposition: form-data; name="f{i}"\r\n\r\nv'.encode() for i in range(5000)]
    )
    many_files = _multipart(
        [
            f'Content-Disposition: form-data; name="f{i}"; filename="a{i}.txt"\r\n\r\nv'.encode()
            for i in range(500)
        ]
    )
    huge_header = _multipart(
        [b'Content-Disposition: form-data; name="a"\r\nX-Pad: ' + b"p" * 100_000 + b"\r\n\r\nv"]
    )
    many_headers = _multipart(
        [
            b'Content-Disposition: form-data; name="a"\r\n'
            + b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
            + b"\r\nv"
        ]
    )
    no_final = _multipart(
        [b'Content-Disposition: form-data; name="a"\r\n\r\n' + b"v" * 1000], final=False
    )
    big_field = _multipart([b'Content-Disposition: form-data; name="a"\r\n\r\n' + b"v" * 2_000_000])
    big_name = _multipart(
        [b'Content-Disposition: form-data; name="' + b"n" * 200_000 + b'"\r\n\r\nv']
    )
    traversal_name = _multipart(
        [
            b'Content-Disposition: form-data; name="f"; filename="../../../../etc/passwd"\r\n'
            b"Content-Type: text/plain\r\n\r\nroot"
        ]
    )
    bad_utf8 = _multipart(
        [b'Content-Disposition: form-data; name="\xff\xfe"\r\n\r\n\xc3\x28\xa0\xa1']
    )
    cases = [
        Case("multipart", "5,000 fields", request("POST", "/upload", _mp_headers(), many_fields)),
        Case("multipart", "500 files", request("POST", "/upload", _mp_headers(), many_files)),
        Case(
            "multipart",
            "part header of 100 KB",
            request("POST", "/upload", _mp_headers(), huge_header),
        ),
        Case(
            "multipart",
            "5,000 part headers",
            request("POST", "/upload", _mp_headers(), many_headers),
        ),
        Case(
            "multipart",
            "no final boundary",
            request("POST", "/upload", _mp_headers(), no_final),
        ),
        Case(
            "multipart",
            "field of 2 MB (limit 1 MiB)",
            request("POST", "/upload", _mp_headers(), big_field),
        ),
        Case(
            "multipart", "field name of 200 KB", request("POST", "/upload", _mp_headers(), big_name)
        ),
        Case(
            "multipart",
            "filename with ../ (accepted: names are never used as paths)",
            request("POST", "/upload", _mp_headers(), traversal_name),
            allowed=frozenset({200}),
        ),
        Case(
            "multipart",
            "invalid UTF-8 in a field name and value",
            request("POST", "/upload", _mp_headers(), bad_utf8),
            allowed=frozenset({200, 400}),
        ),
        Case(
            "multipart",
            "boundary of 10 KB",
            request("POST", "/upload", _mp_headers(b"b" * 10000), _multipart([b"x"], b"b" * 10000)),
        ),
        Case(
            "multipart",
            "no boundary parameter",
            request("POST", "/upload", [("Content-Type", "multipart/form-data")], b"--x\r\n"),
        ),
        Case(
            "multipart",
            "empty boundary",
            request("POST", "/upload", [("Content-Type", "multipart/form-data; boundary=")], b"--"),
        ),
        Case(
            "multipart",
            "body is only boundaries (100,000 empty parts)",
            request("POST", "/upload", _mp_headers(), b"--xYzZy\r\n" * 100_000),
        ),
        Case(
            "multipart",
            "Content-Length 10 GB, 1 KB sent",
            request(
                "POST",
                "/upload",
                [*_mp_headers(), ("Content-Length", "10000000000")],
                b"--xYzZy\r\n" * 100,
                content_length=False,
            ),
        ),
        Case(
            "multipart",
            "chunked multipart of 12 MB (limit 10 MiB)",
            b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: multipart/form-data; boundary=xYzZy\r\n\r\n"
            + (b"100000\r\n" + b"a" * 0x100000 + b"\r\n") * 12
            + b"0\r\n\r\n",
        ),
        Case(
            "multipart",
            "urlencoded: 100,000 fields",
            request(
                "POST",
                "/upload",
                [("Content-Type", "application/x-www-form-urlencoded")],
                b"&".join(b"a%d=b" % i for i in range(100_000)),
            ),
        ),
        Case(
            "multipart",
            "urlencoded behind CSRF: invalid UTF-8 and bad escapes",
            request(
                "POST",
                "/form",
                [("Content-Type", "application/x-www-form-urlencoded")],
                b"a=%ff%fe&b=\xff\xfe&%zz=%&c=%c3%28",
            ),
            allowed=frozenset({200, 400}),
            csrf=True,
        ),
        Case(
            "multipart",
            "form behind CSRF without a token",
            request(
                "POST",
                "/form",
                [("Content-Type", "application/x-www-form-urlencoded")],
                b"a=b",
            ),
            allowed=frozenset({403}),
        ),
        Case(
            "multipart",
            "multipart behind CSRF: 5,000 fields",
            request("POST", "/form", _mp_headers(), many_fields),
            csrf=True,
        ),
        Case(
            "multipart",
            "multipart behind CSRF: no final boundary",
            request("POST", "/form", _mp_headers(), no_final),
            csrf=True,
        ),
        Case(
            "multipart",
            "form charset=utf-7 (a text encoding: decoded)",
            request(
                "POST",
                "/upload",
                [("Content-Type", "application/x-www-form-urlencoded; charset=utf-7")],
                b"a=b",
            ),
            allowed=frozenset({200}),
        ),
        Case(
            "multipart",
            "form charset=base64 (a bytes codec, no charset)",
            request(
                "POST",
                "/upload",
                [("Content-Type", "application/x-www-form-urlencoded; charset=base64")],
                b"a=b",
            ),
        ),
    ]
    return cases


def json_bombs() -> list[Case]:
    """JSON nesting and size bombs."""
    return [
        Case("json", "100,000 nested arrays", request("POST", "/json", body=b"[" * 100_000)),
        Case(
            "json",
            "100,000 nested objects",
            request("POST", "/json", body=b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        ),
        Case(
            "json",
            "3 MB document (limit 2.5 MiB)",
            request("POST", "/json", body=b'"' + b"a" * 3_000_000 + b'"'),
        ),
        Case(
            "json",
            "2.4 MB of tiny arrays: 800,000 lists (max_json_items)",
            request("POST", "/json", body=b"[" + b"[]," * 800_000 + b"[]]"),
        ),
        Case(
            "json",
            "45,000 lists (accepted: 90,002 commas and brackets)",
            request("POST", "/json", body=b"[" + b"[]," * 45_000 + b"[]]"),
            allowed=frozenset({200}),
        ),
        Case(
            "json",
            "a number of 1 MB digits",
            request("POST", "/json", body=b"1" * 1_000_000),
            allowed=frozenset({200, 400}),
        ),
        Case("json", "invalid UTF-8", request("POST", "/json", body=b'{"a": "\xff"}')),
        Case(
            "json",
            "lone surrogate escape",
            request("POST", "/json", body=b'"\\ud800"'),
            allowed=frozenset({200, 400}),
        ),
        Case(
            "json",
            "NaN and Infinity",
            request("POST", "/json", body=b"[NaN, Infinity]"),
            allowed=frozenset({200, 400}),
        ),
        Case("json", "empty body", request("POST", "/json", [("Content-Length", "0")])),
        Case(
            "json",
            "chunked JSON of 3 MB",
            b"POST /json HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + (b"100000\r\n" + b" " * 0x100000 + b"\r\n") * 3
            + b"0\r\n\r\n",
        ),
    ]


def ranges() -> list[Case]:
    """Range bombs: many overlapping ranges, huge and malformed ones."""
    overlapping = ",".join("0-" for _ in range(199)) + ",0-"
    return [
        Case(
            "range",
            "200 overlapping open ranges (merged into one)",
            request("GET", "/file", [("Range", "bytes=" + overlapping)]),
            allowed=frozenset({206}),
        ),
        Case(
            "range",
            "1,300 overlapping ranges (CVE-2011-3192 shape: ignored)",
            request(
                "GET", "/file", [("Range", "bytes=0-," + ",".join(f"5-{i}" for i in range(1300)))]
            ),
            allowed=frozenset({200}),
        ),
        Case(
            "range",
            "199 disjoint one-byte ranges",
            request(
                "GET",
                "/file",
                [("Range", "bytes=" + ",".join(f"{i * 2}-{i * 2}" for i in range(199)))],
            ),
            allowed=frozenset({206}),
        ),
        Case(
            "range",
            "range header of 64 KiB",
            request("GET", "/file", [("Range", "bytes=" + "1-2," * 16000)]),
        ),
        Case(
            "range",
            "unsatisfiable range",
            request("GET", "/file", [("Range", "bytes=99999999999999999999-")]),
            allowed=frozenset({416, 200}),
        ),
        Case(
            "range",
            "malformed ranges",
            request("GET", "/file", [("Range", "bytes=--1,a-b,5-3,-,0x10-0x20")]),
            allowed=frozenset({200, 416}),
        ),
        Case(
            "range",
            "unknown unit",
            request("GET", "/file", [("Range", "pages=1-2")]),
            allowed=frozenset({200}),
        ),
        Case(
            "range",
            "range on a static file with If-Range garbage",
            request("GET", "/static/a.txt", [("Range", "bytes=0-1,1-2"), ("If-Range", "\xff\xfe")]),
            allowed=frozenset({200, 206}),
        ),
    ]


def traversal() -> list[Case]:
    """Path traversal encodings against the static mount and the path convertor."""
    targets = [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E%2Fsecret.txt",
        "/static/..%2fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/..\\secret.txt",
        "/static/%252e%252e/secret.txt",
        "/static/%c0%ae%c0%ae/secret.txt",
        "/static/%c0%af..%c0%afsecret.txt",
        "/static/.%00./secret.txt",
        "/static/secret.txt%00.txt",
        "/static/a.txt%00",
        "/static//../secret.txt",
        "/static/./../secret.txt",
        "/static/....//secret.txt",
        "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/../../../../../../etc/passwd",
        "/static/%u002e%u002e/secret.txt",
        "/static/..;/secret.txt",
        "/static/%ef%bc%8e%ef%bc%8e/secret.txt",
        "/files/../../etc/passwd",
        "/files/%2e%2e/%2e%2e/etc/passwd",
    ]
    cases = [
        Case(
            "traversal",
            target,
            request("GET", target),
            # /files/{rest:path} echoes its parameter: 200 is fine there, the body
            # is checked for the secret instead.
            allowed=NOT_SERVER_ERRORS if target.startswith("/files/") else CLIENT_ERRORS,
            forbidden=SECRET,
        )
        for target in targets
    ]
    cases.append(
        Case(
            "traversal",
            "NUL byte raw in the path",
            request("GET", b"/static/a\x00.txt"),
            forbidden=SECRET,
        )
    )
    cases.append(
        Case(
            "traversal",
            "absolute path in the static name",
            request("GET", "/static//etc/passwd"),
            forbidden=b"root:",
        )
    )
    return cases


def hosts() -> list[Case]:
    """Poisoned Host and X-Forwarded-* headers (the harness's client is a trusted proxy)."""
    return [
        Case("host", "Host not allowed", request("GET", "/ping", host=b"evil.example")),
        Case("host", "Host with a path", request("GET", "/ping", host=b"127.0.0.1/evil")),
        Case("host", "Host with userinfo", request("GET", "/ping", host=b"a@evil.example")),
        Case("host", "Host with a bad port", request("GET", "/ping", host=b"127.0.0.1:99999")),
        Case("host", "Host of 8 KiB", request("GET", "/ping", host=b"a" * 8190)),
        Case("host", "Host with invalid UTF-8", request("GET", "/ping", host=b"\xff\xfe.example")),
        Case("host", "empty Host", request("GET", "/ping", host=b"")),
        Case("host", "Host with an unclosed IPv6 bracket", request("GET", "/echo", host=b"[::1")),
        Case(
            "host", "Host with a port that is not a number", request("GET", "/echo", host=b"a:xyz")
        ),
        Case("host", "no Host at all", b"GET /ping HTTP/1.1\r\n\r\n"),
        Case(
            "host",
            "absolute-form target naming another host (RFC 9112 3.2.2: the target wins)",
            b"GET http://evil.example/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            allowed=NOT_SERVER_ERRORS,
        ),
        Case(
            "host",
            "X-Forwarded-Host poisoning a redirect",
            request("GET", "/items/1/", [("X-Forwarded-Host", "evil.example")]),
            allowed=NOT_SERVER_ERRORS,
            forbidden=b"evil.example",
        ),
        Case(
            "host",
            "X-Forwarded-For garbage",
            request(
                "GET", "/echo", [("X-Forwarded-For", "\xff, , ::::, 999.1.1.1, " + "a" * 4000)]
            ),
            allowed=NOT_SERVER_ERRORS,
        ),
        Case(
            "host",
            "X-Forwarded-Proto javascript",
            request("GET", "/items/1/", [("X-Forwarded-Proto", "javascript")]),
            allowed=NOT_SERVER_ERRORS,
            forbidden=b"javascript:",
        ),
        Case(
            "host",
            "X-Forwarded-Proto with a CR",
            request("GET", "/echo", [("X-Forwarded-Proto", "https\rx")]),
            allowed=NOT_SERVER_ERRORS,
        ),
        Case(
            "host",
            "Forwarded header garbage",
            request("GET", "/echo", [("Forwarded", 'for="\xff";proto=;host=evil.example')]),
            allowed=NOT_SERVER_ERRORS,
        ),
    ]


def utf8() -> list[Case]:
    """Invalid UTF-8 in the path, query, headers, cookies and form fields."""
    return [
        Case(
            "utf8",
            "invalid UTF-8 raw in the path",
            request("GET", b"/items/\xff\xfe"),
            allowed=CLIENT_ERRORS,
        ),
        Case(
            "utf8",
            "invalid UTF-8 escaped in the path",
            request("GET", "/files/%ff%fe%c3%28"),
            allowed=NOT_SERVER_ERRORS,
        ),
        Case(
            "utf8",
            "overlong UTF-8 in the path",
            request("GET", "/files/%c0%80%e0%80%80"),
            allowed=NOT_SERVER_ERRORS,
        ),
        Case(
            "utf8",
            "surrogate in the path",
            request("GET", "/files/%ed%a0%80"),
            allowed=NOT_SERVER_ERRORS,
        ),
        Case(
            "utf8",
            "invalid UTF-8 raw in the query",
            request("GET", b"/echo?a=\xff\xfe"),
            allowed=NOT_SERVER_ERRORS,
        ),
        Case(
            "utf8",
            "invalid UTF-8 escaped in the query",
            request("GET", "/echo?%ff=%fe&b=%c3%28"),
            allowed=NOT_SERVER_ERRORS,
        ),
        Case(
            "utf8",
            "invalid UTF-8 in a header",
            request("GET", "/echo", [("X-A", b"\xff\xfe")]),
            allowed=NOT_SERVER_ERRORS,
        ),
        Case(
            "utf8",
            "invalid UTF-8 in cookies",
            request("GET", "/", [("Cookie", b"session=\xff\xfe; csrftoken=\xc3\x28; \xff=1")]),
            allowed=NOT_SERVER_ERRORS,
        ),
        Case(
            "utf8",
            "forged session cookie",
            request("GET", "/", [("Cookie", "session=eyJhIjoxfQ.forged.signature")]),
            allowed=NOT_SERVER_ERRORS,
        ),
        Case(
            "utf8",
            "invalid UTF-8 in the Accept-Language and User-Agent",
            request("GET", "/nope", [("Accept-Language", b"\xff"), ("User-Agent", b"\xfe\xff")]),
        ),
        Case(
            "utf8",
            "int convertor with Unicode digits",
            request("GET", "/items/%d9%a3"),
            allowed=CLIENT_ERRORS,
        ),
        Case(
            "utf8",
            "int convertor with 10,000 digits",
            request("GET", "/items/" + "9" * 10000),
            allowed=CLIENT_ERRORS,
        ),
        Case(
            "utf8",
            "uuid convertor with garbage",
            request("GET", "/uuid/%ff" * 12),
            allowed=CLIENT_ERRORS,
        ),
        Case(
            "utf8",
            "invalid UTF-8 in a CSRF token header",
            request("POST", "/form", [("X-CSRF-Token", b"\xff\xfe")], b"a=b"),
            allowed=CLIENT_ERRORS,
        ),
        Case(
            "utf8",
            "invalid UTF-8 in the Origin of a form post",
            request("POST", "/form", [("Origin", b"http://\xff")], b"a=b"),
            allowed=CLIENT_ERRORS,
        ),
        Case(
            "utf8",
            "websocket handshake with invalid UTF-8 Origin",
            request(
                "GET",
                "/ws",
                [
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                    ("Sec-WebSocket-Version", "13"),
                    ("Origin", b"http://\xff\xfe"),
                ],
            ),
        ),
        Case(
            "utf8",
            "websocket handshake with a bad key",
            request(
                "GET",
                "/ws",
                [
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", "\xff"),
                    ("Sec-WebSocket-Version", "13"),
                ],
            ),
        ),
    ]


def corpus() -> list[Case]:
    """Return every case, group by group."""
    return [
        *smuggling(),
        *headers(),
        *multipart(),
        *json_bombs(),
        *ranges(),
        *traversal(),
        *hosts(),
        *utf8(),
        *slow(),
    ]
