"""The admin's pages on every backend: list, search, filters, sorting, forms, delete, actions."""

from __future__ import annotations

import datetime
import re
from typing import TYPE_CHECKING, Any

from covet.admin import AdminLogEntry
from covet.db import capture_queries
from tests.admin.models import Article, Label, Remark, Sticker, Topic, Writer

if TYPE_CHECKING:
    from tests.admin.conftest import Browser


async def _articles(n: int = 5) -> tuple[Writer, Writer, list[Article]]:
    ann = await Writer.objects.create(name="Ann")
    bob = await Writer.objects.create(name="Bob")
    made = []
    for i in range(n):
        made.append(
            await Article.objects.create(
                title=f"Article {i}",
                writer=ann if i % 2 == 0 else bob,
                published=i % 2 == 0,
                status=["draft", "review", "final"][i % 3],
                views=i,
                created=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30 * i),
            )
        )
    return ann, bob, made


def _titles(html: str) -> list[str]:
    return re.findall(r'/change">(Article \d+|[^<]+)</a>', html)


async def test_index_lists_models_and_links(boss: Browser):
    page = await boss.get("/admin/")
    assert page.status_code == 200
    for name in ("writer", "article", "remark", "staff_user"):
        assert f'href="/admin/{name}"' in page.text


async def test_list_pages_by_keyset_with_search_filters_and_sort(boss: Browser):
    ann, _, _ = await _articles(7)
    first = await boss.get("/admin/article")
    assert first.status_code == 200
    assert _titles(first.text) == ["Article 6", "Article 5", "Article 4"]  # -pk, 3 per page
    assert "7 rows" in first.text
    next_link = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert next_link is not None
    next_url = next_link.group(1).replace("&amp;", "&")
    second = await boss.get(next_url)
    assert _titles(second.text) == ["Article 3", "Article 2", "Article 1"]
    found = await boss.get("/admin/article", params={"q": "article 3"})
    assert _titles(found.text) == ["Article 3"]
    by_writer = await boss.get("/admin/article", params={"q": "bob"})
    assert _titles(by_writer.text) == ["Article 5", "Article 3", "Article 1"]
    published = await boss.get("/admin/article", params={"published": "1", "o": "views"})
    assert _titles(published.text) == ["Article 0", "Article 2", "Article 4"]
    drafts = await boss.get("/admin/article", params={"status": "draft"})
    assert _titles(drafts.text) == ["Article 6", "Article 3", "Article 0"]
    recent = await boss.get("/admin/article", params={"created": "7d"})
    assert _titles(recent.text) == ["Article 0"]
    mine = await boss.get("/admin/article", params={"writer": str(ann.pk), "o": "-views"})
    assert _titles(mine.text) == ["Article 6", "Article 4", "Article 2"]


async def test_list_bad_query_input_is_400_not_500(boss: Browser):
    await _articles(2)
    for params in (
        {"published": "maybe"},
        {"status": "gone"},
        {"created": "yesterday"},
        {"writer": "abc"},
        {"o": "body"},
        {"o": "created"},  # nullable: not sortable
        {"after": "tampered"},
        {"q": "a\x00b"},
    ):
        response = await boss.get("/admin/article", params=params)
        assert response.status_code == 400, (params, response.status_code)
    assert (await boss.get("/admin/writer/lookup", params={"q": "\x00"})).status_code == 400
    assert (await boss.get("/admin/nothing")).status_code == 404
    assert (await boss.get("/admin/article/999999/change")).status_code == 404
    assert (await boss.get("/admin/article/abc/change")).status_code == 404


async def test_list_page_is_a_few_queries(boss: Browser):
    await _articles(7)
    async with capture_queries() as log:
        response = await boss.get("/admin/article")
    assert response.status_code == 200
    # The user (session auth), the page (keyset, writer joined) and the bounded count.
    assert log.count <= 4, log.queries


