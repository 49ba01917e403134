"""A bounded atheris run over every fuzz target (issue 16).

Each target of ``benchmarks/reliability/fuzz.py`` runs for two seconds in a
subprocess of its own (atheris instruments covet's modules as it imports
them); the test fails on any crash libFuzzer reports. Longer runs: see the
script's docstring and ``docs/reliability.md``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.reliability.fuzz import TARGETS

REPO = Path(__file__).resolve().parents[2]
SECONDS = 2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("atheris") is None
        and os.environ.get("COVET_TEST_REQUIRE_ALL") != "1",
        reason="atheris is not installed (pip install 'covet-web[dev]' on Linux)",
    ),
]


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_finds_no_crash(target: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.reliability.fuzz", target, "--seconds", str(SECONDS)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Done " in run.stderr, run.stderr[-3000:]
    assert list(tmp_path.glob("crash-*")) == []


CRASHES = sorted((Path(__file__).parent / "fuzz_crashes").iterdir())


@pytest.mark.parametrize("crash", CRASHES, ids=[path.name for path in CRASHES])
def test_saved_crash_replays_clean(crash: Path, tmp_path: Path) -> None:
    """Every input a fuzz run once crashed on (``<target>-<sha1>``) now passes its target.

    headers-d199...: a scope path without the leading "/" every ASGI server gives
    made ``URL.hostname`` raise; the target now builds paths as servers do, and
    checks that a Host covet's grammar accepts always parses.
    headers-2899...: ``check_charset()`` let codecs' ValueError for a NUL escape,
    a 500 through a multipart ``_charset_`` field (fixed in covet/formparsers.py;
    tests/test_formparsers.py has the unit regression).
    """
    target = crash.name.split("-", 1)[0]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.reliability.fuzz", target, "--reproduce", str(crash)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "no crash" in run.stdout
