"""What Argon2 hashing leaves in a worker's memory, and what returning it costs.

Each Argon2id hash (OWASP's m=19 MiB) allocates its blocks and frees them at the
end. On glibc, left to itself, the allocator keeps a freed 19 MiB buffer in the
heap of each thread that hashed, so a worker whose hashing pool ran N hashes at
once holds N x 19 MiB from then on. covet fixes glibc's mmap threshold at the
buffer's size (``covet.auth.hashers._release_hash_buffers``) so each buffer is
unmapped when freed. This runs, in fresh interpreters and interleaved, the
default hashers through ``verify_password()`` on a pool of ``--threads``
threads, once as covet ships and once with glibc's own behaviour (the call
skipped), and prints the RSS each kept and the time per hash:

    .venv/bin/python benchmarks/auth_memory.py
    .venv/bin/python benchmarks/auth_memory.py --threads 8 --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import asyncio, json, sys, time
from covet.auth import hashers

if sys.argv[1] == "glibc":
    hashers._release_hash_buffers = lambda size: None

def rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

async def main(threads):
    hashers.set_hashing_workers(threads)
    encoded = await hashers.hash_password("correct horse")
    before = rss_mib()
    for _ in range(3):  # every pool thread hashes
        await asyncio.gather(*(hashers.verify_password("x", encoded) for _ in range(threads)))
    kept = rss_mib() - before
    times = []
    for _ in range(15):  # one at a time: the cost of a hash on an idle worker
        start = time.perf_counter()
        await hashers.verify_password("x", encoded)
        times.append(time.perf_counter() - start)
    times.sort()
    print(json.dumps({"kept": kept, "ms": times[len(times) // 2] * 1000}))

asyncio.run(main(int(sys.argv[2])))
"""


def run(mode: str, threads: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(threads)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4, help="hashing pool threads (4)")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs per mode (3)")
    options = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"covet": [], "glibc": []}
    for index in range(options.runs):
        modes = ["covet", "glibc"] if index % 2 == 0 else ["glibc", "covet"]
        for mode in modes:
            results[mode].append(run(mode, options.threads))
    print(f"Argon2id m=19 MiB t=2 p=1, {options.threads} pool threads, medians of {options.runs}")
    for mode, label in (("covet", "buffers returned (covet)"), ("glibc", "glibc's default")):
        kept = statistics.median(r["kept"] for r in results[mode])
        ms = statistics.median(r["ms"] for r in results[mode])
        print(f"  {label:26} RSS kept {kept:6.1f} MiB   {ms:6.1f} ms per hash")
    ratio = statistics.median(r["ms"] for r in results["covet"]) / statistics.median(
        r["ms"] for r in results["glibc"]
    )
    print(f"  time per hash, covet / glibc's default: {ratio:.2f}")


if __name__ == "__main__":
    main()
