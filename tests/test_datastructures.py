"""Tests for covet.datastructures."""

from __future__ import annotations

import io
import tempfile
from typing import Any

import pytest

from covet.datastructures import (
    URL,
    Address,
    FormData,
    Headers,
    ImmutableMultiDict,
    MutableHeaders,
    QueryParams,
    State,
    UploadFile,
)

# --- URL ----------------------------------------------------------------------------------------


def test_url_components() -> None:
    url = URL("https://user:pw@Example.COM:8443/a/b?x=1&y=2#frag")
    assert url.scheme == "https"
    assert url.netloc == "user:pw@Example.COM:8443"
    assert url.hostname == "example.com"
    assert url.port == 8443
    assert url.username == "user"
    assert url.password == "pw"
    assert url.path == "/a/b"
    assert url.query == "x=1&y=2"
    assert url.fragment == "frag"
    assert url.is_secure
    assert not URL("http://a/").is_secure
    assert URL("wss://a/").is_secure


def test_url_is_str_like() -> None:
    url = URL("http://a/b")
    assert str(url) == "http://a/b"
    assert url == "http://a/b"
    assert url == URL("http://a/b")
    assert url != URL("http://a/c")
    assert url != 3
    assert hash(url) == hash(URL("http://a/b"))
    assert repr(url) == "URL('http://a/b')"
    assert f"{url}" == "http://a/b"


def test_url_from_scope() -> None:
    scope: dict[str, Any] = {
        "type": "http",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "path": "/app/x",
        "root_path": "/app",
        "query_string": b"q=caf\xc3\xa9",
        "headers": [(b"host", b"example.org")],
    }
    assert str(URL(scope=scope)) == "http://example.org/app/x?q=caf%C3%A9"
    scope["headers"] = [(b"host", b"")]
    assert str(URL(scope=scope)) == "http://127.0.0.1/app/x?q=caf%C3%A9"
    with pytest.raises(ValueError, match="only one"):
        URL("http://a/", scope=scope)


def test_url_replace() -> None:
    url = URL("http://user@example.com:8000/a?b=1#c")
    assert url.replace(scheme="https") == "https://user@example.com:8000/a?b=1#c"
    assert url.replace(path="/z", query="", fragment="") == "http://user@example.com:8000/z"
    assert url.replace(port=None) == "http://user@example.com/a?b=1#c"
    assert url.replace(port=9) == "http://user@example.com:9/a?b=1#c"
    assert url.replace(hostname="other.org") == "http://user@other.org:8000/a?b=1#c"
    assert url.replace(username=None) == "http://example.com:8000/a?b=1#c"
    assert url.replace(password="pw") == "http://user:pw@example.com:8000/a?b=1#c"
    assert url.replace(netloc="n.org") == "http://n.org/a?b=1#c"
    assert URL("http://[::1]:80/").replace(port=81) == "http://[::1]:81/"
    assert URL("http://a/").replace(hostname="::1") == "http://[::1]/"


def test_url_query_param_helpers() -> None:
    url = URL("http://a/p?x=1&y=2&x=3")
    assert url.include_query_params(x=9, z="w") == "http://a/p?y=2&x=9&z=w"
    assert url.replace_query_params(k="v v") == "http://a/p?k=v+v"
    assert url.remove_query_params("x") == "http://a/p?y=2"
    assert url.remove_query_params("x", "y") == "http://a/p"


# --- multidicts ---------------------------------------------------------------------------------


def test_immutable_multidict() -> None:
    d = ImmutableMultiDict([("a", 1), ("b", 2), ("a", 3)])
    assert d["a"] == 3
    assert d.get("a") == 3
    assert d.getlist("a") == [1, 3]
    assert d.getlist("missing") == []
    assert d.multi_items() == [("a", 1), ("b", 2), ("a", 3)]
    assert list(d) == ["a", "b"]
    assert list(d.items()) == [("a", 3), ("b", 2)]
    assert len(d) == 2
    assert "b" in d
    assert "c" not in d
    assert d == ImmutableMultiDict([("b", 2), ("a", 1), ("a", 3)])
    assert d != ImmutableMultiDict([("a", 3), ("b", 2), ("a", 1)])
    assert d != ImmutableMultiDict([("a", 1)])
    assert ImmutableMultiDict({"k": "v"}).multi_items() == [("k", "v")]
    assert ImmutableMultiDict(d).multi_items() == d.multi_items()
    assert len(ImmutableMultiDict()) == 0
    assert repr(ImmutableMultiDict([("a", 1)])) == "ImmutableMultiDict([('a', 1)])"
    with pytest.raises(KeyError):
        d["missing"]


