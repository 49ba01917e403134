"""Fixtures for the reliability tests: private database servers they may restart and kill.

The shared servers (``COVET_TEST_POSTGRES_URL``/``COVET_TEST_MYSQL_URL``) are
left alone: each backend gets a server of its own, started once per session
in a temporary directory (:mod:`tests.reliability.servers`) and removed
afterwards. Where the server binaries are missing the tests skip, or fail
under ``COVET_TEST_REQUIRE_ALL=1`` (CI installs both).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.db.conftest import _unavailable
from tests.reliability.servers import PrivateMariaDB, PrivatePostgres, PrivateServer

if TYPE_CHECKING:
    from collections.abc import Iterator

SERVER_CLASSES: dict[str, type[PrivateServer]] = {
    "postgres": PrivatePostgres,
    "mysql": PrivateMariaDB,
}


@pytest.fixture(scope="session")
def private_servers() -> Iterator[dict[str, PrivateServer]]:
    """Started servers by backend name, started on first use and stopped at the end."""
    started: dict[str, PrivateServer] = {}
    yield started
    for server in started.values():
        server.cleanup()


@pytest.fixture(params=sorted(SERVER_CLASSES))
def private_server(
    request: pytest.FixtureRequest, private_servers: dict[str, PrivateServer]
) -> PrivateServer:
    """A private server of each backend (``[mysql]``, ``[postgres]``), running."""
    backend: str = request.param
    server = private_servers.get(backend)
    if server is None:
        cls = SERVER_CLASSES[backend]
        reason = cls.available()
        if reason is not None:
            _unavailable(f"cannot start a private {backend} server: {reason}")
        server = cls()
        try:
            server.initialise()
            server.start()
        except BaseException:
            server.cleanup()
            raise
        private_servers[backend] = server
    server.start()  # a test may have left it stopped
    return server
