"""Managers: the ``Model.objects`` entry point to querysets.

A :class:`Manager` is a :class:`~covet.db.queryset.QuerySet` over the whole
table whose query comes from :meth:`Manager.get_queryset`, so every queryset
method (``filter``, ``get``, ``create``...) is available on it directly and a
subclass can narrow the default set of rows::

    class PublishedManager(Manager[Post]):
        def get_queryset(self) -> QuerySet[Post]:
            return super().get_queryset().exclude(published_at=None)

    class Post(Model):
        ...
        published = ManagerDescriptor(PublishedManager)

``Model.objects`` is a :class:`ManagerDescriptor`, which types
``Post.objects`` as ``Manager[Post]``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar, overload

from covet.db.queryset import QuerySet
from covet.db.rows import AS_MODEL

if TYPE_CHECKING:
    from covet.db.compiler import Query
    from covet.db.models import Model
    from covet.db.statements import RememberedGet

__all__ = ("Manager", "ManagerDescriptor")

M = TypeVar("M", bound="Model")
MG = TypeVar("MG", bound="Manager[Any]")


class Manager(QuerySet[M]):
    """The default manager: every queryset method, starting from :meth:`get_queryset`.

    Args:
        model: The model class managed.
    """

    #: The QuerySet class of :meth:`get_queryset` (set by :meth:`from_queryset`).
    _queryset_class: type[QuerySet[Any]] = QuerySet

    def __init__(self, model: type[M] | None = None) -> None:
        # Without a model (``objects = MyManager()`` in a class body) the manager is a
        # template: the model's ManagerDescriptor binds a copy of it to each model.
        super().__init__(model)  # type: ignore[arg-type]
        # get(name=value) statements remembered by keyword (see QuerySet.get()); filled only
        # while _base() is this manager itself, whose query no method changes.
        self._remembered_gets: dict[str, RememberedGet] | None = {}

    @classmethod
    def from_queryset(
        cls, queryset_class: type[QuerySet[Any]], class_name: str | None = None
    ) -> type[Manager[Any]]:
        """Return a manager class whose querysets are ``queryset_class``.

        Its methods are then callable on the manager (``Post.objects.published()``)
        and stay available after chaining (``Post.objects.filter(...).published()``).
        """
        if not issubclass(queryset_class, QuerySet):
            raise TypeError(f"from_queryset() needs a QuerySet subclass, got {queryset_class!r}.")
        name = class_name or f"{cls.__name__}From{queryset_class.__name__}"
        return type(name, (cls, queryset_class), {"_queryset_class": queryset_class})

    def get_queryset(self) -> QuerySet[M]:
        """Return the base queryset (override to narrow the default rows)."""
        return self._queryset_class(self.model)

    @property
    def query(self) -> Query:
        """Return the query of :meth:`get_queryset`."""
        return self.get_queryset().query

    def all(self) -> QuerySet[M]:
        """Return :meth:`get_queryset`'s rows, keeping any rows it already holds (prefetched)."""
        return self.get_queryset().all()

    def _chain(self) -> QuerySet[Any]:
        return self.get_queryset()._chain()

    def _base(self) -> QuerySet[M]:
        """Return :meth:`get_queryset`, or this manager itself when that is the default.

        The default ``get_queryset()`` builds ``QuerySet(model)``, equal to this
        manager's own state, which no method changes: reusing it spares building a
        queryset (and hashing its query anew) on every ``get()``.
        """
        if (
            type(self).get_queryset is Manager.get_queryset
            and self._queryset_class is QuerySet
            and self._using is None
            and self._mode == AS_MODEL
            and not self._prefetch
        ):
            return self
        return self.get_queryset()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} for {self.model.__name__}>"


class ManagerDescriptor(Generic[MG]):
    """Expose a manager on the model class (not on instances).

    Args:
        manager_class: The :class:`Manager` subclass to instantiate per model, or a
            manager instance (``objects = MyManager()``) copied for each model.
    """

    def __init__(self, manager_class: type[Manager[Any]] | Manager[Any] = Manager) -> None:
        if isinstance(manager_class, Manager):
            self._template: Manager[Any] | None = manager_class
            self.manager_class: type[Manager[Any]] = type(manager_class)
        else:
            self._template = None
            self.manager_class = manager_class
        self._managers: dict[type[Model], Manager[Any]] = {}

    def _bind(self, owner: type[Model]) -> Manager[Any]:
        template = self._template
        if template is None:
            return self.manager_class(owner)
        manager = copy.copy(template)  # keeps the attributes its __init__ set
        QuerySet.__init__(manager, owner)
        manager._remembered_gets = {}  # its own: the template's statements are of no model
        return manager

    @overload
    def __get__(self, instance: None, owner: type[M]) -> Manager[M]: ...
    @overload
    def __get__(self, instance: object, owner: type[Any]) -> NoReturn: ...
    def __get__(self, instance: object | None, owner: type[M]) -> Manager[M]:
        if instance is not None:
            raise AttributeError(
                f"Managers are not accessible via {owner.__name__} instances. "
                f"Use {owner.__name__}.objects."
            )
        manager = self._managers.get(owner)
        if manager is None:
            manager = self._managers[owner] = self._bind(owner)
        return manager
