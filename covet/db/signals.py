"""Model life-cycle signals: subscribe to saves and deletes of any model.

::

    from covet.db.signals import post_save, receiver

    @receiver(post_save, sender=Post)
    async def index_post(sender, instance, created, **kwargs):
        await search.index(instance)

Four signals fire from :meth:`Model.save() <covet.db.Model.save>` and
:meth:`Model.delete() <covet.db.Model.delete>`: :data:`pre_save`,
:data:`post_save` (with ``created``), :data:`pre_delete` and :data:`post_delete`.
Receivers may be plain functions or coroutine functions; they run one after
the other, in the order they were connected, in the task that saves, and
an exception in a receiver propagates to the caller of ``save()``/``delete()``
(as in Django's ``send()``).

As in Django, receivers are held by weak reference unless connected with
``weak=False``: a receiver defined in a module lives as long as the module,
but a nested function or a lambda is dropped (and stops being called) once
nothing else refers to it.

``QuerySet.update()``, ``bulk_create()`` and ``bulk_update()`` send no
signals (they write many rows in one statement without loading them);
``QuerySet.delete()`` sends ``pre_delete``/``post_delete`` per object only
when a receiver for that model is connected, loading the rows first.

A signal with no receivers costs one attribute test on the save path.
"""

from __future__ import annotations

import inspect
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ("Signal", "post_delete", "post_save", "pre_delete", "pre_save", "receiver")

#: A receiver entry: (lookup key, sender or None, reference to the receiver, is async).
_Entry = tuple[Any, Any, "Callable[[], Callable[..., Any] | None]", bool]


def _strong(func: Callable[..., Any]) -> Callable[[], Callable[..., Any] | None]:
    return lambda: func