async def test_add_with_errors_then_valid(boss: Browser):
    ann = await Writer.objects.create(name="Ann")
    form = await boss.get("/admin/article/add")
    assert form.status_code == 200 and 'name="title"' in form.text
    assert 'name="views"' not in form.text  # read-only: shown, not an input
    bad = await boss.post(
        "/admin/article/add",
        {"title": " ", "writer": "999999", "status": "nope", "published": "false", "body": ""},
    )
    assert bad.status_code == 422
    assert "Select a valid choice" in bad.text  # status (choices)
    fixed = await boss.post(
        "/admin/article/add",
        [
            ("title", " "),
            ("writer", str(ann.pk)),
            ("status", "draft"),
            ("published", "false"),
            ("published", "true"),
            ("body", "hi"),
            ("created", "2024-05-01T10:30"),
        ],
    )
    assert fixed.status_code == 422 and "Enter a title." in fixed.text  # the model validator
    ok = await boss.post(
        "/admin/article/add",
        [
            ("title", "Fresh"),
            ("writer", str(ann.pk)),
            ("status", "draft"),
            ("published", "false"),
            ("published", "true"),
            ("body", "hi"),
            ("created", "2024-05-01T10:30"),
            ("views", "99"),
        ],
    )
    assert ok.status_code == 303, ok.text
    article = await Article.objects.get(title="Fresh")
    assert article.published is True and article.views == 0  # read-only views ignored
    assert article.created == datetime.datetime(2024, 5, 1, 10, 30, tzinfo=datetime.UTC)
    entry = await AdminLogEntry.objects.get(model="article", object_id=str(article.pk))
    assert entry.action == "add" and entry.user_repr == "boss@example.com"
    assert entry.changes["title"] == [None, "Fresh"]


async def test_empty_text_is_required_unless_the_field_has_a_default(boss: Browser):
    ann = await Writer.objects.create(name="Ann")
    form = {"title": "T", "writer": str(ann.pk), "status": "draft", "published": "false"}
    assert (await boss.post("/admin/article/add", {**form, "body": ""})).status_code == 303
    assert (await Article.objects.get(title="T")).body == ""  # body has a default: "" is a value
    response = await boss.post("/admin/writer/add", {"name": ""})
    assert response.status_code == 422 and "This field is required." in response.text


async def test_unknown_foreign_key_is_a_field_error(boss: Browser):
    bad = await boss.post(
        "/admin/article/add",
        {"title": "T", "writer": "999999", "status": "draft", "published": "false"},
    )
    assert bad.status_code == 422
    assert "Select a valid choice: that row does not exist." in bad.text


async def test_change_records_before_and_after(boss: Browser):
    _, bob, made = await _articles(1)
    article = made[0]
    page = await boss.get(f"/admin/article/{article.pk}/change")
    assert page.status_code == 200 and "Article 0" in page.text
    response = await boss.post(
        f"/admin/article/{article.pk}/change",
        {
            "title": "Renamed",
            "writer": str(bob.pk),
            "status": "final",
            "published": "false",
            "body": "",
            "created": "",
        },
    )
    assert response.status_code == 303, response.text
    await article.refresh_from_db()
    assert (article.title, article.writer_id, article.published, article.created) == (
        "Renamed",
        bob.pk,
        False,
        None,
    )
    entry = await AdminLogEntry.objects.filter(action="change").get()
    assert entry.changes["title"] == ["Article 0", "Renamed"]
    assert entry.changes["published"] == [True, False]
    assert "body" not in entry.changes  # unchanged fields are not recorded
    log = await boss.get("/admin/log", params={"model": "article", "object_id": str(article.pk)})
    assert "Renamed" in log.text and "Article 0" in log.text


async def test_delete_lists_cascade_then_deletes_and_logs(boss: Browser):
    _, _, made = await _articles(1)
    article = made[0]
    await Remark.objects.create(article=article, text="first!")
    confirm = await boss.get(f"/admin/article/{article.pk}/delete")
    assert "1 Remark row (by article) will be <strong>deleted</strong>: first!" in confirm.text
    done = await boss.post(f"/admin/article/{article.pk}/delete", {"confirm": "yes"})
    assert done.status_code == 303
    assert not await Article.objects.filter(pk=article.pk).exists()
    assert not await Remark.objects.exists()
    entry = await AdminLogEntry.objects.get(action="delete")
    assert entry.object_repr == "Article 0" and entry.changes["title"] == ["Article 0", None]


async def test_protected_rows_block_delete(boss: Browser):
    label = await Label.objects.create(name="kept")
    await Sticker.objects.create(label=label)
    confirm = await boss.get(f"/admin/label/{label.pk}/delete")
    assert (
        "will be <strong>protected</strong>" in confirm.text and "Yes, delete" not in confirm.text
    )
    refused = await boss.post(f"/admin/label/{label.pk}/delete", {"confirm": "yes"})
    assert refused.status_code == 303
    assert await Label.objects.filter(pk=label.pk).exists()
    assert not await AdminLogEntry.objects.exists()


