"""Acknowledged writes survive database restarts under load (the short run of the scenario).

``covet new`` project, ``covet run --workers 2``, a separate client process
posting notes through the JSON API, and a private PostgreSQL/MariaDB server
restarted mid-run (see :mod:`tests.reliability.write_load`). The full run,
10,000 writes and three restarts per backend, is
``benchmarks/reliability/run.py write-load``; its figures are in
docs/reliability.md.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.reliability.write_load import run_write_load, scaffold

if TYPE_CHECKING:
    from pathlib import Path

    from tests.reliability.servers import PrivateServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``covet new`` project for both backends."""
    return scaffold(tmp_path_factory.mktemp("write-load"))


def test_acknowledged_writes_survive_a_restart(
    private_server: PrivateServer, project: Path, tmp_path: Path
) -> None:
    figures = run_write_load(
        private_server.backend,
        writes=300,
        clients=8,
        restarts=1,
        workdir=tmp_path,
        server=private_server,
        project=project,
    )
    print(f"\nwrite-load figures: {json.dumps(figures.as_dict())}")
    assert figures.lost_writes == 0
    assert figures.bad == []  # every failure was a 503 with Retry-After
    assert (figures.hangs, figures.errors) == (0, [])
    assert figures.statuses.get(503, 0) > 0, "the restart was not noticed"
    assert figures.recovery <= 5, figures.as_dict()
    assert figures.server_log_problems == []
