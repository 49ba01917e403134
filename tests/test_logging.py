"""covet.logging: configuration, request context on records, access and slow-query logs."""

from __future__ import annotations

import datetime
import io
import json
import logging
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING, Any

import pytest

import covet.logging
from covet import Covet
from covet._context import new_request_id
from covet.config import Settings
from covet.db import Database
from covet.exceptions import ImproperlyConfigured
from covet.logging import (
    DevFormatter,
    JSONFormatter,
    LoggingOptions,
    RequestContextFilter,
    SlowQueryFilter,
    configure_logging,
    logging_config,
)
from covet.middleware import RequestIDMiddleware
from covet.middleware.requestid import get_request_id
from covet.testing import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[Any] = []  # LogRecords, with the fields extra= put on them
        self.addFilter(RequestContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[ListHandler]:
    """Configure covet's logging, then capture every record (with the context filter)."""
    saved = logging.getLogger().handlers[:], logging.getLogger().level
    configure_logging(LoggingOptions(level="DEBUG", slow_query_ms=0))
    handler = ListHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    SlowQueryFilter.uninstall()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.getLogger("covet.access").setLevel(logging.NOTSET)
    logging.getLogger("covet.db.slow").setLevel(logging.NOTSET)
    logging.getLogger("covet.db.slow").filters.clear()


def _items_app() -> Covet:
    app = Covet(allowed_hosts=["testserver"])

    @app.get("/items/{item_id:int}", name="item")
    async def item(request, item_id: int):
        logging.getLogger("myapp").info("looking at %s", item_id)
        return {"id": item_id, "request_id": get_request_id()}

    return app


def test_import_configures_nothing() -> None:
    code = (
        "import logging, covet.logging, covet.app\n"
        "assert logging.getLogger().handlers == [], logging.getLogger().handlers\n"
        "assert logging.getLogger('covet.access').level == logging.NOTSET\n"
        "from covet.db import querylog\n"
        "assert querylog.observers.log is None\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_access_log_record_has_every_field(captured: ListHandler) -> None:
    app = _items_app()
    with TestClient(app) as client:
        response = client.get("/items/7?token=secret")
    assert response.status_code == 200
    access = [r for r in captured.records if r.name == "covet.access"]
    assert len(access) == 1
    record = access[0]
    assert record.getMessage().startswith("GET /items/7 200 ")
    assert record.method == "GET"
    assert record.path == "/items/7"  # no query string: it may carry secrets
    assert record.route == "item"  # the route name, never the raw path
    assert record.status == 200
    assert record.bytes == len(response.content)
    assert record.duration_ms >= 0
    assert record.client == "testclient"
    # The id on the access record is the one the handler saw, and on the handler's records.
    assert record.request_id == response.json()["request_id"]
    mine = [r for r in captured.records if r.name == "myapp"]
    assert mine[0].request_id == record.request_id
    assert record.user_id is None


def test_unmatched_route_and_errors_are_logged(captured: ListHandler) -> None:
    app = _items_app()

    @app.get("/boom")
    async def boom(request):
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/nowhere").status_code == 404
        assert client.get("/boom").status_code == 500
    access = [r for r in captured.records if r.name == "covet.access"]
    assert [(r.status, r.route) for r in access] == [(404, None), (500, "boom")]
    error = [r for r in captured.records if r.name == "covet.error"]
    assert error and error[0].request_id == access[1].request_id


def test_each_request_gets_its_own_id(captured: ListHandler) -> None:
    app = _items_app()
    with TestClient(app) as client:
        first = client.get("/items/1").json()["request_id"]
        second = client.get("/items/2").json()["request_id"]
    assert first and second and first != second


def test_request_id_middleware_feeds_the_same_context(captured: ListHandler) -> None:
    app = _items_app()
    app.add_middleware(RequestIDMiddleware)
    with TestClient(app) as client:
        response = client.get("/items/3")
    header = response.headers["x-request-id"]
    assert response.json()["request_id"] == header
    access = [r for r in captured.records if r.name == "covet.access"]
    assert access[0].request_id == header
    assert [r.request_id for r in captured.records if r.name == "myapp"] == [header]


def test_access_log_off_installs_no_observer() -> None:
    saved = logging.getLogger().handlers[:], logging.getLogger().level
    try:
        configure_logging(LoggingOptions(access_log=False))
        app = _items_app()
        with TestClient(app) as client:
            client.get("/items/1")
        assert app._observe is None
    finally:
        logging.getLogger().handlers[:] = saved[0]
        logging.getLogger().setLevel(saved[1])
        logging.getLogger("covet.access").setLevel(logging.NOTSET)


def test_unconfigured_app_has_no_observer_and_no_id() -> None:
    assert not logging.getLogger("covet.access").isEnabledFor(logging.INFO)
    app = _items_app()
    with TestClient(app) as client:
        assert client.get("/items/1").json()["request_id"] is None
    assert app._observe is None


async def test_slow_query_log_names_sql_duration_and_caller(captured: ListHandler) -> None:
    db = Database("sqlite:///:memory:")
    await db.connect()
    try:
        await db.execute("SELECT   1,\n  2")  # the caller: this line
        line = sys._getframe().f_lineno - 1
    finally:
        await db.disconnect()
    slow = [r for r in captured.records if r.name == "covet.db.slow"]
    assert slow, [r.name for r in captured.records]
    record = next(r for r in slow if r.sql == "SELECT 1, 2")
    assert record.levelno == logging.WARNING
    assert record.duration_ms >= 0
    assert record.caller.startswith(f"{__file__}:{line} in ")


async def test_slow_query_threshold_skips_fast_statements() -> None:
    handler = ListHandler()
    logger = logging.getLogger("covet.db.slow")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.addFilter(SlowQueryFilter(threshold_ms=60_000))
    try:
        db = Database("sqlite:///:memory:")
        await db.connect()
        await db.execute("SELECT 1")
        await db.disconnect()
    finally:
        SlowQueryFilter.uninstall()
        logger.removeHandler(handler)
        logger.filters.clear()
        logger.setLevel(logging.NOTSET)
    assert handler.records == []


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("covet.access", logging.INFO, __file__, 1, "GET %s", ("/x",), None)
    record.__dict__.update(extra)
    return record


def test_json_formatter_gives_one_json_line() -> None:
    record = _record(request_id="abc123", user_id="42", status=200, route="home")
    line = JSONFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "GET /x"
    assert data["logger"] == "covet.access"
    assert data["level"] == "INFO"
    assert data["request_id"] == "abc123" and data["user_id"] == "42"
    assert data["status"] == 200 and data["route"] == "home"
    assert data["time"].endswith("Z")


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (1765082111.0, "2025-12-07T04:35:11.000Z"),
        (1765082111.0015, "2025-12-07T04:35:11.001Z"),
        (1765082111.9996, "2025-12-07T04:35:11.999Z"),  # truncated, as LogRecord.msecs
        (0.9999999999999999, "1970-01-01T00:00:00.999Z"),  # never ".1000Z"
    ],
)
def test_json_time_is_utc_with_milliseconds(created: float, expected: str) -> None:
    record = _record()
    record.created = created
    assert json.loads(JSONFormatter().format(record))["time"] == expected