class Signal:
    """A hook that receivers subscribe to and that the ORM sends.

    Args:
        name: For ``repr()`` and error messages.
        arguments: The keyword arguments every ``send()`` passes (documentation).
    """

    def __init__(self, name: str, arguments: Sequence[str] = ()) -> None:
        self.name = name
        self.arguments = tuple(arguments)
        self._entries: list[_Entry] = []
        # (sender -> live receivers), cleared whenever the receivers change.
        self._cache: dict[Any, list[tuple[Callable[..., Any], bool]]] = {}
        #: True while at least one receiver is connected: the ORM tests it before sending.
        self.receivers_connected = False

    def __repr__(self) -> str:
        return f"<Signal {self.name}>"

    def connect(
        self,
        receiver: Callable[..., Any],
        sender: Any = None,
        *,
        weak: bool = True,
        dispatch_uid: str | None = None,
    ) -> None:
        """Subscribe ``receiver`` (called as ``receiver(sender=..., **kwargs)``).

        Args:
            receiver: A function or coroutine function taking ``sender`` and ``**kwargs``.
            sender: Only receive sends for this model class (None: every model).
            weak: Hold the receiver by weak reference (Django's default).
            dispatch_uid: A key that makes connecting twice (e.g. on re-import) a no-op.

        Raises:
            TypeError: ``receiver`` is not callable or takes no ``**kwargs``.
        """
        if not callable(receiver):
            raise TypeError(f"{self.name}.connect() needs a callable, got {receiver!r}.")
        try:
            params = inspect.signature(receiver).parameters.values()
        except (TypeError, ValueError):
            params = None  # a builtin: trust it
        if params is not None and not any(p.kind is p.VAR_KEYWORD for p in params):
            raise TypeError(
                f"Signal receiver {receiver!r} must accept **kwargs: signals may grow new "
                "arguments. Define it as def receiver(sender, **kwargs)."
            )
        key = (dispatch_uid, id(sender)) if dispatch_uid else (_receiver_id(receiver), id(sender))
        if any(entry[0] == key for entry in self._entries):
            return
        is_async = inspect.iscoroutinefunction(receiver) or inspect.iscoroutinefunction(
            getattr(receiver, "__call__", None)  # noqa: B004 - an async __call__ method
        )
        ref: Callable[[], Callable[..., Any] | None]
        if not weak:
            ref = _strong(receiver)
        elif inspect.ismethod(receiver):
            ref = weakref.WeakMethod(receiver, self._collected)
        else:
            ref = weakref.ref(receiver, self._collected)
        self._entries.append((key, sender, ref, is_async))
        self._changed()

    def disconnect(
        self,
        receiver: Callable[..., Any] | None = None,
        sender: Any = None,
        *,
        dispatch_uid: str | None = None,
    ) -> bool:
        """Unsubscribe a receiver (connected with the same ``sender``/``dispatch_uid``).

        Returns:
            Whether a receiver was disconnected.
        """
        if dispatch_uid:
            key = (dispatch_uid, id(sender))
        elif receiver is not None:
            key = (_receiver_id(receiver), id(sender))
        else:
            raise TypeError("disconnect() needs the receiver or its dispatch_uid.")
        before = len(self._entries)
        self._entries = [entry for entry in self._entries if entry[0] != key]
        self._changed()
        return len(self._entries) != before

    def has_listeners(self, sender: Any = None) -> bool:
        """Return whether a send for ``sender`` would call any receiver."""
        return bool(self.receivers_connected and self._live(sender))

    async def send(self, sender: Any, **kwargs: Any) -> list[tuple[Callable[..., Any], Any]]:
        """Call every receiver for ``sender`` in order; return ``(receiver, result)`` pairs.

        Coroutine receivers are awaited. An exception propagates at once (later
        receivers are not called).
        """
        if not self.receivers_connected:
            return []
        results: list[tuple[Callable[..., Any], Any]] = []
        for func, is_async in self._live(sender):
            result = func(signal=self, sender=sender, **kwargs)
            if is_async:
                result = await result
            results.append((func, result))
        return results

    def _live(self, sender: Any) -> list[tuple[Callable[..., Any], bool]]:
        found = self._cache.get(sender)
        if found is None:
            found = []
            for _key, wanted, ref, is_async in self._entries:
                if wanted is None or wanted is sender:
                    func = ref()
                    if func is not None:
                        found.append((func, is_async))
            self._cache[sender] = found
        return found

    def _collected(self, _ref: Any) -> None:
        self._entries = [entry for entry in self._entries if entry[2]() is not None]
        self._changed()

    def _changed(self) -> None:
        self._cache.clear()
        self.receivers_connected = bool(self._entries)


def _receiver_id(receiver: Callable[..., Any]) -> Any:
    """Identify a receiver so connecting it twice is a no-op (bound methods by object)."""
    if inspect.ismethod(receiver):
        return (id(receiver.__self__), id(receiver.__func__))
    return id(receiver)


def receiver(
    signal: Signal | Sequence[Signal], *, sender: Any = None, weak: bool = True, **kwargs: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Connect the decorated function to ``signal`` (or each of a list of signals).

    ``@receiver(post_save, sender=Post)`` is ``post_save.connect(func, sender=Post)``.
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        for one in [signal] if isinstance(signal, Signal) else signal:
            one.connect(func, sender=sender, weak=weak, **kwargs)
        return func

    return decorator


#: Sent by ``save()`` before validation and the INSERT/UPDATE: ``instance``, ``using``,
#: ``update_fields``. A receiver may still change the instance; the changes are validated.
pre_save = Signal("pre_save", ("instance", "using", "update_fields"))
#: Sent by ``save()`` after the row is written: ``instance``, ``created`` (True after an
#: INSERT), ``using``, ``update_fields``.
post_save = Signal("post_save", ("instance", "created", "using", "update_fields"))
#: Sent by ``delete()`` (and ``QuerySet.delete()``, per object) before the DELETE.
pre_delete = Signal("pre_delete", ("instance", "using"))
#: Sent after the DELETE; ``instance.pk`` still holds the deleted key.
post_delete = Signal("post_delete", ("instance", "using"))
