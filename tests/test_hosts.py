from __future__ import annotations

import pytest

from covet._hosts import HostPatterns, host_allowed, split_host
from covet.exceptions import ImproperlyConfigured


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("example.com", ("example.com", None)),
        ("Example.COM", ("example.com", None)),
        ("example.com:8000", ("example.com", 8000)),
        ("example.com.", ("example.com", None)),
        ("example.com.:443", ("example.com", 443)),
        ("localhost", ("localhost", None)),
        ("localhost:1", ("localhost", 1)),
        ("localhost:65535", ("localhost", 65535)),
        ("localhost:08080", ("localhost", 8080)),
        ("my-app.internal", ("my-app.internal", None)),
        ("db_1.svc", ("db_1.svc", None)),
        ("xn--bcher-kva.example", ("xn--bcher-kva.example", None)),
        ("a" * 63 + ".com", ("a" * 63 + ".com", None)),
        (("a" * 63 + ".") * 3 + "a" * 63, (("a" * 63 + ".") * 3 + "a" * 63, None)),  # 255
        ("127.0.0.1", ("127.0.0.1", None)),
        ("127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("[::1]", ("[::1]", None)),
        ("[::1]:8000", ("[::1]", 8000)),
        ("[0:0:0:0:0:0:0:1]", ("[::1]", None)),
        ("[2001:DB8::A]", ("[2001:db8::a]", None)),
        ("[::ffff:192.0.2.1]:80", ("[::ffff:c000:201]", 80)),
    ],
)
def test_split_host_accepts(value, expected):
    assert split_host(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        ":80",
        "example.com:",
        "example.com:0",
        "example.com:65536",
        "example.com:123456",
        "example.com:80a",
        "example.com:-1",
        "example.com:+80",
        "user@example.com",
        "user:pass@example.com",
        "example.com/path",
        "example.com\\path",
        "example.com?q=1",
        "example.com#frag",
        "example .com",
        " example.com",
        "example.com ",
        "example.com\t",
        "example.com\r\nX-Injected: 1",
        "example.com\n",
        "exa%6dple.com",
        "ex'ample.com",
        "a..b",
        ".example.com",
        "..",
        ".",
        "-example.com",
        "example-.com",
        "a" * 64 + ".com",
        ("a" * 60 + ".") * 5,
        ("a" * 63 + ".") * 4 + "a",  # 257 characters: longer than DNS allows
        "\u212aelvin.com",  # KELVIN SIGN lowercases to "k": must not slip through
        "b\u00fccher.example",
        "999.1.1.1",
        "1.2.3",
        "127.1",
        "0x7f.0.0.1",
        "01.2.3.4",
        "foo.123",
        "[::1",
        "::1",
        "[::1]]",
        "[::g]",
        "[fe80::1%25eth0]",
        "[1.2.3.4]",
        "[::1]:0",
        "[::1]x",
        "[]",
        "example.com:80:80",
    ],
)
def test_split_host_rejects(value):
    assert split_host(value) is None


@pytest.mark.parametrize(
    ("host", "patterns", "allowed"),
    [
        ("example.com", ["example.com"], True),
        ("example.com", ["EXAMPLE.com."], True),
        ("EXAMPLE.com", ["example.com"], True),
        ("example.com.", ["example.com"], True),
        ("www.example.com", ["example.com"], False),
        ("evil-example.com", ["example.com"], False),
        ("example.com", [".example.com"], True),
        ("a.example.com", [".example.com"], True),
        ("a.b.example.com", [".example.com"], True),
        ("badexample.com", [".example.com"], False),
        ("example.com", ["*.example.com"], False),
        ("a.example.com", ["*.example.com"], True),
        ("a.b.example.com", ["*.example.com"], True),
        ("evilexample.com", ["*.example.com"], False),
        ("example.com.evil.net", ["*.example.com", "example.com"], False),
        ("anything.test", ["*"], True),
        ("anything.test", ["other.test", "*"], True),
        ("anything.test", [], False),
        ("[::1]", ["::1"], True),
        ("[::1]", ["[0::1]"], True),
        ("[::2]", ["::1"], False),
        ("127.0.0.1", ["127.0.0.1", "localhost"], True),
    ],
)
def test_host_allowed(host, patterns, allowed):
    assert host_allowed(host, patterns) is allowed
    assert HostPatterns(patterns).match(host) is allowed


def test_host_allowed_accepts_compiled_patterns():
    patterns = HostPatterns([".example.com"])
    assert host_allowed("api.example.com", patterns)
    assert not host_allowed("example.org", patterns)
    assert patterns.allows_any is False
    assert HostPatterns(["*"]).allows_any is True
    assert repr(patterns) == "HostPatterns(['.example.com'])"


@pytest.mark.parametrize(
    "pattern", ["", "*.", "*example.com", "a.*.com", "**", "*.*.com", ".", "example.com:8000"]
)
def test_malformed_patterns_are_refused(pattern):
    with pytest.raises(ImproperlyConfigured, match="pattern"):
        HostPatterns([pattern])


def test_string_instead_of_sequence_is_refused():
    with pytest.raises(ImproperlyConfigured, match=r"\['example.com'\]"):
        HostPatterns("example.com")


def test_split_then_allow_round_trip():
    parsed = split_host("API.Example.com:8443")
    assert parsed is not None
    host, port = parsed
    assert port == 8443
    assert host_allowed(host, [".example.com"])