def test_json_extras_keep_their_order_and_never_replace_the_fixed_keys() -> None:
    record = _record(zeta=1, time="forged", alpha=2, level="forged", logger="forged", mid=3)
    data = json.loads(JSONFormatter().format(record))
    assert list(data) == ["time", "level", "logger", "message", "zeta", "alpha", "mid"]
    assert data["level"] == "INFO" and data["logger"] == "covet.access"
    assert data["time"].endswith("Z") and data["time"] != "forged"


def test_the_configured_handler_writes_and_flushes_each_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = logging_config(LoggingOptions())
    assert config["handlers"]["covet"]["class"] == "covet.logging.StreamHandler"

    class Stream(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1

    stream = Stream()
    handler = covet.logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    handler.handle(_record(status=200))
    handler.handle(_record(status=404))
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["status"] for line in lines] == [200, 404]
    assert stream.flushes == 2

    class WriteOnly:  # a stream without flush() is written to all the same
        def __init__(self) -> None:
            self.text = ""

        def write(self, text: str) -> None:
            self.text += text

    plain = WriteOnly()
    covet.logging.StreamHandler(plain).handle(_record())
    assert plain.text == "GET /x\n"

    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    failures: list[logging.LogRecord] = []
    broken = covet.logging.StreamHandler(Broken())
    monkeypatch.setattr(broken, "handleError", failures.append)
    broken.handle(_record())  # a failing stream never raises into the request
    assert len(failures) == 1


