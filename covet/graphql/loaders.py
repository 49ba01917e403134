"""Batched relation loading: one ORM query per relation level, whatever the page size.

Every relation field of a :func:`~covet.graphql.model_type` resolves through a
strawberry :class:`~strawberry.dataloader.DataLoader` kept in the request's
:class:`Loaders` cache. GraphQL resolves the siblings of one level
concurrently, so the loader sees every parent key of the level before it
runs, and answers them all with one ``WHERE key IN (...)`` query:

- forward ``ForeignKey``/``OneToOneField`` (``post.author``): the targets whose
  key is among the parents' foreign key values;
- reverse ``ForeignKey`` (``author.posts``): the children whose foreign key is
  among the parents' keys, filtered and ordered as the field's arguments say
  (one loader per distinct argument set);
- many-to-many (``post.tags``): the join rows for the parents, with their
  targets joined in (``select_related``), so still one query.

The cache lives for one request (one subscription event on a websocket), so
a row changed by a mutation is never served stale to the next request.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable, Sequence

    from covet.db.fields import ForeignKey, ManyToManyField
    from covet.db.models import Model
    from covet.db.queryset import QuerySet

__all__ = ("Loaders",)


class Loaders:
    """A per-request cache of DataLoaders, keyed by what they load.

    ``info.context.loaders`` is one of these. Custom resolvers can batch
    their own lookups through :meth:`get`::

        loader = info.context.loaders.get(("stars", "user"), load_stars)
        return await loader.load(root.id)
    """

    def __init__(self) -> None:
        self._loaders: dict[Hashable, DataLoader[Any, Any]] = {}

    def get(
        self, key: Hashable, load_fn: Callable[[list[Any]], Awaitable[Sequence[Any]]]
    ) -> DataLoader[Any, Any]:
        """Return the loader stored under ``key``, creating it from ``load_fn`` the first time.

        Args:
            key: What the loader loads; equal keys share one loader (and its cache).
            load_fn: ``async (keys) -> values``, one value per key, in order.
        """
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = DataLoader(load_fn=load_fn)
        return loader

    def forward(self, field: ForeignKey[Any], value: Any) -> Awaitable[Any]:
        """Load the object ``field`` points to from the foreign key ``value`` (batched)."""
        target = field.related_model
        target_name = field.target_field.name

        async def load(keys: list[Any]) -> list[Any]:
            rows = await target.objects.filter(**{f"{target_name}__in": _unique(keys)})
            by_key = {getattr(row, target_name): row for row in rows}
            return [by_key.get(key) for key in keys]

        return self.get(("forward", field.model, field.name), load).load(value)

    def reverse(
        self,
        field: ForeignKey[Any],
        value: Any,
        *,
        refine: Callable[[QuerySet[Any]], QuerySet[Any]] | None = None,
        refine_key: Hashable = None,
    ) -> Awaitable[Any]:
        """Load the rows whose foreign key ``field`` equals ``value`` (batched).

        Args:
            field: The foreign key on the child model (``Post.author`` for ``author.posts``).
            value: The parent's referenced key.
            refine: Applies the field's filter and ordering to the batched queryset.
            refine_key: Identifies ``refine``: equal keys share one loader.

        Returns:
            An awaitable of the list of children (or the one child or None for a
            one-to-one field).
        """
        child: type[Model] = field.model
        attname = field.attname
        many = not field.one_to_one

        async def load(keys: list[Any]) -> list[Any]:
            queryset = child.objects.filter(**{f"{attname}__in": _unique(keys)})
            if refine is not None:
                queryset = refine(queryset)
            groups: dict[Any, list[Model]] = defaultdict(list)
            async for row in queryset:
                groups[getattr(row, attname)].append(row)
            if many:
                return [groups.get(key, []) for key in keys]
            return [next(iter(groups.get(key, [])), None) for key in keys]

        key = ("reverse", child, field.name, refine_key)
        return self.get(key, load).load(value)

    def many_to_many(
        self, field: ManyToManyField, value: Any, *, reverse: bool = False
    ) -> Awaitable[list[Model]]:
        """Load the objects related to ``value`` through the join table of ``field`` (batched).

        Args:
            field: The many-to-many field (declared on the source model).
            value: The primary key of the object whose relations are wanted.
            reverse: Whether ``value`` is on the target side (``tag.posts``).
        """
        through = field.through_model
        near, far = (
            (field.target_fk, field.source_fk) if reverse else (field.source_fk, field.target_fk)
        )

        async def load(keys: list[Any]) -> list[list[Model]]:
            queryset = through.objects.filter(**{f"{near.attname}__in": _unique(keys)})
            groups: dict[Any, list[Model]] = defaultdict(list)
            async for row in queryset.select_related(far.name).order_by("pk"):
                groups[getattr(row, near.attname)].append(getattr(row, far.name))
            return [groups.get(key, []) for key in keys]

        key = ("m2m", field.model, field.name, reverse)
        return self.get(key, load).load(value)


def _unique(keys: list[Any]) -> list[Any]:
    """Return ``keys`` without repeats (DataLoader dedupes, but be explicit), order kept."""
    return list(dict.fromkeys(keys))
