"""The declarative :class:`Model` base, its ``_meta`` options and the model registry.

A model is a class whose attributes are :mod:`covet.db.fields` instances::

    class Post(Model):
        title = fields.CharField(max_length=200)

        class Meta:
            table = "posts"

Every concrete model gets an automatic ``id`` (a 64-bit auto-increment
:class:`~covet.db.fields.AutoField`) unless a field says ``primary_key=True``,
a ``DoesNotExist``/``MultipleObjectsReturned`` pair of exceptions, and
``objects``, a :class:`~covet.db.manager.Manager` typed for the class.

Instances hold plain values in ``__dict__`` (attribute access costs nothing)
and never do hidden I/O: reading an unloaded relation raises
:class:`~covet.db.exceptions.RelationNotLoaded`.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any, ClassVar, Self

from covet.db.exceptions import (
    FieldError,
    MultipleObjectsReturned,
    ObjectDoesNotExist,
    ValidationError,
)
from covet.db.fields import AutoField, Field, ManyToManyField
from covet.db.instances import (
    INIT_PLAN,
    LoadedState,
    ModelState,
    init_from_kwargs,
    init_plan,
)
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from covet.db.manager import ManagerDescriptor
    from covet.db.related import ReverseRelation

__all__ = (
    "Model",
    "ModelState",
    "Options",
    "get_model",
    "isolated_models",
    "lazy_related",
    "registered_models",
    "resolved_paths",
    "snake_case",
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_META_KEYS = frozenset({"abstract", "indexes", "ordering", "table", "unique_together"})

_by_qualname: dict[str, type[Model]] = {}
_by_name: dict[str, type[Model]] = {}
_pending: list[tuple[type[Model], str, Callable[[type[Model]], None]]] = []
#: ``resolve_path()`` results keyed by ``(model, parts, allow_lookup)``, and the resolved
#: filter keywords of ``Query.build_lookup()`` keyed by ``(model, keyword)``. A path crosses
#: models, so the whole cache is dropped whenever any model gains a field or a reverse
#: relation (which only happens while models are being defined).
resolved_paths: dict[tuple[Any, ...], Any] = {}


def snake_case(name: str) -> str:
    """Return ``name`` (CapWords) in snake_case: ``BlogPost`` -> ``blog_post``."""
    return _CAMEL.sub("_", name).lower()


def registered_models() -> list[type[Model]]:
    """Return every registered model class, in definition order."""
    return list(_by_qualname.values())


@contextlib.contextmanager
def isolated_models() -> Iterator[None]:
    """Keep the models defined inside the block out of the registry.

    Such a model works as usual (queries, ``create_all([Model])``), but
    ``create_all()`` with no model list, ``get_model()`` and migrations no
    longer see it. Tests use it for models that only some databases can create
    (an ``ArrayField`` model on PostgreSQL only), which would otherwise make
    every later ``create_all()`` on the others fail. A reverse relation such a
    model adds to a registered one (through a ``ForeignKey``) stays.
    """
    saved = dict(_by_qualname), dict(_by_name), list(_pending)
    try:
        yield
    finally:
        _by_qualname.clear()
        _by_qualname.update(saved[0])
        _by_name.clear()
        _by_name.update(saved[1])
        _pending[:] = saved[2]


def get_model(name: str) -> type[Model]:
    """Return the registered model called ``name`` (``"Post"`` or ``"app.models.Post"``).

    Raises:
        LookupError: No model has that name.
    """
    model = _by_qualname.get(name) or _by_name.get(name)
    if model is None:
        raise LookupError(f"No model named {name!r} is defined. Check the name and its import.")
    return model


def lazy_related(
    model: type[Model], to: type[Model] | str, callback: Callable[[type[Model]], None]
) -> None:
    """Call ``callback(target)`` now if ``to`` is resolvable, else once it is defined.

    ``to`` is a model class, ``"self"``, a model name (looked up first in
    ``model``'s module) or a dotted ``"module.Name"``.
    """
    if isinstance(to, type):
        callback(to)
        return
    if to == "self":
        callback(model)
        return
    target = _by_qualname.get(f"{model.__module__}.{to}") or _by_qualname.get(to)
    target = target or _by_name.get(to)
    if target is not None:
        callback(target)
    else:
        _pending.append((model, to, callback))


def _register(model: type[Model]) -> None:
    _by_qualname[f"{model.__module__}.{model.__name__}"] = model
    _by_name[model.__name__] = model
    ready = [
        entry
        for entry in _pending
        if entry[1] in (model.__name__, f"{model.__module__}.{model.__name__}")
    ]
    for entry in ready:
        _pending.remove(entry)
        entry[2](model)


#: ``Options.cache`` key of the model's :func:`_clean_plan` (dropped with the cache).
_CLEAN_PLAN = "full_clean_plan"


def _clean_plan(meta: Options) -> list[tuple[str, str, bool, Callable[[Any], Any]]]:
    """Return ``(name, attname, filled_later, clean)`` per concrete field, for full_clean().

    Worked out once per model because ``full_clean()`` runs for every object
    saved or bulk-created: ``filled_later`` marks fields whose ``None`` the
    database (auto keys) or ``pre_save()`` (``auto_now``) replaces, and
    ``clean`` is the field's bound ``clean`` or, when the field checks nothing
    beyond its type and ``check_value()``, the same checks without the
    ``validate()`` step.
    """
    return [
        (
            field.name,
            field.attname,
            bool(
                field.auto_created
                or getattr(field, "auto_now", False)
                or getattr(field, "auto_now_add", False)
            ),
            _type_only_clean(field) if _checks_type_only(field) else field.clean,
        )
        for field in meta.concrete_fields
    ]


def _checks_type_only(field: Field[Any]) -> bool:
    """Return whether ``field.clean()`` is the base one and ``validate()`` adds nothing.

    Then ``validate()`` reports only what ``check_value()`` returns: the field
    has no choices and no validators, and neither method is overridden.
    """
    cls = type(field)
    return (
        cls.clean is Field.clean
        and cls.validate is Field.validate
        and field.choices is None
        and not field.validators
    )


def _type_only_clean(field: Field[Any]) -> Callable[[Any], Any]:
    """Return ``Field.clean`` for a field whose ``validate()`` is its ``check_value()`` alone."""
    to_python = field.to_python
    check = field.check_value if type(field).check_value is not Field.check_value else None
    name, null = field.name, field.null

    def clean(value: Any) -> Any:
        if value is None:
            if not null:
                raise ValidationError({name: ["This field cannot be null."]})
            return None
        try:
            value = to_python(value)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise ValidationError({name: [str(exc)]}) from None
        if check is not None:
            problems = check(value)
            if problems:
                raise ValidationError({name: list(problems)})
        return value

    return clean


class Options:
    """A model's metadata, reachable as ``Model._meta``.

    Attributes:
        table: The table name (``Meta.table`` or the class name in snake_case).
        ordering: Default ``order_by()`` terms.
        indexes: Extra composite indexes, each a sequence of field names.
        unique_together: Composite unique constraints, each a sequence of field names.
        abstract: Abstract models have no table and only lend fields to subclasses.
    """

    def __init__(
        self, model: type[Model], meta: type | None, inherited: dict[str, Any] | None = None
    ) -> None:
        attrs = dict(inherited or {})
        if meta is not None:
            # Meta may subclass an abstract base's Meta (class Meta(Base.Meta)): read its bases.
            for klass in reversed(meta.__mro__[:-1]):
                attrs.update({k: v for k, v in vars(klass).items() if not k.startswith("_")})
            attrs["abstract"] = vars(meta).get("abstract", False)
        else:
            attrs["abstract"] = False
        unknown = set(attrs) - _META_KEYS
        if unknown:
            raise ImproperlyConfigured(
                f"Unknown Meta option(s) {sorted(unknown)!r} on {model.__name__}. "
                f"Use: {', '.join(sorted(_META_KEYS))}."
            )
        self.model = model
        self.model_name = snake_case(model.__name__)
        self.abstract: bool = bool(attrs.get("abstract", False))
        self.table: str = attrs.get("table") or self.model_name
        self.ordering: tuple[str, ...] = tuple(attrs.get("ordering", ()))
        self.indexes: tuple[tuple[str, ...], ...] = tuple(
            tuple(i) for i in attrs.get("indexes", ())
        )
        self.unique_together: tuple[tuple[str, ...], ...] = tuple(
            tuple(u) for u in attrs.get("unique_together", ())
        )
        self.fields: list[Field[Any]] = []
        self.concrete_fields: list[Field[Any]] = []
        self.many_to_many: list[ManyToManyField] = []
        self.fields_map: dict[str, Field[Any]] = {}
        self.reverse: dict[str, ReverseRelation] = {}
        self.pk: Field[Any] = None  # type: ignore[assignment]
        self._has_pk = False
        self.auto_created = False
        self.cache: dict[Any, Any] = {}

    def add_field(self, field: Field[Any]) -> None:
        """Register ``field`` (called by ``Field.contribute_to_class``)."""
        if field.name in self.fields_map or field.name in self.reverse:
            raise ImproperlyConfigured(f"Duplicate field {field.name!r} on {self.model.__name__}.")
        self.fields.append(field)
        self.fields_map[field.name] = field
        if field.many_to_many:
            assert isinstance(field, ManyToManyField)  # noqa: S101 - internal invariant
            self.many_to_many.append(field)
        else:
            self.concrete_fields.append(field)
            if field.attname != field.name:
                self.fields_map[field.attname] = field
        if field.primary_key:
            if self._has_pk:
                raise ImproperlyConfigured(f"{self.model.__name__} has two primary keys.")
            self.pk = field
            self._has_pk = True
        plan = self.cache.get(INIT_PLAN)
        generated = plan.init if plan is not None else None
        if generated is not None and vars(self.model).get("__init__") is generated:
            # The generated __init__ knows the old fields: the next instance makes a new one.
            delattr(self.model, "__init__")
        self.cache.clear()
        resolved_paths.clear()

    def get_field(self, name: str) -> Field[Any]:
        """Return the field called ``name`` (``"pk"``, a name or an ``_id`` attname).

        Raises:
            FieldError: Listing the valid names.
        """
        if name == "pk":
            return self.pk
        try:
            return self.fields_map[name]
        except KeyError:
            raise FieldError(
                f"{self.model.__name__} has no field {name!r}. Choices are: "
                f"{', '.join(self.field_names())}."
            ) from None

    def field_names(self) -> list[str]:
        """Return every name usable in queries, sorted: fields, ``_id`` columns, reverse names."""
        return sorted({*self.fields_map, *self.reverse, "pk"})

    def __repr__(self) -> str:
        return f"<Options for {self.model.__name__}>"


#: Meta options an abstract base lends to subclasses that declare no Meta of their own
#: (never ``abstract`` or ``table``); a subclass's own Meta extends them by subclassing
#: the base's (``class Meta(Base.Meta)``), as in Django.
_INHERITED_META = ("indexes", "ordering", "unique_together")


def _inherited_meta(cls: type) -> dict[str, Any]:
    """Return the Meta options ``cls`` inherits from its abstract bases (nearest wins)."""
    found: dict[str, Any] = {}
    for base in reversed(cls.__mro__[1:]):
        options = vars(base).get("_meta")
        if isinstance(options, Options) and options.abstract:
            found.update({key: getattr(options, key) for key in _INHERITED_META})
    return {key: value for key, value in found.items() if value}


class Model:
    """Base class for database models.

    Construct instances with keyword arguments naming fields (or ``<fk>_id``);
    unknown names raise :class:`TypeError`. Missing fields take their default.
    """

    _meta: ClassVar[Options]
    objects: ClassVar[ManagerDescriptor[Any]]
    DoesNotExist: ClassVar[type[ObjectDoesNotExist]] = ObjectDoesNotExist
    MultipleObjectsReturned: ClassVar[type[MultipleObjectsReturned]] = MultipleObjectsReturned
    if TYPE_CHECKING:
        _state: ModelState
    else:
        # Every instance has its own ModelState in __dict__; rows loaded from the default
        # database get theirs on first use (see LoadedState).
        _state = LoadedState()

    if TYPE_CHECKING:
        # Foreign key columns (``author_id``), reverse relations (``author.posts``) and
        # annotations are added at runtime; type them as Any rather than as errors.
        def __getattr__(self, name: str) -> Any: ...

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        from covet.db.manager import Manager, ManagerDescriptor

        own_meta = cls.__dict__.get("Meta")
        inherited: list[tuple[str, Field[Any]]] = []
        for base in reversed(cls.__mro__[1:]):
            if not issubclass(base, Model):
                # A plain mixin class (class TimestampMixin: created = DateTimeField(...)):
                # its fields are inherited like an abstract model's.
                inherited.extend((k, v) for k, v in vars(base).items() if isinstance(v, Field))
                continue
            if base is Model:
                continue
            if not base._meta.abstract:
                raise ImproperlyConfigured(
                    f"{cls.__name__} subclasses the concrete model {base.__name__}, which "
                    "covet does not support. Make the base abstract (Meta.abstract = True)."
                )
            inherited.extend(base.__dict__["_declared_fields"].items())
        declared = [(k, v) for k, v in cls.__dict__.items() if isinstance(v, Field)]
        cls._meta = Options(cls, own_meta, None if own_meta else _inherited_meta(cls))
        merged: dict[str, Field[Any]] = dict(inherited)
        merged.update(declared)
        cls._declared_fields = merged  # type: ignore[attr-defined]
        for name, value in list(cls.__dict__.items()):
            if isinstance(value, Manager):
                # ``objects = MyManager()``: one copy of it per concrete model.
                setattr(cls, name, ManagerDescriptor(value))
        if cls._meta.abstract:
            return
        if not any(
            isinstance(vars(klass).get("objects"), ManagerDescriptor) for klass in cls.__mro__
        ):
            cls.objects = ManagerDescriptor()
        if not any(f.primary_key for f in merged.values()):
            if "id" in merged:
                raise ImproperlyConfigured(
                    f"{cls.__name__} declares a field 'id' without primary_key=True. "
                    "Rename it or make it the primary key."
                )
            AutoField().contribute_to_class(cls, "id")
        own = {name for name, _ in declared}
        # Many-to-many fields last: their join model needs the primary key in place.
        ordered = sorted(merged.items(), key=lambda item: item[1].many_to_many)
        for name, field in ordered:
            (field if name in own else field.clone()).contribute_to_class(cls, name)
        cls.DoesNotExist = type(
            "DoesNotExist",
            (ObjectDoesNotExist,),
            {"__module__": cls.__module__, "__qualname__": f"{cls.__qualname__}.DoesNotExist"},
        )
        cls.MultipleObjectsReturned = type(
            "MultipleObjectsReturned",
            (MultipleObjectsReturned,),
            {
                "__module__": cls.__module__,
                "__qualname__": f"{cls.__qualname__}.MultipleObjectsReturned",
            },
        )
        for names in (*cls._meta.indexes, *cls._meta.unique_together):
            for name in names:
                cls._meta.get_field(name)
        _register(cls)

    def __init__(self, **kwargs: Any) -> None:
        """Set each field from its keyword (a column attribute, a relation or ``pk``) or default.

        Raises:
            TypeError: A keyword names no field, or a many-to-many field.
        """
        meta = self._meta
        plan = meta.cache.get(INIT_PLAN)
        if plan is None:
            plan = meta.cache[INIT_PLAN] = init_plan(meta)
            if plan.init is not None:
                # From now on the model's own generated __init__ builds its instances
                # (type.__setattr__: mypy rejects assigning to a method, ruff a constant setattr).
                type.__setattr__(meta.model, "__init__", plan.init)
        if kwargs.keys() <= plan.names:
            # Only column attributes given (the common case): the values in one dict display.
            self.__dict__.update(plan.build(kwargs))
        else:
            init_from_kwargs(self, kwargs)

    @property
    def pk(self) -> Any:
        """Return the primary key value (``None`` while unsaved with an auto key)."""
        return self.__dict__.get(self._meta.pk.attname)

    @pk.setter
    def pk(self, value: Any) -> None:
        self.__dict__[self._meta.pk.attname] = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model) or type(self)._meta is not type(other)._meta:
            return NotImplemented if not isinstance(other, Model) else False
        pk = self.pk
        return pk is not None and pk == other.pk

    def __hash__(self) -> int:
        pk = self.pk
        if pk is None:
            raise TypeError("Model instances without a primary key value are unhashable.")
        return hash((type(self), pk))

    def __repr__(self) -> str:
        if type(self).__str__ is not object.__str__:
            return f"<{type(self).__name__}: {self}>"
        return f"<{type(self).__name__}: {self._meta.pk.attname}={self.pk!r}>"

    # -- validation ----------------------------------------------------------------------------

    def full_clean(self, *, exclude: Iterable[str] = ()) -> None:
        """Validate every field and store the cleaned (canonical) values.

        Checks null, type, max_length, max_digits/decimal_places, integer
        ranges, choices, enum membership and each field's ``validators``.

        Raises:
            ValidationError: With ``error_dict`` holding every bad field.
        """
        skip = set(exclude) if exclude else ()
        errors: dict[str, list[str]] = {}
        values = self.__dict__
        plan = self._meta.cache.get(_CLEAN_PLAN)
        if plan is None:
            plan = self._meta.cache[_CLEAN_PLAN] = _clean_plan(self._meta)
        for name, attname, filled_later, clean in plan:
            if attname not in values or name in skip:
                continue
            value = values[attname]
            if value is None and filled_later:
                continue  # filled in by the database (auto key) or by pre_save() (auto_now)
            try:
                values[attname] = clean(value)
            except ValidationError as exc:
                errors.setdefault(name, []).extend(exc.messages)
        if type(self).clean is not Model.clean:
            try:
                self.clean()
            except ValidationError as exc:
                for key, messages in exc.error_dict.items():
                    errors.setdefault(key, []).extend(messages)
        if errors:
            raise ValidationError(errors)

    def clean(self) -> None:
        """Check the object as a whole; override to validate across fields.

        Called by :meth:`full_clean` (so by every ``save()`` and
        ``bulk_create()``) after the fields are cleaned, even when some are
        invalid (check for None). Raise :class:`ValidationError` with a message
        (reported under ``"__all__"``) or a ``{field: [messages]}`` mapping; you
        may also set field values here, e.g. derive a slug.
        """

    async def validate_unique(
        self, *, exclude: Iterable[str] = (), using: str | None = None
    ) -> None:
        """Check ``unique`` fields and ``Meta.unique_together`` against the database.

        Not part of :meth:`full_clean` (that runs without I/O on every save):
        call it where a friendly message beats the IntegrityError of the
        unique constraint, e.g. when validating a form. A race can still let
        a duplicate through between this check and the write; the constraint
        remains the final word. NULL values never collide.

        Raises:
            ValidationError: ``{"email": ["Author with this email already exists."]}``,
                or ``"__all__"`` for a ``unique_together`` set.
        """
        from covet.db.persistence import validate_unique_instance

        await validate_unique_instance(self, exclude=set(exclude), using=using)

    # -- persistence (implemented in covet.db.persistence) ---------------

    async def save(
        self,
        *,
        using: str | None = None,
        update_fields: Sequence[str] | None = None,
        force_insert: bool = False,
        validate: bool = True,
    ) -> None:
        """Insert the row, or update it when it already exists.

        Args:
            using: Database alias (default: where the object came from, else the default).
            update_fields: Only write these fields (an UPDATE; fails if the row is gone).
            force_insert: Always INSERT (an existing primary key then raises IntegrityError).
            validate: Run :meth:`full_clean` first, so nothing reaches the database
                invalid or silently truncated (on by default).

        Raises:
            ValidationError: A value is invalid.
            IntegrityError: A constraint failed in the database.
        """
        from covet.db.persistence import save_instance

        await save_instance(
            self,
            using=using,
            update_fields=update_fields,
            force_insert=force_insert,
            validate=validate,
        )

    async def delete(self, *, using: str | None = None) -> int:
        """Delete the row; the database applies CASCADE / SET_NULL / RESTRICT.

        Returns:
            The number of rows deleted from this model's table (0 or 1).

        Raises:
            ProtectedError: A ``PROTECT`` foreign key still references the row.
        """
        from covet.db.deletion import delete_instance

        return await delete_instance(self, using=using)

    async def refresh_from_db(
        self, *, fields: Sequence[str] | None = None, using: str | None = None
    ) -> None:
        """Reload field values (all, or ``fields``) from the database.

        Raises:
            DoesNotExist: The row is gone.
        """
        from covet.db.persistence import refresh_instance

        await refresh_instance(self, fields=fields, using=using)

    async def fetch_related(self, *names: str, using: str | None = None) -> Self:
        """Load the named relations (paths like ``"author__profile"``) and return self.

        After this, ``obj.author`` and ``await obj.posts.all()`` use the loaded data.
        """
        from covet.db.related import prefetch_related_objects

        await prefetch_related_objects([self], *names, using=using or self._state.db)
        return self
