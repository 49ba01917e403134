"""The aiomysql classes covet opens: quiet cursors, and a connection that escapes faster."""

from __future__ import annotations

import datetime
import functools
import itertools
import operator
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("InsertRows", "cursor_classes", "driver_connection_class")

_quoted = "'{}'".format
_tzinfo = operator.attrgetter("tzinfo")
_isoformat = operator.methodcaller("isoformat", " ")

#: The backslash escapes PyMySQL's ``escape_string()`` writes (MySQL's string literal
#: escapes; tests/db/test_mysql_driver.py checks the two agree on every character), as a
#: list indexed by code point: ``str.translate()`` reads a list several times faster
#: than a dict, and a character past its end is kept as it is.
_SPECIALS = {
    "\0": "\\0",
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\032": "\\Z",
    '"': '\\"',
    "'": "\\'",
}
_ESCAPES = [_SPECIALS.get(chr(c), chr(c)) for c in range(128)]
_escape_text = operator.methodcaller("translate", _ESCAPES)
#: Any character that escaping changes: a column without one is only quoted.
_SPECIAL = re.compile("[" + re.escape("".join(_SPECIALS)) + "]")


class InsertRows(list[Any]):
    """A multi-row INSERT's parameters (row by row), with the same values column by column.

    aiomysql writes every value into the statement, calling the connection's
    ``escape()`` once per value (4,000 calls for 1,000 rows of 4 columns). Handed
    this list, covet's cursor escapes each column instead, in C loops where the
    column holds one plain type (see ``escape_columns()``), and writes exactly
    what ``escape()`` would have written for each value.
    """

    __slots__ = ("columns",)

    def __init__(self, rows: Sequence[Any], columns: list[list[Any]]) -> None:
        super().__init__(rows)
        self.columns = columns


@functools.cache
def cursor_classes() -> tuple[type[Any], type[Any]]:
    """Build aiomysql cursor classes that do not turn server notes into Python warnings.

    aiomysql runs SHOW WARNINGS after every statement with warnings and re-raises each as
    a Python ``Warning`` (an extra round trip, and an error under ``-W error``); with a
    strict sql_mode the serious ones are errors already.
    """
    import aiomysql

    class QuietCursor(aiomysql.Cursor):  # type: ignore[misc]
        async def _show_warnings(self, conn: Any) -> None:
            return

        def _escape_args(self, args: Any, conn: Any) -> Any:
            if type(args) is InsertRows:
                escaped = conn.escape_columns(args.columns)
                if len(escaped) == 1:
                    return tuple(escaped[0])
                return tuple(itertools.chain(*zip(*escaped, strict=True)))
            return super()._escape_args(args, conn)

    class QuietSSCursor(aiomysql.SSCursor):  # type: ignore[misc]
        async def _show_warnings(self, conn: Any) -> None:
            return

    return QuietCursor, QuietSSCursor


@functools.cache
def driver_connection_class() -> type[Any]:
    """Build the aiomysql Connection subclass covet opens.

    aiomysql 0.3 escapes ``bytes`` parameters through a helper that PyMySQL 1.1+
    replaced with a string ("DO NOT IMPORT THIS!!!", PyMySQL issue #1274), so
    binding bytes fails with "'str' object is not callable". The subclass
    writes binary values as a hexadecimal ``_binary`` literal instead.
    """
    import aiomysql
    from pymysql.constants import SERVER_STATUS
    from pymysql.converters import escape_item, escape_string

    no_backslash = SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES

    class CovetMySQLConnection(aiomysql.Connection):  # type: ignore[misc]
        def escape(self, obj: Any) -> str:
            # Called once per value of every statement (4,000 times for a bulk INSERT of
            # 1,000 rows of 4 columns): the common types first, each as PyMySQL
            # writes it, without its generic encoder lookup.
            kind = type(obj)
            if kind is str:
                text: str = obj
                if self.server_status & no_backslash:
                    return "'" + text.replace("'", "''") + "'"
                return "'" + str(escape_string(text)) + "'"
            if kind is int:
                return str(obj)
            if obj is None:
                return "NULL"
            if isinstance(obj, (bytes, bytearray, memoryview)):
                return f"_binary X'{bytes(obj).hex()}'"
            result: str = escape_item(obj, self._charset)
            return result

        def escape_columns(self, columns: list[list[Any]]) -> list[list[str]]:
            # What escape() writes for each value, a column at a time: a column of one
            # plain type (int, str, naive datetime: bulk_create()'s cleaned values) in C
            # loops, any other column value by value.
            backslashes = not self.server_status & no_backslash
            out: list[list[str]] = []
            for column in columns:
                kinds = set(map(type, column))
                if kinds == {int}:
                    out.append(list(map(str, column)))
                elif kinds == {str} and backslashes:
                    # One search over the whole column finds whether any value needs escapes.
                    if _SPECIAL.search("".join(column)) is not None:
                        column = list(map(_escape_text, column))
                    out.append(list(map(_quoted, column)))
                elif kinds == {datetime.datetime} and set(map(_tzinfo, column)) == {None}:
                    # escape_datetime()'s text: microseconds only when not zero, as isoformat().
                    out.append(list(map(_quoted, map(_isoformat, column))))
                else:
                    out.append(list(map(self.escape, column)))
            return out

    return CovetMySQLConnection
