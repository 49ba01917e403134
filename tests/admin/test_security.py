"""Who may do what in the admin: staff only, per-model permissions, CSRF, throttling, escaping."""

from __future__ import annotations

from typing import Any

import pytest

from covet import Covet
from covet.admin import Admin, AdminLogEntry
from covet.auth import AuthenticationMiddleware
from covet.db import FieldError
from covet.exceptions import ImproperlyConfigured
from covet.middleware import CSRFMiddleware, SessionMiddleware
from tests.admin.conftest import PASSWORD, SECRET, Browser, make_user
from tests.admin.models import Article, StaffUser, Writer


async def _browser(site: tuple[Covet, Admin], email: str, **user: object) -> Browser:
    await make_user(email, **user)  # type: ignore[arg-type]
    browser = Browser(site[0])
    response = await browser.login(email)
    assert response.status_code == 303, response.text
    return browser


async def _article() -> Article:
    writer = await Writer.objects.create(name="Ann")
    return await Article.objects.create(title="One", writer=writer)


def _change_form(article: Article) -> dict[str, str]:
    return {
        "title": "Changed",
        "writer": str(article.writer_id),
        "status": "draft",
        "published": "false",
        "body": "",
        "created": "",
    }


async def test_anonymous_visitors_are_sent_to_login(site):
    article = await _article()
    browser = Browser(site[0])
    for url in ("/admin/", "/admin/article", f"/admin/article/{article.pk}/change", "/admin/log"):
        response = await browser.get(url)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/admin/login?next=")
    assert (await browser.get("/admin/login")).status_code == 200


async def test_logged_in_non_staff_gets_403_and_cannot_log_in_to_the_admin(site):
    await make_user("member@example.com", staff=False, perms=["article.view"])
    browser = Browser(site[0])
    refused = await browser.login("member@example.com")
    assert refused.status_code == 400 and "staff account" in refused.text
    await make_user("gone@example.com", staff=True, superuser=True)
    await StaffUser.objects.filter(email="gone@example.com").update(is_active=False)
    assert (await Browser(site[0]).login("gone@example.com")).status_code == 400


async def test_wrong_password_is_refused_and_login_is_throttled(site):
    await make_user("target@example.com", superuser=True)
    browser = Browser(site[0])
    statuses = []
    for _ in range(6):
        response = await browser.login("target@example.com", "wrong password")
        statuses.append(response.status_code)
    assert statuses[:5] == [400] * 5
    assert statuses[5] == 429
    # The right password is refused too while the throttle holds.
    assert (await browser.login("target@example.com", PASSWORD)).status_code == 429


async def test_staff_without_permissions_gets_403_for_every_action(site):
    article = await _article()
    browser = await _browser(site, "nobody@example.com")
    pk = article.pk
    gets = [
        "/admin/article",
        "/admin/article/add",
        f"/admin/article/{pk}/change",
        f"/admin/article/{pk}/delete",
        "/admin/article/lookup?q=o",
    ]
    for url in gets:
        assert (await browser.get(url)).status_code == 403, url
    posts = [
        ("/admin/article/add", _change_form(article)),
        (f"/admin/article/{pk}/change", _change_form(article)),
        (f"/admin/article/{pk}/delete", {"confirm": "yes"}),
        ("/admin/article", {"action": "delete_selected", "selected": str(pk), "confirm": "yes"}),
        ("/admin/article", {"action": "publish", "selected": str(pk)}),
    ]
    for url, data in posts:
        assert (await browser.post(url, data)).status_code == 403, url
    index = await browser.get("/admin/")
    assert index.status_code == 200 and 'href="/admin/article"' not in index.text
    await article.refresh_from_db()
    assert article.title == "One" and not article.published
    assert not await AdminLogEntry.objects.exists()


@pytest.mark.parametrize(
    ("perms", "allowed"),
    [
        (["article.view"], {"list", "see"}),
        (["article.add"], {"add"}),
        (["article.change"], {"list", "see", "change", "publish"}),
        (["article.delete", "article.view"], {"list", "see", "delete", "bulk_delete"}),
    ],
)
async def test_each_permission_allows_only_its_action(site, perms, allowed):
    article = await _article()
    browser = await _browser(site, "partial@example.com", perms=perms)
    pk = article.pk
    checks = {
        "list": browser.get("/admin/article"),
        "see": browser.get(f"/admin/article/{pk}/change"),
        "add": browser.post("/admin/article/add", {**_change_form(article), "title": "Added"}),
        "change": browser.post(f"/admin/article/{pk}/change", _change_form(article)),
        "publish": browser.post("/admin/article", {"action": "publish", "selected": str(pk)}),
        "delete": browser.get(f"/admin/article/{pk}/delete"),
        "bulk_delete": browser.post(
            "/admin/article", {"action": "delete_selected", "selected": str(pk)}
        ),
    }
    for name, call in checks.items():
        status = (await call).status_code
        if name in allowed:
            assert status in (200, 303), (name, status)
        else:
            assert status == 403, (name, status)


