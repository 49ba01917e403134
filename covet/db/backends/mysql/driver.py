"""The aiomysql classes covet opens: quiet cursors, and a connection that escapes faster."""

from __future__ import annotations

import functools
from typing import Any

__all__ = ("cursor_classes", "driver_connection_class")


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

    return CovetMySQLConnection
