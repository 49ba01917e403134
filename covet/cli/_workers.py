"""``covet run --workers N``: uvicorn's process supervisor, with a listener that closes at shutdown.

uvicorn's supervisor binds the listening socket and hands it to its workers;
each worker closes its own copy when it stops accepting, but the supervisor
keeps its copy until it exits. The kernel then keeps accepting connections on
it that no worker will ever serve: a client connecting while the workers finish
their in-flight requests hangs, then gets a reset when the supervisor exits.
Here the supervisor closes its copy as it tells the workers to stop, so once
every worker has closed its own, a new connection is refused at once (what a
load balancer needs to retry elsewhere), as with a single process.

Imported by ``covet run`` only when it serves with several workers.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

__all__ = ("WorkerSupervisor", "serve_workers")


class WorkerSupervisor(Multiprocess):
    """uvicorn's ``Multiprocess`` supervisor whose listening sockets close at shutdown."""

    def terminate_all(self) -> None:
        """Close this process's copy of the listening sockets, then stop every worker.

        The workers keep their own copies, so they still accept connections while
        they drain (``--drain-seconds``) and refuse them once they stop.
        """
        for sock in self.sockets:
            sock.close()
        super().terminate_all()


def serve_workers(options: dict[str, Any]) -> None:
    """Serve with several worker processes, as ``uvicorn.run(**options)`` does.

    Args:
        options: ``uvicorn.run()`` keywords (``workers`` above 1, no ``reload``).
    """
    options = dict(options)
    app_dir = options.pop("app_dir", None)
    if app_dir is not None:
        sys.path.insert(0, app_dir)
    config = uvicorn.Config(**options)
    sock = config.bind_socket()
    arguments: dict[str, Any] = {"config": config, "sockets": [sock]}
    # Older uvicorn releases take the function each worker runs; newer ones build
    # the server in the worker themselves.
    if "target" in inspect.signature(Multiprocess).parameters:
        arguments["target"] = uvicorn.Server(config=config).run
    try:
        WorkerSupervisor(**arguments).run()
    except KeyboardInterrupt:
        pass  # Ctrl+C twice: the workers are gone already
