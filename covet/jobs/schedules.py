"""Cron schedules: enqueue a job at every tick, once across all workers.

A :class:`Schedule` names a job, a cron expression (five fields, or six with
seconds last: croniter's syntax, with ``@hourly``/``@daily`` and the like) and
a time zone. Every worker running schedules computes the latest tick that is
due; the backend lets exactly one worker fire it (the database moves the
schedule's last tick forward in the transaction that inserts the job; Redis
does both in one script).

A schedule met for the first time starts at its next tick. After workers were
all stopped across some ticks, the latest missed tick is fired once when one
starts again; earlier missed ticks are skipped.

Schedules come from ``[tool.covet.jobs.schedules]`` in ``pyproject.toml`` and
from :func:`schedule` in code.
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from covet.exceptions import ImproperlyConfigured, MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from covet.jobs.core import Job

__all__ = ("Schedule", "registered_schedules", "schedule")

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def _croniter() -> Any:
    try:
        from croniter import croniter
    except ImportError as exc:
        raise MissingDependencyError("croniter", extra="jobs") from exc
    return croniter


@dataclass(frozen=True, slots=True)
class Schedule:
    """Enqueue ``job`` with ``args``/``kwargs`` at each tick of ``cron`` in ``timezone``.

    Attributes:
        name: Identifies the schedule across workers (letters, digits, ``_.:-``).
        cron: The cron expression: ``"0 3 * * *"`` (03:00 daily), ``"*/5 * * * *"``,
            ``"* * * * * */10"`` (every ten seconds: six fields, seconds last).
        job: The job's registered name (``"mysite.jobs:nightly"``).
        args: Positional arguments of each run (JSON values).
        kwargs: Keyword arguments of each run (JSON values).
        timezone: The IANA time zone the expression is read in (``"Europe/Paris"``).

    Raises:
        ImproperlyConfigured: For an invalid name, expression or time zone.
        MissingDependencyError: When croniter is not installed.
    """

    name: str
    cron: str
    job: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        name: object = self.name
        if not isinstance(name, str) or not _NAME.match(name):
            raise ImproperlyConfigured(
                f"Schedule name {self.name!r} is invalid. Use up to 100 letters, digits "
                "and _ . : - characters."
            )
        croniter = _croniter()
        cron: object = self.cron
        if not isinstance(cron, str) or not croniter.is_valid(cron):
            raise ImproperlyConfigured(
                f"Schedule {self.name!r} has the cron expression {self.cron!r}, which does not "
                "parse. Write five fields (minute hour day month weekday), e.g. '0 3 * * *', "
                "or six with seconds last, e.g. '* * * * * */10'."
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ImproperlyConfigured(
                f"Schedule {self.name!r} has the time zone {self.timezone!r}, which is not "
                "known. Use an IANA name such as 'UTC' or 'Europe/Paris'."
            ) from None

    def _at(self, now: float) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(now, ZoneInfo(self.timezone))

    def latest_tick(self, now: float) -> float:
        """Return the latest tick at or before ``now`` (Unix time)."""
        croniter = _croniter()
        previous = float(croniter(self.cron, self._at(now)).get_prev(float))
        following = float(croniter(self.cron, self._at(previous)).get_next(float))
        return following if following <= now else previous

    def next_tick(self, now: float) -> float:
        """Return the first tick after ``now`` (Unix time)."""
        return float(_croniter()(self.cron, self._at(now)).get_next(float))


_schedules: dict[str, Schedule] = {}


def schedule(
    name: str,
    cron: str,
    job: Job[..., Any] | str,
    *,
    args: tuple[Any, ...] = (),
    kwargs: Mapping[str, Any] | None = None,
    timezone: str = "UTC",
) -> Schedule:
    """Register a schedule in code (next to those of ``[tool.covet.jobs.schedules]``).

    ::

        schedule("nightly-report", "0 3 * * *", nightly_report, timezone="Europe/Paris")

    Returns:
        The schedule.

    Raises:
        ImproperlyConfigured: For an invalid schedule, or a name used by another one.
    """
    job_name = job if isinstance(job, str) else job.name
    new = Schedule(
        name,
        cron,
        job_name,
        args=tuple(args),
        kwargs=dict(kwargs or {}),
        timezone=timezone,
    )
    existing = _schedules.get(name)
    if existing is not None and existing != new:
        raise ImproperlyConfigured(
            f"Two schedules are called {name!r}: {existing!r} and {new!r}. Rename one."
        )
    _schedules[name] = new
    return new


def registered_schedules() -> tuple[Schedule, ...]:
    """Return the schedules registered with :func:`schedule`."""
    return tuple(_schedules.values())


def sleep_until(now: float, schedules: tuple[Schedule, ...], ceiling: float) -> float:
    """Return the seconds from ``now`` to the next tick of any schedule, at most ``ceiling``."""
    if not schedules:
        return ceiling
    soonest = min(item.next_tick(now) for item in schedules)
    return max(0.0, min(ceiling, soonest - now)) if math.isfinite(soonest) else ceiling
