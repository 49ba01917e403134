"""Deprecated import path: use :mod:`covet.sessions` (``covet.sessions.database``).

Kept so projects that list ``"covet.sessions_db"`` in ``[tool.covet] models``
or import :class:`DatabaseStore` from here keep working.
"""

from __future__ import annotations

from covet.sessions.database import DatabaseSession, DatabaseStore

__all__ = ("DatabaseSession", "DatabaseStore")
