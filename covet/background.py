"""Work to run after the response has been sent.

Attach a :class:`BackgroundTask` (or several, as :class:`BackgroundTasks`) to a
response with ``background=``; the response calls it once the last byte of the
body is handed to the server, so the client is not kept waiting for, say, an
email to be sent. ``async def`` functions are awaited on the event loop; plain
functions run in a worker thread so they cannot block it.

Tasks run in the order they were added. If one raises, the ones after it do
not run and the exception propagates to the server, which logs it (the
response has already gone out, so the client never sees it).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import TYPE_CHECKING, Any, ParamSpec

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ("BackgroundTask", "BackgroundTasks")

P = ParamSpec("P")


def _is_async_callable(func: Any) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - looking for an async __call__
    )


class BackgroundTask:
    """One call to make after the response is sent.

    Args:
        func: An ``async def`` function (awaited) or a plain function (run in a thread).
        *args: Positional arguments for ``func``.
        **kwargs: Keyword arguments for ``func``.

    Raises:
        TypeError: If ``func`` is not callable.
    """

    __slots__ = ("args", "func", "is_async", "kwargs")

    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def __init__(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        if not callable(func):
            raise TypeError(
                f"BackgroundTask needs a callable, got {func!r}. Pass the function itself, "
                "not the result of calling it."
            )
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.is_async = _is_async_callable(func)

    async def __call__(self) -> None:
        """Run the task: await it, or run it in a worker thread if it is synchronous."""
        if self.is_async:
            await self.func(*self.args, **self.kwargs)
        else:
            # to_thread copies the current contextvars, so request-scoped context survives.
            await asyncio.to_thread(self.func, *self.args, **self.kwargs)

    def __repr__(self) -> str:
        name = getattr(self.func, "__qualname__", repr(self.func))
        return f"{type(self).__name__}({name})"


class BackgroundTasks(BackgroundTask):
    """An ordered list of background tasks, itself usable as one ``background=`` task.

    Args:
        tasks: Tasks to start with; more can be added with :meth:`add_task`.
    """

    __slots__ = ("tasks",)

    def __init__(self, tasks: Sequence[BackgroundTask] | None = None) -> None:
        self.tasks = list(tasks) if tasks else []
        self.func = self._run_all
        self.args = ()
        self.kwargs = {}
        self.is_async = True

    def add_task(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        """Append a call of ``func(*args, **kwargs)`` to the tasks to run.

        Args:
            func: An ``async def`` function or a plain function.
            *args: Positional arguments for ``func``.
            **kwargs: Keyword arguments for ``func``.
        """
        self.tasks.append(BackgroundTask(func, *args, **kwargs))

    async def _run_all(self) -> None:
        for task in self.tasks:
            await task()

    async def __call__(self) -> None:
        """Run every task in order, stopping at the first that raises."""
        await self._run_all()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.tasks!r})"
