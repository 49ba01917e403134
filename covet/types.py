"""ASGI type aliases shared by the whole framework.

These follow the ASGI 3 specification (https://asgi.readthedocs.io/) and are
deliberately loose (``MutableMapping[str, Any]``) because servers are free to
add keys to scopes and messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ("ASGIApp", "Message", "Receive", "Scope", "Send")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
