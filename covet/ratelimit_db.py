"""Deprecated import path: use :mod:`covet.ratelimit` (``covet.ratelimit.database``).

Kept so projects that list ``"covet.ratelimit_db"`` in ``[tool.covet] models``
or import :class:`DatabaseBackend` from here keep working.
"""

from __future__ import annotations

from covet.ratelimit.database import DatabaseBackend, RateLimitCounter

__all__ = ("DatabaseBackend", "RateLimitCounter")