async def test_bulk_delete_asks_first_then_deletes(boss: Browser):
    _, _, made = await _articles(4)
    chosen = [("selected", str(a.pk)) for a in made[:2]]
    ask = await boss.post("/admin/article", [("action", "delete_selected"), *chosen])
    assert ask.status_code == 200 and "Delete 2 Article rows?" in ask.text
    assert await Article.objects.count() == 4
    done = await boss.post(
        "/admin/article", [("action", "delete_selected"), ("confirm", "yes"), *chosen]
    )
    assert done.status_code == 303
    assert await Article.objects.count() == 2
    assert await AdminLogEntry.objects.filter(action="delete").count() == 2


async def test_custom_action(boss: Browser):
    _, _, made = await _articles(4)
    chosen = [("selected", str(a.pk)) for a in made if not a.published]
    done = await boss.post("/admin/article", [("action", "publish"), *chosen])
    assert done.status_code == 303
    assert await Article.objects.filter(published=False).count() == 0
    logged = await AdminLogEntry.objects.filter(action="change")
    assert sorted(int(e.object_id) for e in logged) == sorted(int(v) for _, v in chosen)
    assert all(e.changes == {"action": [None, "publish"]} for e in logged)
    page = await boss.get("/admin/article")
    assert "2 published." in page.text
    unknown = await boss.post("/admin/article", [("action", "explode"), *chosen])
    assert unknown.status_code == 400


async def test_lookup_endpoint_searches_instead_of_loading_all(boss: Browser):
    for name in ("Ann", "Anna", "Bob"):
        await Writer.objects.create(name=name)
    response = await boss.get("/admin/writer/lookup", params={"q": "ann"})
    assert [r["text"] for r in response.json()["results"]] == ["Ann", "Anna"]


async def test_user_password_hash_is_not_on_the_form(boss: Browser):
    page = await boss.get("/admin/staff_user/add")
    assert 'name="email"' in page.text and 'name="password"' not in page.text


async def test_many_to_many_is_picked_by_key_and_logged(boss: Browser):
    ann = await Writer.objects.create(name="Ann")
    red, green, blue = [await Topic.objects.create(name=n) for n in ("red", "green", "blue")]
    form = {"title": "Tagged", "writer": str(ann.pk), "status": "draft", "published": "false"}
    bad = await boss.post("/admin/article/add", {**form, "topics": ["999999"]})
    assert bad.status_code == 422 and "999999 do not exist" in bad.text
    bad = await boss.post("/admin/article/add", {**form, "topics": ["x"]})
    assert bad.status_code == 422 and "Enter the keys of existing rows." in bad.text
    ok = await boss.post("/admin/article/add", {**form, "topics": [str(red.pk), str(green.pk)]})
    assert ok.status_code == 303
    article = await Article.objects.get(title="Tagged")
    assert sorted(t.name for t in await article.topics.all()) == ["green", "red"]
    page = await boss.get(f"/admin/article/{article.pk}/change")
    assert f'name="topics" value="{red.pk}" checked' in page.text  # current links, checked
    # Untick red, add blue by key.
    changed = await boss.post(
        f"/admin/article/{article.pk}/change",
        {**form, "body": "", "created": "", "topics": [str(green.pk), str(blue.pk)]},
    )
    assert changed.status_code == 303
    assert sorted(t.name for t in await article.topics.all()) == ["blue", "green"]
    entry = await AdminLogEntry.objects.get(action="change")
    assert entry.changes == {
        "topics": [sorted([red.pk, green.pk], key=str), sorted([green.pk, blue.pk], key=str)]
    }


