"""Offset and keyset pagination on every backend."""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import operator
import secrets
from typing import TYPE_CHECKING

import pytest

from covet.db import Model, fields
from covet.db.pagination import (
    EmptyPage,
    InvalidCursor,
    InvalidPage,
    KeysetPaginator,
    PageNotAnInteger,
    Paginator,
    cursor_paginate,
)
from covet.db.schema import create_all, drop_all

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.db.database import Database


class Entry(Model):
    """Rows whose sort keys tie often (score has 4 values), so the pk tiebreak matters."""

    name = fields.CharField(max_length=20)
    score = fields.IntegerField()
    created = fields.DateTimeField()
    price = fields.DecimalField(max_digits=8, decimal_places=2)
    note = fields.CharField(max_length=20, null=True)

    class Meta:
        table = f"pagination_entries_{secrets.token_hex(3)}"
        indexes = (("score", "id"),)


BASE = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


@pytest.fixture
async def entries(database: Database) -> AsyncIterator[list[Entry]]:
    await drop_all(database, [Entry])
    await create_all(database, [Entry])
    rows = [
        Entry(
            name=f"e{i:02d}",
            score=i % 4,
            created=BASE + datetime.timedelta(hours=i // 3),
            price=decimal.Decimal(f"{i % 5}.25"),
        )
        for i in range(23)
    ]
    await Entry.objects.bulk_create(rows)
    yield await Entry.objects.order_by("id")
    await drop_all(database, [Entry])


def expected(rows: list[Entry], *keys: str) -> list[int]:
    """Return the ids of ``rows`` sorted by ``keys`` (``-`` descending), then by pk.

    The pk tiebreak takes the direction of the last key, so one index serves both.
    """
    ordered = sorted(rows, key=lambda r: r.id, reverse=bool(keys) and keys[-1].startswith("-"))
    for key in reversed(keys):
        name = key.lstrip("-")
        ordered.sort(key=operator.attrgetter(name), reverse=key.startswith("-"))
    return [r.id for r in ordered]


# -- offset pages ----------------------------------------------------------------------------------


async def test_offset_pages_cover_every_row_once_in_order(entries):
    paginator = Paginator(Entry.objects.order_by("score"), 5)
    assert await paginator.count() == 23
    assert await paginator.num_pages() == 5
    seen = []
    for n in range(1, 6):
        page = await paginator.page(n)
        assert page.number == n and page.num_pages == 5
        seen += [e.id for e in page]
    assert seen == expected(entries, "score")
    last = await paginator.page("5")
    assert len(last) == 3 and (last.start_index, last.end_index) == (21, 23)
    assert last.has_previous and not last.has_next and last.previous_page_number == 4
    first = await paginator.page()
    assert first.next_page_number == 2 and first.previous_page_number is None


async def test_offset_pages_ordered_by_an_expression_get_the_pk_tiebreak(entries):
    from covet.db import F
    from covet.db.functions import Lower

    paginator = Paginator(Entry.objects.order_by(F("score").desc(), Lower("name")), 6)
    seen = []
    for n in range(1, await paginator.num_pages() + 1):
        seen += [e.id for e in await paginator.page(n)]
    by_score_then_name = sorted(entries, key=lambda r: (-r.score, r.name.lower(), r.id))
    assert seen == [r.id for r in by_score_then_name]


@pytest.mark.parametrize("number", ["0", "-1", "abc", "1.5", "", 0, None, True])
async def test_offset_page_number_must_be_a_positive_integer(entries, number):
    with pytest.raises(PageNotAnInteger, match="positive integer") as info:
        await Paginator(Entry.objects.all(), 5).page(number)
    assert info.value.status_code == 404


async def test_offset_page_past_the_end_is_empty_page(entries):
    paginator = Paginator(Entry.objects.all(), 5)
    with pytest.raises(EmptyPage, match=r"Page 6 is past the last page \(5\)") as info:
        await paginator.page(6)
    assert isinstance(info.value, InvalidPage)
    assert info.value.status_code == 404


async def test_offset_empty_listing_has_one_empty_page(entries):
    page = await Paginator(Entry.objects.filter(score=99), 5).page(1)
    assert list(page) == [] and page.count == 0 and page.num_pages == 1
    assert (page.start_index, page.end_index) == (0, 0) and not page.has_next


async def test_offset_count_override_skips_count_query(entries):
    paginator = Paginator(Entry.objects.all(), 10, count=1000)
    assert await paginator.num_pages() == 100
    page = await paginator.page(2)
    assert len(page) == 10 and page.count == 1000


def test_offset_rejects_bad_per_page_and_random_order():
    with pytest.raises(ValueError, match="per_page must be a positive integer"):
        Paginator(Entry.objects.all(), 0)
    with pytest.raises(ValueError, match="randomly ordered"):
        Paginator(Entry.objects.order_by("?"), 5)


# -- keyset pages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "order_by",
    [("pk",), ("score",), ("-score",), ("score", "-created"), ("-created", "name"), ("price",)],
)
async def test_keyset_walks_forward_and_back_over_ties(entries, order_by):
    paginator = KeysetPaginator(Entry.objects.all(), 4, order_by=order_by)
    want = expected(entries, *[k for k in order_by if k != "pk"])
    pages, cursor = [], None
    while True:
        page = await paginator.page(after=cursor)
        pages.append([e.id for e in page])
        assert page.has_previous == (cursor is not None)
        if not page.has_next:
            break
        cursor = page.next_cursor
    assert [i for p in pages for i in p] == want
    assert [len(p) for p in pages] == [4, 4, 4, 4, 4, 3]
    # Walk back from the last page with previous cursors: the same pages, reversed.
    back = [pages[-1]]
    while page.has_previous:
        page = await paginator.page(before=page.previous_cursor)
        back.append([e.id for e in page])
        assert page.has_next
    assert back == pages[::-1]