def test_query_params() -> None:
    params = QueryParams("a=1&a=2&b=&c=x%20y+z")
    assert params.getlist("a") == ["1", "2"]
    assert params["b"] == ""
    assert params["c"] == "x y z"
    assert str(params) == "a=1&a=2&b=&c=x+y+z"
    assert QueryParams(b"k=%FF").get("k") == "\ufffd"  # undecodable bytes never fail
    assert QueryParams([("a", "1")])["a"] == "1"
    assert QueryParams({"a": "1"})["a"] == "1"
    assert len(QueryParams()) == 0
    assert len(QueryParams("")) == 0


async def test_form_data_close_closes_uploads() -> None:
    upload = UploadFile(io.BytesIO(b"data"), filename="f.txt")
    form = FormData([("name", "x"), ("file", upload)])
    assert form["name"] == "x"
    assert form["file"] is upload
    await form.close()
    assert upload.file.closed


# --- headers ------------------------------------------------------------------------------------


def test_headers_from_raw_scope_and_mapping() -> None:
    raw = [(b"content-type", b"text/html"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
    headers = Headers(raw=raw)
    assert headers["Content-Type"] == "text/html"
    assert headers.get("SET-COOKIE") == "a=1"
    assert headers.getlist("set-cookie") == ["a=1", "b=2"]
    assert headers.get("missing") is None
    assert headers.get("missing", "d") == "d"
    assert "content-TYPE" in headers
    not_a_name: object = 3
    assert not_a_name not in headers
    assert headers.keys() == ["content-type", "set-cookie", "set-cookie"]
    assert headers.values() == ["text/html", "a=1", "b=2"]
    assert headers.items()[1] == ("set-cookie", "a=1")
    assert list(headers) == headers.keys()
    assert len(headers) == 3
    assert headers.raw is raw
    with pytest.raises(KeyError):
        headers["missing"]

    scope: dict[str, Any] = {"headers": ((b"x-a", b"1"),)}
    from_scope = Headers(scope=scope)
    assert from_scope["x-a"] == "1"
    assert scope["headers"] is from_scope.raw  # normalised to a shared list

    mapped = Headers({"X-Custom": "v"})
    assert mapped.raw == [(b"x-custom", b"v")]
    assert Headers(headers={"A": "b"}) == Headers(raw=[(b"a", b"b")])
    assert Headers() == Headers(raw=[])
    assert Headers() != {"a": "b"}
    assert repr(Headers({"a": "b"})) == "Headers([('a', 'b')])"


def test_headers_lowercase_raw_names_and_reject_two_sources() -> None:
    raw = [(b"Content-Type", b"a"), (b"x-1", b"b")]
    headers = Headers(raw=raw)
    assert raw[0] == (b"content-type", b"a")
    assert headers["content-type"] == "a"
    with pytest.raises(ValueError, match="only one"):
        Headers(raw=[], scope={"headers": []})
    with pytest.raises(ValueError, match="two mappings"):
        Headers({"a": "b"}, headers={"c": "d"})


def test_headers_decode_latin1() -> None:
    headers = Headers(raw=[(b"x-name", "café".encode("latin-1"))])
    assert headers["x-name"] == "café"


def test_mutable_headers() -> None:
    headers = MutableHeaders(raw=[(b"a", b"1"), (b"b", b"2"), (b"a", b"3")])
    headers["A"] = "x"
    assert headers.raw == [(b"a", b"x"), (b"b", b"2")]
    headers["new"] = "n"
    assert headers.raw[-1] == (b"new", b"n")
    headers.append("Set-Cookie", "s=1")
    headers.append("set-cookie", "t=2")
    assert headers.getlist("set-cookie") == ["s=1", "t=2"]
    del headers["SET-COOKIE"]
    assert "set-cookie" not in headers
    del headers["absent"]  # removing an absent header is a no-op
    assert headers.setdefault("b", "zzz") == "2"
    assert headers.setdefault("c", "3") == "3"
    headers.update({"b": "20"}, d="4")
    assert headers["b"] == "20"
    assert headers["d"] == "4"
    headers.update()
    assert headers.getlist("b") == ["20"]


def test_mutable_headers_edit_the_shared_scope_list() -> None:
    scope: dict[str, Any] = {"headers": [(b"host", b"a")]}
    MutableHeaders(scope=scope)["x-request-id"] = "42"
    assert scope["headers"] == [(b"host", b"a"), (b"x-request-id", b"42")]
    copy = Headers(scope=scope).mutablecopy()
    copy["host"] = "b"
    assert scope["headers"][0] == (b"host", b"a")


def test_mutable_headers_refuse_injection() -> None:
    headers = MutableHeaders()
    with pytest.raises(ValueError, match="CR, LF and NUL"):
        headers["x"] = "a\r\nSet-Cookie: evil=1"
    with pytest.raises(ValueError, match="CR, LF and NUL"):
        headers.append("x", "a\x00")
    with pytest.raises(ValueError, match="Invalid header name"):
        headers["bad name"] = "v"
    with pytest.raises(ValueError, match="Invalid header name"):
        headers["x:y"] = "v"
    with pytest.raises(ValueError, match="not latin-1"):
        headers["x"] = "\u2713"
    assert headers.raw == []


def test_add_vary_header() -> None:
    headers = MutableHeaders()
    headers.add_vary_header("Accept-Encoding")
    assert headers["vary"] == "Accept-Encoding"
    headers.add_vary_header("Origin, accept-encoding")
    assert headers["vary"] == "Accept-Encoding, Origin"
    headers.add_vary_header(" , ")
    assert headers["vary"] == "Accept-Encoding, Origin"
    empty = MutableHeaders()
    empty.add_vary_header("")
    assert "vary" not in empty


# --- uploads ------------------------------------------------------------------------------------


async def test_upload_file_in_memory() -> None:
    upload = UploadFile(
        io.BytesIO(), size=0, filename="a.txt", headers=Headers({"Content-Type": "text/plain"})
    )
    assert upload.content_type == "text/plain"
    assert upload._in_memory
    await upload.write(b"hello ")
    await upload.write(b"world")
    assert upload.size == 11
    await upload.seek(0)
    assert await upload.read(5) == b"hello"
    assert await upload.read() == b" world"
    assert "a.txt" in repr(upload)
    await upload.close()
    assert upload.file.closed
    assert UploadFile(io.BytesIO()).content_type is None


async def test_upload_file_rolls_to_disk_in_a_thread() -> None:
    def rolled(upload: UploadFile) -> bool:
        return not upload._in_memory

    with tempfile.SpooledTemporaryFile(max_size=8) as spool:
        upload = UploadFile(spool, size=0)  # type: ignore[arg-type]
        await upload.write(b"1234")
        assert not rolled(upload)
        assert not upload._will_roll(4)
        assert upload._will_roll(5)
        await upload.write(b"56789")
        assert rolled(upload)
        await upload.write(b"more")  # on disk: through a worker thread
        await upload.seek(0)
        assert await upload.read() == b"123456789more"
        assert upload.size == 13
        await upload.close()
        assert spool.closed


async def test_upload_file_on_a_real_file(tmp_path: Any) -> None:
    path = tmp_path / "f.bin"
    with path.open("w+b") as handle:
        upload = UploadFile(handle)
        assert not upload._in_memory
        await upload.write(b"disk")
        assert upload.size is None
        await upload.seek(0)
        assert await upload.read() == b"disk"
        await upload.close()
    assert path.read_bytes() == b"disk"


# --- state and address --------------------------------------------------------------------------


def test_state() -> None:
    backing: dict[str, Any] = {}
    state = State(backing)
    state.db = "pool"
    assert state.db == "pool"
    assert backing == {"db": "pool"}
    assert "db" in state
    assert repr(state) == "State({'db': 'pool'})"
    del state.db
    assert "db" not in state
    with pytest.raises(AttributeError, match="State has no attribute 'db'"):
        _ = state.db
    with pytest.raises(AttributeError, match="to delete"):
        del state.db
    assert getattr(State(), "x", None) is None


def test_address() -> None:
    address = Address("10.0.0.1", 5000)
    host, port = address
    assert (host, port) == ("10.0.0.1", 5000)
    assert address.host == "10.0.0.1"
    assert address.port == 5000
