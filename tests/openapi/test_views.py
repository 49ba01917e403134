"""``/openapi.json`` and ``/docs``: served by default, configurable, off with one setting."""

from covet import Covet, Request, Router
from covet.middleware import SecurityHeadersMiddleware
from covet.openapi import OpenAPIConfig
from covet.openapi.views import DOCS_CSP, SWAGGER_UI_VERSION
from covet.testing import TestClient


def _app(**options: object) -> Covet:
    app = Covet(allowed_hosts=["testserver"], **options)  # type: ignore[arg-type]

    @app.get("/hello")
    async def hello(request: Request) -> dict[str, str]:
        return {"hello": "world"}

    return app


def test_the_document_and_the_ui_are_served_by_default() -> None:
    app = _app()
    with TestClient(app) as client:
        response = client.get("/openapi.json")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == app.openapi()
        assert list(response.json()["paths"]) == ["/hello"]  # the docs routes are not in it
        page = client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["content-security-policy"] == DOCS_CSP
        assert 'data-openapi-url="/openapi.json"' in page.text
        assert f"/docs/assets/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}" in page.text
        assert "<script>" not in page.text  # no inline script: the CSP allows none


def test_the_csp_forbids_other_origins_and_inline_scripts() -> None:
    assert "script-src 'self';" in DOCS_CSP
    assert "default-src 'none'" in DOCS_CSP
    assert "connect-src 'self'" in DOCS_CSP
    assert "unsafe-eval" not in DOCS_CSP


def test_assets_are_shipped_and_cached_for_a_year() -> None:
    with TestClient(_app()) as client:
        for name, kind in (
            ("swagger-ui-bundle.js", "text/javascript"),
            ("swagger-ui.css", "text/css"),
            ("swagger-init.js", "text/javascript"),
        ):
            response = client.get(f"/docs/assets/{name}?v={SWAGGER_UI_VERSION}")
            assert response.status_code == 200, name
            assert response.headers["content-type"].startswith(kind)
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert len(response.content) > 100
        # Only the listed files: no licence text, source, or path tricks.
        for name in ("SWAGGER-UI-LICENSE", "views.py", "..%2Fviews.py", "x"):
            assert client.get(f"/docs/assets/{name}").status_code == 404


def test_the_licence_ships_beside_the_assets() -> None:
    from pathlib import Path

    import covet.openapi

    static = Path(covet.openapi.__file__).parent / "static"
    assert "Apache License" in (static / "SWAGGER-UI-LICENSE").read_text()
    assert "cdn" not in (static / "swagger-init.js").read_text().lower()


def test_one_setting_turns_both_off() -> None:
    app = _app(openapi=None)
    with TestClient(app) as client:
        assert client.get("/openapi.json").status_code == 404
        assert client.get("/docs").status_code == 404
    assert list(app.openapi()["paths"]) == ["/hello"]  # still available for export
    assert app.openapi()["info"]["title"] == "API"


def test_paths_and_metadata_are_configurable() -> None:
    config = OpenAPIConfig(
        title="Shop",
        version="3.1.4",
        summary="Buy things",
        path="/api/schema.json",
        docs_path="/api/reference",
        servers=[{"url": "https://api.example.com"}],
        contact={"name": "Ann"},
        license={"name": "MIT", "identifier": "MIT"},
        terms_of_service="https://example.com/terms",
    )
    with TestClient(_app(openapi=config)) as client:
        document = client.get("/api/schema.json").json()
        assert document["info"] == {
            "title": "Shop",
            "version": "3.1.4",
            "summary": "Buy things",
            "termsOfService": "https://example.com/terms",
            "contact": {"name": "Ann"},
            "license": {"name": "MIT", "identifier": "MIT"},
        }
        assert document["servers"] == [{"url": "https://api.example.com"}]
        page = client.get("/api/reference")
        assert 'data-openapi-url="/api/schema.json"' in page.text
        assert client.get("/api/reference/assets/swagger-init.js").status_code == 200
        assert client.get("/docs").status_code == 404


def test_the_document_alone_without_the_ui() -> None:
    with TestClient(_app(openapi=OpenAPIConfig(docs_path=None))) as client:
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/docs").status_code == 404


def test_the_apps_own_routes_win() -> None:
    app = Covet(allowed_hosts=["testserver"])

    @app.get("/docs/")
    async def docs(request: Request) -> str:
        return "our handbook"

    @app.get("/openapi.json")
    async def mine(request: Request) -> dict[str, str]:
        return {"mine": "yes"}

    with TestClient(app, follow_redirects=False) as client:
        assert client.get("/docs").status_code == 307  # the app's /docs/ keeps its redirect
        assert client.get("/docs/").text == "our handbook"
        assert client.get("/docs/assets/swagger-ui.css").status_code == 404
        assert client.get("/openapi.json").json() == {"mine": "yes"}


def test_under_a_root_path_the_page_and_document_name_it() -> None:
    with TestClient(_app(), root_path="/prefix") as client:
        page = client.get("/docs")
        assert 'data-openapi-url="/prefix/openapi.json"' in page.text
        assert 'href="/prefix/docs/assets/swagger-ui.css' in page.text
        assert client.get("/openapi.json").json()["servers"] == [{"url": "/prefix"}]


def test_a_mounted_app_serves_its_own_docs_below_the_mount() -> None:
    inner = _app()
    outer = Covet(allowed_hosts=["testserver"], openapi=None)
    outer.mount("/v2", inner)
    with TestClient(outer) as client:
        page = client.get("/v2/docs")
        assert page.status_code == 200
        assert 'data-openapi-url="/v2/openapi.json"' in page.text
        document = client.get("/v2/openapi.json").json()
        assert document["servers"] == [{"url": "/v2"}]
        assert list(document["paths"]) == ["/hello"]
        assert client.get("/v2/docs/assets/swagger-init.js").status_code == 200


def test_an_included_router_is_documented_under_its_prefix() -> None:
    api = Router(prefix="/api")

    @api.get("/items")
    async def items(request: Request) -> list[int]:
        return []

    app = _app()
    app.include_router(api)
    with TestClient(app) as client:
        assert sorted(client.get("/openapi.json").json()["paths"]) == ["/api/items", "/hello"]


def test_security_headers_middleware_keeps_the_docs_policy() -> None:
    app = _app()
    app.add_middleware(SecurityHeadersMiddleware)
    with TestClient(app) as client:
        assert client.get("/docs").headers["content-security-policy"] == DOCS_CSP
        assert client.get("/hello").headers["content-security-policy"] != DOCS_CSP
