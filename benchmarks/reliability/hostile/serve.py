"""Serve the hostile-corpus app the way ``covet run`` does: one uvicorn worker, covet's limits.

``python -m benchmarks.reliability.hostile.serve --root DIR --port N`` calls
``uvicorn.run()`` with :func:`covet.cli.run.server_options` (the options
``covet run`` passes: concurrency limit, keep-alive, websocket size, covet's
HTTP protocol with its request-line, header and timeout limits, trusted
proxies). ``--header-timeout``/``--body-timeout`` shorten the slow-client
timeouts so a test can wait for them in seconds rather than a minute.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import uvicorn

from covet.cli.run import server_options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--header-timeout", type=float, default=None)
    parser.add_argument("--body-timeout", type=float, default=None)
    args = parser.parse_args()
    os.environ["HOSTILE_ROOT"] = str(args.root)
    options = server_options(
        "benchmarks.reliability.hostile.app:app",
        root=Path.cwd(),
        port=args.port,
        log_level="info",
    )
    timeouts = {
        key: value
        for key, value in (
            ("header_timeout", args.header_timeout),
            ("body_timeout", args.body_timeout),
        )
        if value is not None
    }
    if timeouts:
        from covet.protocol import http_protocol

        options["http"] = http_protocol(**timeouts)
    uvicorn.run(**options)


if __name__ == "__main__":
    main()
