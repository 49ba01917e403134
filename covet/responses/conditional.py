"""Conditional and range requests (RFC 9110 sections 13 and 14), as pure functions.

:class:`~covet.responses.FileResponse` uses them to answer ``If-Match``,
``If-None-Match``, ``If-Modified-Since``, ``If-Unmodified-Since``, ``If-Range``
and ``Range``; they take header strings and return plain values, so they are
tested (and fuzzed) without a server.
"""

from __future__ import annotations

from datetime import UTC

__all__ = ("etag_list", "parse_http_date", "parse_range", "strong_match", "weak_match")

#: Ranges accepted in one ``Range`` header; more and it is ignored (Apache's MaxRanges,
#: the CVE-2011-3192 "Apache Killer" defence).
_MAX_RANGES = 200


def parse_http_date(value: str) -> float | None:
    """Return an HTTP date (RFC 9110 5.6.7) as a Unix timestamp, or None when it is invalid."""
    import email.utils  # imported late (~5 ms): only dates need it

    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def etag_list(value: str) -> list[str]:
    """Split an ``If-Match``/``If-None-Match`` value into its entity tags."""
    return [tag.strip() for tag in value.split(",") if tag.strip()]


def weak_match(header: str, etag: str) -> bool:
    """Return whether ``etag`` matches the header by weak comparison (``If-None-Match``)."""
    bare = etag.removeprefix("W/")
    return any(tag == "*" or tag.removeprefix("W/") == bare for tag in etag_list(header))


def strong_match(header: str, etag: str) -> bool:
    """Return whether ``etag`` matches the header by strong comparison (``If-Match``)."""
    if etag.startswith("W/"):
        return False
    return any(tag == "*" or tag == etag for tag in etag_list(header))


def parse_range(header: str, size: int) -> list[tuple[int, int]] | None:
    """Parse a ``Range`` header against a representation of ``size`` bytes.

    Args:
        header: The ``Range`` header value, e.g. ``"bytes=0-99,-500"``.
        size: The length of the full representation.

    Returns:
        ``None`` when the header must be ignored (malformed, another unit, or more
        than 200 ranges); otherwise the satisfiable ranges as
        inclusive ``(first, last)`` pairs, sorted and with overlapping or adjacent
        ranges merged. An empty list means none is satisfiable (416).
    """
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    elements = [element.strip() for element in spec.split(",")]
    elements = [element for element in elements if element]
    if not elements or len(elements) > _MAX_RANGES:
        return None
    ranges: list[tuple[int, int]] = []
    for element in elements:
        first_text, dash, last_text = element.partition("-")
        first_text, last_text = first_text.strip(), last_text.strip()
        if not dash or not (first_text.isdigit() or last_text.isdigit()):
            return None
        if (first_text and not first_text.isascii()) or (last_text and not last_text.isascii()):
            return None
        if not first_text:
            # Suffix range: the last N bytes.
            if not last_text.isdigit():
                return None
            length = int(last_text)
            if length > 0 and size > 0:
                ranges.append((max(size - length, 0), size - 1))
            continue
        if not first_text.isdigit() or (last_text and not last_text.isdigit()):
            return None
        first = int(first_text)
        if last_text and int(last_text) < first:
            return None  # RFC 9110 14.1.1: an invalid range-spec makes the header invalid.
        if first < size:
            last = int(last_text) if last_text else size - 1
            ranges.append((first, min(last, size - 1)))
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for first, last in ranges:
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged
