"""Pagination: numbered (offset) pages and keyset (cursor) pages over a queryset.

Two tools for two jobs:

* :class:`Paginator` gives numbered pages (``?page=3``) with a total count, as
  Django's does. Page ``n`` is ``LIMIT per_page OFFSET (n-1)*per_page``: simple,
  but the database still walks every skipped row, so page 10,000 of a big table
  is slow.
* :class:`KeysetPaginator` (and the one-call :func:`cursor_paginate`) gives
  "next" / "previous" pages addressed by an opaque cursor that holds the sort
  key of the row at the page edge. The next page is ``WHERE (key) > (cursor)
  ORDER BY key LIMIT per_page``, which an index answers in the same time on
  page 1 and on page 100,000, and rows inserted meanwhile never shift a page.

Bad input from the URL never becomes a 500: a page number that is not a
positive integer, or past the last page, raises :class:`PageNotAnInteger` /
:class:`EmptyPage` (``status_code`` 404), and a cursor that does not decode,
was made for another ordering, or fails its signature raises
:class:`InvalidCursor` (``status_code`` 400). All derive from
:class:`InvalidPage`, so a view can catch one class.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from covet.db.exceptions import ValidationError
from covet.db.expressions import Q
from covet.exceptions import CovetError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from covet.db.fields import Field
    from covet.db.models import Model
    from covet.db.queryset import QuerySet

__all__ = (
    "EmptyPage",
    "InvalidCursor",
    "InvalidPage",
    "KeysetPage",
    "KeysetPaginator",
    "Page",
    "PageNotAnInteger",
    "Paginator",
    "cursor_paginate",
)

T = TypeVar("T")


class InvalidPage(CovetError, ValueError):  # noqa: N818 - Django's name for the same error
    """A page request that cannot be served; ``status_code`` is the HTTP answer for a view."""

    status_code = 404


class PageNotAnInteger(InvalidPage):
    """The page number is not a positive integer."""


class EmptyPage(InvalidPage):
    """The page number is past the last page."""


class InvalidCursor(InvalidPage):
    """A keyset cursor that was altered, truncated, or made for another listing."""

    status_code = 400


# -- offset pages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page(Generic[T]):
    """One numbered page: its objects and where it sits among the others.

    Attributes:
        object_list: The objects on this page.
        number: The 1-based page number.
        count: The total number of objects across all pages.
        per_page: The page size.
    """

    object_list: list[T]
    number: int
    count: int
    per_page: int

    @property
    def num_pages(self) -> int:
        """Return the number of pages (at least 1: an empty listing has one empty page)."""
        return max(1, math.ceil(self.count / self.per_page))

    @property
    def has_next(self) -> bool:
        """Return whether a page follows this one."""
        return self.number < self.num_pages

    @property
    def has_previous(self) -> bool:
        """Return whether a page precedes this one."""
        return self.number > 1

    @property
    def next_page_number(self) -> int | None:
        """Return the next page's number, or None on the last page."""
        return self.number + 1 if self.has_next else None

    @property
    def previous_page_number(self) -> int | None:
        """Return the previous page's number, or None on the first page."""
        return self.number - 1 if self.has_previous else None

    @property
    def start_index(self) -> int:
        """Return the 1-based index of the first object on the page (0 when empty)."""
        return (self.number - 1) * self.per_page + 1 if self.object_list else 0

    @property
    def end_index(self) -> int:
        """Return the 1-based index of the last object on the page (0 when empty)."""
        return self.start_index + len(self.object_list) - 1 if self.object_list else 0

    def __iter__(self) -> Iterator[T]:
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)


def _check_per_page(per_page: object) -> int:
    if isinstance(per_page, bool) or not isinstance(per_page, int) or per_page < 1:
        raise ValueError(f"per_page must be a positive integer, got {per_page!r}.")
    return per_page


def _stable(queryset: QuerySet[T]) -> QuerySet[T]:
    """Return ``queryset`` ordered with the primary key as the last tiebreak.

    Without a total order, the database may return rows that tie on the sort key
    in a different order for each page, so a row can appear on two pages or none.
    """
    query = queryset.query
    terms = query.order_by if query.order_by is not None else queryset.model._meta.ordering
    if "?" in terms:
        raise ValueError("Cannot paginate a randomly ordered queryset (order_by('?')).")
    pk = queryset.model._meta.pk.name
    names = {t.lstrip("-") for t in terms if isinstance(t, str)}
    if names & {"pk", pk}:
        return queryset
    # Appended to the resolved terms: an expression term (order_by(Lower("name"))) is
    # kept as its ORDER BY node.
    clone = queryset.all()
    clone.query.order_by = (*terms, *clone.query.resolve_ordering(("pk",)))
    return clone


