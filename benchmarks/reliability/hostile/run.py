"""Run the hostile-input corpus against a live worker and print the figures.

    .venv/bin/python -m benchmarks.reliability.hostile.run            # real timeouts, ~80 s
    .venv/bin/python -m benchmarks.reliability.hostile.run --short    # 2 s timeouts, ~15 s
    .venv/bin/python -m benchmarks.reliability.hostile.run --per-case # loop lag of each case
    .venv/bin/python -m benchmarks.reliability.hostile.run --json out.json

Prints one JSON summary (cases, failures by group, statuses, the
well-behaved client's latencies, the worker's peak loop lag and memory,
log problems), then every failure. Exits 1 when a case failed or the log
holds a traceback. ``docs/reliability.md`` records the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from benchmarks.reliability.hostile.harness import run_corpus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="2 s header and body timeouts")
    parser.add_argument("--per-case", action="store_true", help="one case at a time, lag each")
    parser.add_argument("--parallel", type=int, default=4, help="fast cases at once")
    parser.add_argument("--json", type=Path, help="write the summary here too")
    args = parser.parse_args()
    timeouts = {"header_timeout": 2.0, "body_timeout": 2.0} if args.short else {}
    with tempfile.TemporaryDirectory() as scratch:
        report = run_corpus(
            Path(scratch), parallel=0 if args.per_case else args.parallel, **timeouts
        )
    summary = report.summary()
    print(json.dumps(summary, indent=2))
    if args.per_case:
        worst = sorted(report.outcomes, key=lambda o: -(o.lag_cpu_ms or 0.0))[:10]
        for outcome in worst:
            print(
                f"lag {outcome.lag_ms:7.1f} ms (cpu {outcome.lag_cpu_ms:6.1f}) "
                f"{outcome.status} {outcome.case.group}: {outcome.case.name}"
            )
    for outcome in report.failures:
        print(f"FAILED {outcome.case.group}: {outcome.case.name}: {outcome.problem}")
    for line in report.log_problems:
        print(f"LOG {line}")
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2))
    return 1 if report.failures or report.log_problems else 0


if __name__ == "__main__":
    sys.exit(main())
