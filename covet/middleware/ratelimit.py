"""Deprecated import path: use ``from covet.ratelimit import RateLimitMiddleware``.

``from covet.middleware import RateLimitMiddleware`` remains the documented path.
"""

from __future__ import annotations

from covet.ratelimit.middleware import RateLimitMiddleware

__all__ = ("RateLimitMiddleware",)
