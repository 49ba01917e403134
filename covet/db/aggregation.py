"""``QuerySet.aggregate()``: one row of aggregates (``Sum``, ``Count``...) over a queryset.

Kept out of :mod:`covet.db.queryset`, which calls it, to keep that module
below 800 lines; the SQL comes from the compiler's ``aggregate_sql()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from covet.db.compiler import AggregateNode, SQLCompiler, check_identifier
from covet.db.exceptions import DatabaseError, FieldError
from covet.db.execution import run_fetch_one

if TYPE_CHECKING:
    from covet.db.compiler import Node
    from covet.db.expressions import Aggregate, Expression
    from covet.db.queryset import QuerySet

__all__ = ("aggregate",)


async def aggregate(
    qs: QuerySet[Any], args: tuple[Aggregate, ...], kwargs: dict[str, Expression]
) -> dict[str, Any]:
    """Compute the aggregates ``args`` and ``kwargs`` over the rows of ``qs`` in one SELECT.

    Positional aggregates are named ``<field>__<function>`` (``price__sum``);
    a ``Count`` over no rows is 0, any other aggregate None.

    Raises:
        FieldError: A bad alias or a non-aggregate expression.
        DatabaseError: The queryset is sliced, distinct or annotated with aggregates.
    """
    named: dict[str, Expression] = {}
    for agg in args:
        source = getattr(agg.expression, "name", None)
        if not isinstance(source, str):
            raise FieldError(f"Positional aggregate {agg!r} needs a name: use name=...")
        named[f"{source.replace('*', 'all')}__{type(agg).__name__.lower()}"] = agg
    named.update(kwargs)
    query = qs.query
    if (
        query.is_sliced
        or query.distinct
        or query.having.children
        or any(n.contains_aggregate for n in query.annotations.values())
    ):
        raise DatabaseError(
            "aggregate() on a sliced, distinct or aggregate-annotated queryset is not "
            "supported. Aggregate the unsliced queryset, or fetch values() and compute."
        )
    query = query.clone()
    nodes: dict[str, Node] = {}
    for name, expr in named.items():
        check_identifier(name, "aggregate alias")
        if not getattr(expr, "contains_aggregate", False):
            raise FieldError(
                f"aggregate({name}=...) takes an aggregate (Count, Sum...), not {expr!r}."
            )
        nodes[name] = expr.resolve(query)
    if query.empty:
        return {name: (0 if isinstance(n, AggregateNode) and n.function == "COUNT" else None)
                for name, n in nodes.items()}  # fmt: skip
    db = qs._read_db()
    c = SQLCompiler(query, db.ops, db.features)
    sql = c.aggregate_sql(nodes)
    row = await run_fetch_one(db, sql, c.params)
    out: dict[str, Any] = {}
    for i, (name, node) in enumerate(nodes.items()):
        value = row[i] if row is not None else None
        conv = node.converter(db.ops)
        out[name] = conv(value) if value is not None and conv is not None else value
        if value is None and isinstance(node, AggregateNode) and node.function == "COUNT":
            out[name] = 0
    return out