class Paginator(Generic[T]):
    """Split a queryset into numbered pages of ``per_page`` objects.

    Each page costs two queries: ``COUNT(*)`` (cached on the paginator after the
    first page) and the page itself. The ordering gets the primary key as a final
    tiebreak so that pages never overlap.

    Args:
        queryset: The objects to paginate.
        per_page: Objects per page.
        count: A known total (for example an estimate) that replaces ``COUNT(*)``.

    Example:
        ``page = await Paginator(Post.objects.order_by("-published_at"), 20).page(n)``
    """

    def __init__(self, queryset: QuerySet[T], per_page: int, *, count: int | None = None) -> None:
        self.queryset = _stable(queryset)
        self.per_page = _check_per_page(per_page)
        self._count = count

    async def count(self) -> int:
        """Return the total number of objects (one ``COUNT(*)`` query, then cached)."""
        if self._count is None:
            self._count = await self.queryset.count()
        return self._count

    async def num_pages(self) -> int:
        """Return the number of pages (at least 1)."""
        return max(1, math.ceil(await self.count() / self.per_page))

    def validate_number(self, number: object) -> int:
        """Return ``number`` as an int page number, or raise :class:`PageNotAnInteger`.

        Accepts an int or a decimal string, as it comes from ``request.query_params``.
        """
        if isinstance(number, str) and number.strip().isdigit():
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise PageNotAnInteger(f"Page number {number!r} is not a positive integer.")
        return number

    async def page(self, number: object = 1) -> Page[T]:
        """Return page ``number`` (1-based; an int or a string from the query).

        Raises:
            PageNotAnInteger: ``number`` is not a positive integer.
            EmptyPage: ``number`` is past the last page.
        """
        n = self.validate_number(number)
        total = await self.count()
        last = max(1, math.ceil(total / self.per_page))
        if n > last:
            raise EmptyPage(f"Page {n} is past the last page ({last}).")
        start = (n - 1) * self.per_page
        objects = await self.queryset[start : start + self.per_page]
        return Page(objects, n, total, self.per_page)


