from __future__ import annotations

import email.utils
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from covet import Covet
from covet.exceptions import ImproperlyConfigured
from covet.responses import PlainTextResponse
from covet.staticfiles import StaticFiles
from covet.testing import TestClient
from tests.test_responses import Result, call_asgi

if TYPE_CHECKING:
    from collections.abc import Sequence


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A served directory plus a secret file next to (outside) it."""
    root = tmp_path / "static"
    root.mkdir()
    (root / "app.js").write_text("console.log(1);")
    (root / "style.css").write_text("body{}")
    (root / "logo.svg").write_text("<svg/>")
    (root / "font.woff2").write_bytes(b"wOF2")
    (root / "module.wasm").write_bytes(b"\0asm")
    (root / "data.json").write_text("{}")
    (root / "blob.unknownext").write_bytes(b"?")
    (root / "page.html").write_text("<p>page</p>")
    (root / "sub").mkdir()
    (root / "sub" / "deep.txt").write_text("deep")
    (root / "docs").mkdir()
    (root / "docs" / "index.html").write_text("<p>docs index</p>")
    (tmp_path / "secret.txt").write_text("top secret")
    return root


async def get(
    app: StaticFiles,
    path: str,
    *,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    scope: dict[str, Any] | None = None,
) -> Result:
    """Request ``/static<path>`` from ``app`` mounted at ``/static``, with a raw scope."""
    full = "/static" + path
    extra = {"root_path": "/static", "raw_path": full.encode("latin-1", "replace")}
    extra.update(scope or {})
    return await call_asgi(app, method=method, path=full, headers=headers, scope=extra)


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("logo.svg", "image/svg+xml"),
        ("font.woff2", "font/woff2"),
        ("module.wasm", "application/wasm"),
        ("data.json", "application/json"),
        ("page.html", "text/html; charset=utf-8"),
        ("blob.unknownext", "application/octet-stream"),
    ],
)
async def test_content_types(site: Path, name: str, content_type: str) -> None:
    result = await get(StaticFiles(directory=site), "/" + name)
    assert result.status == 200
    assert result.header("content-type") == content_type
    assert result.body == (site / name).read_bytes()


async def test_headers_and_cache_control(site: Path) -> None:
    result = await get(StaticFiles(directory=site), "/sub/deep.txt")
    assert result.body == b"deep"
    assert result.header("cache-control") == "public, max-age=3600"
    assert result.header("etag")
    assert result.header("last-modified")
    assert result.header("accept-ranges") == "bytes"
    custom = await get(StaticFiles(directory=site, cache_max_age=60), "/sub/deep.txt")
    assert custom.header("cache-control") == "public, max-age=60"
    none = await get(StaticFiles(directory=site, cache_max_age=None), "/sub/deep.txt")
    assert none.header("cache-control") is None


async def test_not_modified_and_ranges(site: Path) -> None:
    app = StaticFiles(directory=site)
    first = await get(app, "/app.js")
    etag = first.header("etag")
    assert etag is not None
    cached = await get(app, "/app.js", headers=[("If-None-Match", etag)])
    assert cached.status == 304
    assert cached.body == b""
    assert cached.header("cache-control") == "public, max-age=3600"
    mtime = (site / "app.js").stat().st_mtime
    since = email.utils.formatdate(mtime + 5, usegmt=True)
    assert (await get(app, "/app.js", headers=[("If-Modified-Since", since)])).status == 304
    ranged = await get(app, "/app.js", headers=[("Range", "bytes=0-6")])
    assert ranged.status == 206
    assert ranged.body == b"console"


async def test_head(site: Path) -> None:
    result = await get(StaticFiles(directory=site), "/style.css", method="HEAD")
    assert result.status == 200
    assert result.body == b""
    assert result.header("content-length") == "6"


async def test_method_not_allowed(site: Path) -> None:
    result = await get(StaticFiles(directory=site), "/app.js", method="POST")
    assert result.status == 405
    assert result.header("allow") == "GET, HEAD"


async def test_missing_file_and_directory_are_404(site: Path) -> None:
    app = StaticFiles(directory=site)
    for path in ("/nope.txt", "/sub", "/sub/", "", "/", "/app.js/extra"):
        result = await get(app, path)
        assert result.status == 404, path
        assert result.body == b"Not Found"


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/..\\secret.txt",
        "/sub\\..\\..\\secret.txt",
        "/secret.txt\x00.js",
        "//etc/passwd",
        "/" + "a" * 5000,
    ],
)
async def test_traversal_attempts_are_404(site: Path, path: str) -> None:
    result = await get(StaticFiles(directory=site), path)
    assert result.status == 404
    assert b"secret" not in result.body


async def test_decoded_traversal_in_scope_is_404(site: Path) -> None:
    # A server decodes %2e%2e and %2f before the app sees scope["path"].
    app = StaticFiles(directory=site)
    for decoded in ("/static/../secret.txt", "/static/sub/../../secret.txt"):
        result = await call_asgi(app, path=decoded, scope={"root_path": "/static"})
        assert result.status == 404
    absolute = await call_asgi(app, path=str(site.parent / "secret.txt"))
    assert absolute.status == 404


async def test_symlink_outside_is_404_unless_followed(site: Path) -> None:
    (site / "link.txt").symlink_to(site.parent / "secret.txt")
    (site / "up").symlink_to(site.parent)
    (site / "inside.txt").symlink_to(site / "sub" / "deep.txt")
    strict = StaticFiles(directory=site)
    assert (await get(strict, "/link.txt")).status == 404
    assert (await get(strict, "/up/secret.txt")).status == 404
    inside = await get(strict, "/inside.txt")
    assert inside.status == 200
    assert inside.body == b"deep"
    relaxed = StaticFiles(directory=site, follow_symlink=True)
    assert (await get(relaxed, "/link.txt")).body == b"top secret"


async def test_html_mode(site: Path) -> None:
    app = StaticFiles(directory=site, html=True)
    index = await get(app, "/docs/")
    assert index.status == 200
    assert index.body == b"<p>docs index</p>"
    redirect = await get(app, "/docs", scope={"query_string": b"a=1"})
    assert redirect.status == 307
    assert redirect.header("location") == "http://testserver/static/docs/?a=1"
    # No 404.html yet: plain 404.
    assert (await get(app, "/missing")).status == 404
    (site / "404.html").write_text("<p>custom missing</p>")
    missing = await get(app, "/missing")
    assert missing.status == 404
    assert missing.body == b"<p>custom missing</p>"
    assert missing.header("content-type") == "text/html; charset=utf-8"
    # Conditional headers do not turn a 404 page into a 304.
    etag = missing.header("etag")
    assert etag is not None
    again = await get(app, "/missing", headers=[("If-None-Match", etag)])
    assert again.status == 404


async def test_html_root_index(site: Path) -> None:
    (site / "index.html").write_text("<p>home</p>")
    app = StaticFiles(directory=site, html=True)
    assert (await get(app, "/")).body == b"<p>home</p>"
    root = await get(app, "")
    assert root.status == 307
    assert root.header("location") == "http://testserver/static/"


async def test_file_vanishing_after_lookup_is_404(site: Path) -> None:
    app = StaticFiles(directory=site)
    original = app.file_response

    def vanish(full_path: str, stat_result: os.stat_result) -> Any:
        Path(full_path).unlink()
        return original(full_path, stat_result)

    app.file_response = vanish  # type: ignore[method-assign]
    assert (await get(app, "/app.js")).status == 404


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"covet_static_pkg_{os.getpid()}"
    pkg = tmp_path / "pkgs" / name
    (pkg / "statics" / "css").mkdir(parents=True)
    (pkg / "assets").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "statics" / "css" / "pkg.css").write_text("from package")
    (pkg / "assets" / "other.txt").write_text("other dir")
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    return name


async def test_packages(site: Path, package: str) -> None:
    app = StaticFiles(directory=site, packages=[package, (package, "assets")])
    assert (await get(app, "/css/pkg.css")).body == b"from package"
    assert (await get(app, "/other.txt")).body == b"other dir"
    assert (await get(app, "/app.js")).status == 200
    assert (await get(app, "/../__init__.py")).status == 404
    only_package = StaticFiles(packages=[package])
    assert (await get(only_package, "/css/pkg.css")).status == 200


def test_configuration_errors(tmp_path: Path, package: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="needs a directory or packages"):
        StaticFiles()
    with pytest.raises(ImproperlyConfigured, match="does not exist"):
        StaticFiles(directory=tmp_path / "missing")
    StaticFiles(directory=tmp_path / "missing", check_dir=False)
    with pytest.raises(ImproperlyConfigured, match="could not find the package"):
        StaticFiles(packages=["no_such_package_anywhere_xyz"])
    with pytest.raises(ImproperlyConfigured, match="has no 'nothere' directory"):
        StaticFiles(packages=[(package, "nothere")])


async def test_unchecked_missing_directory_serves_404(tmp_path: Path) -> None:
    app = StaticFiles(directory=tmp_path / "later", check_dir=False)
    assert (await get(app, "/x.txt")).status == 404
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "x.txt").write_text("now")
    assert (await get(app, "/x.txt")).body == b"now"


def test_mounted_in_app(site: Path) -> None:
    app = Covet()
    app.mount("/static", StaticFiles(directory=site), name="static")

    @app.exception_handler(404)
    async def not_found(request: Any, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("custom 404", status_code=404)

    with TestClient(app) as client:
        response = client.get("/static/sub/deep.txt")
        assert response.status_code == 200
        assert response.text == "deep"
        assert response.headers["cache-control"] == "public, max-age=3600"
        assert client.get("/static/nope.txt").text == "custom 404"
        assert client.head("/static/app.js").headers["content-length"] == "15"
        assert client.post("/static/app.js").status_code == 405
        assert app.url_path_for("static", path="/app.js") == "/static/app.js"
