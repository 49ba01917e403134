"""The debug start-up check that names models edited without a migration, in a child process.

:func:`~covet.db.migrations.runtime.model_drift` reflects the schema through
SQLAlchemy and alembic's autogenerate: some 300 modules and 27 MB that a
worker would otherwise carry for its whole life, although covet's ORM never
uses them at run time. :func:`start_drift_check` runs the comparison in a
child interpreter instead, in the background: the app starts serving at once
and the warning is logged when the child answers (about half a second
later). The child is killed if the app shuts down first. A process that has
already loaded both (a test suite that ran the migrations) compares in
process, still in the background. Under ``covet run --workers N`` only the
first worker to start compares (see :data:`CLAIM_VARIABLE`): the others
would log the same line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from covet.config import Settings
    from covet.db.database import Database

__all__ = (
    "CLAIM_VARIABLE",
    "DRIFT_CHECK_TIMEOUT",
    "describe_drift",
    "run_child",
    "start_drift_check",
    "wait_for_drift_checks",
)

logger = logging.getLogger("covet.db.migrations")

#: Seconds the child may take before it is killed and the check reported as not done.
DRIFT_CHECK_TIMEOUT = 120.0

#: Set by ``covet run`` with several workers to a directory of the run's own: the first
#: worker to create its ``claimed`` file compares the models, and the others do not, so
#: the warning is logged once, not once per worker.
CLAIM_VARIABLE = "COVET_DRIFT_CHECK_DIR"

#: The checks still running, so that they are not garbage-collected mid-way (and so
#: that tests can wait for them).
_RUNNING: set[asyncio.Task[None]] = set()

#: The modules the comparison needs and a worker should not hold.
_HEAVY = frozenset({"sqlalchemy", "alembic.autogenerate"})

_CHILD = "from covet.db.migrations.drift import run_child; run_child()"
_HINT = 'Run `covet makemigrations -m "..."` then `covet migrate`.'


def start_drift_check(database: Database, settings: Settings, pending_message: str = "") -> None:
    """Compare the models with the schema of ``database`` in a child process; log what differs.

    Returns at once. A task logs one warning on the ``covet.db.migrations``
    logger when the models and the schema differ (nothing when they match),
    or says why the comparison could not run. It never raises.

    Args:
        database: The app's database (only its URL is handed to the child).
        settings: The project settings (they name the model modules).
        pending_message: The pending-migrations sentence, appended to the
            warning so that it names the fix: ``covet migrate`` rather than
            ``covet makemigrations``.
    """
    if _claimed_by_another_worker():
        logger.debug("Another worker of this server compares the models with the database.")
        return
    task = asyncio.get_running_loop().create_task(
        _check(database, settings, pending_message), name="covet model drift check"
    )
    # A task whose loop closed before it finished stays here: drop those.
    _RUNNING.difference_update(
        [running for running in _RUNNING if running.done() or running.get_loop().is_closed()]
    )
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


def _claimed_by_another_worker() -> bool:
    """Claim the comparison for this worker; say whether another worker had claimed it."""
    directory = os.environ.get(CLAIM_VARIABLE)
    if not directory:
        return False
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY
    try:
        os.close(os.open(Path(directory, "claimed"), flags, 0o600))
    except FileExistsError:
        return True
    except OSError:
        return False  # the directory is gone: compare rather than say nothing
    return False


async def wait_for_drift_checks() -> None:
    """Wait until the comparisons started on the running event loop have logged their line.

    For tests and scripts that start an app in debug mode and then look at
    what it logged.
    """
    loop = asyncio.get_running_loop()
    await asyncio.gather(*[task for task in _RUNNING if task.get_loop() is loop])


async def _check(database: Database, settings: Settings, pending_message: str) -> None:
    try:
        if _HEAVY.issubset(sys.modules):
            # This process holds them already (a test suite that migrated, say): a child
            # would only cost another interpreter's start.
            from covet.db.migrations.runtime import model_drift

            found = await model_drift(database, settings)
        else:
            url = database.url.render_as_string(hide_password=False)
            found = await _compare_in_child(url, settings)
    except Exception as exc:  # noqa: BLE001 - a check that cannot run must not stop the app
        reason = str(exc) if isinstance(exc, _ChildError) else f"{type(exc).__name__}: {exc}"
        logger.warning("Could not compare the models with the database: %s", reason)
        return
    text = describe_drift(found)
    if text and pending_message:
        logger.warning(f"{text}, and {pending_message}")
    elif text:
        logger.warning(f"{text}. {_HINT}")


async def _compare_in_child(url: str, settings: Settings) -> list[tuple[str, str]]:
    """Run :func:`run_child` in a new interpreter and return its ``(model, difference)`` pairs."""
    # Waited on in a thread rather than through asyncio's subprocesses: cancelling one of
    # those while it starts leaves asyncio.run() waiting for good on Python 3.11 outside
    # the main thread, and a server's shutdown cancels this task at any moment. Starting
    # it (fork and exec) takes a millisecond or two, so that happens here, on the loop.
    process = subprocess.Popen(  # noqa: S603, ASYNC220 - our own interpreter and script
        [sys.executable, "-c", _CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        request = pickle.dumps((list(sys.path), settings, url))
        try:
            out, err = await asyncio.to_thread(process.communicate, request, DRIFT_CHECK_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"the comparison did not finish within {DRIFT_CHECK_TIMEOUT:g} s"
            ) from None
    finally:
        if process.poll() is None:  # cancelled (the app stopped) or timed out
            process.kill()
            process.wait()  # at once: the process was killed
    lines = out.decode("utf-8", "replace").strip().splitlines()
    answer = _parse(lines[-1]) if lines else None
    if answer is None:
        detail = err.decode("utf-8", "replace").strip().splitlines()
        raise _ChildError(
            f"the checking process exited with status {process.returncode}"
            + (f": {detail[-1]}" if detail else "")
        )
    if "error" in answer:
        raise _ChildError(answer["error"])
    return [(str(model), str(difference)) for model, difference in answer["found"]]


class _ChildError(Exception):
    """The child could not compare; the message says why (``Type: message``)."""


def _parse(line: str) -> dict[str, Any] | None:
    with contextlib.suppress(ValueError):
        answer = json.loads(line)
        if isinstance(answer, dict) and ("found" in answer or "error" in answer):
            return answer
    return None


def run_child() -> None:
    """The child's side: read ``(sys.path, settings, url)`` from stdin, print the result.

    Prints one JSON line last: ``{"found": [[model, difference], ...]}``, or
    ``{"error": "Type: message"}`` when the comparison failed.
    """
    from covet.db.database import Database
    from covet.db.migrations.runtime import model_drift

    # The parent's own pickle, through the pipe it opened.
    path, settings, url = pickle.load(sys.stdin.buffer)  # noqa: S301
    sys.path[:] = path
    try:
        found = asyncio.run(model_drift(Database(url), settings))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which logs it
        answer: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}"}
    else:
        answer = {"found": found}
    sys.stdout.write("\n" + json.dumps(answer) + "\n")
    sys.stdout.flush()


def describe_drift(found: list[tuple[str, str]]) -> str:
    """Describe, in one sentence, how the models differ from the database ("" when they don't).

    Args:
        found: What :func:`~covet.db.migrations.runtime.model_drift` returned.
    """
    if not found:
        return ""
    model, difference = found[0]
    text = (
        f"Model {model} differs from the database: {difference}"
        if model
        else f"The database differs from the models: {difference}"
    )
    if len(found) > 1:
        more = len(found) - 1
        text += f" (and {more} more difference{'s' if more != 1 else ''})"
    return text
