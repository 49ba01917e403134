"""pytest fixtures for covet projects: ``app`` and ``client``.

The plugin is registered through the ``pytest11`` entry point, so installing
covet makes the fixtures available in every pytest run. They do nothing until
a test asks for them, so projects that do not use covet are unaffected.

``app`` loads the application named by ``app = "package.module:attribute"`` in
the project's ``[tool.covet]`` table. Define your own ``app`` fixture (in a
``conftest.py``) to test a different application; ``client`` uses whichever
``app`` fixture is in effect::

    def test_home(client):
        assert client.get("/").status_code == 200
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from covet.testing import TestClient

__all__ = ("app", "client")


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Any:
    """Return the project's application, loaded from ``[tool.covet] app``.

    The project is found from pytest's root directory upwards.
    """
    # Imported here so that merely loading the plugin costs nothing and
    # cannot fail in projects that do not use covet.
    from covet.config import load_settings

    return load_settings(request.config.rootpath).import_app()


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    """Yield a ``TestClient`` for ``app`` with its lifespan started.

    Startup runs before the test and shutdown after it, so resources created
    at startup (database pools) are available to every request of the test.
    """
    from covet.testing import TestClient

    with TestClient(app) as test_client:
        yield test_client
