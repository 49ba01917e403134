"""Sans-IO query compiler: query state in, ``(sql, params)`` out.

:class:`Query` is the immutable-by-convention state behind a queryset. Names
are resolved against the model when the user calls ``filter()``/``order_by()``
and so on, into the SQL nodes defined here (:class:`Col`, :class:`Param`,
:class:`Lookup`, :class:`WhereNode`...). :class:`SQLCompiler` renders them;
every dialect decision (quoting, placeholders, operators, LIKE escaping,
LIMIT, RETURNING, random ordering, FOR UPDATE) comes from the database's
``ops``/``features``.

Compiled SELECTs are cached per query *shape*: the structure of the query
with the values abstracted (``filter(id=1)`` and ``filter(id=2)`` share one
SQL string). On a cache hit only the parameters are recomputed, by a
traversal (``collect``) that mirrors the rendering order exactly.

Filters across multi-valued relations (reverse foreign keys, many-to-many)
compile to ``pk IN (SELECT ...)`` subqueries, so a filter never duplicates
rows and ``exclude()`` means "no related row matches". Ordering, ``values()``
and aggregates across such relations use LEFT JOINs.

The package is split by concept: :mod:`~covet.db.compiler.paths` (name
resolution), :mod:`~covet.db.compiler.nodes` (SQL nodes),
:mod:`~covet.db.compiler.numeric` (the types of plain numbers and arithmetic),
:mod:`~covet.db.compiler.transforms` (JSON keys, date parts and array
transforms in filter paths), :mod:`~covet.db.compiler.query` (query state),
:mod:`~covet.db.compiler.select`
(SELECT rendering and its cache) and :mod:`~covet.db.compiler.write` (INSERT,
UPDATE, DELETE).
"""

from __future__ import annotations

from covet.db.compiler.nodes import (
    AggregateNode,
    Col,
    CombinedNode,
    Lookup,
    Node,
    Param,
    TypedParam,
    WhereNode,
)
from covet.db.compiler.paths import LOOKUPS, JoinStep, PathInfo, check_identifier, resolve_path
from covet.db.compiler.query import Query
from covet.db.compiler.select import CompiledSelect, SQLCompiler, compile_select
from covet.db.compiler.select import ModelLayout as ModelLayout  # for covet.db.queryset
from covet.db.compiler.transforms import value_node
from covet.db.compiler.write import compile_delete, compile_insert, compile_update

__all__ = (
    "LOOKUPS",
    "AggregateNode",
    "Col",
    "CombinedNode",
    "CompiledSelect",
    "JoinStep",
    "Lookup",
    "Node",
    "Param",
    "PathInfo",
    "Query",
    "SQLCompiler",
    "TypedParam",
    "WhereNode",
    "check_identifier",
    "compile_delete",
    "compile_insert",
    "compile_select",
    "compile_update",
    "resolve_path",
    "value_node",
)
