"""The generated project in headless Chromium (Debian's ``chromium``, driven by Playwright).

Skipped, with the reason, when Chromium or the ``playwright`` package is
missing, unless ``COVET_TEST_REQUIRE_ALL=1`` (then it fails instead).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.cli.conftest import (
    free_port,
    run_covet,
    start_covet,
    stop_server,
    wait_for_server,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing() -> str | None:
    if not Path(CHROMIUM).is_file():
        return "Chromium is not installed (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install playwright)"
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("COVET_TEST_REQUIRE_ALL") == "1":
            pytest.fail(f"{reason}, and COVET_TEST_REQUIRE_ALL=1 requires the browser test")
        pytest.skip(reason)
    where = tmp_path_factory.mktemp("browser")
    assert run_covet("new", "webdemo", cwd=where).returncode == 0
    root = where / "webdemo"
    migrated = run_covet("migrate", cwd=root)
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    process = start_covet("run", "--port", str(port), cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(f"{base}/", process)
        yield base
    finally:
        code, _, err = stop_server(process, signal.SIGTERM)
        assert code == 0, err


def test_list_page_form_and_stylesheet_in_chromium(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            page = context.new_page()
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            page.on("pageerror", lambda error: problems.append(str(error)))
            response = page.goto(f"{server}/")
            assert response is not None
            assert response.status == 200
            # The stylesheet loaded and applies: the header has its accent colour.
            colour = page.eval_on_selector("header", "e => getComputedStyle(e).backgroundColor")
            assert colour == "rgb(47, 111, 79)"
            assert "No notes yet" in page.content()

            page.fill("#title", "From the browser")
            page.fill("#body", "typed in Chromium")
            with page.expect_navigation():
                page.click("form.note-form button[type=submit]")
            assert "/notes/" in page.url
            assert page.text_content("h1") == "From the browser"

            page.goto(f"{server}/")
            assert page.text_content(".notes li a") == "From the browser"

            # An invalid form is shown again with its error message.
            page.fill("#title", "   ")
            with page.expect_navigation():
                page.click("form.note-form button[type=submit]")
            assert page.text_content(".error") == "This field is required."

            # Sign up from the header link: the layout then shows who is logged in.
            page.goto(f"{server}/")
            with page.expect_navigation():
                page.click("header a[href$='/signup']")
            page.fill("#email", "browser@example.com")
            page.fill("#password", "a long and fine password")
            page.fill("#password_confirmation", "a long and fine password")
            with page.expect_navigation():
                page.click("form.account-form button[type=submit]")
            assert page.text_content("header .current-user") == "browser@example.com"
            with page.expect_navigation():
                page.click("header form.logout button")
            assert page.query_selector("header .current-user") is None
            assert page.query_selector("header a[href$='/login']") is not None
        finally:
            context.close()
    # The 422 of the invalid form is reported by Chromium as a failed resource load.
    unexpected = [p for p in problems if "422" not in p]
    assert unexpected == []


def test_missing_page_is_the_styled_404_in_chromium(server: str, tmp_path: Path) -> None:
    import httpx
    from playwright.sync_api import sync_playwright

    missing = f"{server}/no/such/page"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            page = context.new_page()
            response = page.goto(missing)
            assert response is not None
            assert response.status == 404
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            # The project's errors/404.html: a heading inside the site's layout...
            assert page.text_content("main h1") == "Not Found"
            assert page.title() == "Not Found · webdemo"
            assert page.query_selector("header a[href$='/login']") is not None
            # ...styled by the site's stylesheet (the header's accent colour).
            colour = page.eval_on_selector("header", "e => getComputedStyle(e).backgroundColor")
            assert colour == "rgb(47, 111, 79)"
            assert "Traceback" not in page.content()
            # Its link leads back to the site.
            with page.expect_navigation():
                page.click("main a")
            assert page.url == f"{server}/"
        finally:
            context.close()

    # curl and other clients that accept anything get plain text; API clients get JSON.
    plain = httpx.get(missing, headers={"Accept": "*/*"})
    assert plain.status_code == 404
    assert plain.headers["content-type"] == "text/plain; charset=utf-8"
    assert plain.text == "Not Found"
    as_json = httpx.get(missing, headers={"Accept": "application/json"})
    assert (as_json.status_code, as_json.json()) == (404, {"detail": "Not Found"})