@pytest.mark.parametrize("use_orjson", [True, False], ids=["orjson", "stdlib"])
def test_json_lines_are_the_same_with_and_without_orjson(
    monkeypatch: pytest.MonkeyPatch, use_orjson: bool
) -> None:
    if not use_orjson:
        monkeypatch.setattr(covet.logging, "USE_ORJSON", False)
    when = datetime.datetime(2026, 12, 6, 4, 33, 15, tzinfo=datetime.UTC)
    record = _record(when=when, huge=2**70, path="/caf\u00e9", thing=object)
    data = json.loads(JSONFormatter().format(record))
    assert data["when"] == "2026-12-06 04:33:15+00:00"  # str(), on both paths
    assert data["huge"] == 2**70  # beyond orjson's 64 bits: the stdlib writes it
    assert data["path"] == "/caf\u00e9"
    assert data["thing"] == "<class 'object'>"


def test_json_lines_leave_out_terminal_colours_and_alembic_chatter() -> None:
    record = _record(color_message="\x1b[1mGET\x1b[0m %s")
    assert "color_message" not in json.loads(JSONFormatter().format(record))
    config = logging_config(LoggingOptions())
    assert config["loggers"]["alembic"] == {"level": "WARNING"}


def test_access_log_uses_the_installed_record_factory(captured: ListHandler) -> None:
    default = logging.getLogRecordFactory()
    made: list[str] = []

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = default(*args, **kwargs)
        made.append(record.name)
        return record

    logging.setLogRecordFactory(factory)
    try:
        with TestClient(_items_app()) as client:
            client.get("/items/1")
    finally:
        logging.setLogRecordFactory(default)
    assert "covet.access" in made
    access = [r for r in captured.records if r.name == "covet.access"]
    assert access[0].funcName == "request_finished" and access[0].levelname == "INFO"


def test_access_log_honours_a_logger_switched_off_after_start(captured: ListHandler) -> None:
    with TestClient(_items_app()) as client:
        client.get("/items/1")
        logging.getLogger("covet.access").setLevel(logging.WARNING)
        client.get("/items/2")
    access = [r for r in captured.records if r.name == "covet.access"]
    assert [r.path for r in access] == ["/items/1"]


def test_request_ids_are_uuid4_hex() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    for value in list(ids)[:50]:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert parsed.hex == value


def test_json_formatter_includes_the_traceback() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    data = json.loads(JSONFormatter().format(record))
    assert "ValueError: bad" in data["exc_info"]


def test_dev_formatter_is_readable() -> None:
    line = DevFormatter().format(_record(request_id="abcdef0123456789", user_id="7"))
    assert line.endswith(" INFO    covet.access [abcdef01 user=7] GET /x")
    assert DevFormatter().format(_record()).endswith(" INFO    covet.access GET /x")


def test_logging_config_picks_the_format_from_debug() -> None:
    assert logging_config(LoggingOptions(debug=True))["formatters"]["covet"]["()"].endswith(
        "DevFormatter"
    )
    assert logging_config(LoggingOptions())["formatters"]["covet"]["()"].endswith("JSONFormatter")
    config = logging_config(LoggingOptions(debug=True, format="json", access_log=False))
    assert config["formatters"]["covet"]["()"].endswith("JSONFormatter")
    assert config["loggers"]["covet.access"]["level"] == "CRITICAL"
    assert config["loggers"]["uvicorn.access"]["level"] == "INFO"


def test_options_from_settings_and_environment(tmp_path: Path) -> None:
    settings = Settings(root=tmp_path, debug=True, env_file={"COVET_SLOW_QUERY_MS": "250"})
    options = LoggingOptions.from_settings(settings, environ={"COVET_LOG_LEVEL": "warning"})
    assert options == LoggingOptions(debug=True, level="WARNING", slow_query_ms=250.0)
    off = LoggingOptions.from_settings(settings, environ={"COVET_ACCESS_LOG": "0"})
    assert off.access_log is False


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"COVET_LOG_LEVEL": "loud"}, "Invalid log level 'LOUD'"),
        ({"COVET_LOG_FORMAT": "xml"}, "Invalid log format 'xml'"),
        ({"COVET_ACCESS_LOG": "maybe"}, "Invalid COVET_ACCESS_LOG 'maybe'"),
        ({"COVET_SLOW_QUERY_MS": "fast"}, "Invalid COVET_SLOW_QUERY_MS 'fast'"),
        ({"COVET_SLOW_QUERY_MS": "-1"}, "Invalid slow_query_ms -1.0"),
    ],
)
def test_invalid_options_are_refused(tmp_path: Path, environ: dict[str, str], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        LoggingOptions.from_settings(Settings(root=tmp_path), environ=environ)
