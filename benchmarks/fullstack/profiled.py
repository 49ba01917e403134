"""Run uvicorn with a CPU-time profiler that the runner switches on and off by signal.

``python -m benchmarks.fullstack.profiled OUTPUT UVICORN-ARGS...``: SIGUSR1
starts profiling, SIGUSR2 stops it and writes the statistics to OUTPUT. So
start-up, imports and the login are left out, and only the measured load is
profiled. The timer is the process's CPU time, not the wall clock: on a busy
machine, time the worker spends preempted would otherwise be charged to
whatever function was running.
"""

from __future__ import annotations

import cProfile
import signal
import sys
import time
from typing import Any

import uvicorn


def main() -> None:
    output, arguments = sys.argv[1], sys.argv[2:]
    profiler = cProfile.Profile(time.process_time)

    def switch_on(signum: int, frame: Any) -> None:
        profiler.enable()

    def switch_off(signum: int, frame: Any) -> None:
        profiler.disable()
        profiler.dump_stats(output)

    signal.signal(signal.SIGUSR1, switch_on)
    signal.signal(signal.SIGUSR2, switch_off)
    uvicorn.main.main(args=arguments, standalone_mode=False)


if __name__ == "__main__":
    main()
