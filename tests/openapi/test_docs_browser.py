"""``/docs`` in headless Chromium with every request off localhost blocked: the UI still renders.

Skipped, with the reason, when Chromium or playwright is missing, unless
``COVET_TEST_REQUIRE_ALL=1`` (then it fails).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import uvicorn

from tests.cli.conftest import free_port
from tests.cli.test_browser import chromium_page, require_browser
from tests.openapi.example import app

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from playwright.sync_api import Route

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    require_browser()
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(10)


def test_docs_render_offline(server: str, tmp_path: Path) -> None:
    blocked: list[str] = []
    served: list[str] = []

    def only_localhost(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in ("127.0.0.1", "localhost"):
            served.append(url)
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    with chromium_page(tmp_path) as (page, problems):
        page.context.route("**/*", only_localhost)
        response = page.goto(f"{server}/docs")
        assert response is not None
        assert response.status == 200
        # Swagger UI fetched the document and drew one block per operation.
        page.wait_for_selector(".opblock-summary-path", timeout=15_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/items/{item_id}" in path.replace("\u200b", "") for path in paths)
        assert page.locator(".info .title").inner_text().startswith("Example shop")
        # Opening an operation shows its parameters and the 422 response.
        page.click("#operations-items-read_item .opblock-summary")
        page.wait_for_selector("#operations-items-read_item .parameters", timeout=5_000)
        assert "422" in page.locator("#operations-items-read_item").inner_text()
        # "Try it out" calls the API from the page (the CSP's connect-src 'self').
        block = page.locator("#operations-items-read_item")
        block.locator("button.try-out__btn").click()
        block.locator("input[placeholder='item_id']").fill("1")
        block.locator("button.execute").click()
        status = "#operations-items-read_item .live-responses-table tbody .response-col_status"
        page.wait_for_selector(status, timeout=5_000)
        assert page.locator(status).first.inner_text().strip() == "200"
        assert '"name": "pen"' in block.locator(".live-responses-table").inner_text()
    assert blocked == []  # nothing asked for a CDN, fonts or a validator
    assert any(url.endswith("/openapi.json") for url in served)
    assert problems == []  # no CSP violation, no script error
