"""SQL templates of database functions (``covet.db.functions``), with ANSI defaults.

The compiler never writes a function's SQL itself: a function node asks
``ops.function_template(key, arity, options)`` for a template in which
``{0}``, ``{1}``... stand for the rendered arguments, and renders each
argument where (and as often as) the template names it. A backend spells a
function its own way by overriding the ``fn_<key>`` method, and may repeat an
argument (``{0} IS NULL, {0}``): the node renders it, and collects its
parameters for a cached query, once per occurrence.

Every template here is shared text, computed from the key, the arity and
options that are part of the query shape, never from values, so it is safe in
the compiled-SQL cache. Options are validated before they get here (integers
are ``int``, names are identifiers).
"""

from __future__ import annotations

from typing import Any, NoReturn

from covet.db.exceptions import NotSupportedError

__all__ = ("FunctionOperations", "arg_list")


def arg_list(arity: int, start: int = 0) -> str:
    """Return ``"{0}, {1}, ..."`` for ``arity`` arguments from ``start``."""
    return ", ".join(f"{{{i}}}" for i in range(start, arity))


class FunctionOperations:
    """The ANSI spelling of the functions of :mod:`covet.db.functions`.

    PostgreSQL is closest to it; SQLite and MySQL override what they spell
    differently. A function a backend cannot run raises
    :class:`~covet.db.exceptions.NotSupportedError` naming the backend.
    """

    #: The backend's name, used in error messages (see BaseOperations).
    telemetry_name: str = "other_sql"

    def quote_name(self, name: str) -> str:
        """Quote an identifier (implemented by BaseOperations)."""
        raise NotImplementedError

    def function_template(self, key: str, arity: int, options: tuple[Any, ...]) -> str:
        """Return the SQL template of function ``key`` with ``arity`` arguments.

        Args:
            key: The function's key (``"coalesce"``, ``"trunc"``...), set by the
                expression class, never by a user.
            arity: The number of rendered arguments.
            options: The function's validated, hashable options (a truncation kind,
                a number of decimal places...).

        Raises:
            NotSupportedError: This backend has no such function.
        """
        renderer = getattr(self, f"fn_{key}", None)
        if renderer is None:
            self.unsupported(f"The database function {key!r}")
        return str(renderer(arity, *options))

    def unsupported(self, what: str) -> NoReturn:
        """Raise NotSupportedError saying that ``what`` is not available on this backend."""
        raise NotSupportedError(f"{what} is not supported on {self.telemetry_name}.")

    # -- generic and text ------------------------------------------------------------------

    def fn_func(self, arity: int, name: str) -> str:
        """Render ``NAME(args)`` for ``Func(function=...)`` and the window functions."""
        return f"{name}({arg_list(arity)})"

    def fn_coalesce(self, arity: int) -> str:
        """Render COALESCE: the first non-NULL argument."""
        return f"COALESCE({arg_list(arity)})"

    def fn_greatest(self, arity: int) -> str:
        """Render GREATEST, NULL when any argument is NULL (MySQL's and SQLite's rule)."""
        return f"GREATEST({arg_list(arity)})"

    def fn_least(self, arity: int) -> str:
        """Render LEAST, NULL when any argument is NULL."""
        return f"LEAST({arg_list(arity)})"

    def fn_lower(self, arity: int) -> str:
        """Render LOWER (Unicode-aware on every backend)."""
        return "LOWER({0})"

    def fn_upper(self, arity: int) -> str:
        """Render UPPER (Unicode-aware on every backend)."""
        return "UPPER({0})"

    def fn_length(self, arity: int) -> str:
        """Render the length in characters (not bytes)."""
        return "LENGTH({0})"

    def fn_concat(self, arity: int) -> str:
        """Render text concatenation in which NULL counts as the empty string."""
        return "(" + " || ".join(f"COALESCE({{{i}}}, '')" for i in range(arity)) + ")"

    def fn_substr(self, arity: int, pos: int, length: int | None) -> str:
        """Render SUBSTR (1-based ``pos``, to the end without ``length``)."""
        return f"SUBSTR({{0}}, {pos}, {length})" if length is not None else f"SUBSTR({{0}}, {pos})"

    def fn_trim(self, arity: int, side: str) -> str:
        """Render TRIM, LTRIM or RTRIM of spaces (``side`` is ``""``, ``"L"`` or ``"R"``)."""
        return f"{side}TRIM({{0}})"

    def fn_replace(self, arity: int) -> str:
        """Render REPLACE(text, search, replacement) (case-sensitive everywhere)."""
        return "REPLACE({0}, {1}, {2})"

    def fn_abs(self, arity: int) -> str:
        """Render ABS."""
        return "ABS({0})"

    def fn_round(self, arity: int, places: int, kind: str) -> str:
        """Render ROUND to ``places`` decimals, half away from zero; ``kind`` is the input's."""
        return f"ROUND({{0}}, {places})"

    def fn_now(self, arity: int) -> str:
        """Render the current time (the statement's, in UTC)."""
        return "CURRENT_TIMESTAMP"

    def fn_cast(
        self, arity: int, internal_type: str, size: tuple[int, ...], input_type: str | None
    ) -> str:
        """Render CAST to the type of a field (``size``: max_length or digits and places)."""
        self.unsupported(f"Cast to {internal_type!r}")

    def fn_collate(self, arity: int, name: str) -> str:
        """Render ``expr COLLATE name``."""
        return f"{{0}} COLLATE {self.quote_name(name)}"

    # -- date and time (values stored in UTC: see DateTimeField) -----------------------------

    def fn_trunc(self, arity: int, kind: str, input_type: str) -> str:
        """Render truncation of a ``"datetime"``/``"date"`` to ``kind`` (year...second, date)."""
        self.unsupported(f"Trunc({kind!r})")

    def fn_extract(self, arity: int, lookup: str, input_type: str) -> str:
        """Render extraction of ``lookup`` (year, month, week_day...) as an integer."""
        self.unsupported(f"Extract({lookup!r})")

    # -- ordering and windows ------------------------------------------------------------------

    def fn_order(self, arity: int, descending: bool, nulls: str | None) -> str:
        """Render an ORDER BY term; ``nulls`` is ``"first"``, ``"last"`` or None (default)."""
        sql = "{0} DESC" if descending else "{0} ASC"
        return f"{sql} NULLS {nulls.upper()}" if nulls else sql

    def fn_lag(self, arity: int, offset: int) -> str:
        """Render LAG(expr, offset[, default])."""
        return f"LAG({{0}}, {offset}{', {1}' if arity > 1 else ''})"

    def fn_lead(self, arity: int, offset: int) -> str:
        """Render LEAD(expr, offset[, default])."""
        return f"LEAD({{0}}, {offset}{', {1}' if arity > 1 else ''})"

    def fn_ntile(self, arity: int, buckets: int) -> str:
        """Render NTILE(buckets)."""
        return f"NTILE({buckets})"

    def fn_nth_value(self, arity: int, nth: int) -> str:
        """Render NTH_VALUE(expr, nth)."""
        return f"NTH_VALUE({{0}}, {nth})"
