"""How model instances are built: ``Model(**kwargs)`` and the per-instance :class:`ModelState`.

Internal to :mod:`covet.db.models`, which re-exports :class:`ModelState`. Building
new instances is on the path of every ``create()`` and ``bulk_create()``, so the
first instance of each model works out an :class:`InitPlan`: a builder for the
instance ``__dict__`` and, where the model allows, a generated ``__init__``
with a keyword-only parameter per column (see :func:`init_plan`).
"""

from __future__ import annotations

from keyword import iskeyword
from typing import TYPE_CHECKING, Any, NamedTuple

from covet.db.fields import NOT_PROVIDED, Field

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from covet.db.models import Model, Options

__all__ = ("INIT_PLAN", "InitPlan", "LoadedState", "ModelState", "init_from_kwargs", "init_plan")

#: The key of the :func:`init_plan` in ``Options.cache`` (cleared when a field is added).
INIT_PLAN = "covet.init_plan"
#: Default values shared by every instance as they are (immutable): no get_default() call.
_SHARED_DEFAULTS = (int, float, str, bytes, bool, type(None))
#: The default of a generated ``__init__`` parameter whose keyword was not given.
_MISSING: Any = object()


class InitPlan(NamedTuple):
    """How ``Model(**kwargs)`` is built for one model, worked out on its first instance.

    Attributes:
        names: The keywords ``build`` takes: the column attributes (``title``,
            ``author_id``; not ``author`` or ``pk``).
        build: ``build(kwargs)`` returns the new instance's ``__dict__`` when
            ``kwargs`` uses only ``names``: ``Model.__init__``'s fast path.
        init: The model's own generated ``__init__`` (see :func:`_generated_init`),
            or None when the model cannot have one.
    """

    names: frozenset[str]
    build: Callable[[dict[str, Any]], dict[str, Any]]
    init: Callable[..., None] | None


def init_plan(meta: Options) -> InitPlan:
    """Return the :class:`InitPlan` of ``meta``'s model.

    When every keyword is a column attribute (``title=``, ``author_id=``, not
    ``author=`` or ``pk=``), each column takes its keyword or its default, which is
    what the general path (:func:`init_from_kwargs`) does too; the builder is
    Python source written for the model's columns (``{"_state": State(), "id":
    kw["id"] if "id" in kw else None, ...}``), a few times cheaper than the
    general loop (``bulk_create()`` of a thousand new objects spends most of its
    time building them).
    """
    fields = meta.concrete_fields
    other_names = {f.name for f in fields if f.name != f.attname}
    names = frozenset(f.attname for f in fields if f.attname not in other_names)
    namespace: dict[str, Any] = {"State": ModelState}
    items = ['"_state": State()']
    for i, (default, value) in enumerate(_defaults(fields)):
        namespace[f"default{i}"] = value
        key = repr(fields[i].attname)
        items.append(f"{key}: kw[{key}] if {key} in kw else default{i}{'()' if default else ''}")
    source = f"def build(kw):\n    return {{{', '.join(items)}}}\n"
    # Made of the model's attribute names (repr()-quoted) only: nothing from user input.
    exec(compile(source, f"<covet init {meta.model.__qualname__}>", "exec"), namespace)  # noqa: S102
    return InitPlan(names, namespace["build"], _generated_init(meta))


def _defaults(fields: Sequence[Field[Any]]) -> list[tuple[bool, Any]]:
    """Return ``(call, value)`` per field: its shared default value, or its ``get_default``.

    ``call`` is False for a default every instance may share as it is (no
    default means None; an immutable constant), and True when each instance
    must get its own (a callable default, a mutable value, an overridden
    ``get_default()``).
    """
    return [
        (False, None if field.default is NOT_PROVIDED else field.default)
        if type(field).get_default is Field.get_default
        and (field.default is NOT_PROVIDED or type(field.default) in _SHARED_DEFAULTS)
        else (True, field.get_default)
        for field in fields
    ]


