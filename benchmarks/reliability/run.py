"""Reliability scenarios at full size: the figures of docs/reliability.md.

Each scenario runs on private database servers this script starts and removes
(tests/reliability/servers.py), never on the shared ones, so it may restart
and kill them. The test suite runs the same code with small counts
(tests/reliability/). Run from the repository root::

    .venv/bin/python benchmarks/reliability/run.py write-load --backend postgres
    .venv/bin/python benchmarks/reliability/run.py write-load --backend mysql --writes 10000
    .venv/bin/python benchmarks/reliability/run.py write-load --fault kill --restarts 10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.reliability.write_load import run_write_load


def write_load(args: argparse.Namespace) -> int:
    """Acknowledged writes through a scaffolded app while the database restarts."""
    failed = 0
    for backend in args.backend:
        with tempfile.TemporaryDirectory(prefix="covet-write-load-") as workdir:
            figures = run_write_load(
                backend,
                writes=args.writes,
                clients=args.clients,
                restarts=args.restarts,
                workdir=Path(workdir),
                fault=args.fault,
            )
        result = figures.as_dict()
        print(json.dumps(result), flush=True)
        ok = (
            figures.lost_writes == 0
            and not figures.bad
            and figures.hangs == 0
            and figures.recovery <= 5
            and not figures.server_log_problems
        )
        failed += not ok
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="scenario", required=True)
    wl = sub.add_parser("write-load", help=write_load.__doc__)
    wl.add_argument("--backend", action="append", choices=["postgres", "mysql"])
    wl.add_argument("--writes", type=int, default=10_000, help="acknowledged writes (10000)")
    wl.add_argument("--clients", type=int, default=16, help="kept-alive client connections (16)")
    wl.add_argument("--restarts", type=int, default=3, help="faults during the run (3)")
    wl.add_argument(
        "--fault",
        choices=["restart", "kill"],
        default="restart",
        help="restart the server, or kill every app session on it (restart)",
    )
    wl.set_defaults(run=write_load)
    args = parser.parse_args()
    if getattr(args, "backend", ()) is None:
        args.backend = ["postgres", "mysql"]
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
