"""Graceful shutdown: what a covet process does between SIGTERM and its exit.

Under ``covet run`` (uvicorn), one worker process goes through these steps,
in this order, so a load balancer loses no request:

1. SIGTERM arrives: the app is marked draining at once (``app.draining``), so
   ``/ready`` answers 503 ``draining`` while every other route still serves.
2. For ``drain_seconds`` (default 0) nothing else changes: the listener stays
   open and requests still succeed while the balancer's health checks see the
   503 and take the process out of rotation (what a Kubernetes ``preStop``
   sleep does).
3. The server stops accepting: new connections are refused, idle keep-alive
   connections are closed, in-flight responses go out with
   ``Connection: close``, and each open websocket gets a close frame with code
   1012 (service restart: reconnect, preferably elsewhere).
4. In-flight requests and websocket handlers get up to ``graceful_timeout``
   seconds (default 30) to finish; those still running then are cancelled.
5. Lifespan shutdown: the ``on_shutdown`` hooks and the ``lifespan`` context's
   exit run, which close the database pools.

Steps 3 to 5 are uvicorn's own. This module adds step 1 and 2: the app wraps
the server's SIGTERM handler when its lifespan starts (:func:`drain_on_sigterm`),
and :class:`ShutdownOptions` reads the two settings, ``COVET_DRAIN_SECONDS``
and ``COVET_GRACEFUL_TIMEOUT``, which ``covet run`` also takes as
``--drain-seconds`` and ``--graceful-timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import FrameType

    from covet.config import Settings

__all__ = (
    "DEFAULT_DRAIN_SECONDS",
    "DEFAULT_GRACEFUL_TIMEOUT",
    "DRAIN_VARIABLE",
    "GRACEFUL_TIMEOUT_VARIABLE",
    "ShutdownOptions",
    "drain_on_sigterm",
    "drain_seconds_from_environ",
)

#: Seconds between SIGTERM and the server refusing new connections.
DEFAULT_DRAIN_SECONDS = 0.0
#: Seconds in-flight requests get to finish once the server stops accepting (DEFAULTS.md).
DEFAULT_GRACEFUL_TIMEOUT = 30.0
#: The environment variable holding the drain, in seconds.
DRAIN_VARIABLE = "COVET_DRAIN_SECONDS"
#: The environment variable holding the graceful timeout, in seconds.
GRACEFUL_TIMEOUT_VARIABLE = "COVET_GRACEFUL_TIMEOUT"

logger = logging.getLogger("covet")


class _Drainable(Protocol):
    draining: bool


def _seconds(value: object, name: str) -> float:
    """Return ``value`` as a finite number of seconds, 0 or more, or raise naming ``name``."""
    number: float | None = None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    if number is None or not math.isfinite(number) or number < 0:
        raise ImproperlyConfigured(
            f"Invalid {name} {value!r}. Use a number of seconds, 0 or more (e.g. 5)."
        )
    return number


@dataclass(frozen=True, slots=True)
class ShutdownOptions:
    """How long a process drains and waits when it is told to stop.

    Attributes:
        drain_seconds: Seconds between SIGTERM and the server refusing new
            connections, during which ``/ready`` answers 503 and everything
            else is served as usual. Set it to how long your load balancer
            takes to notice a failing readiness check (or to the endpoint
            propagation delay on Kubernetes); 0 stops accepting at once.
        graceful_timeout: Seconds in-flight requests and websocket handlers
            get to finish once the server stops accepting; those still
            running then are cancelled.

    Raises:
        ImproperlyConfigured: For a negative or non-numeric value.
    """

    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT

    def __post_init__(self) -> None:
        object.__setattr__(self, "drain_seconds", _seconds(self.drain_seconds, "drain_seconds"))
        object.__setattr__(
            self, "graceful_timeout", _seconds(self.graceful_timeout, "graceful_timeout")
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> ShutdownOptions:
        """Read ``COVET_DRAIN_SECONDS`` and ``COVET_GRACEFUL_TIMEOUT``.

        From the environment, else the project's ``.env``, else the defaults.

        Raises:
            ImproperlyConfigured: For a value that is not a number of seconds.
        """
        env = {**settings.env_file, **(os.environ if environ is None else environ)}
        drain = env.get(DRAIN_VARIABLE, "").strip()
        timeout = env.get(GRACEFUL_TIMEOUT_VARIABLE, "").strip()
        return cls(
            drain_seconds=_seconds(drain, DRAIN_VARIABLE) if drain else DEFAULT_DRAIN_SECONDS,
            graceful_timeout=(
                _seconds(timeout, GRACEFUL_TIMEOUT_VARIABLE)
                if timeout
                else DEFAULT_GRACEFUL_TIMEOUT
            ),
        )


def drain_seconds_from_environ(environ: Mapping[str, str] | None = None) -> float:
    """Return ``COVET_DRAIN_SECONDS`` from the environment (0 when unset).

    The app reads it when its lifespan starts: ``covet run`` sets it for its
    worker processes from ``--drain-seconds`` or the project's settings.

    Raises:
        ImproperlyConfigured: For a value that is not a number of seconds.
    """
    raw = (os.environ if environ is None else environ).get(DRAIN_VARIABLE, "").strip()
    return _seconds(raw, DRAIN_VARIABLE) if raw else DEFAULT_DRAIN_SECONDS


class _SignalDrain:
    """The SIGTERM handler installed over the server's by :func:`drain_on_sigterm`."""

    def __init__(
        self,
        app: _Drainable,
        previous: Callable[[int, FrameType | None], object],
        drain_seconds: float,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.app = app
        self.previous = previous
        self.drain_seconds = drain_seconds
        self.loop = loop
        self.received = False
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        # Runs between two bytecodes of the main thread, possibly inside the event
        # loop's own code: only set flags here and hand the rest to the loop.
        if self.received:
            # With --workers, a SIGTERM sent to the whole process group reaches a
            # worker twice (directly, then from the supervisor): keep draining.
            return
        self.received = True
        self.app.draining = True
        if self.drain_seconds <= 0:
            self.previous(signum, frame)
            return
        try:
            self.loop.call_soon_threadsafe(self._start_drain, signum)
        except RuntimeError:  # the loop is closed: nothing is served any more
            self.previous(signum, frame)

    def _start_drain(self, signum: int) -> None:
        logger.info(
            "Received SIGTERM: draining for %g s (/ready answers 503) before the server "
            "stops accepting connections.",
            self.drain_seconds,
        )
        self._timer = self.loop.call_later(self.drain_seconds, self._stop, signum)

    def _stop(self, signum: int) -> None:
        self._timer = None
        self.previous(signum, None)

    def uninstall(self) -> None:
        """Put the server's handler back and forget a drain still counting down."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        previous = self.previous  # read first: the identity check narrows `self` for mypy
        if signal.getsignal(signal.SIGTERM) is self:
            signal.signal(signal.SIGTERM, previous)


def drain_on_sigterm(
    app: _Drainable, *, drain_seconds: float = DEFAULT_DRAIN_SECONDS
) -> Callable[[], None] | None:
    """Mark ``app`` draining as soon as SIGTERM arrives; pass the signal on after the drain.

    Wraps the server's SIGTERM handler: on SIGTERM, ``app.draining`` becomes
    true at once and, ``drain_seconds`` later, the server's handler runs (the
    server then stops accepting and shuts down gracefully). A second SIGTERM
    changes nothing; SIGINT is not wrapped, so Ctrl+C still stops at once.

    Call it from the event loop thread while the server serves (a
    :class:`~covet.Covet` app does, when its lifespan starts). It does nothing
    outside the main thread (signals cannot be handled there, as under
    :class:`~covet.testing.TestClient`) or when SIGTERM has no Python handler
    (no server installed one, so SIGTERM ends the process at once anyway).

    Args:
        app: What to mark: anything with a ``draining`` attribute.
        drain_seconds: Seconds between SIGTERM and the server's handler.

    Returns:
        A callable restoring the server's handler (call it at lifespan shutdown),
        or None when nothing was installed.

    Raises:
        ImproperlyConfigured: For a negative ``drain_seconds``.
    """
    seconds = _seconds(drain_seconds, "drain_seconds")
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous) or isinstance(previous, _SignalDrain):
        return None
    handler = _SignalDrain(app, previous, seconds, asyncio.get_running_loop())
    signal.signal(signal.SIGTERM, handler)
    return handler.uninstall
