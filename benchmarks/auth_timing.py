"""Compare how long a failed login takes for an unknown user and for a wrong password.

``authenticate()`` verifies a dummy hash when the login name does not exist,
so that response time does not reveal which accounts exist. This measures
both cases, interleaved, against a real SQLite database with the default
hashers, and prints the ratio of the medians (expect about 1.0).

    .venv/bin/python benchmarks/auth_timing.py
    .venv/bin/python benchmarks/auth_timing.py --attempts 200 --hasher pbkdf2
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from covet.auth import (
    AbstractUser,
    Argon2PasswordHasher,
    PBKDF2PasswordHasher,
    authenticate,
    set_hashers,
)
from covet.db import Database, create_all
from covet.requests import Request


class TimingUser(AbstractUser):
    class Meta:
        table = "timing_users"


def _request() -> Request:
    return Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/login",
            "headers": [],
            "client": ("127.0.0.1", 5000),
        }
    )


async def _timed(email: str, password: str) -> float:
    start = time.perf_counter()
    user = await authenticate(
        _request(), email=email, password=password, user_model=TimingUser, throttle=False
    )
    elapsed = time.perf_counter() - start
    assert user is None
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=50, help="attempts per case (50)")
    parser.add_argument(
        "--hasher",
        choices=["argon2", "pbkdf2"],
        default="argon2",
        help="the preferred hasher, with its default parameters",
    )
    options = parser.parse_args()
    if options.hasher == "pbkdf2":
        set_hashers([PBKDF2PasswordHasher(), Argon2PasswordHasher()])
    with tempfile.TemporaryDirectory() as directory:
        db = Database(f"sqlite:///{Path(directory) / 'timing.db'}")
        await db.connect()
        try:
            await create_all([TimingUser])
            await TimingUser.create_user(email="ann@example.com", password="the right password")
            # Warm up: the dummy hash is made at first use; imports and caches settle.
            await _timed("nobody@example.com", "x")
            await _timed("ann@example.com", "x")
            wrong: list[float] = []
            unknown: list[float] = []
            for i in range(options.attempts):
                cases = [(wrong, "ann@example.com"), (unknown, f"nobody{i}@example.com")]
                if i % 2:
                    cases.reverse()
                for bucket, email in cases:
                    bucket.append(await _timed(email, f"wrong password {i}"))
        finally:
            await db.disconnect()
    for name, samples in (("wrong password, existing user", wrong), ("unknown user", unknown)):
        print(
            f"{name:32} median {statistics.median(samples) * 1000:8.2f} ms   "
            f"mean {statistics.fmean(samples) * 1000:8.2f} ms   n={len(samples)}"
        )
    ratio = statistics.median(unknown) / statistics.median(wrong)
    fastest = min(unknown) / min(wrong)
    print(
        f"ratio unknown / wrong: medians {ratio:.3f}, minimums {fastest:.3f}  "
        "(1.0 means indistinguishable; on a busy machine expect +-10% noise)"
    )


if __name__ == "__main__":
    asyncio.run(main())
