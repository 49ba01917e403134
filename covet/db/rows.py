"""Row builders: turn fetched rows into model instances, dicts, tuples or values.

A builder is made once per compiled query shape, result mode and database
alias, and cached on the :class:`~covet.db.compiler.CompiledSelect`; the
plain-model one (no joins, no annotations) is the ORM's hot path.
"""

from __future__ import annotations

from collections import namedtuple
from typing import TYPE_CHECKING, Any, Final

from covet.db.models import Model, ModelState

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from covet.db.compiler import CompiledSelect, ModelLayout

    RowBuilder = Callable[[Sequence[Any]], Any]
    RowsBuilder = Callable[[Sequence[Sequence[Any]]], list[Any]]

__all__ = ("AS_DICT", "AS_FLAT", "AS_MODEL", "AS_NAMED", "AS_TUPLE", "row_builders")

#: What a row becomes: a model instance, a dict (``values()``), a tuple, a single value
#: (``values_list(flat=True)``) or a namedtuple (``values_list(named=True)``).
AS_MODEL: Final = "model"
AS_DICT: Final = "dict"
AS_TUPLE: Final = "tuple"
AS_FLAT: Final = "flat"
AS_NAMED: Final = "named"


def _instance_maker(layout: ModelLayout, alias: str | None) -> Callable[[list[Any]], Model]:
    model = layout.model
    attnames = layout.attnames
    start, end = layout.start, layout.end
    new = object.__new__
    kids = [
        (
            _instance_maker(child, alias),
            child.cache_name or "",
            child.start + child.attnames.index(child.model._meta.pk.attname),
        )
        for child in layout.children
    ]

    def make(vals: list[Any]) -> Model:
        d = dict(zip(attnames, vals[start:end] if start else vals, strict=False))
        if kids or alias is not None:
            # Without either, Model._state makes the same state on first use.
            state = ModelState(alias, False)
            d["_state"] = state
            for kid, name, pk_pos in kids:
                state.cache[name] = kid(vals) if vals[pk_pos] is not None else None
        obj = new(model)
        obj.__dict__ = d
        return obj

    return make


def row_builders(
    compiled: CompiledSelect, mode: str, using: str | None
) -> tuple[RowBuilder, RowsBuilder]:
    """Return the (row, rows) to result functions, built once per query shape, mode and alias.

    Args:
        compiled: The compiled SELECT (it caches the builders).
        mode: What a row becomes: one of ``AS_MODEL``, ``AS_DICT``, ``AS_TUPLE``,
            ``AS_FLAT`` or ``AS_NAMED``.
        using: The database alias the instances are marked as loaded from.
    """
    key = (mode, using)
    found = compiled.builders.get(key)
    if found is None:
        found = compiled.builders[key] = _make_builders(mode, using, compiled)
    return found


def _make_builders(
    mode: str, using: str | None, compiled: CompiledSelect
) -> tuple[RowBuilder, RowsBuilder]:
    layout = compiled.layout
    if (
        mode == AS_MODEL
        and layout is not None
        and not layout.start
        and not compiled.names
        and not compiled.converters
    ):
        return _model_builders(layout, using)
    build = _make_row_builder(mode, using, compiled)
    return build, lambda rows: [build(row) for row in rows]


