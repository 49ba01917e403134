"""Hostile input at every entry point: values are bound, names are checked, tables survive."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from covet.db import Count, DatabaseError, F, FieldError, ValidationError
from covet.db.compiler import LOOKUPS
from tests.db.models import Author, Post

if TYPE_CHECKING:
    from covet.db.database import Database

PAYLOADS = [
    "'; DROP TABLE posts; --",
    "1 OR 1=1",
    "1' OR '1'='1",
    "\\'; DROP TABLE author; --",
    "\u2019; DROP TABLE posts; --",  # unicode right single quote
    "\uff07 OR 1=1 --",  # fullwidth apostrophe
    "x\x00y",
    '"; DROP TABLE "posts"; --',
    "`; DROP TABLE `posts`; --",
    "%' OR 'a' LIKE '%",
    "$1; SELECT pg_sleep(1)",
    "%s%s%s",
    "?",
]
TEXT_LOOKUPS = sorted(LOOKUPS - {"in", "isnull", "range", "regex", "iregex"})


@pytest.fixture
async def seeded(orm: Database) -> Author:
    ann = await Author.objects.create(name="Ann", email="ann@example.com")
    await Post.objects.create(title="safe", author=ann)
    return ann


async def assert_intact() -> None:
    assert await Author.objects.count() == 1
    assert await Post.objects.count() == 1
    assert (await Post.objects.get()).title == "safe"


async def test_payloads_as_values_in_every_lookup(seeded):
    for payload in PAYLOADS:
        if "\x00" in payload:
            continue  # PostgreSQL refuses NUL in text; covered below
        for lookup in TEXT_LOOKUPS:
            count = await Post.objects.filter(**{f"title__{lookup}": payload}).count()
            if lookup not in ("gt", "gte", "lt", "lte"):  # those compare by collation
                assert count == 0, (lookup, payload)
        assert await Post.objects.filter(title__in=[payload, "x"]).count() == 0
        assert await Post.objects.filter(title__range=(payload, payload)).count() == 0
        assert await Post.objects.exclude(title=payload).count() == 1
        assert await Post.objects.filter(author__name=payload).count() == 0
        assert await Author.objects.filter(posts__title=payload).count() == 0
    await assert_intact()


async def test_payloads_as_regular_expressions(seeded):
    # A payload is a pattern here: it matches nothing, or is refused as an invalid
    # expression (a covet error, e.g. "?" repeats nothing), and never runs as SQL.
    for payload in PAYLOADS:
        if "\x00" in payload:
            continue
        for lookup in ("regex", "iregex"):
            try:
                count = await Post.objects.filter(**{f"title__{lookup}": payload}).count()
            except DatabaseError:
                continue
            assert count == 0, (lookup, payload)
    await assert_intact()


async def test_payloads_stored_verbatim(seeded):
    for payload in PAYLOADS:
        if "\x00" in payload:
            continue
        post = await Post.objects.create(title=payload, author=seeded)
        assert (await Post.objects.get(pk=post.pk)).title == payload
        assert await Post.objects.filter(title=payload).count() == 1
        await Post.objects.filter(pk=post.pk).update(title=F("title") + payload)
        assert (await Post.objects.get(pk=post.pk)).title == payload + payload
        await post.delete()
    await assert_intact()


async def test_nul_character_is_refused_or_kept(seeded):
    try:
        post = await Post.objects.create(title="x\x00y", author=seeded)
    except Exception as exc:  # noqa: BLE001 - any covet error is fine here
        assert isinstance(exc, ValidationError | Exception)
        assert "DROP" not in str(type(exc))
    else:
        assert (await Post.objects.get(pk=post.pk)).title == "x\x00y"
        await post.delete()
    await assert_intact()


async def test_payloads_in_numeric_lookups_are_validation_errors(seeded):
    for payload in PAYLOADS:
        with pytest.raises(ValidationError):
            Post.objects.filter(views=payload)
        with pytest.raises(ValidationError):
            Post.objects.filter(id__in=[payload])
    await assert_intact()


async def test_payloads_as_names_are_field_errors(seeded):
    for payload in PAYLOADS:
        with pytest.raises(FieldError):
            Post.objects.filter(**{payload: 1})
        with pytest.raises(FieldError):
            Post.objects.filter(**{f"title__{payload}": 1})
        if payload != "?":  # "?" is the documented random ordering
            with pytest.raises(FieldError):
                Post.objects.order_by(payload)
        with pytest.raises(FieldError):
            Post.objects.order_by(f"-{payload}")
        with pytest.raises(FieldError):
            Post.objects.values(payload)
        with pytest.raises(FieldError):
            Post.objects.values_list(payload)
        with pytest.raises(FieldError):
            Author.objects.annotate(**{payload: Count("posts")})
        with pytest.raises(FieldError):
            Post.objects.values(**{payload: F("views")})
        with pytest.raises(FieldError):
            Post.objects.filter(views=F(payload))
        with pytest.raises(FieldError):
            await Post.objects.aggregate(**{payload: Count("id")})
        with pytest.raises(FieldError):
            Post.objects.only(payload)
        with pytest.raises(FieldError):
            Post.objects.select_related(payload)
        with pytest.raises(FieldError):
            Post.objects.prefetch_related(payload)
        with pytest.raises(FieldError):
            await Post.objects.filter(pk=1).update(**{payload: 1})
    await assert_intact()
