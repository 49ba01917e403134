"""Render SELECTs for one database's ``ops``/``features``, cached per query shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from covet.db.compiler.functions import FuncNode, OrderByNode
from covet.db.compiler.nodes import Col, Converter, Lookup, Node, Transform, WhereNode
from covet.db.compiler.paths import CACHE_LIMIT, JoinStep, PathInfo, resolve_path
from covet.db.compiler.transforms import value_node
from covet.db.fields import Field, ForeignKey

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from covet.db.compiler.query import Query
    from covet.db.models import Model

__all__ = ("CompiledSelect", "ModelLayout", "SQLCompiler", "compile_select")


_select_cache: dict[tuple[Any, ...], CompiledSelect] = {}


@dataclass(slots=True)
class ModelLayout:
    """Where one model's columns sit in a row, and how to build the instance."""

    model: type[Model]
    attnames: tuple[str, ...]
    converters: tuple[tuple[int, Converter], ...]
    start: int
    end: int
    cache_name: str | None
    children: list[ModelLayout]


@dataclass(slots=True)
class CompiledSelect:
    """A compiled SELECT: SQL, parameters and the row layout."""

    sql: str
    params: list[Any]
    layout: ModelLayout | None
    names: tuple[str, ...]
    converters: tuple[tuple[int, Converter], ...]
    names_start: int
    builders: dict[Any, Any]