def _generated_init(meta: Options) -> Callable[..., None] | None:
    """Return an ``__init__`` for ``meta.model`` taking each column attribute as a parameter.

    ``Post(title=t, author_id=a)`` then costs what calling a plain function with
    keyword-only parameters costs: CPython binds the keywords itself, with no
    ``**kwargs`` dict to check and copy (half the time of ``Model.__init__``'s
    dict fast path). A column whose default every instance shares (None, an
    immutable constant) has it as the parameter default; the others (callable
    defaults, and relation columns such as ``author_id``, whose relation keyword
    ``author=`` must see whether it was given) default to a sentinel. Any other
    keyword (``author=``, ``pk=``, an unknown or many-to-many name) arrives in
    ``**kw`` and the call goes to :func:`init_from_kwargs` with exactly the
    keywords given, so the result, or the error, is the general path's.

    Returns None (``Model.__init__`` serves the model) when a class between the
    model and :class:`Model` defines ``__init__`` (it calls ``super().__init__()``)
    or ``__setattr__`` (the generated code stores attributes), for an abstract
    model, or when a column attribute cannot be a parameter name (not an
    identifier, twice the same, or another field's relation name).

    The source holds the attribute names as parameter names, each an ASCII
    identifier checked here, not a keyword and without ``__`` (which
    ``Field.contribute_to_class()`` already forbids); the generated code's own
    names all start with ``__`` so that none can clash with them.
    """
    from covet.db.models import Model  # models imports this module

    model = meta.model
    fields = meta.concrete_fields
    if (
        meta.abstract
        or len({f.attname for f in fields}) != len(fields)
        or {f.attname for f in fields} & {f.name for f in fields if f.name != f.attname}
        or model.__init__ is not Model.__init__
        or model.__setattr__ is not object.__setattr__
        or not all(_usable_parameter(field.attname) for field in fields)
    ):
        return None
    namespace: dict[str, Any] = {
        "__State": ModelState,
        "__missing": _MISSING,
        "__general": init_from_kwargs,
    }
    params: list[str] = []
    given: list[str] = []  # what __init__ passes on when it takes the general path
    optional: list[str] = []  # "if <attname> is not __missing: __given[...] = ..." lines
    stores = ["    __self._state = __State()"]
    for i, (field, (call, value)) in enumerate(zip(fields, _defaults(fields), strict=True)):
        attname, key = field.attname, repr(field.attname)
        namespace[f"__default{i}"] = value
        if call or field.name != attname:
            params.append(f"{attname}=__missing")
            default = f"__default{i}()" if call else f"__default{i}"
            stores.append(
                f"    __self.{attname} = {default} if {attname} is __missing else {attname}"
            )
            optional.append(
                f"        if {attname} is not __missing:\n            __given[{key}] = {attname}"
            )
        else:
            params.append(f"{attname}=__default{i}")
            stores.append(f"    __self.{attname} = {attname}")
            given.append(f"{key}: {attname}")
    source = "\n".join(
        [
            f"def __init__(__self, /, *, {', '.join(params)}, **__kw):",
            "    if __kw:",
            f"        __given = {{{', '.join(given)}}}",
            *optional,
            "        __given.update(__kw)",
            "        __general(__self, __given)",
            "        return",
            *stores,
            "",
        ]
    )
    # Only attribute names checked by _usable_parameter() and names of our own: no user input.
    code = compile(source, f"<covet __init__ {model.__qualname__}>", "exec")
    exec(code, namespace)  # noqa: S102
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{model.__qualname__}.__init__"
    init.__code__ = init.__code__.replace(co_qualname=init.__qualname__)
    init.__module__ = model.__module__
    init.__doc__ = Model.__init__.__doc__
    return init


def _usable_parameter(name: str) -> bool:
    """Return whether ``name`` can be written as a parameter of a generated ``__init__``."""
    return name.isascii() and name.isidentifier() and not iskeyword(name) and "__" not in name


def init_from_kwargs(obj: Model, kwargs: dict[str, Any]) -> None:
    """Set ``obj``'s fields from ``kwargs`` (consumed) or their defaults: ``Model(**kwargs)``.

    The general path, for keywords the fast ones do not take: relation names
    (``author=obj``, set through the relation's descriptor), ``pk=``, and the
    names that raise.

    Raises:
        TypeError: A keyword names no field, or a many-to-many field.
    """
    meta = obj._meta
    values: dict[str, Any] = {"_state": ModelState()}
    for field in meta.concrete_fields:
        attname = field.attname
        if attname in kwargs:
            values[attname] = kwargs.pop(attname)
        elif field.name in kwargs and field.is_relation:
            values[attname] = None
            related = kwargs.pop(field.name)
            obj.__dict__.update(values)
            setattr(obj, field.name, related)
            values[attname] = obj.__dict__[attname]  # the key the descriptor set
            continue
        elif field.name in kwargs:
            values[attname] = kwargs.pop(field.name)
        else:
            values[attname] = field.get_default()
    if "pk" in kwargs:
        values[meta.pk.attname] = kwargs.pop("pk")
    if kwargs:
        m2m = [name for name in kwargs if name in meta.fields_map]
        if m2m:
            raise TypeError(
                f"{type(obj).__name__}() cannot set many-to-many field(s) {m2m!r} before "
                "saving. Save the object, then use 'await obj.<field>.set(...)'."
            )
        raise TypeError(
            f"{type(obj).__name__}() got unexpected keyword argument(s) "
            f"{sorted(kwargs)!r}. Valid fields are: "
            f"{', '.join(f.name for f in meta.concrete_fields)}."
        )
    obj.__dict__.update(values)


class ModelState:
    """Per-instance bookkeeping: the database alias, whether unsaved, and loaded relations."""

    __slots__ = ("adding", "cache", "db")

    def __init__(self, db: str | None = None, adding: bool = True) -> None:
        self.db = db
        self.adding = adding
        self.cache: dict[str, Any] = {}


class LoadedState:
    """``Model._state`` for an instance loaded from the default database without one.

    Query results from the default database are built without a
    :class:`ModelState` (one per row costs about as much as building the row's
    dict): the first read of ``_state`` makes the one it would have had,
    ``ModelState(None, adding=False)``, and stores it on the instance.
    """

    def __get__(self, instance: Model | None, owner: type[Model]) -> Any:
        if instance is None:
            return self
        state = instance.__dict__["_state"] = ModelState(None, False)
        return state
