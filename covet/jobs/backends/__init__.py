"""Job backends: the application's database (:mod:`.database`) and Redis (:mod:`.redis`)."""

from __future__ import annotations

__all__: tuple[str, ...] = ()
