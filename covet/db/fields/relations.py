"""Relation fields: ForeignKey, OneToOneField and ManyToManyField."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from covet.db.fields.base import CASCADE, IDENTIFIER, ON_DELETE_ACTIONS, SET_NULL, Field
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from covet.db.models import Model


__all__ = ("ForeignKey", "ManyToManyField", "OneToOneField", "model_base")

_V = TypeVar("_V")
M = TypeVar("M", bound="Model")


_model_class: list[type[Model]] = []


def model_base() -> type[Model]:
    """Return :class:`~covet.db.models.Model`, for ``isinstance()`` checks on hot paths.

    ``covet.db.models`` imports this module (and :mod:`covet.db.statements`), so
    the class is looked up once, lazily, on the first call.
    """
    if not _model_class:
        from covet.db.models import Model

        _model_class.append(Model)
    return _model_class[0]


class ForeignKey(Field[_V]):
    """A many-to-one relation; the column ``<name>_id`` holds the target's primary key.

    Args:
        to: The target model class, its name as a string (resolved lazily), or ``"self"``.
        on_delete: What the database does to this row when the target is deleted:
            ``CASCADE`` (delete it), ``SET_NULL`` (needs ``null=True``), ``RESTRICT``
            (refuse), or ``PROTECT`` (refuse, checked in Python first and raising
            :class:`~covet.db.exceptions.ProtectedError`).
        related_name: The reverse accessor on the target (default ``<model>_set``).
        **options: The common :class:`Field` options (``null``, ``db_column``...).
    """

    is_relation = True
    one_to_one = False

    @overload
    def __init__(
        self: ForeignKey[M],
        to: type[M],
        *,
        on_delete: str = ...,
        related_name: str | None = ...,
        null: Literal[False] = ...,
        **options: Any,
    ) -> None: ...
    @overload
    def __init__(
        self: ForeignKey[M | None],
        to: type[M],
        *,
        on_delete: str = ...,
        related_name: str | None = ...,
        null: Literal[True],
        **options: Any,
    ) -> None: ...
    @overload
    def __init__(
        self: ForeignKey[Any],
        to: str,
        *,
        on_delete: str = ...,
        related_name: str | None = ...,
        **options: Any,
    ) -> None: ...
    def __init__(
        self,
        to: type[Model] | str,
        *,
        on_delete: str = CASCADE,
        related_name: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        action = str(on_delete).upper()
        if action not in ON_DELETE_ACTIONS:
            raise ImproperlyConfigured(
                f"Invalid on_delete {on_delete!r}. Use one of: {', '.join(ON_DELETE_ACTIONS)}."
            )
        if action == SET_NULL and not self.null:
            raise ImproperlyConfigured("on_delete=SET_NULL needs null=True on the ForeignKey.")
        if related_name not in (None, "+") and not IDENTIFIER.match(related_name):
            raise ImproperlyConfigured(
                f"Invalid related_name {related_name!r}. Use an identifier, or '+' for none."
            )
        self.to = to
        self.on_delete = action
        self.related_name = related_name
        self.related_model: type[Model] = None  # type: ignore[assignment]

    def get_attname(self) -> str:
        """Return the attribute holding the raw key: ``<name>_id``."""
        return f"{self.name}_id"

    def contribute_to_class(self, model: type[Model], name: str) -> None:
        """Attach the ``<name>_id`` column and the ``<name>`` object descriptor."""
        from covet.db.models import lazy_related
        from covet.db.related import ForwardRelationDescriptor

        super().contribute_to_class(model, name)
        setattr(model, name, ForwardRelationDescriptor(self))
        lazy_related(model, self.to, self._resolve)

    def _resolve(self, target: type[Model]) -> None:
        from covet.db.related import install_reverse

        self.related_model = target
        if self.related_name is None:
            self.related_name = f"{self.model._meta.model_name}_set"
            if self.one_to_one:
                self.related_name = self.model._meta.model_name
        install_reverse(self)

    @property
    def target_field(self) -> Field[Any]:
        """Return the target model's primary key field."""
        if self.related_model is None:
            raise ImproperlyConfigured(
                f"{self.model.__name__}.{self.name} points to {self.to!r}, which is not defined "
                "yet. Define or import that model."
            )
        return self.related_model._meta.pk

    @property
    def internal_type(self) -> str:  # type: ignore[override]
        """Return the internal type of the target primary key."""
        return str(self.target_field.internal_type)

    def to_python(self, value: Any) -> Any:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, model_base()):
            if not isinstance(value, self.target_field.model):
                raise ValueError(
                    f"Value {value!r} is not a {self.target_field.model.__name__} instance."
                )
            value = value.pk
            if value is None:
                raise ValueError("The related object is unsaved. Save it before using it here.")
        return self.target_field.to_python(value)

    def check_value(self, value: Any) -> list[str]:
        """Return the problems with an already canonical value."""
        return list(self.target_field.check_value(value))

    @property
    def finishes(self) -> bool:  # type: ignore[override]
        """Return whether the target key needs finishing."""
        return bool(self.target_field.finishes)

    def from_db_value(self, value: Any) -> Any:
        """Finish a value read from the database."""
        return self.target_field.from_db_value(value)


