"""A queryset runs a query, so synchronous iteration is refused instead of looping forever.

Without ``QuerySet.__iter__`` Python iterates through ``__getitem__(0)``,
``(1)``... which return coroutines and never raise IndexError: ``list(qs)``
would never return. Each test fails (rather than hangs) if that comes back.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from covet.db import Model, fields

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = r"cannot be iterated synchronously .* Use 'await queryset' .* 'async for obj in queryset'"


class Loop(Model):
    name = fields.CharField(max_length=20)

    class Meta:
        table = "sync_iteration_loops"


def test_for_loop_raises_type_error() -> None:
    with pytest.raises(TypeError, match=MESSAGE):
        for _ in Loop.objects.filter(name="x"):  # type: ignore[attr-defined]  # the point
            break


def test_manager_and_iter_raise_type_error() -> None:
    with pytest.raises(TypeError, match=r"<QuerySet Loop> cannot be iterated"):
        iter(Loop.objects.all())
    with pytest.raises(TypeError, match=MESSAGE):
        # islice stops after two items, so a regression fails here instead of hanging.
        list(itertools.islice(Loop.objects, 2))  # type: ignore[call-overload]  # the point


def test_list_of_queryset_raises_within_a_timeout() -> None:
    # list() itself would never return on a regression: run it in a child process with
    # a timeout and a memory cap (the runaway loop collects coroutines).
    code = textwrap.dedent(
        """
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from covet.db import Model, fields

        class Loop(Model):
            name = fields.CharField(max_length=20)

        try:
            list(Loop.objects.all())
        except TypeError as exc:
            print("TypeError:", exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("TypeError: <QuerySet Loop> cannot be iterated"), result.stdout
