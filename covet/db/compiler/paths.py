"""Resolve ``a__b__c`` names against a model into joins, a field and a lookup.

Names are checked against the model when the user calls ``filter()``,
``order_by()`` and so on; every name that reaches SQL passes
:func:`check_identifier` first. Multi-valued steps (reverse foreign keys,
many-to-many) are marked so the compiler can turn filters across them into
subqueries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

from covet.db.exceptions import FieldError
from covet.db.fields import IDENTIFIER, Field, ForeignKey, ManyToManyField
from covet.db.models import resolved_paths

if TYPE_CHECKING:
    from collections.abc import Sequence

    from covet.db.models import Model

__all__ = ("CACHE_LIMIT", "LOOKUPS", "JoinStep", "PathInfo", "check_identifier", "resolve_path")


LOOKUPS: Final = frozenset(
    {
        "exact", "iexact", "contains", "icontains", "startswith", "istartswith", "endswith",
        "iendswith", "gt", "gte", "lt", "lte", "in", "isnull", "range", "regex", "iregex",
    }
)  # fmt: skip
#: Lookups that take one string (LIKE patterns, regular expressions).
_PATTERN_LOOKUPS: Final = frozenset(
    {"iexact", "contains", "icontains", "startswith", "istartswith", "endswith", "iendswith",
     "regex", "iregex"}
)  # fmt: skip
_REGEX_LOOKUPS: Final = frozenset({"regex", "iregex"})
#: Lookups that bind one value as it is (no list, no pattern, no NULL test).
_COMPARISONS: Final = frozenset({"exact", "gt", "gte", "lt", "lte"})
_SORTED_LOOKUPS: Final = ", ".join(sorted(LOOKUPS))
#: The most entries a statement or path cache holds before it is emptied.
CACHE_LIMIT: Final = 4096


def check_identifier(name: object, what: str) -> str:
    """Return ``name`` if it is a plain identifier, else raise FieldError.

    Raises:
        FieldError: ``name`` does not match ``^[A-Za-z_][A-Za-z0-9_]*$``.
    """
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise FieldError(
            f"Invalid {what} {name!r}. Use letters, digits and underscores, "
            "starting with a letter or underscore."
        )
    return name


@dataclass(frozen=True, slots=True)
class JoinStep:
    """One table joined on the way along a relation path."""

    key: tuple[str, ...]
    model: type[Model]
    lhs_column: str
    rhs_column: str
    nullable: bool
    multi: bool


@dataclass(frozen=True, slots=True)
class PathInfo:
    """A resolved ``a__b__c`` path: the joins to walk and the field at the end."""

    key: tuple[str, ...]
    steps: tuple[JoinStep, ...]
    field: Field[Any]
    multi_index: int | None
    ends_on_relation: bool

    @property
    def nullable(self) -> bool:
        """Return whether the column can be NULL (nullable field or LEFT-joined table)."""
        return self.field.null or any(s.nullable for s in self.steps)


def _is_field_name(model: type[Model], name: str) -> bool:
    meta = model._meta
    return name == "pk" or name in meta.fields_map or name in meta.reverse


def resolve_path(
    model: type[Model], parts: Sequence[str], *, allow_lookup: bool = True
) -> tuple[PathInfo, str]:
    """Resolve ``parts`` (a ``__``-split name) to a :class:`PathInfo` and a lookup.

    Successful resolutions are cached (``filter(id=...)`` in a request handler
    resolves the same path every time); errors are not.

    Raises:
        FieldError: A part is not a field, relation or lookup of the model reached;
            the message lists the valid choices.
    """
    key = (model, tuple(parts), allow_lookup)
    hit = resolved_paths.get(key)
    if hit is None:
        hit = _resolve_path(model, parts, allow_lookup)
        # Relation cycles (author__posts__author...) make valid paths unbounded: cap it.
        if len(resolved_paths) >= CACHE_LIMIT:
            resolved_paths.clear()
        resolved_paths[key] = hit
    return hit


def _resolve_path(
    model: type[Model], parts: Sequence[str], allow_lookup: bool
) -> tuple[PathInfo, str]:
    n = len(parts)

    def tail(j: int, target: type[Model]) -> bool:
        # parts[j:] is nothing, or only a lookup name that is not also a field of target.
        return j >= n or (
            j == n - 1 and parts[j] in LOOKUPS and not _is_field_name(target, parts[j])
        )

    def pk_tail(j: int, target: type[Model]) -> bool:
        # parts[j:] names the target's primary key, optionally followed by a lookup.
        return j < n and parts[j] in ("pk", target._meta.pk.name) and tail(j + 1, target)

    steps: list[JoinStep] = []
    key: tuple[str, ...] = ()
    cur = model
    nullable = False
    field: Field[Any] | None = None
    ends_on_relation = False
    i = 0
    while i < n and field is None:
        name = check_identifier(parts[i], "field name")
        meta = cur._meta
        rel = meta.reverse.get(name) if name not in meta.fields_map else None
        if rel is not None and not rel.many_to_many:
            fk = rel.field
            assert isinstance(fk, ForeignKey)  # noqa: S101 - internal invariant
            key = (*key, name)
            nullable = True
            steps.append(
                JoinStep(key, fk.model, fk.target_field.column, fk.column, True, not fk.one_to_one)
            )
            cur = fk.model
            i += 1
            if tail(i, cur):
                field, ends_on_relation = cur._meta.pk, True
            continue
        if rel is not None:
            m2m = cast("ManyToManyField", rel.field)
            near, far, far_model = m2m.target_fk, m2m.source_fk, m2m.model
        else:
            f = meta.get_field(name)
            if not f.is_relation:
                field = f
                i += 1
                break
            if isinstance(f, ManyToManyField):
                m2m = f
                near, far, far_model = f.source_fk, f.target_fk, f.related_model
            else:
                assert isinstance(f, ForeignKey)  # noqa: S101 - internal invariant
                target = f.related_model
                if name != f.name or tail(i + 1, target):
                    field = f
                    i += 1
                elif pk_tail(i + 1, target):
                    # "author__id" compares the local author_id column: no join needed.
                    field = f
                    i += 2
                else:
                    key = (*key, name)
                    nullable = nullable or f.null
                    steps.append(
                        JoinStep(key, target, f.column, target._meta.pk.column, nullable, False)
                    )
                    cur = target
                    i += 1
                continue
        assert isinstance(m2m, ManyToManyField)  # noqa: S101 - internal invariant
        key = (*key, name)
        nullable = True
        steps.append(
            JoinStep((*key, "#"), m2m.through_model, meta.pk.column, near.column, True, True)
        )
        if tail(i + 1, far_model) or pk_tail(i + 1, far_model):
            field, ends_on_relation = far, True
            i += 1 if tail(i + 1, far_model) else 2
            continue
        steps.append(JoinStep(key, far_model, far.column, far_model._meta.pk.column, True, True))
        cur = far_model
        i += 1
    if field is None:
        raise FieldError(
            f"Path {'__'.join(parts)!r} on {model.__name__} does not name a field. "
            "Name one, e.g. 'author__name'."
        )
    rest = parts[i:]
    lookup = "exact"
    if rest:
        owner = field.model.__name__
        if len(rest) > 1 or rest[0] not in LOOKUPS or not allow_lookup:
            if field.is_relation or ends_on_relation:
                raise FieldError(
                    f"Cannot resolve {'__'.join(parts)!r} on {model.__name__}: "
                    f"{rest[0]!r} is not a field of the related model. Choices are: "
                    f"{', '.join(cur._meta.field_names())}."
                )
            raise FieldError(
                f"Unsupported lookup {'__'.join(rest)!r} on {owner}.{field.name}. "
                + (
                    f"Use one of: {_SORTED_LOOKUPS}."
                    if allow_lookup
                    else "Lookups are not allowed here."
                )
            )
        lookup = rest[0]
    multi_index = next((k for k, s in enumerate(steps) if s.multi), None)
    return PathInfo((*key, field.name), tuple(steps), field, multi_index, ends_on_relation), lookup