async def test_inline_rows_are_edited_added_and_deleted_with_the_parent(boss: Browser):
    _, _, made = await _articles(1)
    article = made[0]
    keep = await Remark.objects.create(article=article, text="<b>keep</b>")
    drop = await Remark.objects.create(article=article, text="drop")
    page = await boss.get(f"/admin/article/{article.pk}/change")
    assert f'href="/admin/remark/{keep.pk}/change">&lt;b&gt;keep&lt;/b&gt;</a>' in page.text
    assert (
        f'name="remarks-{keep.pk}-text"' in page.text and 'name="remarks-new-0-text"' in page.text
    )
    assert f'name="remarks-{keep.pk}-article"' not in page.text  # the key back is implied
    parent: dict[str, Any] = {
        "title": "Article 0", "writer": str(article.writer_id), "status": article.status,
        "published": "true", "body": "", "created": "",
    }  # fmt: skip
    # An invalid new row: nothing at all is written, the errors show under the row.
    bad = await boss.post(
        f"/admin/article/{article.pk}/change",
        {
            **parent,
            f"remarks-{keep.pk}-text": "kept, edited",
            f"remarks-{drop.pk}-text": "drop",
            f"remarks-{drop.pk}-DELETE": "on",
            "remarks-new-0-text": "x" * 101,
        },
    )
    assert bad.status_code == 422 and "Enter at most 100 characters." in bad.text
    assert await Remark.objects.count() == 2 and (await Remark.objects.get(pk=keep.pk)).text
    ok = await boss.post(
        f"/admin/article/{article.pk}/change",
        {
            **parent,
            f"remarks-{keep.pk}-text": "kept, edited",
            f"remarks-{drop.pk}-text": "drop",
            f"remarks-{drop.pk}-DELETE": "on",
            "remarks-new-0-text": "added inline",
        },
    )
    assert ok.status_code == 303, ok.text
    texts = sorted(r.text for r in await Remark.objects.filter(article=article))
    assert texts == ["added inline", "kept, edited"]
    logged = {(e.model, e.action) for e in await AdminLogEntry.objects.all()}
    assert {("remark", "change"), ("remark", "delete"), ("remark", "add")} <= logged
    # An empty "new" row is ignored.
    again = await boss.post(
        f"/admin/article/{article.pk}/change",
        {**parent, **{f"remarks-{r.pk}-text": str(r.text) for r in await Remark.objects.all()}},
    )
    assert again.status_code == 303 and await Remark.objects.count() == 2


async def test_inline_changes_need_the_child_permissions(site):
    from tests.admin.test_security import _browser

    _, _, made = await _articles(1)
    article = made[0]
    remark = await Remark.objects.create(article=article, text="theirs")
    browser = await _browser(site, "editor@example.com", perms=["article.change", "remark.view"])
    page = await browser.get(f"/admin/article/{article.pk}/change")
    assert f'name="remarks-{remark.pk}-text"' not in page.text  # shown read-only
    assert "remarks-new-0-text" not in page.text and f"remarks-{remark.pk}-DELETE" not in page.text
    parent: dict[str, Any] = {
        "title": "Article 0", "writer": str(article.writer_id), "status": article.status,
        "published": "true", "body": "", "created": "",
    }  # fmt: skip
    sneaky = await browser.post(
        f"/admin/article/{article.pk}/change",
        {**parent, f"remarks-{remark.pk}-text": "changed", "remarks-new-0-text": "new"},
    )
    assert sneaky.status_code == 303
    assert [r.text for r in await Remark.objects.all()] == ["theirs"]
    deleting = await browser.post(
        f"/admin/article/{article.pk}/change", {**parent, f"remarks-{remark.pk}-DELETE": "on"}
    )
    assert deleting.status_code == 403 and await Remark.objects.count() == 1


async def test_search_prefixes_exact_and_startswith(site, boss: Browser):
    _, admin = site
    await _articles(3)
    model_admin = admin.registry["writer"]
    base = Writer.objects.all()
    exact = type(model_admin)
    exact.search_fields = ("=name",)
    assert [w.name for w in await model_admin.search(base, "Ann")] == ["Ann"]
    assert await model_admin.search(base, "An").count() == 0
    exact.search_fields = ("^name",)
    assert [w.name for w in await model_admin.search(base, "an")] == ["Ann"]
    exact.search_fields = ("name",)
    assert [w.name for w in await model_admin.search(base, "o")] == ["Bob"]


async def test_hostile_form_input_is_a_form_error_never_a_500(boss: Browser):
    ann = await Writer.objects.create(name="Ann")
    good = {"title": "T", "writer": str(ann.pk), "status": "draft", "published": "false"}
    hostile: list[dict[str, Any]] = [
        {"title": "x" * 101},
        {"writer": "-1"},
        {"writer": "1e309"},
        {"writer": "9" * 40},
        {"status": "<script>"},
        {"created": "not a date"},
        {"created": "2024-13-45T99:99"},
        {"published": "\x00"},
        {"title": "a\x00b"},
        {"topics": ["1 OR 1=1"]},
        {"title": "\U0001f600\u202e" * 30},
    ]
    for change in hostile:
        response = await boss.post("/admin/article/add", {**good, **change})
        assert response.status_code in (303, 422), (change, response.status_code)
        assert "<script>" not in response.text.split("</h1>", 1)[-1]
    assert await Article.objects.filter(title="x" * 101).count() == 0
