"""Static type pins for covet.db.pagination and covet.admin (checked by mypy; nothing runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_type

from covet.admin import Admin, ModelAdmin
from covet.db import Model, fields
from covet.db.pagination import KeysetPage, KeysetPaginator, Page, Paginator, cursor_paginate

if TYPE_CHECKING:
    from covet.app import Covet


class Entry(Model):
    title = fields.CharField(max_length=50)

    class Meta:
        table = "typing_pinned_entries"


async def _pins(app: Covet) -> None:
    paginator = Paginator(Entry.objects.order_by("title"), 20)
    page = await paginator.page("2")
    assert_type(page, Page[Entry])
    assert_type(page.object_list, list[Entry])
    assert_type(page.next_page_number, int | None)
    assert_type(await paginator.count(), int)
    keyset = KeysetPaginator(Entry.objects.all(), 20, order_by=["-title"])
    assert_type(await keyset.page(after=None), KeysetPage[Entry])
    cursor_page = await cursor_paginate(Entry.objects.all(), order_by=["title"])
    assert_type(cursor_page.next_cursor, str | None)
    assert_type(list(cursor_page), list[Entry])
    admin = Admin(app, path="/admin")
    assert_type(admin.register(Entry, search_fields=["title"]), ModelAdmin)
