"""The structural state behind a queryset, and name resolution into nodes."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import TYPE_CHECKING, Any, Final

from covet.db.compiler.functions import OrderByNode
from covet.db.compiler.nodes import (
    EMPTY_WHERE,
    AggregateNode,
    Col,
    Lookup,
    Node,
    OuterRefNode,
    SubqueryNode,
    TypedParam,
    WhereNode,
    outer_path,
)
from covet.db.compiler.numeric import numeric_value
from covet.db.compiler.paths import (
    _COMPARISONS,
    _PATTERN_LOOKUPS,
    _SORTED_LOOKUPS,
    CACHE_LIMIT,
    LOOKUPS,
    PathInfo,
    check_identifier,
    resolve_path,
)
from covet.db.compiler.transforms import (
    build_transform_lookup,
    container_lookup,
    json_ordering,
    resolve_transform,
)
from covet.db.exceptions import FieldError
from covet.db.expressions import Expression, F, Q, Subquery
from covet.db.models import Model, resolved_paths

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from covet.db.fields import Field
    from covet.db.queryset import QuerySet

__all__ = ("PLAIN_VALUE_TYPES", "Query", "check_outer_refs")

#: Value types that are never an expression, a queryset, a model instance or None: a
#: comparison (exact/gt/gte/lt/lte) with one of them binds it as one parameter, so its SQL is
#: the same whatever the value (see Query.comparison_fields()).
PLAIN_VALUE_TYPES: Final = frozenset(
    {int, str, float, bool, bytes, decimal.Decimal, datetime.datetime, datetime.date,
     datetime.time, uuid.UUID}
)  # fmt: skip


#: ``Options.cache`` key of :meth:`Query.default_ordering`.
_DEFAULT_ORDERING = "default_ordering"
_queryset_class: list[type[QuerySet[Any]]] = []


def _has_window(shape: Any) -> bool:
    """Tell whether a node's shape holds a window (``Window(...)``, maybe inside arithmetic)."""
    if not isinstance(shape, tuple):
        return False
    return (bool(shape) and shape[0] == "over") or any(_has_window(s) for s in shape)


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
        # Terms are "field"/"-field"/"?" strings or ORDER BY nodes (order_by(Lower("x"))),
        # which compare and hash by shape, so the tuple stays a valid cache key.
        self.order_by: tuple[str | OrderByNode, ...] | None = None
        self.low = 0
        self.high: int | None = None
        # True for DISTINCT, or the field names of DISTINCT ON (...).
        self.distinct: bool | tuple[str, ...] = False
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
        # One dict copy is about half the cost of filling a fresh __dict__ (queries are
        # cloned at every chained call, and twice per call through a manager).
        state = self.__dict__.copy()
        state["annotations"] = dict(self.annotations) if self.annotations else {}
        state["_shape"] = None
        new.__dict__ = state
        return new

    def shape(self) -> tuple[Any, ...]:
        """Return the cache key for this query's SQL (its structure without values)."""
        shape = self._shape
        if shape is None:
            annotations = self.annotations
            shape = self._shape = (
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
                tuple([(k, v.shape) for k, v in annotations.items()]) if annotations else (),
                self.values_fields,
                self.group_by_values,
                self.for_update,
            )
        return shape

    @property
    def is_sliced(self) -> bool:
        """Return whether LIMIT/OFFSET applies."""
        return self.low != 0 or self.high is not None

    def add_annotation(self, name: str, expression: Expression) -> None:
        """Resolve ``annotate(name=expression)`` into this query.

        Raises:
            FieldError: A bad alias (not an identifier, or clashing with a field), or
                something other than an expression.
        """
        check_identifier(name, "annotation alias")
        meta = self.model._meta
        if name in meta.fields_map or name in meta.reverse or name == "pk":
            raise FieldError(
                f"The annotation alias {name!r} clashes with a field of "
                f"{self.model.__name__}. Choose another name."
            )
        if not isinstance(expression, Expression):
            raise FieldError(
                f"annotate({name}=...) takes an expression such as F(), Value() or "
                f"Count(), not {expression!r}."
            )
        self.annotations[name] = expression.resolve(self)
        if self.values_fields is not None:
            self.values_fields = (*self.values_fields, name)
            if expression.contains_aggregate:
                self.group_by_values = True

    def add_select_related(self, paths: tuple[str, ...]) -> None:
        """Check ``select_related()`` paths and add them (all forward keys when empty).

        Raises:
            FieldError: A name is not a forward ForeignKey/OneToOneField chain.
        """
        from covet.db.fields import ForeignKey

        meta = self.model._meta
        if not paths:
            paths = tuple(f.name for f in meta.concrete_fields if isinstance(f, ForeignKey))
        for path in paths:
            model = self.model
            for part in path.split("__"):
                field = model._meta.get_field(check_identifier(part, "relation name"))
                if not isinstance(field, ForeignKey) or part != field.name:
                    raise FieldError(
                        f"select_related({path!r}): {model.__name__}.{part} is not a forward "
                        "ForeignKey or OneToOneField. Use prefetch_related() for reverse and "
                        "many-to-many relations."
                    )
                model = field.related_model
        self.select_related = tuple(dict.fromkeys(self.select_related + paths))
        self._shape = None

    def set_limits(self, start: int, stop: int | None) -> None:
        """Narrow LIMIT/OFFSET to rows ``start:stop`` of the current slice (``qs[a:b]``)."""
        low = self.low + start
        high = self.high if stop is None else self.low + stop
        if self.high is not None and high is not None:
            high = min(high, self.high)
        self.low, self.high = low, (max(high, low) if high is not None else None)

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

    def resolve_kwargs(self, kwargs: Mapping[str, Any], *, negated: bool = False) -> WhereNode:
        """Resolve ``filter(**kwargs)`` into a :class:`WhereNode` (lookups AND-ed, by name).

        The same node as ``resolve_q(Q(**kwargs))`` (or of ``~Q(...)`` when
        ``negated``) renders, without building the ``Q`` first: this is the
        path of nearly every ``filter()``/``get()`` call.
        """
        build = self.build_lookup
        if len(kwargs) == 1:
            [(key, value)] = kwargs.items()
            children: tuple[Node, ...] = (build(key, value),)
        else:
            children = tuple([build(key, value) for key, value in sorted(kwargs.items())])
        return WhereNode(Q.AND, negated, children)

    def resolve_q(self, q: Q, *, joins: bool = False) -> WhereNode:
        """Resolve a ``Q`` tree into a :class:`WhereNode`."""
        children: list[Node] = []
        for child in q.children:
            if isinstance(child, Q):
                node = self.resolve_q(child, joins=joins)
                if node.children:
                    children.append(node)
            elif isinstance(child, Expression):
                children.append(self.resolve_condition(child))
            else:
                children.append(self.build_lookup(child[0], child[1]))
        return WhereNode(q.connector, q.negated, tuple(children))

    def resolve_condition(self, expression: Expression, *, allow_joins: bool = True) -> Node:
        """Resolve a boolean expression used as a condition (``filter(Exists(...))``).

        Raises:
            FieldError: The expression's type is not boolean.
        """
        node = expression.resolve(self, allow_joins=allow_joins)
        field = node.output_field
        if field is None or field.internal_type != "bool":
            raise FieldError(
                f"{expression!r} is not a condition: filter(), Q() and When() take boolean "
                "expressions (Exists(), a Case() with output_field=BooleanField()...). "
                "Compare it instead, e.g. filter(alias=...) after annotate()."
            )
        return node

    def build_lookup(self, key: str, value: Any) -> Node:
        """Resolve one ``field__lookup=value`` condition, checking names and the value.

        Raises:
            FieldError: Unknown field or lookup, or a value the lookup cannot take.
            ValidationError: The value does not fit the field (e.g. ``id="1 OR 1=1"``).
        """
        if not isinstance(key, str):
            raise FieldError(f"Invalid filter keyword {key!r}.")
        annotations = self.annotations
        if not annotations or key.partition("__")[0] not in annotations:
            try:
                path, lookup, col, shape = self._resolve_keyword(key)
            except FieldError:
                # Not field__lookup: maybe field__transform(s)__lookup (data__owner__name).
                found = resolve_transform(self.model, key.split("__"))
                if found is None:
                    raise
                return build_transform_lookup(self, key, *found, value)
            field = path.field
            if type(value) in PLAIN_VALUE_TYPES and lookup in _COMPARISONS:
                prepared = field.get_prep_value(value)
                return Lookup(col, lookup, prepared, field, path, shape=shape)
            return self._build_lookup(key, key.split("__"), value, col, lookup, field, path)
        parts = key.split("__")
        lhs = annotations[parts[0]]
        if len(parts) > 2 or (len(parts) == 2 and parts[1] not in LOOKUPS):
            raise FieldError(
                f"Unsupported lookup {'__'.join(parts[1:])!r} on annotation "
                f"{parts[0]!r}. Use one of: {_SORTED_LOOKUPS}."
            )
        lookup = parts[1] if len(parts) == 2 else "exact"
        if _has_window(lhs.shape):
            raise FieldError(
                f"Cannot filter on the window annotation {parts[0]!r}: SQL computes windows after "
                "WHERE. Filter the rows in Python, or filter() before annotate() to narrow the "
                "rows the window sees."
            )
        annotation_field = lhs.output_field
        if isinstance(lhs, AggregateNode) and lhs.function == "COUNT":
            annotation_field = None
        return self._build_lookup(key, parts, value, lhs, lookup, annotation_field, None)

    def _resolve_keyword(self, key: str) -> tuple[PathInfo, str, Col, tuple[Any, ...]]:
        """Resolve a field-path keyword: path, lookup, column and a plain comparison's shape.

        Cached by ``(model, keyword)`` next to resolve_path()'s own entries: the column
        node holds no value, and the shape of a comparison with one plain value is the
        same for every value.

        Raises:
            FieldError: The keyword names no field or lookup of the model.
        """
        cache_key = (self.model, key)
        hit: tuple[PathInfo, str, Col, tuple[Any, ...]] | None = resolved_paths.get(cache_key)
        if hit is None:
            path, lookup = resolve_path(self.model, key.split("__"))
            col = Col(path)
            hit = (path, lookup, col, ("lk", col.shape, lookup, "%"))
            if len(resolved_paths) >= CACHE_LIMIT:
                resolved_paths.clear()
            resolved_paths[cache_key] = hit
        return hit

    def comparison_fields(self, keys: Iterable[str]) -> tuple[Field[Any], ...] | None:
        """Return the field each ``filter()`` keyword compares, or None if one does not.

        A keyword qualifies when it names a field path (not an annotation) with
        exact, gt, gte, lt or lte: with a value of :data:`PLAIN_VALUE_TYPES`, such
        a filter renders the same SQL whatever the values, and its parameter is
        ``field.get_db_prep_value(field.get_prep_value(value), ops)``.

        Raises:
            FieldError: A keyword names no field or lookup of the model.
        """
        fields = []
        for key in keys:
            if self.annotations and key.partition("__")[0] in self.annotations:
                return None
            try:
                path, lookup, _col, _shape = self._resolve_keyword(key)
            except FieldError:
                if resolve_transform(self.model, key.split("__")) is None:
                    raise
                return None
            if lookup not in _COMPARISONS:
                return None
            fields.append(path.field)
        return tuple(fields)

    def _build_lookup(
        self,
        key: str,
        parts: list[str],
        value: Any,
        lhs: Node,
        lookup: str,
        field: Field[Any] | None,
        path: PathInfo | None,
    ) -> Node:
        """Check ``value`` against ``lookup`` and build the node (see :meth:`build_lookup`)."""
        if path is not None and field is path.field and container_lookup(field, lookup):
            # data__contains={"a": 1}, tags__contains=[...]: containment, not LIKE.
            return build_transform_lookup(self, key, path, (), lookup, value)
        if isinstance(value, Expression):
            if lookup == "in" and isinstance(value, Subquery):
                node = value.resolve(self)  # IN takes the bare SELECT
                assert isinstance(node, SubqueryNode)  # noqa: S101 - Subquery resolves so
                return Lookup(lhs, "in", SubqueryNode(node.query), field, path)
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
            check_outer_refs(sub, self.model, allow_joins=True)
            return Lookup(lhs, "in", SubqueryNode(sub), field, path)
        if value is None:
            if lookup != "exact":
                raise FieldError(
                    f"Cannot compare {key!r} with None. Use '{parts[0]}__isnull=True' instead."
                )
            return Lookup(lhs, "isnull", True, field, path)
        prep: Callable[[Any], Any] = (lambda v: v) if field is None else field.get_prep_value
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
        number = numeric_value(value) if field is None else None
        if number is not None and number[0] != "int" and lookup in _COMPARISONS:
            # Nothing types the value (a Count annotation, an integer): a float or Decimal
            # keeps its own type, or PostgreSQL would bind 1.5 as the count's bigint, 1.
            return Lookup(lhs, lookup, None, None, path, rhs=TypedParam(number[1], number[0]))
        return Lookup(lhs, lookup, prep(value), field, path)

    def build_transformed(
        self,
        key: str,
        value: Any,
        lhs: Node,
        lookup: str,
        field: Field[Any] | None,
        path: PathInfo,
    ) -> Node:
        """Build ``lookup`` on a transformed column (a date part, a JSON key's value).

        The value is checked as for a plain field, against the transform's output
        field (an integer for ``created__year__in=[...]``).
        """
        return self._build_lookup(key, key.split("__"), value, lhs, lookup, field, path)

    # -- parameters for a cached shape ---------------------------------------------------------

    def selected_annotations(self) -> list[tuple[str, Node]]:
        """Return the annotations that appear in the SELECT list, in order."""
        if self.values_fields is None:
            return list(self.annotations.items())
        return [(n, self.annotations[n]) for n in self.values_fields if n in self.annotations]

    def resolve_ordering(self, terms: Iterable[Any]) -> tuple[str | OrderByNode, ...]:
        """Check ``order_by()`` terms: names stay strings, expressions become ORDER BY nodes.

        ``F("x").desc(nulls_last=True)``, ``Lower("name")`` and ``Subquery(...).asc()``
        all become one :class:`OrderByNode` (equal and hashed by shape, so the tuple is
        part of the compiled-SQL cache key as it is).

        Raises:
            FieldError: An unknown name, or a term that is neither a string nor an expression.
        """
        out: list[str | OrderByNode] = []
        for term in terms:
            if isinstance(term, Expression):
                from covet.db.functions.base import order_term

                if term.contains_aggregate:
                    raise FieldError(
                        f"Cannot order by the aggregate {term!r} directly. annotate() it and "
                        "order by its alias, e.g. annotate(n=Count('posts')).order_by('-n')."
                    )
                out.append(order_term(self, term))
                continue
            if not isinstance(term, str):
                raise FieldError(
                    f"Invalid order_by term {term!r}. Use a field name string or an "
                    "expression (F('views').desc())."
                )
            name = term[1:] if term.startswith("-") else term
            if term != "?" and name not in self.annotations:
                try:
                    resolve_path(self.model, name.split("__"), allow_lookup=False)
                except FieldError:
                    # A JSON key path ("data__price") orders by its typed values.
                    out.extend(json_ordering(self.model, name, term.startswith("-")))
                    continue
            out.append(term)
        return tuple(out)

    def default_ordering(self) -> tuple[str | OrderByNode, ...]:
        """Return the model's ``Meta.ordering``, resolved as ``order_by()`` would resolve it.

        Plain field names stay strings; a JSON key path becomes its ORDER BY nodes.
        Resolved once per model (the cache is dropped when the model gains a field).
        """
        meta = self.model._meta
        terms: tuple[str | OrderByNode, ...] | None = meta.cache.get(_DEFAULT_ORDERING)
        if terms is None:
            terms = meta.cache[_DEFAULT_ORDERING] = self.resolve_ordering(meta.ordering)
        return terms

    def reversed_ordering(self) -> tuple[str | OrderByNode, ...]:
        """Return the ordering reversed (the primary key's, descending, when unordered).

        An expression term flips its direction and its NULLS FIRST/LAST.
        """
        terms = self.order_by if self.order_by is not None else self.default_ordering()
        flipped: list[str | OrderByNode] = []
        for t in terms or ("pk",):
            if not isinstance(t, str):
                flipped.append(t.reversed())
            else:
                flipped.append(t[1:] if t.startswith("-") else ("-" + t if t != "?" else t))
        return tuple(flipped)

    def distinct_on(self) -> tuple[str, ...]:
        """Return the DISTINCT ON field names, after checking the ordering starts with them.

        Raises:
            FieldError: The ordering starts with another term (PostgreSQL requires the
                leading ORDER BY terms to be the DISTINCT ON fields).
        """
        fields = self.distinct
        if not isinstance(fields, tuple):
            return ()
        terms = self.order_by if self.order_by is not None else self.default_ordering()
        for term in terms[: len(fields)]:
            name = term.lstrip("-") if isinstance(term, str) else None
            if name not in fields:
                raise FieldError(
                    f"distinct({', '.join(map(repr, fields))}) needs order_by() to start with "
                    f"those fields, but it starts with {term!r}. Order by the distinct fields "
                    "first, e.g. order_by(*fields, '-created')."
                )
        return fields

    def order_nodes(self) -> list[tuple[str, Node | None, bool]]:
        """Return ``(name, annotation node or None, descending)`` per ORDER BY term.

        An expression term gives ``("", its ORDER BY node, descending)``.
        """
        terms = self.order_by if self.order_by is not None else self.default_ordering()
        out: list[tuple[str, Node | None, bool]] = []
        for term in terms:
            if not isinstance(term, str):
                out.append(("", term, term.descending))
                continue
            desc = term.startswith("-")
            name = term[1:] if desc else term
            out.append((name, self.annotations.get(name), desc))
        return out

    def collect_params(self, ops: Any, out: list[Any]) -> None:
        """Append the parameters of :meth:`SQLCompiler.select_sql`, in rendering order."""
        terms = self.order_by if self.order_by is not None else ()
        if not self.annotations and (not self.distinct or all(type(t) is str for t in terms)):
            # Only annotations add parameters outside WHERE/HAVING, and ORDER BY
            # expressions after them, where they are rendered (not under DISTINCT).
            self.where.collect(ops, out)
            self.having.collect(ops, out)
            for term in terms:
                if isinstance(term, OrderByNode):
                    term.collect(ops, out)
            return
        selected = self.selected_annotations()
        for _, node in selected:
            node.collect(ops, out)
        if self.distinct:
            # SQLCompiler._order(): under DISTINCT an ORDER BY expression is a selected
            # column, and the ORDER BY refers to it (a selected annotation by its position,
            # without parameters).
            names = {name for name, _ in selected}
            for name, order_node, _desc in self.order_nodes():
                if isinstance(order_node, OrderByNode):
                    order_node.expression.collect(ops, out)
                elif order_node is not None and type(order_node) is not Col and name not in names:
                    order_node.collect(ops, out)
        self.where.collect(ops, out)
        self.having.collect(ops, out)
        if not self.distinct:
            for _, order_node, _desc in self.order_nodes():
                if order_node is not None:
                    order_node.collect(ops, out)


def _query_nodes(query: Query) -> list[Node]:
    nodes: list[Node] = [query.where, query.having, *query.annotations.values()]
    nodes.extend(t for t in query.order_by or () if isinstance(t, OrderByNode))
    return nodes


def check_outer_refs(inner: Query, outer_model: type[Model], *, allow_joins: bool) -> None:
    """Check every ``OuterRef`` of ``inner`` that points at the query of ``outer_model``.

    Called when ``inner`` becomes a subquery, so that a typo in ``OuterRef("...")``
    raises there, not when the statement runs. References nested deeper
    (``OuterRef(OuterRef(...))``) are checked when their own level is resolved.

    Raises:
        FieldError: An ``OuterRef`` names no usable field of ``outer_model``.
    """
    pending: list[tuple[Query, int]] = [(inner, 0)]
    while pending:
        query, level = pending.pop()
        stack = _query_nodes(query)
        while stack:
            node = stack.pop()
            if isinstance(node, OuterRefNode):
                if node.depth == level + 1:
                    outer_path(outer_model, node.name, allow_joins=allow_joins)
            elif isinstance(node, SubqueryNode):
                pending.append((node.query, level + 1))
            stack.extend(node.get_children())
