"""aiomysql shims: the cursor and connection classes covet opens.

Built on first use (aiomysql is an optional dependency, imported late), once
per process.
"""

from __future__ import annotations

import functools
from typing import Any

__all__: tuple[str, ...] = ()


@functools.cache
def _cursor_classes() -> tuple[type[Any], type[Any]]:
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
def _driver_connection_class() -> type[Any]:
    """Build the aiomysql Connection subclass covet opens.

    aiomysql 0.3 escapes ``bytes`` parameters through a helper that PyMySQL 1.1+
    replaced with a string ("DO NOT IMPORT THIS!!!", PyMySQL issue #1274), so
    binding bytes fails with "'str' object is not callable". The subclass
    writes binary values as a hexadecimal ``_binary`` literal instead.
    """
    import aiomysql

    class CovetMySQLConnection(aiomysql.Connection):  # type: ignore[misc]
        def escape(self, obj: Any) -> str:
            if isinstance(obj, (bytes, bytearray, memoryview)):
                return f"_binary X'{bytes(obj).hex()}'"
            result: str = super().escape(obj)
            return result

    return CovetMySQLConnection