class OneToOneField(ForeignKey[_V]):
    """A unique foreign key: the reverse side is a single object, not a manager."""

    one_to_one = True

    @overload
    def __init__(
        self: OneToOneField[M],
        to: type[M],
        *,
        on_delete: str = ...,
        related_name: str | None = ...,
        null: Literal[False] = ...,
        **options: Any,
    ) -> None: ...
    @overload
    def __init__(
        self: OneToOneField[M | None],
        to: type[M],
        *,
        on_delete: str = ...,
        related_name: str | None = ...,
        null: Literal[True],
        **options: Any,
    ) -> None: ...
    @overload
    def __init__(self: OneToOneField[Any], to: str, **options: Any) -> None: ...
    def __init__(self, to: Any, **options: Any) -> None:
        options["unique"] = True
        super().__init__(to, **options)


class ManyToManyField(Field[Any]):
    """A many-to-many relation through a join table.

    Args:
        to: The target model class, its name, or ``"self"``.
        related_name: The reverse accessor on the target (default ``<model>_set``).
        through: An explicit join model with exactly one ForeignKey to each side;
            by default covet creates ``<table>_<field>`` with two CASCADE keys and a
            unique pair constraint.
    """

    is_relation = True
    many_to_many = True
    concrete = False

    def __init__(
        self,
        to: type[Model] | str,
        *,
        related_name: str | None = None,
        through: type[Model] | str | None = None,
        help_text: str = "",
    ) -> None:
        super().__init__(help_text=help_text)
        if related_name is not None and not IDENTIFIER.match(related_name):
            raise ImproperlyConfigured(f"Invalid related_name {related_name!r}.")
        self.to = to
        self.related_name = related_name
        self.through = through
        self.related_model: type[Model] = None  # type: ignore[assignment]
        self.through_model: type[Model] = None  # type: ignore[assignment]
        self.source_fk: ForeignKey[Any] = None  # type: ignore[assignment]
        self.target_fk: ForeignKey[Any] = None  # type: ignore[assignment]

    def contribute_to_class(self, model: type[Model], name: str) -> None:
        """Register the relation and arrange for the join model once the target exists."""
        from covet.db.models import lazy_related
        from covet.db.related import ManyToManyDescriptor

        if not IDENTIFIER.match(name) or "__" in name:
            raise ImproperlyConfigured(f"Invalid field name {name!r} on {model.__name__}.")
        self.name = self.attname = name
        self.model = model
        model._meta.add_field(self)
        setattr(model, name, ManyToManyDescriptor(self, reverse=False))
        lazy_related(model, self.to, self._resolve_target)

    def _resolve_target(self, target: type[Model]) -> None:
        from covet.db.models import lazy_related
        from covet.db.related import create_through_model

        self.related_model = target
        if self.related_name is None:
            self.related_name = f"{self.model._meta.model_name}_set"
        if self.through is None:
            self._resolve_through(create_through_model(self))
        else:
            lazy_related(self.model, self.through, self._resolve_through)

    def _resolve_through(self, through: type[Model]) -> None:
        from covet.db.related import install_m2m

        fks = [f for f in through._meta.concrete_fields if isinstance(f, ForeignKey)]
        to_source = [f for f in fks if _points_to(f, self.model)]
        to_target = [f for f in fks if _points_to(f, self.related_model)]
        if self.related_model is self.model and len(fks) >= 2:
            to_source, to_target = fks[:1], fks[1:2]
        if len(to_source) != 1 or len(to_target) != 1:
            raise ImproperlyConfigured(
                f"Through model {through.__name__} of {self.model.__name__}.{self.name} needs "
                f"exactly one ForeignKey to {self.model.__name__} and one to "
                f"{self.related_model.__name__}."
            )
        self.through_model = through
        self.source_fk, self.target_fk = to_source[0], to_target[0]
        install_m2m(self)


def _points_to(fk: ForeignKey[Any], model: type[Model]) -> bool:
    """Return whether ``fk`` targets ``model`` (resolved or still a name)."""
    resolved = fk.__dict__.get("related_model")
    if resolved is not None:
        return resolved is model
    return fk.to is model or fk.to == model.__name__
