from __future__ import annotations

import pytest

from covet import Covet, PlainTextResponse
from covet.exceptions import ImproperlyConfigured
from covet.middleware.security import DEFAULT_CSP, SecurityHeadersMiddleware
from covet.testing import TestClient


async def noop_app(scope, receive, send) -> None:
    return None


def make_app(**options) -> Covet:
    app = Covet(allowed_hosts=["testserver"])

    @app.get("/")
    async def index(request):
        return "hi"

    @app.get("/framed")
    async def framed(request):
        return PlainTextResponse(
            "embeddable",
            headers={"X-Frame-Options": "SAMEORIGIN", "Content-Security-Policy": "default-src *"},
        )

    app.add_middleware(SecurityHeadersMiddleware, **options)
    return app


def test_defaults_on_http_without_hsts():
    response = TestClient(make_app()).get("/")
    headers = response.headers
    assert headers["content-security-policy"] == DEFAULT_CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert "strict-transport-security" not in headers
    assert "permissions-policy" not in headers


def test_hsts_only_on_https():
    response = TestClient(make_app(), base_url="https://testserver").get("/")
    assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_hsts_options():
    app = make_app(hsts_include_subdomains=True, hsts_preload=True)
    response = TestClient(app, base_url="https://testserver").get("/")
    assert (
        response.headers["strict-transport-security"]
        == "max-age=31536000; includeSubDomains; preload"
    )


def test_response_headers_are_not_overwritten():
    response = TestClient(make_app()).get("/framed")
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert response.headers["content-security-policy"] == "default-src *"
    assert len(response.headers.get_list("x-frame-options")) == 1


def test_none_disables_a_header_and_permissions_policy_is_opt_in():
    app = make_app(
        content_security_policy=None,
        frame_options=None,
        referrer_policy=None,
        cross_origin_opener_policy=None,
        content_type_options=False,
        hsts_max_age=None,
        permissions_policy="geolocation=()",
    )
    headers = TestClient(app, base_url="https://testserver").get("/").headers
    for name in (
        "content-security-policy",
        "x-frame-options",
        "referrer-policy",
        "cross-origin-opener-policy",
        "x-content-type-options",
        "strict-transport-security",
    ):
        assert name not in headers
    assert headers["permissions-policy"] == "geolocation=()"


def test_error_responses_get_the_headers_too():
    response = TestClient(make_app()).get("/missing")
    assert response.status_code == 404
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    "options",
    [
        {"frame_options": "ALLOW-FROM x"},
        {"content_security_policy": "default-src 'self'\r\nSet-Cookie: x=1"},
        {"referrer_policy": ""},
        {"hsts_max_age": -1},
        {"hsts_preload": True},
        {"permissions_policy": "caméra=()"},
    ],
)
def test_invalid_options_are_refused(options):
    with pytest.raises(ImproperlyConfigured):
        SecurityHeadersMiddleware(noop_app, **options)
