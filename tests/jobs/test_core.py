"""@job definitions, argument checks, settings, schedules and metrics (no store needed)."""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

import pytest

from covet.config import Settings
from covet.exceptions import ImproperlyConfigured
from covet.jobs import (
    DatabaseBackend,
    JobArgumentError,
    JobsSettings,
    RedisBackend,
    Schedule,
    UnknownJobError,
    backend_from_url,
    configure,
    find_job,
    get_backend,
    job,
    schedule,
)
from covet.jobs.core import ClaimedJob, decode_arguments
from tests.jobs import jobs as test_jobs


async def add(a: int, b: int = 0, *rest: int, scale: float = 1.0, **extra: Any) -> float:
    return (a + b + sum(rest)) * scale


add_job = job(retries=2, backoff=1.5, timeout=9, queue="maths", name="tests.jobs:add")(add)


def test_job_keeps_the_function_callable_and_registered() -> None:
    assert add_job.name == "tests.jobs:add"
    assert (add_job.queue, add_job.retries, add_job.timeout) == ("maths", 2, 9.0)
    assert add_job.func is add
    assert find_job("tests.jobs:add") is add_job
    assert find_job("tests.jobs.jobs:record") is test_jobs.record


async def test_calling_the_job_runs_it_now() -> None:
    assert await add_job(1, 2, scale=2) == 6


def test_arguments_are_stored_as_json_by_parameter_kind() -> None:
    new = add_job.build((1, 2, 3, 4), {"scale": 0.5, "note": "x"})
    args, kwargs = decode_arguments(new.payload)
    assert args == [3, 4]
    assert kwargs == {"a": 1, "b": 2, "scale": 0.5, "note": "x"}
    assert (new.queue, new.max_attempts, new.unique_key) == ("maths", 3, None)
    assert len(new.id) == 32


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (datetime.date(2024, 1, 1), "Argument 'a' of job 'tests.jobs:add' is datetime.date"),
        ({"k": [1, {2: "x"}]}, "Argument 'a' (at ['k'][1] key 2)"),
        ([1, object()], "Argument 'a' (at [1])"),
        (math.nan, "is nan (float)"),
        ({1, 2}, "is {1, 2} (set)"),
    ],
)
def test_unserialisable_argument_is_named(value: Any, message: str) -> None:
    with pytest.raises(JobArgumentError) as caught:
        add_job.build((value,), {})
    assert message in str(caught.value)
    assert "cannot be stored as JSON" in str(caught.value)


def test_wrong_arguments_fail_at_enqueue_time() -> None:
    with pytest.raises(JobArgumentError, match=r"cannot be called with these arguments: missing"):
        add_job.build((), {})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, "retries=-1"),
        ({"retries": True}, "retries=True"),
        ({"backoff": -2}, "backoff=-2"),
        ({"timeout": 0}, "timeout=0"),
        ({"queue": ""}, "queue must be a non-empty string"),
        ({"unique": "yes"}, "unique='yes'"),
    ],
)
def test_invalid_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        job(name="tests.jobs:invalid", **options)(add)


def plain() -> None:
    pass


def test_sync_function_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="Write it as `async def`"):
        job(plain)  # type: ignore[arg-type]


async def test_enqueue_at_needs_an_aware_datetime_and_enqueue_in_a_delay() -> None:
    with pytest.raises(JobArgumentError, match="naive datetime"):
        await add_job.enqueue_at(datetime.datetime(2030, 1, 1), 1)  # noqa: DTZ001
    with pytest.raises(JobArgumentError, match="zero or more seconds"):
        await add_job.enqueue_in(-1, 1)
    with pytest.raises(JobArgumentError, match="a number of seconds or a timedelta"):
        await add_job.enqueue_in("soon", 1)  # type: ignore[arg-type]


def test_backoff_doubles_and_is_capped() -> None:
    assert [add_job.retry_delay(n) for n in (1, 2, 3)] == [1.5, 3.0, 6.0]
    assert add_job.retry_delay(40) == 3600.0
    custom = job(name="tests.jobs:custom", backoff=lambda attempt: attempt * 7.0)(add)
    assert custom.retry_delay(3) == 21.0


def test_unique_keys_from_arguments_or_function() -> None:
    by_args = job(name="tests.jobs:ua", unique=True)(add)
    assert by_args.build((1,), {}).unique_key == by_args.build((1,), {}).unique_key
    assert by_args.build((1,), {}).unique_key != by_args.build((2,), {}).unique_key
    by_fn = job(name="tests.jobs:uf", unique=lambda a, *args, **kw: f"a={a}")(add)
    assert by_fn.build((5, 6), {}).unique_key == "tests.jobs:uf:a=5"
    bad = job(name="tests.jobs:ub", unique=lambda *args, **kw: "")(add)
    with pytest.raises(JobArgumentError, match="returned ''"):
        bad.build((1,), {})


def test_find_job_names_what_to_import() -> None:
    with pytest.raises(UnknownJobError, match=r"No job called 'nowhere\.at\.all:f'"):
        find_job("nowhere.at.all:f")
    with pytest.raises(UnknownJobError, match="is <function add"):
        find_job("tests.jobs.test_core:add")


def test_backend_urls() -> None:
    assert isinstance(backend_from_url("database"), DatabaseBackend)
    assert backend_from_url("database://replica").using == "replica"  # type: ignore[attr-defined]
    redis = backend_from_url("redis://127.0.0.1:6379/3", prefix="x:")
    assert isinstance(redis, RedisBackend)
    assert redis.prefix == "x:"
    with pytest.raises(ImproperlyConfigured, match="Unknown jobs backend URL 'amqp://'"):
        backend_from_url("amqp://")


