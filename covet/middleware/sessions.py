"""Deprecated import path: use ``from covet.sessions import SessionMiddleware``.

``from covet.middleware import SessionMiddleware`` remains the documented path.
"""

from __future__ import annotations

from covet.sessions.middleware import SessionMiddleware

__all__ = ("SessionMiddleware",)