def _model_builders(layout: ModelLayout, alias: str | None) -> tuple[RowBuilder, RowsBuilder]:
    """Build model instances (with their ``select_related()`` objects) in one loop per shape.

    The loop is Python source written for this layout and compiled once per query
    shape: each object's ``__dict__`` is one dict display indexing the row
    (``{"id": row[0], "title": row[1], ...}``), a converter is called, on non-NULL
    values only, just for the columns that have one, and a related object is None
    when its key column is NULL. That is half the instructions of
    ``dict(zip(attnames, row))`` plus a converter loop, and no call per object.
    Columns past the layout's (DISTINCT may append ORDER BY ones) are not read. An
    object gets a ``ModelState`` here only to hold its related objects or a
    database alias: ``Model._state`` makes the default one on first use.
    :func:`_instance_maker` is the general path this must match (tested).
    """
    namespace: dict[str, Any] = {"new": object.__new__, "state": ModelState, "alias": alias}
    lines: list[str] = []
    count = [0]

    def emit(lay: ModelLayout, depth: int) -> str:
        """Append the lines building ``lay``'s object; return the variable holding it."""
        number = count[0] = count[0] + 1
        pad = "    " * depth
        kids: list[tuple[str, str]] = []
        for child in lay.children:
            pk_pos = child.start + child.attnames.index(child.model._meta.pk.attname)
            lines.append(f"{pad}if row[{pk_pos}] is None:")
            kid = f"k{count[0] + 1}"
            lines.append(f"{pad}    {kid} = None")
            lines.append(f"{pad}else:")
            built = emit(child, depth + 1)
            lines.append(f"{pad}    {kid} = {built}")
            kids.append((child.cache_name or "", kid))
        converters = dict(lay.converters)
        items: list[str] = []
        for i, name in enumerate(lay.attnames):
            pos = lay.start + i
            conv = converters.get(i)
            if conv is None:
                items.append(f"{name!r}: row[{pos}]")
            else:
                namespace[f"conv{pos}"] = conv
                items.append(
                    f"{name!r}: None if (v{pos} := row[{pos}]) is None else conv{pos}(v{pos})"
                )
        if kids or alias is not None:
            lines.append(f"{pad}st{number} = state(alias, False)")
            if kids:
                cache = ", ".join(f"{name!r}: {kid}" for name, kid in kids)
                lines.append(f"{pad}st{number}.cache = {{{cache}}}")
            items.append(f"'_state': st{number}")
        namespace[f"model{number}"] = lay.model
        lines.append(f"{pad}o{number} = new(model{number})")
        lines.append(f"{pad}o{number}.__dict__ = {{{', '.join(items)}}}")
        return f"o{number}"

    root = emit(layout, 2)
    source = "\n".join(
        [
            "def build_rows(rows):",
            "    out = []",
            "    append = out.append",
            "    for row in rows:",
            *lines,
            f"        append({root})",
            "    return out",
            "",
        ]
    )
    # Made of attribute and relation names (repr()-quoted), column positions and our own
    # variable names: nothing from a query's values or the database reaches it.
    exec(compile(source, f"<covet rows {layout.model.__qualname__}>", "exec"), namespace)  # noqa: S102
    build_rows: RowsBuilder = namespace["build_rows"]

    def build_row(row: Sequence[Any]) -> Any:
        return build_rows((row,))[0]

    return build_row, build_rows


def _named_row_type(names: Sequence[str]) -> Callable[..., tuple[Any, ...]]:
    """Return the namedtuple class ``values_list(named=True)`` rows are made of.

    Returned, never assigned: mypy takes ``x = namedtuple(...)`` in a function body for a
    type declaration, so mypyc compiles no assignment and a closure over ``x`` finds it
    unbound.
    """
    return namedtuple("Row", names)


def _make_row_builder(
    mode: str, using: str | None, compiled: CompiledSelect
) -> Callable[[Sequence[Any]], Any]:
    convs: list[tuple[int, Callable[[Any], Any]]] = list(compiled.converters)
    names = compiled.names
    layout = compiled.layout
    if mode == AS_MODEL:
        assert layout is not None  # noqa: S101 - internal invariant

        def gather(lay: ModelLayout) -> None:
            convs.extend((lay.start + i, c) for i, c in lay.converters)
            for child in lay.children:
                gather(child)

        gather(layout)
    convs.sort(key=lambda item: item[0])

    def convert(row: Sequence[Any]) -> list[Any]:
        vals = list(row)
        for i, conv in convs:
            v = vals[i]
            if v is not None:
                vals[i] = conv(v)
        return vals

    if mode == AS_MODEL:
        assert layout is not None  # noqa: S101 - internal invariant
        make = _instance_maker(layout, using)
        if not names:
            return lambda row: make(convert(row))
        ann_start = compiled.names_start

        def build_annotated(row: Sequence[Any]) -> Model:
            vals = convert(row)
            obj = make(vals)
            obj.__dict__.update(zip(names, vals[ann_start : ann_start + len(names)], strict=True))
            return obj

        return build_annotated
    if mode == AS_DICT:
        return lambda row: dict(zip(names, convert(row), strict=False))
    if mode == AS_FLAT:
        return lambda row: convert(row)[0]
    if mode == AS_NAMED:
        row_type = _named_row_type(names)
        return lambda row: row_type(*convert(row)[: len(names)])
    return lambda row: tuple(convert(row)[: len(names)])