def test_configure_wins_over_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COVET_JOBS_URL", raising=False)
    assert isinstance(get_backend(), DatabaseBackend)
    chosen = configure("redis://127.0.0.1:6379/0")
    assert get_backend() is chosen


def test_settings_from_pyproject_table() -> None:
    settings = Settings(
        root=Path.cwd(),
        jobs={
            "url": "redis://127.0.0.1:6379/1",
            "queues": ["mail", "default"],
            "concurrency": 4,
            "visibility_timeout": 12,
            "modules": ["mysite.jobs"],
            "schedules": {"nightly": {"cron": "0 3 * * *", "job": "mysite.jobs:nightly"}},
        },
    )
    jobs = JobsSettings.from_settings(settings, environ={})
    assert (jobs.url, jobs.queues, jobs.concurrency) == (
        "redis://127.0.0.1:6379/1",
        ("mail", "default"),
        4,
    )
    assert jobs.visibility_timeout == 12.0
    assert jobs.schedules == (Schedule("nightly", "0 3 * * *", "mysite.jobs:nightly"),)
    overridden = JobsSettings.from_settings(settings, environ={"COVET_JOBS_URL": "database"})
    assert overridden.url == "database"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"workers": 3}, "unknown key(s) 'workers'"),
        ({"concurrency": 0}, "concurrency must be a whole number"),
        ({"visibility_timeout": -1}, "visibility_timeout must be a positive number"),
        ({"queues": "default"}, "queues must be a list of strings"),
        ({"schedules": {"x": {"cron": "* * * * *"}}}, "lacks ['job']"),
        ({"schedules": {"x": {"cron": "61 * * * *", "job": "a:b"}}}, "does not parse"),
        (
            {"schedules": {"x": {"cron": "* * * * *", "job": "a:b", "timezone": "Mars/Base"}}},
            "Mars/Base",
        ),
    ],
)
def test_invalid_settings_are_named(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        JobsSettings.from_settings(Settings(root=Path.cwd(), jobs=table), environ={})
    assert message in str(caught.value)


def test_schedule_ticks() -> None:
    every_five = Schedule("five", "*/5 * * * *", "a:b")
    at = datetime.datetime(2024, 1, 1, 0, 5, tzinfo=datetime.UTC).timestamp()
    assert every_five.latest_tick(at) == at  # a tick at exactly now is due
    assert every_five.latest_tick(at + 299) == at
    assert every_five.next_tick(at) == at + 300
    seconds = Schedule("seconds", "* * * * * */10", "a:b")
    assert seconds.latest_tick(at + 25.5) == at + 20
    paris = Schedule("paris", "0 3 * * *", "a:b", timezone="Europe/Paris")
    assert (
        paris.next_tick(at) == datetime.datetime(2024, 1, 1, 2, 0, tzinfo=datetime.UTC).timestamp()
    )


def test_schedules_in_code_have_unique_names() -> None:
    first = schedule("tests-jobs-tick", "* * * * *", test_jobs.tick)
    assert schedule("tests-jobs-tick", "* * * * *", test_jobs.tick) == first
    with pytest.raises(ImproperlyConfigured, match="Two schedules are called 'tests-jobs-tick'"):
        schedule("tests-jobs-tick", "*/2 * * * *", test_jobs.tick)
    with pytest.raises(ImproperlyConfigured, match="Schedule name 'bad name'"):
        Schedule("bad name", "* * * * *", "a:b")


def test_job_metrics_count_runs() -> None:
    from covet.jobs.metrics import JobMetrics
    from covet.metrics import Metrics

    metrics = Metrics(queries=False)
    observer = JobMetrics(metrics)
    try:
        claimed = ClaimedJob("id1", "a:b", "mail", "{}", 1, 1, run_at=0.0, enqueued_at=0.0)
        observer.job_enqueued("a:b", "mail")
        observer.job_started(claimed)
        observer.job_finished(claimed, "failed", 0.25)
        observer.queue_counts({("mail", "queued"): 7})
        text = metrics.exposition().decode()
    finally:
        observer.close()
        metrics.close()
    assert 'covet_jobs_enqueued_total{job="a:b",queue="mail"} 1.0' in text
    assert 'covet_jobs_finished_total{job="a:b",outcome="failed",queue="mail"} 1.0' in text
    assert 'covet_jobs_running{job="a:b",queue="mail"} 0.0' in text
    assert 'covet_jobs_queued{queue="mail",status="queued"} 7.0' in text
    assert 'covet_job_duration_seconds_count{job="a:b",queue="mail"} 1.0' in text
    assert 'covet_job_wait_seconds_count{job="a:b",queue="mail"} 1.0' in text


def test_log_records_in_a_job_carry_its_ids() -> None:
    import json
    import logging

    from covet._context import JobContext
    from covet._context import current_job as job_var
    from covet.logging import DevFormatter, JSONFormatter, RequestContextFilter

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    token = job_var.set(JobContext("01abc", "a:b", "mail", 2, "req-9", 0.0))
    try:
        RequestContextFilter().filter(record)
    finally:
        job_var.reset(token)
    assert (vars(record)["job_id"], vars(record)["request_id"]) == ("01abc", "req-9")
    assert json.loads(JSONFormatter().format(record))["job_id"] == "01abc"
    assert "[req-9 job=01abc] hello" in DevFormatter().format(record)
