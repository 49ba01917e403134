r"""Translate the ``:name`` placeholders of raw SQL into each driver's style.

Raw SQL written by users (``db.fetch_all("SELECT * FROM t WHERE id = :id",
{"id": 1})``) uses named placeholders, like SQLAlchemy's ``text()``. The
drivers want positional parameters: ``?`` (sqlite3), ``$1`` (asyncpg) or
``%s`` (aiomysql). :func:`compile_named` rewrites the SQL once per distinct
string (the result is cached) with a small scanner that leaves alone:

* string literals ``'...'`` (with ``''`` doubling, and backslash escapes where
  the dialect has them: MySQL strings and PostgreSQL ``E'...'`` strings),
* quoted identifiers ``"..."`` and MySQL backticks,
* ``-- line`` and ``/* block */`` comments (and MySQL's ``# line`` comments),
* PostgreSQL dollar-quoted bodies (``$$ ... $$``, ``$tag$ ... $tag$``),
* PostgreSQL ``::type`` casts.

Write ``\\:`` for a literal colon that would otherwise start a placeholder.
For the ``format`` style (MySQL) every literal ``%`` is doubled, because the
driver always %-formats the statement.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Literal

from covet.db.exceptions import ProgrammingError

__all__ = ("ParamStyle", "bind_named", "compile_named")

ParamStyle = Literal["qmark", "numeric", "format"]

_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_CHARS = _IDENT_START | frozenset("0123456789")


def _skip_quoted(sql: str, i: int, quote: str, backslash: bool) -> int:
    """Return the index just past the quoted run that starts at ``sql[i]``."""
    n = len(sql)
    j = i + 1
    while j < n:
        ch = sql[j]
        if backslash and ch == "\\":
            j += 2
            continue
        if ch == quote:
            # A doubled quote is an escaped quote inside the literal (SQL standard).
            if j + 1 < n and sql[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    return n


def _dollar_tag(sql: str, i: int) -> str | None:
    """Return the ``$tag$`` opening a PostgreSQL dollar-quoted string at ``i``, if any."""
    j = i + 1
    n = len(sql)
    while j < n and sql[j] in _IDENT_CHARS:
        j += 1
    if j < n and sql[j] == "$":
        tag = sql[i : j + 1]
        # "$1" is a positional parameter, not a tag: tags cannot start with a digit.
        if len(tag) > 2 and tag[1].isdigit():
            return None
        return tag
    return None


@functools.lru_cache(maxsize=1024)
def compile_named(sql: str, style: ParamStyle) -> tuple[str, tuple[str, ...]]:
    """Rewrite ``:name`` placeholders in ``sql`` for a driver's parameter style.

    Args:
        sql: The SQL text with ``:name`` placeholders.
        style: ``"qmark"`` (``?``), ``"numeric"`` (``$1``; a repeated name reuses its
            number) or ``"format"`` (``%s``; literal ``%`` are doubled).

    Returns:
        The rewritten SQL and the parameter names in the order the driver
        expects their values (names repeat for ``qmark``/``format``).
    """
    out: list[str] = []
    names: list[str] = []
    numbers: dict[str, int] = {}
    mysql = style == "format"
    n = len(sql)
    i = 0
    start = 0
    while i < n:
        ch = sql[i]
        if ch == "'":
            # PostgreSQL E'...' strings honour backslash escapes; MySQL strings always do.
            escaped = mysql or (
                i > 0 and sql[i - 1] in "eE" and (i < 2 or sql[i - 2] not in _IDENT_CHARS)
            )
            end = _skip_quoted(sql, i, "'", escaped)
            if mysql:
                out.append(sql[start:i])
                out.append(sql[i:end].replace("%", "%%"))
                start = end
            i = end
        elif ch == '"' or (ch == "`" and mysql):
            end = _skip_quoted(sql, i, ch, False)
            if mysql:
                out.append(sql[start:i])
                out.append(sql[i:end].replace("%", "%%"))
                start = end
            i = end
        elif (ch == "-" and sql.startswith("--", i)) or (ch == "#" and mysql):
            end = sql.find("\n", i)
            end = n if end == -1 else end
            if mysql:
                out.append(sql[start:i])
                out.append(sql[i:end].replace("%", "%%"))
                start = end
            i = end
        elif ch == "/" and sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end == -1 else end + 2
            if mysql:
                out.append(sql[start:i])
                out.append(sql[i:end].replace("%", "%%"))
                start = end
            i = end
        elif ch == "$" and style == "numeric" and (tag := _dollar_tag(sql, i)) is not None:
            end = sql.find(tag, i + len(tag))
            i = n if end == -1 else end + len(tag)
        elif ch == "%" and mysql:
            out.append(sql[start : i + 1])
            out.append("%")
            i += 1
            start = i
        elif ch == "\\" and i + 1 < n and sql[i + 1] == ":":
            # "\:" is an escaped colon: drop the backslash, keep the colon.
            out.append(sql[start:i])
            out.append(":")
            i += 2
            start = i
        elif ch == ":":
            if i + 1 < n and sql[i + 1] == ":":
                # A PostgreSQL "::type" cast.
                i += 2
                continue
            if (
                i + 1 < n
                and sql[i + 1] in _IDENT_START
                and (i == 0 or sql[i - 1] not in _IDENT_CHARS)
            ):
                j = i + 1
                while j < n and sql[j] in _IDENT_CHARS:
                    j += 1
                name = sql[i + 1 : j]
                out.append(sql[start:i])
                if style == "qmark":
                    out.append("?")
                    names.append(name)
                elif style == "format":
                    out.append("%s")
                    names.append(name)
                else:
                    if name not in numbers:
                        numbers[name] = len(numbers) + 1
                        names.append(name)
                    out.append(f"${numbers[name]}")
                i = j
                start = j
            else:
                i += 1
        else:
            i += 1
    out.append(sql[start:])
    return "".join(out), tuple(names)


def bind_named(
    sql: str, params: Mapping[str, Any] | None, style: ParamStyle
) -> tuple[str, tuple[Any, ...]]:
    """Translate ``sql`` and order the values of ``params`` for the driver.

    Args:
        sql: SQL text with ``:name`` placeholders.
        params: The values by name; ``None`` when the SQL has no placeholders.
        style: The driver's parameter style (see :func:`compile_named`).

    Returns:
        The driver-ready SQL and the positional parameter tuple.

    Raises:
        ProgrammingError: A placeholder has no value, a value has no
            placeholder, or ``params`` is not a mapping.
    """
    if params is not None and not isinstance(params, Mapping):
        raise ProgrammingError(
            f"Raw SQL parameters must be a mapping of names to values, got "
            f"{type(params).__name__} {params!r}. Write :name placeholders and pass "
            "a dict such as {'name': value}."
        )
    compiled, names = compile_named(sql, style)
    values = params or {}
    try:
        args = tuple(values[name] for name in names)
    except KeyError as exc:
        raise ProgrammingError(
            f"Missing value for the SQL parameter :{exc.args[0]} in {sql!r}. "
            f"Pass it in params, e.g. {{{exc.args[0]!r}: ...}}."
        ) from None
    if len(values) != len(set(names)):
        extra = sorted(set(values) - set(names))
        raise ProgrammingError(
            f"Unexpected SQL parameter(s) {', '.join(map(repr, extra))} for {sql!r}, which "
            f"uses {', '.join(':' + name for name in dict.fromkeys(names)) or 'no placeholders'}. "
            "Remove them or add the matching :name placeholders."
        )
    return compiled, args
