"""Result rows, and the read-or-write test for raw SQL."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

__all__ = ("Record", "is_read_only_sql", "make_index")


_READ_PREFIXES = ("SELECT", "VALUES", "SHOW", "EXPLAIN", "DESCRIBE", "TABLE")


@functools.lru_cache(maxsize=2048)
def is_read_only_sql(sql: str) -> bool:
    """Tell whether ``sql`` is a plain read by its first keyword (``SELECT``, ``SHOW``...).

    ``WITH`` is treated as a write because a CTE may wrap ``INSERT``/``UPDATE``;
    the answer errs on the side of "write".
    """
    head = sql.lstrip(" \t\r\n(").split(None, 1)
    return bool(head) and head[0].upper() in _READ_PREFIXES


class Record:
    """A result row with access by column name and by position.

    ``row["name"]``, ``row[0]``, ``dict(row)``, ``row.keys()``, ``len(row)``
    and tuple unpacking (iteration yields the values, like a tuple) all work.
    ``"name" in row`` tests for a column name.
    """

    __slots__ = ("_index", "_values")

    def __init__(self, index: Mapping[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = values

    def __getitem__(self, key: str | int) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._index[key]]
            except KeyError:
                raise KeyError(
                    f"No column {key!r} in this row. Columns: {', '.join(self._index)}."
                ) from None
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of column ``key``, or ``default`` when there is no such column."""
        position = self._index.get(key)
        return default if position is None else self._values[position]

    def keys(self) -> list[str]:
        """Return the column names, in order."""
        return list(self._index)

    def values(self) -> list[Any]:
        """Return the values, in column order."""
        return list(self._values)

    def items(self) -> list[tuple[str, Any]]:
        """Return ``(column, value)`` pairs, in column order."""
        return list(zip(self._index, self._values, strict=True))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record):
            return self.items() == other.items()
        if isinstance(other, tuple):
            return tuple(self._values) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # rows are compared by value, like tuples with names

    def __repr__(self) -> str:
        inner = ", ".join(f"{key}={value!r}" for key, value in self.items())
        return f"<Record {inner}>"


def make_index(names: Sequence[str]) -> dict[str, int]:
    """Map column names to positions; the first of duplicated names wins, like SQL clients do."""
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        index.setdefault(name, position)
    return index
