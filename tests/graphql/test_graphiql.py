"""GraphiQL: served offline in debug, from installed assets, with no inline script."""

from __future__ import annotations

import re

from tests.graphql.conftest import client_for
from tests.graphql.example import make_app

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


async def test_debug_serves_graphiql_and_its_assets_locally() -> None:
    async with client_for(make_app(debug=True, csrf=True)) as client:
        page = await client.get("/graphql", headers={"accept": BROWSER})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources, page.text
        assert all(src.startswith("/graphql/_graphiql/") for src in sources)
        assert "<script>" not in page.text  # no inline script: a strict CSP holds
        assert re.search(r'data-csrf-token="[^"]{20,}"', page.text)
        for src in sources:
            asset = await client.get(src)
            assert asset.status_code == 200, src
            assert len(asset.content) > 50


async def test_graphiql_is_off_outside_debug() -> None:
    async with client_for(make_app()) as client:
        page = await client.get("/graphql", headers={"accept": BROWSER})
        asset = await client.get("/graphql/_graphiql/graphiql.min.js")
    assert page.status_code == 400  # a GraphQL request without a query
    assert asset.status_code == 404


async def test_unknown_asset_is_404() -> None:
    async with client_for(make_app(debug=True)) as client:
        response = await client.get("/graphql/_graphiql/..%2Fsecret")
    assert response.status_code == 404
