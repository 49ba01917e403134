"""Database functions, date truncation/extraction, ordering terms and window functions.

The expressions here work like Django's ``django.db.models.functions``: use
them in ``annotate()``, ``values()``, ``order_by()``, as a ``filter()`` value,
or inside each other. Each renders the same result on SQLite, PostgreSQL and
MySQL/MariaDB; where the SQL differs the backend's ``ops`` spells it (see
:mod:`covet.db.backends.base.functions`). Choices made where the databases
disagree, documented in ``docs/orm/functions.md``:

- ``Greatest``/``Least`` return NULL when any argument is NULL (PostgreSQL's
  own GREATEST skips NULLs; covet makes it follow MySQL and SQLite). Wrap
  arguments in ``Coalesce`` to skip NULLs.
- ``Concat`` treats NULL as the empty string (as Django does).
- ``Length`` counts characters, never bytes.
- ``Round`` rounds halves away from zero for integers and decimals.
- ``Trunc``/``Extract`` compute in UTC, the zone ``DateTimeField`` stores.
- ``filter()`` on a window annotation raises :class:`FieldError`: SQL
  computes windows after WHERE.

A positional string argument names a field (``Lower("name")`` is
``Lower(F("name"))``); other plain values become bound parameters.
"""

from __future__ import annotations

from covet.db.functions.base import Func, OrderBy
from covet.db.functions.dates import (
    Extract,
    ExtractDay,
    ExtractHour,
    ExtractIsoWeekDay,
    ExtractIsoYear,
    ExtractMinute,
    ExtractMonth,
    ExtractQuarter,
    ExtractSecond,
    ExtractWeek,
    ExtractWeekDay,
    ExtractYear,
    Trunc,
    TruncDate,
    TruncDay,
    TruncHour,
    TruncMinute,
    TruncMonth,
    TruncQuarter,
    TruncSecond,
    TruncWeek,
    TruncYear,
)
from covet.db.functions.text import (
    Abs,
    Cast,
    Coalesce,
    Collate,
    Concat,
    Greatest,
    Least,
    Length,
    Lower,
    LTrim,
    Now,
    Replace,
    Round,
    RTrim,
    Substr,
    Trim,
    Upper,
)
from covet.db.functions.window import (
    CumeDist,
    DenseRank,
    FirstValue,
    Lag,
    LastValue,
    Lead,
    NthValue,
    Ntile,
    PercentRank,
    Rank,
    RowNumber,
    RowRange,
    ValueRange,
    Window,
    WindowFunction,
)

__all__ = (
    "Abs",
    "Cast",
    "Coalesce",
    "Collate",
    "Concat",
    "CumeDist",
    "DenseRank",
    "Extract",
    "ExtractDay",
    "ExtractHour",
    "ExtractIsoWeekDay",
    "ExtractIsoYear",
    "ExtractMinute",
    "ExtractMonth",
    "ExtractQuarter",
    "ExtractSecond",
    "ExtractWeek",
    "ExtractWeekDay",
    "ExtractYear",
    "FirstValue",
    "Func",
    "Greatest",
    "LTrim",
    "Lag",
    "LastValue",
    "Lead",
    "Least",
    "Length",
    "Lower",
    "Now",
    "NthValue",
    "Ntile",
    "OrderBy",
    "PercentRank",
    "RTrim",
    "Rank",
    "Replace",
    "Round",
    "RowNumber",
    "RowRange",
    "Substr",
    "Trim",
    "Trunc",
    "TruncDate",
    "TruncDay",
    "TruncHour",
    "TruncMinute",
    "TruncMonth",
    "TruncQuarter",
    "TruncSecond",
    "TruncWeek",
    "TruncYear",
    "Upper",
    "ValueRange",
    "Window",
    "WindowFunction",
)
