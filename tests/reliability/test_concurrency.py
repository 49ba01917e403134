"""1,000 kept-alive connections and a websocket flood on one live worker (issue 16).

Runs ``benchmarks/reliability/concurrency.py`` at full connection count with
fewer rounds and messages than its defaults (about 15 s): every connection
stays open while each sends its requests, every request is a 200, every
websocket message is echoed, the log holds no traceback and the worker's
memory stays bounded. ``docs/reliability.md`` has the figures.
"""

from __future__ import annotations

import pytest

from benchmarks.reliability.concurrency import run

pytestmark = pytest.mark.slow

CONNECTIONS = 1000
WEBSOCKETS = 100
MESSAGES = 100


def test_a_thousand_kept_alive_connections_and_a_websocket_flood() -> None:
    figures = run(CONNECTIONS, 3, WEBSOCKETS, MESSAGES)
    print("concurrency figures:", figures)
    keepalive, flood = figures["keepalive"], figures["websocket_flood"]
    assert (keepalive["errors"], keepalive["error_samples"]) == (0, [])
    assert keepalive["requests"] == CONNECTIONS * 3
    assert (flood["errors"], flood["error_samples"]) == (0, [])
    assert flood["messages_echoed"] == WEBSOCKETS * MESSAGES
    assert figures["log_tracebacks"] == 0
    assert figures["rss_peak_mib"] - figures["rss_before_mib"] < 200
