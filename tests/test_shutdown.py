"""covet.shutdown: the settings, and the SIGTERM handler that marks the app draining."""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import TYPE_CHECKING

import pytest

from covet import Covet
from covet.config import Settings
from covet.exceptions import ImproperlyConfigured
from covet.shutdown import (
    DEFAULT_GRACEFUL_TIMEOUT,
    ShutdownOptions,
    drain_on_sigterm,
    drain_seconds_from_environ,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from types import FrameType


class _App:
    draining = False


class _Server:
    """Stands in for uvicorn's SIGTERM handler (``Server.handle_exit``)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float]] = []

    def handle_exit(self, signum: int, frame: FrameType | None) -> None:
        self.calls.append((signum, asyncio.get_running_loop().time()))


@pytest.fixture
def server() -> Iterator[_Server]:
    found = _Server()
    previous = signal.signal(signal.SIGTERM, found.handle_exit)
    yield found
    signal.signal(signal.SIGTERM, previous)


def test_options_default_to_no_drain_and_30_seconds(tmp_path: Path) -> None:
    options = ShutdownOptions.from_settings(Settings(root=tmp_path), environ={})
    assert options == ShutdownOptions(drain_seconds=0.0, graceful_timeout=30.0)
    assert DEFAULT_GRACEFUL_TIMEOUT == 30.0


def test_options_come_from_the_environment_before_dotenv(tmp_path: Path) -> None:
    settings = Settings(
        root=tmp_path, env_file={"COVET_DRAIN_SECONDS": "5", "COVET_GRACEFUL_TIMEOUT": "20"}
    )
    options = ShutdownOptions.from_settings(settings, environ={"COVET_GRACEFUL_TIMEOUT": "12.5"})
    assert options == ShutdownOptions(drain_seconds=5.0, graceful_timeout=12.5)


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_invalid_options_name_the_variable(tmp_path: Path, value: str) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        ShutdownOptions.from_settings(
            Settings(root=tmp_path), environ={"COVET_DRAIN_SECONDS": value}
        )
    assert str(caught.value) == (
        f"Invalid COVET_DRAIN_SECONDS {value!r}. Use a number of seconds, 0 or more (e.g. 5)."
    )
    with pytest.raises(ImproperlyConfigured, match="Invalid graceful_timeout -2"):
        ShutdownOptions(graceful_timeout=-2)
    with pytest.raises(ImproperlyConfigured, match="Invalid drain_seconds True"):
        ShutdownOptions(drain_seconds=True)


def test_drain_seconds_from_environ() -> None:
    assert drain_seconds_from_environ({}) == 0.0
    assert drain_seconds_from_environ({"COVET_DRAIN_SECONDS": " 2.5 "}) == 2.5
    with pytest.raises(ImproperlyConfigured, match="COVET_DRAIN_SECONDS"):
        drain_seconds_from_environ({"COVET_DRAIN_SECONDS": "2s"})


async def test_sigterm_marks_draining_at_once_and_reaches_the_server_after_the_drain(
    server: _Server,
) -> None:
    app = _App()
    restore = drain_on_sigterm(app, drain_seconds=0.2)
    assert restore is not None
    loop = asyncio.get_running_loop()
    sent = loop.time()
    signal.raise_signal(signal.SIGTERM)
    assert app.draining is True
    assert server.calls == []
    await asyncio.sleep(0.05)
    signal.raise_signal(signal.SIGTERM)  # again, as from a supervisor: still draining
    await asyncio.sleep(0.3)
    assert len(server.calls) == 1
    signum, called = server.calls[0]
    assert signum == signal.SIGTERM
    assert called - sent >= 0.2
    restore()
    assert signal.getsignal(signal.SIGTERM) == server.handle_exit


async def test_without_a_drain_the_server_is_told_at_once(server: _Server) -> None:
    app = _App()
    restore = drain_on_sigterm(app)
    assert restore is not None
    signal.raise_signal(signal.SIGTERM)
    assert app.draining is True
    assert [signum for signum, _ in server.calls] == [signal.SIGTERM]
    restore()


async def test_restoring_forgets_a_drain_still_counting(server: _Server) -> None:
    restore = drain_on_sigterm(_App(), drain_seconds=0.1)
    assert restore is not None
    signal.raise_signal(signal.SIGTERM)
    await asyncio.sleep(0)  # the loop schedules the end of the drain
    restore()
    await asyncio.sleep(0.2)
    assert server.calls == []
    assert signal.getsignal(signal.SIGTERM) == server.handle_exit


async def test_nothing_is_installed_without_a_python_handler_or_off_the_main_thread(
    server: _Server,
) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    assert drain_on_sigterm(_App()) is None
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    signal.signal(signal.SIGTERM, server.handle_exit)

    found: list[object] = []

    def elsewhere() -> None:
        async def install() -> None:
            found.append(drain_on_sigterm(_App()))

        asyncio.run(install())

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert found == [None]
    assert signal.getsignal(signal.SIGTERM) == server.handle_exit


async def test_the_app_lifespan_installs_and_restores_the_handler(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVET_DRAIN_SECONDS", "30")
    app = Covet()
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    outbox: list[str] = []

    async def receive() -> dict[str, str]:
        return await inbox.get()

    async def send(message: dict[str, str]) -> None:
        outbox.append(message["type"])

    await inbox.put({"type": "lifespan.startup"})
    lifespan = asyncio.ensure_future(app({"type": "lifespan"}, receive, send))  # type: ignore[arg-type]
    while outbox != ["lifespan.startup.complete"]:
        await asyncio.sleep(0)
    signal.raise_signal(signal.SIGTERM)
    assert app.draining is True  # at once, while the server keeps serving for the drain
    assert server.calls == []
    await inbox.put({"type": "lifespan.shutdown"})
    await lifespan
    assert outbox[-1] == "lifespan.shutdown.complete"
    assert signal.getsignal(signal.SIGTERM) == server.handle_exit
    assert server.calls == []  # the drain ended with the lifespan


async def test_an_invalid_drain_fails_the_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVET_DRAIN_SECONDS", "later")
    app = Covet()
    messages: list[dict[str, str]] = []

    async def receive() -> dict[str, str]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, str]) -> None:
        messages.append(message)

    with pytest.raises(ImproperlyConfigured):
        await app({"type": "lifespan"}, receive, send)  # type: ignore[arg-type]
    assert messages == [
        {
            "type": "lifespan.startup.failed",
            "message": "ImproperlyConfigured: Invalid COVET_DRAIN_SECONDS 'later'. Use a "
            "number of seconds, 0 or more (e.g. 5).",
        }
    ]
