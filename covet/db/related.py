"""Relation descriptors, related managers and prefetching.

* ``post.author`` (forward ForeignKey/OneToOne): the cached related object.
  It is filled by ``select_related()``, ``prefetch_related()``,
  ``fetch_related()`` or assignment; otherwise reading it raises
  :class:`~covet.db.exceptions.RelationNotLoaded` (never hidden I/O). A
  ``NULL`` key reads as ``None`` without loading anything.
* ``author.posts`` (reverse ForeignKey): a :class:`RelatedManager`, a
  queryset of the author's posts with ``create()``/``add()``.
* ``post.tags`` / ``tag.posts`` (many-to-many): a :class:`ManyRelatedManager`
  with ``add/remove/clear/set`` on the join table.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from covet.db.exceptions import FieldError, RelationNotLoaded
from covet.db.fields import CASCADE, Field, ForeignKey, ManyToManyField
from covet.db.manager import Manager
from covet.db.models import Model, resolved_paths, snake_case
from covet.db.queryset import QuerySet
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


__all__ = (
    "ForwardRelationDescriptor",
    "ManyRelatedManager",
    "ManyToManyDescriptor",
    "RelatedManager",
    "ReverseRelation",
    "check_prefetch_path",
    "create_through_model",
    "install_m2m",
    "install_reverse",
    "prefetch_related_objects",
)


M = TypeVar("M", bound=Model)


def _qs(model: type[Model], using: str | None) -> QuerySet[Any]:
    return QuerySet(model, using=using)


def _not_loaded(model: type[Model], name: str) -> RelationNotLoaded:
    return RelationNotLoaded(
        f"{model.__name__}.{name} is not loaded, and covet never queries implicitly. Use "
        f"select_related({name!r}) or prefetch_related({name!r}) on the queryset, or "
        f"'await obj.fetch_related({name!r})'."
    )


@dataclass(frozen=True, slots=True)
class ReverseRelation:
    """The far side of a ForeignKey or ManyToManyField, registered on the target model."""

    name: str
    field: Field[Any]
    model: type[Model]
    many_to_many: bool
    multiple: bool


class ForwardRelationDescriptor:
    """``obj.author``: read the loaded object, or assign one (sets ``author_id``)."""

    def __init__(self, field: ForeignKey[Any]) -> None:
        self.field = field

    def __get__(self, instance: Model | None, owner: type[Any]) -> Any:
        if instance is None:
            return self.field
        name = self.field.name
        cache = instance._state.cache
        if name in cache:
            value = cache[name]
            if value is None or value.pk == instance.__dict__.get(self.field.attname):
                return value
        elif instance.__dict__.get(self.field.attname) is None:
            return None
        raise _not_loaded(type(instance), name)

    def __set__(self, instance: Model, value: Any) -> None:
        field = self.field
        if value is None:
            instance.__dict__[field.attname] = None
        elif isinstance(value, Model):
            if not isinstance(value, field.related_model):
                raise TypeError(
                    f"{type(instance).__name__}.{field.name} must be a "
                    f"{field.related_model.__name__}, not {value!r}."
                )
            instance.__dict__[field.attname] = value.pk
        else:
            raise TypeError(
                f"{type(instance).__name__}.{field.name} takes a model instance or None, not "
                f"{value!r}. Assign {field.attname} to set the key directly."
            )
        instance._state.cache[field.name] = value


class ReverseOneToOneDescriptor:
    """``user.profile`` for a OneToOneField on Profile: the loaded object or None."""

    def __init__(self, rel: ReverseRelation) -> None:
        self.rel = rel

    def __get__(self, instance: Model | None, owner: type[Any]) -> Any:
        if instance is None:
            return self
        cache = instance._state.cache
        if self.rel.name in cache:
            return cache[self.rel.name]
        raise _not_loaded(type(instance), self.rel.name)


class ReverseManyDescriptor:
    """``author.posts``: a :class:`RelatedManager` bound to the instance."""

    def __init__(self, rel: ReverseRelation) -> None:
        self.rel = rel

    def __get__(self, instance: Model | None, owner: type[Any]) -> Any:
        if instance is None:
            return self
        return RelatedManager[Any](instance, self.rel)


class ManyToManyDescriptor:
    """``post.tags`` / ``tag.posts``: a :class:`ManyRelatedManager` bound to the instance."""

    def __init__(self, field: ManyToManyField, *, reverse: bool) -> None:
        self.field = field
        self.is_reverse = reverse

    def __get__(self, instance: Model | None, owner: type[Any]) -> Any:
        if instance is None:
            return self.field if not self.is_reverse else self
        return ManyRelatedManager[Any](instance, self.field, reverse=self.is_reverse)

    def __set__(self, instance: Model, value: Any) -> None:
        raise TypeError(
            f"Direct assignment to the many-to-many {type(instance).__name__}."
            f"{self.field.name if not self.is_reverse else self.field.related_name} is not "
            "allowed. Use 'await obj.<field>.set([...])'."
        )


def _require_pk(instance: Model, what: str) -> Any:
    pk = instance.pk
    if pk is None:
        raise ValueError(
            f"{type(instance).__name__} instance needs a primary key before {what} can be "
            "used. Save it first."
        )
    return pk


def _prefetched(qs: QuerySet[Any], instance: Model, name: str) -> QuerySet[Any]:
    """Give ``qs`` the rows prefetch_related() stored on ``instance`` for ``name``, if any."""
    cached = instance._state.cache.get(name)
    if cached is not None:
        qs._result_cache = list(cached)
    return qs


class RelatedManager(Manager[M]):
    """The rows of a reverse ForeignKey (``author.posts``), as a queryset.

    Reverse relations are added at runtime; declare one on the target model
    to type it, e.g. ``posts: RelatedManager[Post]`` on ``Author``, and
    ``await author.posts.create(...)`` types as ``Post``.
    """

    def __init__(self, instance: Model, rel: ReverseRelation) -> None:
        super().__init__(cast("type[M]", rel.model))
        self.instance = instance
        self.rel = rel
        fk = rel.field
        assert isinstance(fk, ForeignKey)  # noqa: S101 - internal invariant
        self.fk = fk
        self._using = instance._state.db

    def get_queryset(self) -> QuerySet[M]:
        """Return the related rows (from the prefetch cache when loaded)."""
        pk = _require_pk(self.instance, self.rel.name)
        qs: QuerySet[M] = QuerySet(self.model, using=self._using)
        return _prefetched(qs.filter(**{self.fk.name: pk}), self.instance, self.rel.name)

    async def create(self, **kwargs: Any) -> M:
        """Create a related object pointing at the instance."""
        kwargs[self.fk.name] = self.instance
        self.instance._state.cache.pop(self.rel.name, None)
        qs: QuerySet[M] = QuerySet(self.model, using=self._using)
        return await qs.create(**kwargs)

    async def add(self, *objs: Model) -> None:
        """Point saved ``objs`` at the instance (one UPDATE)."""
        pk = _require_pk(self.instance, self.rel.name)
        for obj in objs:
            if not isinstance(obj, self.model) or obj.pk is None:
                raise TypeError(f"add() takes saved {self.model.__name__} objects, not {obj!r}.")
            setattr(obj, self.fk.name, self.instance)
        self.instance._state.cache.pop(self.rel.name, None)
        if objs:
            await (
                QuerySet(self.model, using=self._using)
                .filter(pk__in=[o.pk for o in objs])
                .update(**{self.fk.attname: pk})
            )


class ManyRelatedManager(Manager[M]):
    """The targets of a many-to-many relation from one instance, with join-table edits.

    Type one with a declaration, e.g. ``tags: ManyRelatedManager[Tag]`` next
    to the field's reverse side, as for :class:`RelatedManager`.
    """

    def __init__(self, instance: Model, field: ManyToManyField, *, reverse: bool) -> None:
        target = field.model if reverse else field.related_model
        super().__init__(cast("type[M]", target))
        self.instance = instance
        self.field = field
        self.is_reverse = reverse
        self.near, self.far = (
            (field.target_fk, field.source_fk) if reverse else (field.source_fk, field.target_fk)
        )
        self.through = field.through_model
        name = field.related_name if reverse else field.name
        assert name is not None  # noqa: S101 - internal invariant
        self.rel_name: str = name
        self._using = instance._state.db

    def get_queryset(self) -> QuerySet[M]:
        """Return the related rows (from the prefetch cache when loaded)."""
        pk = _require_pk(self.instance, self.rel_name)
        back = str(self.field.name if self.is_reverse else self.field.related_name)
        qs: QuerySet[M] = QuerySet(self.model, using=self._using)
        return _prefetched(qs.filter(**{back: pk}), self.instance, self.rel_name)

    def _target_pks(self, objs: Iterable[Any]) -> list[Any]:
        out = []
        target_pk = self.model._meta.pk
        for obj in objs:
            if isinstance(obj, Model):
                if not isinstance(obj, self.model) or obj.pk is None:
                    raise TypeError(f"Expected a saved {self.model.__name__}, got {obj!r}.")
                out.append(obj.pk)
            else:
                out.append(target_pk.clean(obj))
        return list(dict.fromkeys(out))

    def _links(self) -> QuerySet[Any]:
        pk = _require_pk(self.instance, self.rel_name)
        return QuerySet(self.through, using=self._using).filter(**{self.near.attname: pk})

    async def add(self, *objs: Any, through_defaults: dict[str, Any] | None = None) -> None:
        """Link the objects (or primary keys); already linked ones are skipped."""
        pks = self._target_pks(objs)
        if not pks:
            return
        self.instance._state.cache.pop(self.rel_name, None)
        links = self._links()
        existing = set(await links.filter(**{f"{self.far.attname}__in": pks}).values_list(
            self.far.attname, flat=True))  # fmt: skip
        me = self.instance.pk
        rows = [
            self.through(
                **{self.near.attname: me, self.far.attname: pk, **(through_defaults or {})}
            )
            for pk in pks
            if pk not in existing
        ]
        if rows:
            await _qs(self.through, self._using).bulk_create(rows)

    async def remove(self, *objs: Any) -> None:
        """Unlink the objects (or primary keys)."""
        pks = self._target_pks(objs)
        self.instance._state.cache.pop(self.rel_name, None)
        if pks:
            await self._links().filter(**{f"{self.far.attname}__in": pks}).delete()

    async def clear(self) -> None:
        """Unlink everything."""
        self.instance._state.cache.pop(self.rel_name, None)
        await self._links().delete()

    async def set(
        self, objs: Iterable[Any], *, through_defaults: dict[str, Any] | None = None
    ) -> None:
        """Make the links exactly ``objs``: remove the others, add the missing."""
        wanted = self._target_pks(objs)
        current = set(await self._links().values_list(self.far.attname, flat=True))
        stale = [pk for pk in current if pk not in set(wanted)]
        if stale:
            await self.remove(*stale)
        await self.add(
            *[pk for pk in wanted if pk not in current], through_defaults=through_defaults
        )

    async def create(self, **kwargs: Any) -> M:
        """Create a target object and link it."""
        qs: QuerySet[M] = QuerySet(self.model, using=self._using)
        obj = await qs.create(**kwargs)
        await self.add(obj)
        return obj


# -- wiring (called from fields) -----------------------------------------------------------------


def _install(model: type[Model], name: str, rel: ReverseRelation, descriptor: Any) -> None:
    meta = model._meta
    if name in meta.fields_map or (
        name in meta.reverse and meta.reverse[name].field is not rel.field
    ):
        raise ImproperlyConfigured(
            f"Reverse accessor {model.__name__}.{name} for {rel.model.__name__}."
            f"{rel.field.name} clashes with an existing field or relation. Set related_name=."
        )
    meta.reverse[name] = rel
    resolved_paths.clear()
    setattr(model, name, descriptor)


def install_reverse(fk: ForeignKey[Any]) -> None:
    """Register the reverse side of ``fk`` on its target model."""
    name = fk.related_name
    assert name is not None  # noqa: S101 - internal invariant
    if name == "+":
        return
    rel = ReverseRelation(name, fk, fk.model, False, not fk.one_to_one)
    descriptor = ReverseManyDescriptor(rel) if rel.multiple else ReverseOneToOneDescriptor(rel)
    _install(fk.related_model, name, rel, descriptor)


def install_m2m(field: ManyToManyField) -> None:
    """Register the reverse side of a many-to-many field on its target model."""
    name = field.related_name
    assert name is not None  # noqa: S101 - internal invariant
    if name == "+":
        return
    rel = ReverseRelation(name, field, field.model, True, True)
    _install(field.related_model, name, rel, ManyToManyDescriptor(field, reverse=True))


def create_through_model(field: ManyToManyField) -> type[Model]:
    """Create the automatic join model ``<Model>_<field>`` (table ``<table>_<field>``)."""
    source, target = field.model, field.related_model
    src_name = snake_case(source.__name__)
    dst_name = snake_case(target.__name__)
    if src_name == dst_name:
        src_name, dst_name = f"from_{src_name}", f"to_{dst_name}"
    meta = type(
        "Meta",
        (),
        {
            "table": f"{source._meta.table}_{field.name}",
            "unique_together": [(src_name, dst_name)],
        },
    )
    attrs: dict[str, Any] = {
        "__module__": source.__module__,
        "__qualname__": f"{source.__qualname__}_{field.name}",
        "Meta": meta,
        src_name: ForeignKey(source, on_delete=CASCADE, related_name="+"),
        dst_name: ForeignKey(target, on_delete=CASCADE, related_name="+"),
    }
    through = cast("type[Model]", type(f"{source.__name__}_{field.name}", (Model,), attrs))
    through._meta.auto_created = True
    return through


# -- prefetching ---------------------------------------------------------------------------------


def check_prefetch_path(model: type[Model], lookup: str) -> None:
    """Check that every part of ``lookup`` names a relation.

    Raises:
        FieldError: Naming the part and the relations available.
    """
    for part in lookup.split("__"):
        model = _relation_target(model, part)


def _relation_target(model: type[Model], name: str) -> type[Model]:
    meta = model._meta
    rel = meta.reverse.get(name)
    if rel is not None:
        return rel.model if not rel.many_to_many else rel.field.model
    field = meta.fields_map.get(name)
    if isinstance(field, ForeignKey) and field.name == name:
        return field.related_model
    if isinstance(field, ManyToManyField):
        return field.related_model
    choices = sorted(
        [n for n, f in meta.fields_map.items() if f.is_relation and n == f.name]
        + list(meta.reverse)
    )
    raise FieldError(
        f"{model.__name__} has no relation {name!r} to prefetch. Choices are: "
        f"{', '.join(choices) or 'none'}."
    )


def _chunks(values: Sequence[Any], size: int = 500) -> list[Sequence[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


async def _prefetch_one(objs: list[Model], name: str, using: str | None) -> list[Model]:
    """Load relation ``name`` onto ``objs``; return the related objects loaded."""
    model = type(objs[0])
    meta = model._meta
    rel = meta.reverse.get(name)
    field = meta.fields_map.get(name)
    loaded: list[Model] = []
    if rel is None and isinstance(field, ForeignKey):
        ids = list({o.__dict__[field.attname] for o in objs} - {None})
        found: dict[Any, Model] = {}
        for chunk in _chunks(ids):
            for obj in await _qs(field.related_model, using).filter(pk__in=chunk):
                found[obj.pk] = obj
        for o in objs:
            o._state.cache[name] = found.get(o.__dict__[field.attname])
        return list(found.values())
    pks = list({o.pk for o in objs})
    if rel is not None and not rel.many_to_many:
        fk = rel.field
        assert isinstance(fk, ForeignKey)  # noqa: S101 - internal invariant
        groups: dict[Any, list[Model]] = defaultdict(list)
        for chunk in _chunks(pks):
            for child in await _qs(fk.model, using).filter(**{f"{fk.attname}__in": chunk}):
                groups[child.__dict__[fk.attname]].append(child)
                loaded.append(child)
        by_pk = {o.pk: o for o in objs}
        for child in loaded:
            child._state.cache[fk.name] = by_pk.get(child.__dict__[fk.attname])
        for o in objs:
            group = groups.get(o.pk, [])
            o._state.cache[name] = group if rel.multiple else (group[0] if group else None)
        return loaded
    m2m = rel.field if rel is not None else field
    assert isinstance(m2m, ManyToManyField)  # noqa: S101 - internal invariant
    near, far = (
        (m2m.target_fk, m2m.source_fk) if rel is not None else (m2m.source_fk, m2m.target_fk)
    )
    links: dict[Any, list[Model]] = defaultdict(list)
    seen: dict[Any, Model] = {}
    for chunk in _chunks(pks):
        rows: list[Any] = await _qs(m2m.through_model, using).filter(
            **{f"{near.attname}__in": chunk}
        ).select_related(far.name)  # fmt: skip
        for row in rows:
            target = row._state.cache[far.name]
            target = seen.setdefault(target.pk, target)
            links[row.__dict__[near.attname]].append(target)
    for o in objs:
        o._state.cache[name] = links.get(o.pk, [])
    return list(seen.values())


async def prefetch_related_objects(
    objs: Sequence[Model], *lookups: str, using: str | None = None
) -> None:
    """Load each ``a__b`` relation path onto ``objs`` with one query per relation level."""
    if not objs:
        return
    done: dict[tuple[str, ...], list[Model]] = {(): list(objs)}
    for lookup in lookups:
        check_prefetch_path(type(objs[0]), lookup)
        parts = lookup.split("__")
        for depth in range(1, len(parts) + 1):
            prefix = tuple(parts[:depth])
            if prefix in done:
                continue
            level = done[prefix[:-1]]
            done[prefix] = await _prefetch_one(level, parts[depth - 1], using) if level else []
