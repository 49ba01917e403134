"""The generated project in headless Chromium (Debian's ``chromium``, driven by Playwright).

Skipped, with the reason, when Chromium or the ``playwright`` package is
missing, unless ``COVET_TEST_REQUIRE_ALL=1`` (then it fails instead).
"""

from __future__ import annotations

import contextlib
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
    from collections.abc import Callable, Iterator

    from playwright.sync_api import Page

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


def require_browser() -> None:
    """Skip when Chromium or playwright is missing; fail instead under COVET_TEST_REQUIRE_ALL=1."""
    reason = _missing()
    if reason is not None:
        if os.environ.get("COVET_TEST_REQUIRE_ALL") == "1":
            pytest.fail(f"{reason}, and COVET_TEST_REQUIRE_ALL=1 requires the browser test")
        pytest.skip(reason)


@contextlib.contextmanager
def serve_new_project(
    where: Path,
    name: str,
    prepare: Callable[[Path], None] | None = None,
    server: str = "uvicorn",
) -> Iterator[str]:
    """Scaffold ``name`` in ``where``, migrate it, ``prepare(root)``, serve it; yield its URL.

    The server is ``covet run --server SERVER`` on a free port, stopped with SIGTERM at
    the end (it must exit cleanly).
    """
    assert run_covet("new", name, cwd=where).returncode == 0
    root = where / name
    migrated = run_covet("migrate", cwd=root)
    assert migrated.returncode == 0, migrated.stderr
    if prepare is not None:
        prepare(root)
    port = free_port()
    process = start_covet("run", "--port", str(port), "--server", server, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(f"{base}/", process)
        yield base
    finally:
        code, _, err = stop_server(process, signal.SIGTERM)
        assert code == 0, err


@pytest.fixture(scope="module", params=["uvicorn", "granian"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The scaffold served by each server `covet run` offers; yields its base URL."""
    require_browser()
    where = tmp_path_factory.mktemp("browser")
    with serve_new_project(where, "webdemo", server=request.param) as base:
        yield base


@contextlib.contextmanager
def chromium_page(tmp_path: Path) -> Iterator[tuple[Page, list[str]]]:
    """Open a page in headless Chromium; yield it with the console errors it reports."""
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
            yield page, problems
        finally:
            context.close()


def test_list_page_form_and_stylesheet_in_chromium(server: str, tmp_path: Path) -> None:
    with chromium_page(tmp_path) as (page, problems):
        response = page.goto(f"{server}/")
        assert response is not None
        assert response.status == 200
        # The stylesheet loaded and applies: the header has its accent colour.
        colour = page.eval_on_selector("header", "e => getComputedStyle(e).backgroundColor")
        assert colour == "rgb(47, 111, 79)"
        assert "to write notes" in page.content()

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

        with page.expect_navigation():
            page.click("header form.logout button")
        assert page.query_selector("header .current-user") is None
        assert page.query_selector("header a[href$='/login']") is not None
    # The 422 of the invalid form is reported by Chromium as a failed resource load.
    unexpected = [p for p in problems if "422" not in p]
    assert unexpected == []


def _sign_up(page: Page, server: str, email: str) -> None:
    page.goto(f"{server}/signup")
    page.fill("#email", email)
    page.fill("#password", "a long and fine password")
    page.fill("#password_confirmation", "a long and fine password")
    with page.expect_navigation():
        page.click("form.account-form button[type=submit]")
    assert page.text_content("header .current-user") == email


def test_notes_of_a_user_in_chromium(server: str, tmp_path: Path) -> None:
    with chromium_page(tmp_path) as (page, problems):
        _sign_up(page, server, "writer@example.com")

        # A multi-line body with HTML in it: shown as text, line breaks kept.
        body = "First line\nSecond line with <b>tags</b>\n<script>document.title='x'</script>"
        page.fill("#title", "Lines")
        page.fill("#body", body)
        with page.expect_navigation():
            page.click("form.note-form button[type=submit]")
        note_url = page.url
        shown = page.locator(".note-body")
        assert shown.inner_text() == body
        assert page.locator(".note-body b").count() == 0
        assert page.locator(".note-body script").count() == 0
        line_height = shown.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
        box = shown.bounding_box()
        assert box is not None
        assert box["height"] >= 3 * line_height - 1  # three lines, not one

        # Edit: an empty title is refused and the typed values stay; then it is saved.
        with page.expect_navigation():
            page.click("a.button:text('Edit')")
        assert page.input_value("#title") == "Lines"
        assert page.input_value("#body") == body
        page.fill("#title", "")
        page.fill("#body", "Edited body\nstill two lines")
        with page.expect_navigation():
            page.click("form.note-form button[type=submit]")
        assert page.text_content(".error") == "This field is required."
        assert page.input_value("#body") == "Edited body\nstill two lines"
        page.fill("#title", "Edited")
        with page.expect_navigation():
            page.click("form.note-form button[type=submit]")
        assert page.url == note_url
        assert page.text_content("h1") == "Edited"
        assert page.locator(".note-body").inner_text() == "Edited body\nstill two lines"

        # 21 more notes, made through the JSON API as a page script would (with the
        # CSRF token of the page); then the list has two pages.
        statuses = page.evaluate(
            """async () => {
                const token = document.querySelector('meta[name=csrf-token]').content;
                const statuses = [];
                for (let n = 1; n <= 21; n++) {
                    const response = await fetch('/api/notes', {
                        method: 'POST',
                        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token},
                        body: JSON.stringify({title: `Bulk ${String(n).padStart(2, '0')}`}),
                    });
                    statuses.push(response.status);
                }
                return statuses;
            }"""
        )
        assert statuses == [201] * 21
        page.goto(f"{server}/")
        assert page.locator(".notes li").count() == 20
        assert page.text_content(".notes li a") == "Bulk 21"
        assert page.locator(".pagination").inner_text().count("Page 1 of 2") == 1
        with page.expect_navigation():
            page.click(".pagination a[rel=next]")
        assert page.url == f"{server}/?page=2"
        assert page.locator(".notes li a").all_text_contents() == ["Bulk 01", "Edited"]
        with page.expect_navigation():
            page.click(".pagination a[rel=prev]")
        assert page.locator(".notes li").count() == 20

        # Delete asks first, on a page of its own; cancelling keeps the note.
        page.goto(note_url)
        with page.expect_navigation():
            page.click("a.button.danger")
        assert page.text_content("h1") == "Delete this note?"
        with page.expect_navigation():
            page.click("form.confirm-delete a")
        assert page.url == note_url

        # Another user can neither see, edit nor delete the note.
        with page.expect_navigation():
            page.click("header form.logout button")
        _sign_up(page, server, "other@example.com")
        for path in ["", "/edit", "/delete"]:
            response = page.goto(note_url + path)
            assert response is not None
            assert response.status == 404, path
        page.goto(f"{server}/")  # a page with this user's CSRF token
        refused = page.evaluate(
            """async (url) => {
                const form = new FormData();
                const meta = document.querySelector('meta[name=csrf-token]');
                form.append('csrf_token', meta.content);
                return (await fetch(url, {method: 'POST', body: form})).status;
            }""",
            f"{note_url}/delete",
        )
        assert refused == 404

        # Back as the author: delete, confirmed.
        page.goto(f"{server}/")
        with page.expect_navigation():
            page.click("header form.logout button")
        page.goto(f"{server}/login")
        page.fill("#email", "writer@example.com")
        page.fill("#password", "a long and fine password")
        with page.expect_navigation():
            page.click("form.account-form button[type=submit]")
        page.goto(f"{note_url}/delete")
        with page.expect_navigation():
            page.click("form.confirm-delete button[type=submit]")
        assert page.url == f"{server}/"
        assert "Edited" not in page.locator(".notes").inner_text()
        response = page.goto(note_url)
        assert response is not None
        assert response.status == 404
    # Chromium reports the 404 and 422 answers as failed resource loads.
    unexpected = [p for p in problems if "404" not in p and "422" not in p]
    assert unexpected == []


def test_missing_page_is_the_styled_404_in_chromium(server: str, tmp_path: Path) -> None:
    import httpx

    missing = f"{server}/no/such/page"
    with chromium_page(tmp_path) as (page, _problems):
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

    # curl and other clients that accept anything get plain text; API clients get JSON.
    plain = httpx.get(missing, headers={"Accept": "*/*"})
    assert plain.status_code == 404
    assert plain.headers["content-type"] == "text/plain; charset=utf-8"
    assert plain.text == "Not Found"
    as_json = httpx.get(missing, headers={"Accept": "application/json"})
    assert (as_json.status_code, as_json.json()) == (404, {"detail": "Not Found"})
