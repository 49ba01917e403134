"""The lookup index: find the route for a path without scanning every route."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from covet.routing.routes import BaseRoute, Mount, Route

if TYPE_CHECKING:
    from collections.abc import Sequence

    from covet.routing.patterns import _PathPattern

__all__: tuple[str, ...] = ()


class _Entry:
    """One alternative of the index: a path pattern and what it leads to.

    For HTTP, ``methods`` maps each allowed method to its route and ``allow``
    is the precomputed ``Allow`` header; for websockets, ``methods`` has the
    single key ``"WEBSOCKET"``. A mount has ``mount`` set and matches any method.
    """

    __slots__ = ("allow", "methods", "mount", "pattern")

    def __init__(self, pattern: _PathPattern, mount: Mount | None = None) -> None:
        self.pattern = pattern
        self.methods: dict[str, BaseRoute] = {}
        self.mount = mount
        self.allow = ""


class _Group:
    """Entries tried in order, compiled into one alternation regex."""

    __slots__ = ("entries", "regex", "slots")

    def __init__(self, entries: list[_Entry]) -> None:
        self.entries = entries
        sources: list[str] = []
        # Maps the index of each alternative's outer group to its entry and
        # the slice of Match.groups() holding its parameters; Match.lastindex
        # names the outer group because it closes last.
        self.slots: dict[int, tuple[_Entry, slice]] = {}
        group = 0
        for entry in entries:
            group += 1
            outer = group
            count = len(entry.pattern.param_names) + (1 if entry.mount is not None else 0)
            # groups()[outer] is group number outer + 1, the first parameter.
            self.slots[outer] = (entry, slice(outer, outer + count))
            group += count
            sources.append(f"({entry.pattern.source})")
        self.regex = re.compile("|".join(sources))

    def match(self, path: str) -> tuple[_Entry, tuple[str, ...]] | None:
        """Return the first entry whose pattern matches ``path``, with the raw values."""
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        entry, values = self.slots[found.lastindex or 0]
        return entry, found.groups()[values]


class _Index:
    """The lookup structure for one scope type (``http`` or ``websocket``)."""

    __slots__ = ("groups", "static", "wildcard")

    def __init__(self, entries: list[_Entry]) -> None:
        self.static: dict[str, _Entry] = {}
        by_segment: dict[str, list[_Entry]] = {}
        wildcard: list[_Entry] = []
        for entry in entries:
            pattern = entry.pattern
            if pattern.is_static and entry.mount is None:
                self.static[pattern.path] = entry
            elif pattern.first_segment is None:
                wildcard.append(entry)
            else:
                by_segment.setdefault(pattern.first_segment, []).append(entry)
        self.groups = {segment: _Group(group) for segment, group in by_segment.items()}
        self.wildcard = _Group(wildcard) if wildcard else None

    def candidates(self, path: str) -> list[_Entry]:
        """Return every entry that might match ``path``, in precedence order."""
        result: list[_Entry] = []
        static = self.static.get(path)
        if static is not None:
            result.append(static)
        end = path.find("/", 1)
        group = self.groups.get(path[1:end] if end != -1 else path[1:])
        if group is not None:
            result.extend(group.entries)
        if self.wildcard is not None:
            result.extend(self.wildcard.entries)
        return result


def _build_entries(routes: Sequence[BaseRoute], kind: type[BaseRoute]) -> list[_Entry]:
    """Merge routes sharing a path pattern into entries, keeping first-seen order."""
    entries: list[_Entry] = []
    by_path: dict[str, _Entry] = {}
    for route in routes:
        if isinstance(route, Mount):
            entries.append(_Entry(route._pattern, mount=route))
            continue
        if not isinstance(route, kind):
            continue
        entry = by_path.get(route.path)
        if entry is None:
            entry = by_path[route.path] = _Entry(route._pattern)
            entries.append(entry)
        if isinstance(route, Route):
            for method in route.methods:
                entry.methods.setdefault(method, route)
        else:
            entry.methods.setdefault("WEBSOCKET", route)
    for entry in entries:
        entry.allow = ", ".join(sorted(entry.methods))
    return entries


_Resolved = tuple[_Entry | None, BaseRoute | None, dict[str, Any], str]
