"""ASGI middleware shipped with covet.

Every middleware is a class ``cls(app, **options)`` whose instances are ASGI
applications, so they wrap covet, any other ASGI app, or each other. Add them
with ``app.add_middleware(CORSMiddleware, allow_origins=[...])``.
"""

from __future__ import annotations

from covet.middleware.cors import CORSMiddleware
from covet.middleware.csrf import CSRFMiddleware, csrf_exempt
from covet.middleware.gzip import GZipMiddleware
from covet.middleware.ratelimit import RateLimitMiddleware
from covet.middleware.requestid import RequestIDMiddleware
from covet.middleware.security import SecurityHeadersMiddleware
from covet.middleware.sessions import SessionMiddleware
from covet.middleware.trustedhost import TrustedHostMiddleware

__all__ = (
    "CORSMiddleware",
    "CSRFMiddleware",
    "GZipMiddleware",
    "RateLimitMiddleware",
    "RequestIDMiddleware",
    "SecurityHeadersMiddleware",
    "SessionMiddleware",
    "TrustedHostMiddleware",
    "csrf_exempt",
)
