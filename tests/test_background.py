from __future__ import annotations

import asyncio
import contextvars
import functools
import threading

import pytest

from covet.background import BackgroundTask, BackgroundTasks

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


async def test_async_task_is_awaited_with_arguments() -> None:
    seen: list[tuple[int, str]] = []

    async def record(number: int, *, label: str) -> None:
        await asyncio.sleep(0)
        seen.append((number, label))

    task = BackgroundTask(record, 1, label="a")
    assert task.is_async
    await task()
    assert seen == [(1, "a")]


async def test_sync_task_runs_in_a_worker_thread_with_context() -> None:
    seen: list[tuple[int, str]] = []

    def record() -> None:
        seen.append((threading.get_ident(), request_id.get()))

    task = BackgroundTask(record)
    assert not task.is_async
    token = request_id.set("req-42")
    try:
        await task()
    finally:
        request_id.reset(token)
    assert len(seen) == 1
    assert seen[0][0] != threading.get_ident()
    assert seen[0][1] == "req-42"


async def test_partial_and_async_callable_objects_are_detected() -> None:
    calls: list[str] = []

    async def hello(name: str) -> None:
        calls.append(name)

    class Job:
        async def __call__(self) -> None:
            calls.append("job")

    partial_task = BackgroundTask(functools.partial(hello, "partial"))
    job_task = BackgroundTask(Job())
    assert partial_task.is_async
    assert job_task.is_async
    await partial_task()
    await job_task()
    assert calls == ["partial", "job"]


def test_not_callable_is_rejected() -> None:
    with pytest.raises(TypeError, match="needs a callable, got 42"):
        BackgroundTask(42)  # type: ignore[arg-type]


async def test_background_tasks_run_in_order() -> None:
    order: list[str] = []

    async def first() -> None:
        order.append("first")

    def second(value: str) -> None:
        order.append(value)

    tasks = BackgroundTasks([BackgroundTask(first)])
    tasks.add_task(second, "second")
    tasks.add_task(order.append, "third")
    await tasks()
    assert order == ["first", "second", "third"]
    assert "BackgroundTasks" in repr(tasks)
    assert repr(BackgroundTask(first)).endswith("first)")


async def test_failing_task_stops_the_rest() -> None:
    order: list[str] = []

    def boom() -> None:
        raise RuntimeError("task failed")

    tasks = BackgroundTasks()
    tasks.add_task(order.append, "before")
    tasks.add_task(boom)
    tasks.add_task(order.append, "after")
    with pytest.raises(RuntimeError, match="task failed"):
        await tasks()
    assert order == ["before"]


async def test_empty_background_tasks() -> None:
    await BackgroundTasks()()
