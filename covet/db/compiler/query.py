"""The structural state behind a queryset, and name resolution into nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from covet.db.compiler.nodes import (
    EMPTY_WHERE,
    AggregateNode,
    Col,
    Lookup,
    Node,
    Subquery,
    WhereNode,
)
from covet.db.compiler.paths import (
    _PATTERN_LOOKUPS,
    _SORTED_LOOKUPS,
    LOOKUPS,
    PathInfo,
    resolve_path,
)
from covet.db.exceptions import FieldError
from covet.db.expressions import Expression, F, Q
from covet.db.models import Model

if TYPE_CHECKING:
    from covet.db.queryset import QuerySet

__all__ = ("Query",)


_queryset_class: list[type[QuerySet[Any]]] = []


def _queryset_type() -> type[QuerySet[Any]]:
    # covet.db.queryset imports this module, so its class is looked up once, lazily.
    if not _queryset_class:
        from covet.db.queryset import QuerySet

        _queryset_class.append(QuerySet)
    return _queryset_class[0]


class Query:
    """The structural state of a queryset; cloned, never mutated once shared."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.where: WhereNode = EMPTY_WHERE
        self.having: WhereNode = EMPTY_WHERE
        self.order_by: tuple[str, ...] | None = None
        self.low = 0
        self.high: int | None = None
        self.distinct = False
        self.select_related: tuple[str, ...] = ()
        self.only: tuple[str, ...] | None = None
        self.defer: tuple[str, ...] = ()
        self.annotations: dict[str, Node] = {}
        self.values_fields: tuple[str, ...] | None = None
        self.group_by_values = False
        self.for_update: tuple[bool, bool, tuple[str, ...]] | None = None
        self.empty = False
        self._shape: tuple[Any, ...] | None = None

    def clone(self) -> Query:
        """Return a copy that can be changed without affecting this query."""
        new = object.__new__(Query)
        new.__dict__.update(self.__dict__)
        new.annotations = dict(self.annotations)
        new._shape = None
        return new

    def shape(self) -> tuple[Any, ...]:
        """Return the cache key for this query's SQL (its structure without values)."""
        if self._shape is None:
            self._shape = (
                self.model,
                self.where.shape,
                self.having.shape,
                self.order_by,
                self.low,
                self.high,
                self.distinct,
                self.select_related,
                self.only,
                self.defer,
                tuple((k, v.shape) for k, v in self.annotations.items()),
                self.values_fields,
                self.group_by_values,
                self.for_update,
            )
        return self._shape

    @property
    def is_sliced(self) -> bool:
        """Return whether LIMIT/OFFSET applies."""
        return self.low != 0 or self.high is not None

    # -- resolution ----------------------------------------------------------------------------

    def resolve_ref(self, name: str, *, allow_joins: bool = True) -> Node:
        """Resolve an ``F()`` name: an annotation alias or a field path.

        Raises:
            FieldError: Unknown name, or a join where joins are not allowed.
        """
        if name in self.annotations:
            return self.annotations[name]
        path, _ = resolve_path(self.model, name.split("__"), allow_lookup=False)
        if not allow_joins and path.steps:
            raise FieldError(
                f"Cannot reference {name!r} across a relation here (update() writes one "
                "table). Use a field of the model itself."
            )
        return Col(path)

    def resolve_aggregate_source(self, expression: Expression) -> Node | None:
        """Resolve an aggregate's argument; ``F("*")`` (COUNT(*)) gives None."""
        if isinstance(expression, F) and expression.name == "*":
            return None
        return expression.resolve(self)

    def resolve_q(self, q: Q, *, joins: bool = False) -> WhereNode:
        """Resolve a ``Q`` tree into a :class:`WhereNode`."""
        children: list[Node] = []
        for child in q.children:
            if isinstance(child, Q):
                node = self.resolve_q(child, joins=joins)
                if node.children:
                    children.append(node)
            else:
                children.append(self.build_lookup(child[0], child[1]))
        return WhereNode(q.connector, q.negated, tuple(children))

    def build_lookup(self, key: str, value: Any) -> Lookup:
        """Resolve one ``field__lookup=value`` condition, checking names and the value.

        Raises:
            FieldError: Unknown field or lookup, or a value the lookup cannot take.
            ValidationError: The value does not fit the field (e.g. ``id="1 OR 1=1"``).
        """
        if not isinstance(key, str):
            raise FieldError(f"Invalid filter keyword {key!r}.")
        parts = key.split("__")
        path: PathInfo | None
        if parts[0] in self.annotations:
            lhs: Node = self.annotations[parts[0]]
            if len(parts) > 2 or (len(parts) == 2 and parts[1] not in LOOKUPS):
                raise FieldError(
                    f"Unsupported lookup {'__'.join(parts[1:])!r} on annotation "
                    f"{parts[0]!r}. Use one of: {_SORTED_LOOKUPS}."
                )
            lookup = parts[1] if len(parts) == 2 else "exact"
            path, field = None, lhs.output_field
            if isinstance(lhs, AggregateNode) and lhs.function == "COUNT":
                field = None
        else:
            path, lookup = resolve_path(self.model, parts)
            lhs = Col(path)
            field = path.field
        if isinstance(value, Expression):
            if lookup in ("in", "range", "isnull") or lookup in _PATTERN_LOOKUPS:
                raise FieldError(
                    f"Lookup {lookup!r} in {key!r} cannot take an expression ({value!r}). "
                    "Use exact, gt, gte, lt or lte."
                )
            return Lookup(lhs, lookup, None, field, path, rhs=value.resolve(self))
        if isinstance(value, _queryset_type()):
            if lookup not in ("in", "exact"):
                raise FieldError(f"A queryset can only be used with 'in', not {lookup!r}.")
            sub = value.query
            if sub.values_fields is None:
                sub = sub.clone()
                sub.values_fields = ("pk",)
            elif len(sub.values_fields) != 1:
                raise FieldError(
                    f"The subquery for {key!r} must select exactly one column; it selects "
                    f"{list(sub.values_fields)!r}. Use values('field')."
                )
            return Lookup(lhs, "in", Subquery(sub), field, path)
        if value is None:
            if lookup != "exact":
                raise FieldError(
                    f"Cannot compare {key!r} with None. Use '{parts[0]}__isnull=True' instead."
                )
            return Lookup(lhs, "isnull", True, field, path)
        prep = (lambda v: v) if field is None else field.get_prep_value
        if lookup == "isnull":
            if not isinstance(value, bool):
                raise FieldError(f"Lookup 'isnull' in {key!r} takes True or False, not {value!r}.")
            return Lookup(lhs, "isnull", value, field, path)
        if lookup in ("in", "range"):
            if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
                raise FieldError(
                    f"Lookup {lookup!r} in {key!r} takes a list of values, not {value!r}."
                )
            items = [v.pk if isinstance(v, Model) and not (field and field.is_relation) else v
                     for v in value]  # fmt: skip
            if lookup == "range" and len(items) != 2:
                raise FieldError(f"Lookup 'range' in {key!r} takes (low, high), got {value!r}.")
            if any(v is None for v in items):
                raise FieldError(f"Lookup {lookup!r} in {key!r} cannot contain None.")
            return Lookup(lhs, lookup, tuple(prep(v) for v in items), field, path)
        if lookup in _PATTERN_LOOKUPS:
            if field is not None and field.internal_type == "str":
                value = prep(value)
            if not isinstance(value, str):
                raise FieldError(f"Lookup {lookup!r} in {key!r} takes a string, not {value!r}.")
            return Lookup(lhs, lookup, value, field, path)
        if isinstance(value, Model) and field is not None and not field.is_relation:
            value = value.pk
        return Lookup(lhs, lookup, prep(value), field, path)

    # -- parameters for a cached shape ---------------------------------------------------------

    def selected_annotations(self) -> list[tuple[str, Node]]:
        """Return the annotations that appear in the SELECT list, in order."""
        if self.values_fields is None:
            return list(self.annotations.items())
        return [(n, self.annotations[n]) for n in self.values_fields if n in self.annotations]

    def order_nodes(self) -> list[tuple[str, Node | None, bool]]:
        """Return ``(name, annotation node or None, descending)`` per ORDER BY term."""
        terms = self.order_by if self.order_by is not None else self.model._meta.ordering
        out: list[tuple[str, Node | None, bool]] = []
        for term in terms:
            desc = term.startswith("-")
            name = term[1:] if desc else term
            out.append((name, self.annotations.get(name), desc))
        return out

    def collect_params(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters of :meth:`SQLCompiler.select_sql`, in rendering order."""
        for _, node in self.selected_annotations():
            node.collect(ops, out)
        self.where.collect(ops, out)
        self.having.collect(ops, out)
        for _, order_node, _desc in self.order_nodes():
            if order_node is not None:
                order_node.collect(ops, out)
