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