# -- keyset pages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeysetPage(Generic[T]):
    """One keyset page: its objects and the cursors of its neighbours.

    Attributes:
        object_list: The objects on this page, in the paginator's order.
        next_cursor: Pass as ``after=`` for the following page; None on the last page.
        previous_cursor: Pass as ``before=`` for the preceding page; None on the first.
    """

    object_list: list[T]
    next_cursor: str | None = None
    previous_cursor: str | None = None

    @property
    def has_next(self) -> bool:
        """Return whether a page follows this one."""
        return self.next_cursor is not None

    @property
    def has_previous(self) -> bool:
        """Return whether a page precedes this one."""
        return self.previous_cursor is not None

    def __iter__(self) -> Iterator[T]:
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _dump(value: Any) -> Any:
    """Return a JSON-safe form of a sort-key value that the field's ``to_python`` reads back."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value") and isinstance(value.value, str | int):  # an enum member
        return value.value
    return str(value)  # Decimal, UUID


class KeysetPaginator(Generic[T]):
    """Page through a queryset by sort key instead of by offset.

    The sort keys must be non-null concrete fields of the model (``"-created"``
    for descending); the primary key is appended as the last key when missing, so
    rows that tie on the other keys still have one place in the order. Index the
    keys (``Meta.indexes = [("created", "id")]``) and a page deep in a large
    table costs the same as the first.

    Cursors are URL-safe strings. They are checked when read: a cursor that does
    not decode, names another ordering or holds a value its field rejects raises
    :class:`InvalidCursor`. With ``secret`` set they are also HMAC-signed, so a
    client cannot forge a position it was never given.

    Args:
        queryset: The objects to paginate (any existing ordering is replaced).
        per_page: Objects per page.
        order_by: The sort keys, as for ``order_by()``.
        secret: A key to sign cursors with (for example the app's secret key).

    Raises:
        ValueError: ``per_page`` is not a positive integer, or a key is
            unknown, nullable, or a relation that is not a foreign key.
    """

    def __init__(
        self,
        queryset: QuerySet[T],
        per_page: int,
        *,
        order_by: Sequence[str] = ("pk",),
        secret: str | bytes | None = None,
    ) -> None:
        self.per_page = _check_per_page(per_page)
        model = queryset.model
        if isinstance(order_by, str):
            order_by = (order_by,)
        keys: list[tuple[Field[Any], bool]] = []
        for term in order_by:
            desc = term.startswith("-")
            name = term[1:] if desc else term
            keys.append((self._key_field(model, name), desc))
        pk = model._meta.pk
        if all(f is not pk for f, _ in keys):
            keys.append((pk, keys[-1][1] if keys else False))
        self._keys = keys
        self.order_by = tuple(("-" if d else "") + f.attname for f, d in keys)
        self.queryset = queryset.order_by(*self.order_by)
        self._secret = secret.encode() if isinstance(secret, str) else secret
        # Ties a cursor to this model and ordering: one made for another listing is refused.
        self._tag = hashlib.sha256(f"{model._meta.table}:{self.order_by}".encode()).hexdigest()[:8]

    @staticmethod
    def _key_field(model: type[Model], name: str) -> Field[Any]:
        try:
            key = model._meta.get_field(name)
        except CovetError as exc:
            raise ValueError(f"Unknown keyset sort key {name!r}: {exc}") from None
        if key.many_to_many:
            raise ValueError(f"Keyset sort key {name!r} is a many-to-many field. Sort by a column.")
        if key.null:
            raise ValueError(
                f"Keyset sort key {name!r} is nullable; NULLs sort differently on each "
                "database, so a cursor cannot step over them. Sort by a non-null field."
            )
        return key

    # -- cursors --------------------------------------------------------------------------------

    def _sign(self, payload: bytes) -> bytes:
        assert self._secret is not None  # noqa: S101 - internal invariant
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]

    def encode_cursor(self, obj: T) -> str:
        """Return the cursor that points at ``obj``'s position in this ordering."""
        values = [_dump(getattr(obj, f.attname)) for f, _ in self._keys]
        payload = json.dumps([self._tag, values], separators=(",", ":")).encode()
        if self._secret is not None:
            payload = self._sign(payload) + payload
        return _b64encode(payload)

    def decode_cursor(self, cursor: str) -> list[Any]:
        """Return the sort-key values held by ``cursor``.

        Raises:
            InvalidCursor: The cursor is malformed, forged, or from another listing.
        """
        bad = InvalidCursor(
            f"Invalid pagination cursor {cursor[:40]!r}. Start again from the first page."
        )
        # A cursor is a few dozen bytes; refuse a huge one before decoding it.
        if len(cursor) > 4096:
            raise bad
        try:
            raw = _b64decode(cursor)
        except (binascii.Error, ValueError):
            raise bad from None
        if self._secret is not None:
            sig, raw = raw[:16], raw[16:]
            if not hmac.compare_digest(sig, self._sign(raw)):
                raise bad
        try:
            tag, values = json.loads(raw)
        except (ValueError, TypeError):
            raise bad from None
        if tag != self._tag or not isinstance(values, list) or len(values) != len(self._keys):
            raise bad
        out = []
        for (key, _), value in zip(self._keys, values, strict=True):
            if value is None or isinstance(value, dict | list):
                raise bad
            try:
                out.append(key.to_python(value))
            except (ValidationError, ValueError, TypeError, ArithmeticError):
                raise bad from None
        return out

    # -- pages ----------------------------------------------------------------------------------

    def _beyond(self, values: list[Any], *, backward: bool) -> Q:
        """Return the filter for rows strictly after (or before) ``values`` in the ordering.

        ``(a, b) > (x, y)`` expands to ``a >= x AND (a > x OR (a = x AND b > y))``;
        the leading ``a >= x`` lets every backend seek into an index on ``a``.
        """
        alternatives: Q | None = None
        equal: dict[str, Any] = {}
        for (key, desc), value in zip(self._keys, values, strict=True):
            op = "lt" if desc != backward else "gt"
            step = Q(**equal, **{f"{key.attname}__{op}": value})
            alternatives = step if alternatives is None else alternatives | step
            equal[key.attname] = value
        assert alternatives is not None  # noqa: S101 - there is always the pk key
        first, desc = self._keys[0]
        seek = Q(**{f"{first.attname}__{'lte' if desc != backward else 'gte'}": values[0]})
        return seek & alternatives

    async def page(self, *, after: str | None = None, before: str | None = None) -> KeysetPage[T]:
        """Return the page after cursor ``after``, before cursor ``before``, or the first page.

        Raises:
            InvalidCursor: A cursor that does not verify.
            ValueError: Both ``after`` and ``before`` given.
        """
        if after and before:
            raise ValueError("Pass after= or before=, not both.")
        qs = self.queryset
        backward = bool(before)
        cursor = before or after
        if cursor:
            qs = qs.filter(self._beyond(self.decode_cursor(cursor), backward=backward))
        if backward:
            qs = qs.reverse()
        rows = await qs[: self.per_page + 1]
        more = len(rows) > self.per_page
        rows = rows[: self.per_page]
        if backward:
            rows.reverse()
        if not rows:
            return KeysetPage(rows)
        first, last = self.encode_cursor(rows[0]), self.encode_cursor(rows[-1])
        if backward:
            return KeysetPage(rows, next_cursor=last, previous_cursor=first if more else None)
        return KeysetPage(
            rows, next_cursor=last if more else None, previous_cursor=first if after else None
        )


async def cursor_paginate(
    queryset: QuerySet[T],
    *,
    order_by: Sequence[str] = ("pk",),
    after: str | None = None,
    before: str | None = None,
    per_page: int = 20,
    secret: str | bytes | None = None,
) -> KeysetPage[T]:
    """Return one keyset page of ``queryset``; see :class:`KeysetPaginator`.

    Example:
        ``page = await cursor_paginate(Post.objects.all(), order_by=["-published_at"],
        after=request.query_params.get("after"), per_page=50)``
    """
    paginator = KeysetPaginator(queryset, per_page, order_by=order_by, secret=secret)
    return await paginator.page(after=after, before=before)