async def test_keyset_rows_inserted_meanwhile_do_not_shift_the_next_page(entries):
    paginator = KeysetPaginator(Entry.objects.all(), 5, order_by=["-created"])
    first = await paginator.page()
    newest = BASE + datetime.timedelta(days=30)
    await Entry.objects.create(name="new", score=1, created=newest, price=decimal.Decimal("1.00"))
    second = await paginator.page(after=first.next_cursor)
    assert [e.id for e in second] == expected(entries, "-created")[5:10]


async def test_keyset_filters_are_kept(entries):
    page = await cursor_paginate(Entry.objects.filter(score=2), order_by=["name"], per_page=3)
    rest = await cursor_paginate(
        Entry.objects.filter(score=2), order_by=["name"], per_page=3, after=page.next_cursor
    )
    names = [e.name for e in [*page, *rest]]
    assert names == sorted(e.name for e in entries if e.score == 2)
    assert not rest.has_next


async def test_keyset_empty_result(entries):
    page = await cursor_paginate(Entry.objects.filter(score=99), per_page=3)
    assert list(page) == [] and not page.has_next and not page.has_previous


def _forge(cursor: str, change) -> str:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    tag, values = json.loads(raw)
    tag, values = change(tag, values)
    return base64.urlsafe_b64encode(json.dumps([tag, values]).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-3],
        lambda c: c + "!!",
        lambda c: "not-base64-%%%",
        lambda c: base64.urlsafe_b64encode(b"{broken json").decode(),
        lambda c: _forge(c, lambda t, v: ("deadbeef", v)),
        lambda c: _forge(c, lambda t, v: (t, v[:1])),
        lambda c: _forge(c, lambda t, v: (t, ["many", v[1]])),
        lambda c: _forge(c, lambda t, v: (t, [None, v[1]])),
        lambda c: _forge(c, lambda t, v: (t, [{"x": 1}, v[1]])),
        lambda c: "x" * 5000,
    ],
)
async def test_keyset_tampered_cursor_is_invalid_cursor_400(entries, tamper):
    paginator = KeysetPaginator(Entry.objects.all(), 4, order_by=["score"])
    page = await paginator.page()
    with pytest.raises(InvalidCursor, match="Invalid pagination cursor") as info:
        await paginator.page(after=tamper(page.next_cursor))
    assert info.value.status_code == 400


async def test_keyset_cursor_from_another_ordering_is_refused(entries):
    by_score = await cursor_paginate(Entry.objects.all(), order_by=["score"], per_page=4)
    with pytest.raises(InvalidCursor):
        await cursor_paginate(Entry.objects.all(), order_by=["-score"], after=by_score.next_cursor)


async def test_keyset_signed_cursor_refuses_forged_values(entries):
    signed = KeysetPaginator(Entry.objects.all(), 4, order_by=["score"], secret="s3cret")
    page = await signed.page()
    assert [e.id for e in await signed.page(after=page.next_cursor)] == expected(entries, "score")[
        4:8
    ]
    assert page.next_cursor is not None
    raw = base64.urlsafe_b64decode(page.next_cursor + "==")
    forged = raw[:16] + raw[16:].replace(b"[0,", b"[2,")
    assert forged != raw
    with pytest.raises(InvalidCursor):
        await signed.page(after=base64.urlsafe_b64encode(forged).decode())
    other_key = KeysetPaginator(Entry.objects.all(), 4, order_by=["score"], secret="other")
    with pytest.raises(InvalidCursor):
        await other_key.page(after=page.next_cursor)


def test_keyset_rejects_nullable_unknown_keys_and_both_directions():
    with pytest.raises(ValueError, match="'note' is nullable"):
        KeysetPaginator(Entry.objects.all(), 5, order_by=["note"])
    with pytest.raises(ValueError, match="Unknown keyset sort key 'nope'"):
        KeysetPaginator(Entry.objects.all(), 5, order_by=["nope"])
    with pytest.raises(ValueError, match="per_page"):
        KeysetPaginator(Entry.objects.all(), -1)


async def test_keyset_after_and_before_together_is_an_error(entries):
    paginator = KeysetPaginator(Entry.objects.all(), 5)
    page = await paginator.page()
    with pytest.raises(ValueError, match="not both"):
        await paginator.page(after=page.next_cursor, before=page.next_cursor)


async def test_keyset_page_is_one_query(entries, database):
    from covet.db import capture_queries

    paginator = KeysetPaginator(Entry.objects.all(), 5, order_by=["score"])
    first = await paginator.page()
    async with capture_queries() as log:
        await paginator.page(after=first.next_cursor)
    assert log.count == 1
    assert "LIMIT" in log.queries[0].upper() and "OFFSET" not in log.queries[0].upper()
