"""The generated project's admin pages in headless Chromium (driven by Playwright).

A staff superuser made with ``covet createsuperuser`` logs in, creates notes,
edits one with a validation error, searches, filters, bulk-deletes with the
confirmation page, and reads the audit log. With ``COVET_ADMIN_SCREENSHOTS=DIR``
the pages are also saved as PNG files there (how docs/img/admin-*.png are made).

Skipped, with the reason, when Chromium or playwright is missing, unless
``COVET_TEST_REQUIRE_ALL=1`` (then it fails instead).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.cli.conftest import run_covet
from tests.cli.test_browser import chromium_page, require_browser, serve_new_project

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

EMAIL = "boss@example.com"
PASSWORD = "a long and unusual passphrase 42"


def _create_superuser(root: Path) -> None:
    made = run_covet(
        "createsuperuser", "--no-input", "--login", EMAIL, cwd=root,
        COVET_SUPERUSER_PASSWORD=PASSWORD,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_browser()
    where = tmp_path_factory.mktemp("adminbrowser")
    with serve_new_project(where, "admindemo", _create_superuser) as base:
        yield base


def _shot(page: Page, name: str) -> None:
    folder = os.environ.get("COVET_ADMIN_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"admin-{name}.png"), full_page=True)


def _submit(page: Page, selector: str = "form.model-form button[type=submit]") -> None:
    with page.expect_navigation():
        page.click(selector)


def _titles(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("table.rows tbody td:nth-child(2) a").all_inner_texts()]


def test_staff_workflow_in_chromium(server: str, tmp_path: Path) -> None:
    with chromium_page(tmp_path) as (page, problems):
        # Not logged in: the admin sends the browser to its login page.
        page.goto(f"{server}/admin/note")
        assert "/admin/login" in page.url
        page.fill("input[name=username]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        _shot(page, "login")
        _submit(page, "form.login button[type=submit]")
        assert page.url.endswith("/admin/note")

        # Create two notes; the author field suggests users through the lookup endpoint.
        for title in ("Alpha", "Beta"):
            page.goto(f"{server}/admin/note/add")
            page.fill("#id_title", title)
            with page.expect_response(lambda r: "/admin/user/lookup" in r.url):
                page.fill("#id_author", "boss")
            assert page.locator("#list_author option").first.get_attribute("label") == EMAIL
            page.fill("#id_author", "1")
            _submit(page)
            assert page.url.endswith("/admin/note")
            assert f"Added Note “{title}”." in str(page.text_content(".flash"))
        assert _titles(page) == ["Beta", "Alpha"]

        # Edit with a validation error, then fix it; move Beta back in time.
        page.click("text=Alpha")
        page.wait_for_url("**/change")
        page.fill("#id_title", "   ")
        _submit(page)
        assert page.text_content(".field-error") == "This field is required."
        _shot(page, "form-error")
        page.fill("#id_title", "Alpha 2")
        _submit(page)
        page.click("text=Beta")
        page.wait_for_url("**/change")
        page.fill("#id_created_at", "2020-01-02T03:04:05")
        _submit(page)
        assert _titles(page) == ["Alpha 2", "Beta"]

        # Search and filter through the toolbar form (plain GET, no JavaScript needed).
        page.fill("input[name=q]", "alpha")
        _submit(page, "form.toolbar button[type=submit]")
        assert _titles(page) == ["Alpha 2"]
        page.fill("input[name=q]", "")
        page.select_option("select[name=created_at]", "year")
        _submit(page, "form.toolbar button[type=submit]")
        assert _titles(page) == ["Alpha 2"]
        page.goto(f"{server}/admin/note")
        _shot(page, "list")

        # Bulk delete: the confirmation page lists the rows; nothing is gone before "Yes".
        for box in page.locator("input[name=selected]").all():
            box.check()
        page.select_option("select[name=action]", "delete_selected")
        _submit(page, "button[name=run]")
        assert "Delete 2 Note rows?" in str(page.text_content("h1"))
        _shot(page, "delete-confirm")
        _submit(page, "button.danger")
        assert "Deleted 2 Note rows." in str(page.text_content(".flash"))
        assert _titles(page) == []

        # The audit log holds every step, with the edit's before and after.
        page.goto(f"{server}/admin/log")
        log = page.text_content("table.log")
        assert log is not None
        assert log.count("delete") >= 2 and log.count("add") >= 2
        assert "Alpha → Alpha 2" in log
        _shot(page, "log")
    # The 422 of the invalid form is reported by Chromium as a failed resource load.
    unexpected = [p for p in problems if "422" not in p]
    assert unexpected == []