async def test_view_only_user_sees_a_read_only_page(site):
    article = await _article()
    browser = await _browser(site, "viewer@example.com", perms=["article.view"])
    page = await browser.get(f"/admin/article/{article.pk}/change")
    assert page.status_code == 200 and "One" in page.text
    assert 'name="title"' not in page.text and "Save" not in page.text


async def test_post_without_csrf_token_is_refused(site, boss):
    article = await _article()
    response = await boss.client.post(
        f"/admin/article/{article.pk}/change", data=_change_form(article)
    )
    assert response.status_code == 403
    await article.refresh_from_db()
    assert article.title == "One"


async def test_only_form_fields_are_assigned(site, boss):
    article = await _article()
    other = await Writer.objects.create(name="Other")
    response = await boss.post(
        f"/admin/article/{article.pk}/change",
        {**_change_form(article), "id": "999", "views": "50", "writer_id": str(other.pk)},
    )
    assert response.status_code == 303
    fresh = await Article.objects.get(pk=article.pk)
    assert (fresh.title, fresh.views, fresh.writer_id) == ("Changed", 0, article.writer_id)
    assert not await Article.objects.filter(pk=999).exists()


async def test_a_narrow_form_cannot_grant_superuser(db):
    app = Covet()
    app.add_middleware(SessionMiddleware, secret_key=SECRET)
    app.add_middleware(AuthenticationMiddleware, user_model=StaffUser, secret_key=SECRET)
    app.add_middleware(CSRFMiddleware)
    Admin(app).register(StaffUser, fields=["email"])
    me = await make_user("me@example.com", perms=["staff_user.change"])
    browser = Browser(app)
    assert (await browser.login("me@example.com")).status_code == 303
    response = await browser.post(
        f"/admin/staff_user/{me.pk}/change",
        {"email": "me@example.com", "is_superuser": "true", "permissions": '["*"]'},
    )
    assert response.status_code == 303
    await me.refresh_from_db()
    assert not me.is_superuser and me.permissions == ["staff_user.change"]


async def test_user_data_is_escaped(site, boss):
    writer = await Writer.objects.create(name="<script>alert(1)</script>")
    await Article.objects.create(title='"><img src=x onerror=alert(2)>', writer=writer)
    for url in ("/admin/article", "/admin/writer", f"/admin/writer/{writer.pk}/change"):
        page = await boss.get(url)
        assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text
    page = await boss.get("/admin/article")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_audit_log_shows_only_models_the_user_may_view(site, boss):
    article = await _article()
    await boss.post(f"/admin/article/{article.pk}/change", _change_form(article))
    await boss.post(f"/admin/writer/{article.writer_id}/change", {"name": "Renamed writer"})
    browser = await _browser(site, "writers@example.com", perms=["writer.view"])
    log = await browser.get("/admin/log")
    assert "Renamed writer" in log.text and "Changed" not in log.text


def test_configuration_errors_are_caught_at_registration(site):
    _, admin = site
    with pytest.raises(ImproperlyConfigured, match="already registered"):
        admin.register(Writer)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"list_display": ["nope"]}, "list_display names 'nope'"),
        ({"list_filter": ["title"]}, "list_filter field 'title' is a CharField"),
        ({"ordering": ["created"]}, "'created' is nullable"),
        ({"readonly_fields": ["nope"]}, "not a concrete field"),
        ({"actions": ["nope"]}, "not a method decorated with @action"),
        ({"search_fields": ["nope"]}, "nope"),
        ({"inlines": ["topics"]}, "not a reverse foreign key"),
        ({"no_such_option": 1}, "Unknown ModelAdmin option"),
    ]
    for options, message in bad:
        with pytest.raises((ImproperlyConfigured, FieldError), match=message):
            Admin(Covet()).register(Article, **options)