class SQLCompiler:
    """Render one :class:`Query` for one database's ``ops``/``features``.

    Args:
        query: The query to render.
        ops: The database's operations object.
        features: The database's feature flags.
        parent: The enclosing compiler, for subqueries (shares parameters and numbering).
    """

    def __init__(
        self, query: Query, ops: Any, features: Any, *, parent: SQLCompiler | None = None
    ) -> None:
        self.query = query
        self.ops = ops
        self.features = features
        self.quote: Callable[[str], str] = ops.quote_name
        if parent is None:
            self.params: list[Any] = []
            self.counter = [0]
            self.sub_counter = [0]
        else:
            self.params, self.counter, self.sub_counter = (
                parent.params, parent.counter, parent.sub_counter,
            )  # fmt: skip
        self.parent = parent
        table = self.quote(query.model._meta.table)
        self.base_alias_prefix = "T" if parent is None else f"S{self._next_sub()}_"
        if parent is None:
            self.base = self.from_sql = table
        else:
            # A subquery names its table by an alias of its own, so that a correlated one
            # over the outer query's table (OuterRef) tells the two apart.
            self.base = self.quote(f"{self.base_alias_prefix}0")
            self.from_sql = f"{table} AS {self.base}"
        self.joins: dict[tuple[str, ...], str] = {}
        self.join_sql: list[str] = []
        # Joins made LEFT only because select_related() fetches through them (key -> index
        # in join_sql); another use of the same join turns it back into an INNER JOIN.
        self._fetch_only: dict[tuple[str, ...], int] = {}
        self.join_filters = 0

    def _next_sub(self) -> int:
        self.sub_counter[0] += 1
        return self.sub_counter[0]

    def param(self, value: Any) -> str:
        """Append ``value`` as a parameter and return its placeholder."""
        self.params.append(value)
        self.counter[0] += 1
        return str(self.ops.placeholder(self.counter[0]))

    def join(self, steps: Sequence[JoinStep], *, fetch_only: bool = False) -> str:
        """Add the joins for ``steps`` (reusing existing ones) and return the last alias.

        A join is LEFT OUTER when the path can miss (a nullable or multi-valued step on
        the way), INNER otherwise. ``fetch_only`` marks the joins of select_related(),
        which only read the related row: they are LEFT OUTER even through a non-null
        key. Over an enforced foreign key both kinds return the same rows, but only an
        outer join pins the join order: planners may start an INNER JOIN from the
        related table, and MariaDB does (a full scan of it, a temporary table and a
        filesort instead of walking the queried table's index under ORDER BY ... LIMIT).
        SQLAlchemy's joinedload() and Tortoise make the same choice. When a filter,
        ordering or value later goes through such a join, it becomes INNER again, so
        the SQL of those queries is what it would be without select_related().
        """
        alias = self.base
        left = False
        for step in steps:
            left = left or step.nullable or step.multi
            existing = self.joins.get(step.key)
            if existing is None:
                new = self.quote(f"{self.base_alias_prefix}{len(self.joins) + 1}")
                if fetch_only and not left:
                    self._fetch_only[step.key] = len(self.join_sql)
                kind = "LEFT OUTER JOIN" if left or fetch_only else "INNER JOIN"
                self.join_sql.append(
                    f"{kind} {self.quote(step.model._meta.table)} AS {new} ON "
                    f"{new}.{self.quote(step.rhs_column)} = {alias}.{self.quote(step.lhs_column)}"
                )
                self.joins[step.key] = existing = new
            elif not left and not fetch_only and step.key in self._fetch_only:
                index = self._fetch_only.pop(step.key)
                outer = self.join_sql[index]
                self.join_sql[index] = "INNER JOIN" + outer.removeprefix("LEFT OUTER JOIN")
            alias = existing
        return str(alias)

    def column(self, path: PathInfo) -> str:
        """Render the column at the end of ``path``, joining as needed."""
        alias = self.join(path.steps) if path.steps else self.base
        return f"{alias}.{self.quote(path.field.column)}"

    # -- WHERE ---------------------------------------------------------------------------------

    def where_sql(self, node: Node, negated: bool = False) -> str:
        """Render a condition tree (``negated`` tracks the NOT parity for NULL handling)."""
        if isinstance(node, WhereNode):
            parity = negated ^ node.negated
            parts = [self.where_sql(ch, parity) for ch in node.children]
            parts = [p for p in parts if p]
            if not parts:
                return ""
            sql = parts[0] if len(parts) == 1 else "(" + f" {node.connector} ".join(parts) + ")"
            return f"NOT ({sql})" if node.negated else sql
        if type(node) is not Lookup and not isinstance(node, Lookup):
            # A boolean expression (Exists(), a boolean Case()...) is a condition itself
            # (a Lookup subclass, such as a JSON lookup, is not: it renders as a lookup).
            return node.as_sql(self)
        assert isinstance(node, Lookup)  # noqa: S101 - narrowed by the type check above
        path = node.path
        if path is not None and path.multi_index is not None and not self.join_filters:
            return self._multi_lookup(node, path)
        lhs = node.lhs.as_sql(self)
        sql = node.render(self, lhs)
        # A transform can be NULL on a non-NULL column (a missing JSON key).
        lhs_null = isinstance(node.lhs, Transform) and node.lhs.nullable
        if negated and node.lookup != "isnull" and path is not None and (path.nullable or lhs_null):
            # NOT (col = x) is NULL, not TRUE, when col is NULL: keep such rows out of the
            # condition so that exclude() returns them (Django semantics). lhs is a bare
            # column here, so repeating it repeats no parameter.
            sql = f"({sql} AND {lhs} IS NOT NULL)"
        return sql

    def _multi_lookup(self, node: Lookup, path: PathInfo) -> str:
        k = path.multi_index
        assert k is not None  # noqa: S101 - internal invariant
        q = self.quote
        outer_alias = self.join(path.steps[:k]) if k else self.base
        step = path.steps[k]
        n = self._next_sub()
        first = q(f"U{n}")
        alias = first
        joins = []
        for i, inner in enumerate(path.steps[k + 1 :], start=1):
            a = q(f"U{n}_{i}")
            joins.append(
                f" INNER JOIN {q(inner.model._meta.table)} AS {a} ON "
                f"{a}.{q(inner.rhs_column)} = {alias}.{q(inner.lhs_column)}"
            )
            alias = a
        col = f"{alias}.{q(path.field.column)}"
        if isinstance(node.lhs, Transform):
            col = node.lhs.apply(self, col)
        link = f"{first}.{q(step.rhs_column)}"
        existence = node.lookup == "isnull" and path.ends_on_relation
        cond = f"{col} IS NOT NULL" if existence else node.render(self, col)
        sub = (
            f"SELECT {link} FROM {q(step.model._meta.table)} AS {first}{''.join(joins)} "
            f"WHERE {cond} AND {link} IS NOT NULL"
        )
        sql = f"{outer_alias}.{q(step.lhs_column)} IN ({sub})"
        return f"NOT ({sql})" if existence and node.value else sql

    # -- SELECT --------------------------------------------------------------------------------

    def _model_fields(self) -> list[Field[Any]]:
        q = self.query
        meta = q.model._meta
        fields = meta.concrete_fields
        if q.only is not None:
            wanted = {meta.get_field(n).name for n in q.only} | {meta.pk.name}
            fields = [f for f in fields if f.name in wanted]
        if q.defer:
            skip = {meta.get_field(n).name for n in q.defer} - {meta.pk.name}
            fields = [f for f in fields if f.name not in skip]
        return fields

    def _layout(
        self, model: type[Model], fields: Sequence[Field[Any]], start: int, name: str | None
    ) -> ModelLayout:
        convs = []
        for i, f in enumerate(fields):
            conv = f.from_db_converter(self.ops)
            if conv is not None:
                convs.append((i, conv))
        return ModelLayout(
            model, tuple(f.attname for f in fields), tuple(convs), start,
            start + len(fields), name, [],
        )  # fmt: skip

    def select_sql(self) -> str:
        """Render the SELECT (for subqueries: the values columns only)."""
        return self._select()[0]

    def _select(
        self,
    ) -> tuple[str, ModelLayout | None, tuple[str, ...], tuple[tuple[int, Converter], ...], int]:
        q = self.query
        qn = self.quote
        cols: list[str] = []
        group: list[str] = []
        layout: ModelLayout | None = None
        names: list[str] = []
        convs: list[tuple[int, Converter]] = []
        if q.values_fields is None:
            fields = self._model_fields()
            cols.extend(f"{self.base}.{qn(f.column)}" for f in fields)
            layout = self._layout(q.model, fields, 0, None)
            layouts: dict[tuple[str, ...], ModelLayout] = {(): layout}
            for rel in q.select_related:
                parts = rel.split("__")
                model = q.model
                for depth in range(1, len(parts) + 1):
                    prefix = tuple(parts[:depth])
                    fk = model._meta.get_field(parts[depth - 1])
                    assert isinstance(fk, ForeignKey)  # noqa: S101 - internal invariant
                    model = fk.related_model
                    if prefix in layouts:
                        continue
                    path, _ = resolve_path(q.model, [*prefix, model._meta.pk.name])
                    # resolve_path short-cuts "fk__id" to the local column: join explicitly.
                    nullable = fk.null or any(s.nullable for s in path.steps)
                    steps = (
                        *path.steps,
                        JoinStep(prefix, model, fk.column, model._meta.pk.column, nullable, False),
                    )
                    # Rows locked by FOR UPDATE include the related ones, and PostgreSQL
                    # refuses to lock the nullable side of an outer join: stay INNER then.
                    alias = self.join(steps, fetch_only=q.for_update is None)
                    rfields = model._meta.concrete_fields
                    child = self._layout(model, rfields, len(cols), fk.name)
                    cols.extend(f"{alias}.{qn(f.column)}" for f in rfields)
                    layouts[prefix[:-1]].children.append(child)
                    layouts[prefix] = child
            group.extend(cols)
            names_start = len(cols)
            for name, node in q.selected_annotations():
                if not node.contains_aggregate:
                    sql = node.as_sql(self)
                    if isinstance(node, Col):
                        group.append(sql)
                else:
                    sql = node.as_sql(self)
                conv = node.converter(self.ops)
                if conv is not None:
                    convs.append((len(cols), conv))
                cols.append(f"{sql} AS {qn(name)}")
                names.append(name)
        else:
            names_start = 0
            for name in q.values_fields:
                found = q.annotations.get(name)
                vnode = found if found is not None else value_node(q.model, name)
                sql = vnode.as_sql(self)
                if not vnode.contains_aggregate and (
                    isinstance(vnode, Col) or not q.group_by_values
                ):
                    group.append(sql)
                elif isinstance(vnode, FuncNode) and not vnode.contains_aggregate:
                    # values(month=TruncMonth(...)).annotate(n=Count(...)) groups by the
                    # function: by its position, so its parameters are not bound twice.
                    group.append(str(len(cols) + 1))
                conv = vnode.converter(self.ops)
                if conv is not None:
                    convs.append((len(cols), conv))
                cols.append(f"{sql} AS {qn(name)}" if name in q.annotations else sql)
                names.append(name)
        # Under DISTINCT an ORDER BY expression must be selected too: render it with the
        # columns (its parameters then come before the WHERE's) and order by position.
        order = self._order(cols, group, names, names_start) if q.distinct else []
        where = self.where_sql(q.where)
        having = self.where_sql(q.having)
        if not q.distinct:
            order = self._order(cols, group, names, names_start)
        aggregated = any(n.contains_aggregate for n in q.annotations.values()) or bool(having)
        if aggregated and (q.values_fields is None or not q.group_by_values):
            # annotate() before values(): one group per model row, as Django does.
            pk = f"{self.base}.{qn(q.model._meta.pk.column)}"
            if pk not in group:
                group.insert(0, pk)
        out = ["SELECT "]
        if q.distinct:
            on = [
                self.column(resolve_path(q.model, n.split("__"), allow_lookup=False)[0])
                for n in q.distinct_on()
            ]
            out.append(f"{self.ops.distinct_sql(on)} ")
        out.append(", ".join(cols))
        out.append(f" FROM {self.from_sql}")
        for j in self.join_sql:
            out.append(f" {j}")
        if where:
            out.append(f" WHERE {where}")
        if aggregated and group:
            out.append(" GROUP BY " + ", ".join(dict.fromkeys(group)))
        if having:
            out.append(f" HAVING {having}")
        if order:
            out.append(" ORDER BY " + ", ".join(order))
        limit = None if q.high is None else q.high - q.low
        lo = str(self.ops.limit_offset(limit, q.low or None))
        if lo:
            out.append(f" {lo}")
        if q.for_update is not None and self.features.supports_select_for_update:
            nowait, skip_locked, of = q.for_update
            out.append(f" {self.ops.for_update_sql(nowait=nowait, skip_locked=skip_locked, of=of)}")
        return "".join(out), layout, tuple(names), tuple(convs), names_start

    def _order(
        self, cols: list[str], group: list[str], names: list[str], names_start: int
    ) -> list[str]:
        """Render the ORDER BY terms (see Query.collect_params() for their parameters)."""
        q = self.query
        order: list[str] = []
        for name, annotation, desc in q.order_nodes():
            if name == "?":
                order.append(str(self.ops.random_function()))
                continue
            if isinstance(annotation, OrderByNode):  # an expression: order_by(Lower("x"))
                order.append(self._order_expression(annotation, cols))
                continue
            node = (
                annotation
                if annotation is not None
                else Col(resolve_path(q.model, name.split("__"), allow_lookup=False)[0])
            )
            if q.distinct and not isinstance(node, Col):
                if name and name in names:
                    position = names_start + names.index(name) + 1
                else:
                    cols.append(node.as_sql(self))
                    position = len(cols)
                order.append(f"{position} DESC" if desc else f"{position} ASC")
                continue
            sql = node.as_sql(self)
            if q.distinct and sql not in cols:
                cols.append(sql)
            if not node.contains_aggregate and isinstance(node, Col):
                group.append(sql)
            order.append(f"{sql} DESC" if desc else f"{sql} ASC")
        return order

    def _order_expression(self, term: OrderByNode, cols: list[str]) -> str:
        """Render an expression ORDER BY term (its parameters: Query.collect_params()).

        SELECT DISTINCT must select what it orders by: a column is added to the
        columns as it is; another expression is selected with them (its parameters
        then come before the WHERE's) and ordered by its position, or by an alias
        with NULLS FIRST/LAST, which some databases emulate with ``expr IS NULL``.
        """
        q = self.query
        inner = term.expression
        if not q.distinct:
            return term.as_sql(self)
        sql = inner.as_sql(self)
        if isinstance(inner, Col):
            if sql not in cols:
                cols.append(sql)
            return term.as_sql(self)
        descending, nulls = term.options
        if nulls is None:
            cols.append(sql)
            ref = str(len(cols))
        else:
            ref = self.quote(f"__order{len(cols) + 1}")
            cols.append(f"{sql} AS {ref}")
        template = self.ops.function_template("order", 1, (descending, nulls))
        return str(template.format(ref))

    def count_sql(self) -> str:
        """Render ``SELECT COUNT(*)`` for the query (wrapping sliced/distinct/grouped ones)."""
        q = self.query
        if q.is_sliced or q.distinct or q.annotations or q.values_fields is not None:
            if q.select_related:
                # The related columns repeat names ("id") that a derived table refuses
                # (MySQL error 1060), and following a foreign key never changes the count.
                self.query = q = q.clone()
                q.select_related = ()
            inner = self.select_sql()
            return f"SELECT COUNT(*) FROM ({inner}) {self.quote('subquery')}"
        where = self.where_sql(q.where)
        joins = "".join(f" {j}" for j in self.join_sql)
        return f"SELECT COUNT(*) FROM {self.from_sql}{joins}" + (f" WHERE {where}" if where else "")

    def aggregate_sql(self, aggregates: dict[str, Node]) -> str:
        """Render ``SELECT agg AS name, ...`` over the filtered rows."""
        cols = [f"{node.as_sql(self)} AS {self.quote(name)}" for name, node in aggregates.items()]
        where = self.where_sql(self.query.where)
        joins = "".join(f" {j}" for j in self.join_sql)
        sql = f"SELECT {', '.join(cols)} FROM {self.from_sql}{joins}"
        return sql + (f" WHERE {where}" if where else "")

    def exists_sql(self) -> str:
        """Render a one-row existence probe."""
        q = self.query
        where = self.where_sql(q.where)
        having = self.where_sql(q.having)
        joins = "".join(f" {j}" for j in self.join_sql)
        sql = f"SELECT 1 FROM {self.from_sql}{joins}" + (f" WHERE {where}" if where else "")
        if having:
            pk = f"{self.base}.{self.quote(q.model._meta.pk.column)}"
            sql += f" GROUP BY {pk} HAVING {having}"
        return f"{sql} {self.ops.limit_offset(1, None)}"


def compile_select(query: Query, ops: Any, features: Any) -> CompiledSelect:
    """Compile a SELECT, reusing the cached SQL for a query of the same shape."""
    key = (ops, query.shape())
    hit = _select_cache.get(key)
    if hit is not None:
        params: list[Any] = []
        query.collect_params(ops, params)
        return CompiledSelect(hit.sql, params, hit.layout, hit.names, hit.converters,
                              hit.names_start, hit.builders)  # fmt: skip
    c = SQLCompiler(query, ops, features)
    sql, layout, names, convs, names_start = c._select()
    if len(_select_cache) >= CACHE_LIMIT:
        _select_cache.clear()
    result = CompiledSelect(sql, c.params, layout, names, convs, names_start, {})
    _select_cache[key] = result
    return result
