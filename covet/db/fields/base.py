"""The base of every model field: validation, adaptation, finishing, and shared names.

:class:`Field` does the three jobs described in :mod:`covet.db.fields`; the
concrete fields live in :mod:`covet.db.fields.scalars` and
:mod:`covet.db.fields.relations`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, Generic, Self, TypeVar, overload

from covet.db.exceptions import FieldError, ValidationError
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from covet.db.models import Model

__all__ = (
    "CASCADE",
    "IDENTIFIER",
    "NOT_PROVIDED",
    "ON_DELETE_ACTIONS",
    "PROTECT",
    "RESTRICT",
    "SET_NULL",
    "Converter",
    "Field",
)

T = TypeVar("T")

CASCADE: Final = "CASCADE"
SET_NULL: Final = "SET_NULL"
RESTRICT: Final = "RESTRICT"
PROTECT: Final = "PROTECT"
#: Every ``on_delete`` action a ForeignKey accepts.
ON_DELETE_ACTIONS: Final = (CASCADE, SET_NULL, RESTRICT, PROTECT)

#: A name usable as a column, field or relation name.
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _NotProvided:
    """Sentinel type for "no default" (``None`` is a legitimate default)."""

    def __repr__(self) -> str:
        return "NOT_PROVIDED"


NOT_PROVIDED: Final = _NotProvided()

Converter = Callable[[Any], Any]


def _compose(first: Converter | None, second: Converter | None) -> Converter | None:
    """Return a converter applying ``first`` then ``second`` (callers skip ``None`` values)."""
    if first is None:
        return second
    if second is None:
        return first
    a, b = first, second
    return lambda value: b(a(value))


class Field(Generic[T]):
    """Base of every model field.

    Args:
        null: Allow SQL ``NULL`` (``None``) in the column.
        default: A value, or a zero-argument callable, used when none is given.
        unique: Add a unique constraint on the column.
        index: Add a (non-unique) index on the column.
        db_column: The column name, when it differs from the attribute name.
        choices: Allowed values, as plain values or ``(value, label)`` pairs.
        validators: Callables run by ``full_clean()``; each raises ``ValueError``
            or :class:`ValidationError` with a message on bad input.
        primary_key: Make this field the primary key (no automatic ``id`` then).
        help_text: Free documentation, kept on the field.
    """

    internal_type: str = "str"
    is_relation: bool = False
    many_to_many: bool = False
    concrete: bool = True
    auto_created: bool = False

    def __init__(
        self,
        *,
        null: bool = False,
        default: Any = NOT_PROVIDED,
        unique: bool = False,
        index: bool = False,
        db_column: str | None = None,
        choices: Iterable[Any] | None = None,
        validators: Sequence[Callable[[Any], object]] = (),
        primary_key: bool = False,
        help_text: str = "",
    ) -> None:
        if db_column is not None and not IDENTIFIER.match(db_column):
            raise ImproperlyConfigured(
                f"Invalid db_column {db_column!r}. Use letters, digits and underscores only."
            )
        self.null = null
        self.default = default
        self.unique = unique or primary_key
        self.index = index
        self.db_column = db_column
        self.choices: tuple[Any, ...] | None = (
            tuple(c[0] if isinstance(c, tuple | list) else c for c in choices)
            if choices is not None
            else None
        )
        self.validators = tuple(validators)
        self.primary_key = primary_key
        self.help_text = help_text
        self.name: str = ""
        self.attname: str = ""
        self.column: str = ""
        self.model: type[Model] = None  # type: ignore[assignment]

    # -- class wiring --------------------------------------------------------------------------

    def __set_name__(self, owner: type[Any], name: str) -> None:
        # Model.__init_subclass__ does the real wiring; this only records the name early.
        if not self.name:
            self.name = name

    def contribute_to_class(self, model: type[Model], name: str) -> None:
        """Attach the field to ``model`` under ``name`` and register it in ``model._meta``."""
        if not IDENTIFIER.match(name) or "__" in name:
            raise ImproperlyConfigured(
                f"Invalid field name {name!r} on {model.__name__}. "
                "Use an identifier without double underscores."
            )
        self.name = name
        self.attname = self.get_attname()
        self.column = self.db_column or self.attname
        self.model = model
        model._meta.add_field(self)
        setattr(model, self.attname, self)

    def get_attname(self) -> str:
        """Return the instance attribute that stores the raw value."""
        return self.name

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, instance: object, owner: type[Any]) -> T: ...
    def __get__(self, instance: object | None, owner: type[Any]) -> Self | T:
        # Only reached when the value is missing from the instance __dict__:
        # the field was deferred with only()/defer(). Loading it would be hidden I/O.
        if instance is None:
            return self
        raise FieldError(
            f"Field {self.model.__name__}.{self.attname} was deferred and is not loaded. "
            f"Use 'await obj.refresh_from_db(fields=[{self.attname!r}])' or drop it from "
            "only()/defer()."
        )

    def clone(self) -> Field[T]:
        """Return an unbound copy of the field (used when inheriting abstract models)."""
        new = copy.copy(self)
        new.name = new.attname = new.column = ""
        new.model = None  # type: ignore[assignment]
        return new

    # -- defaults ------------------------------------------------------------------------------

    def has_default(self) -> bool:
        """Return whether a default value is configured."""
        return self.default is not NOT_PROVIDED

    def get_default(self) -> Any:
        """Return a fresh default value (``None`` without a default)."""
        if self.default is NOT_PROVIDED:
            return None
        if callable(self.default):
            return self.default()
        if isinstance(self.default, dict | list):
            return copy.deepcopy(self.default)
        return self.default

    def pre_save(self, instance: Model, add: bool) -> Any:
        """Return the value to save for ``instance`` (hook for ``auto_now``)."""
        return instance.__dict__.get(self.attname)

    # -- validation ----------------------------------------------------------------------------

    def to_python(self, value: Any) -> Any:
        """Return ``value`` converted to the canonical Python type, or raise ``ValueError``."""
        return value

    def clean(self, value: Any) -> Any:
        """Return the canonical value, raising ValidationError listing every problem.

        Raises:
            ValidationError: Keyed by field name.
        """
        if value is None:
            if not self.null:
                raise ValidationError({self.name: ["This field cannot be null."]})
            return None
        try:
            value = self.to_python(value)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise ValidationError({self.name: [str(exc)]}) from None
        self.validate(value)
        return value

    def validate(self, value: Any) -> None:
        """Check a canonical, non-null value: length/range, choices, then ``validators``.

        Raises:
            ValidationError: Keyed by field name, with every problem found.
        """
        errors = list(self.check_value(value))
        if self.choices is not None and self._choice_key(value) not in self.choices:
            errors.append(f"Value {value!r} is not a valid choice. Use one of: {self.choices!r}.")
        for validator in self.validators:
            try:
                validator(value)
            except ValidationError as exc:
                errors.extend(exc.messages)
            except ValueError as exc:
                errors.append(str(exc))
        if errors:
            raise ValidationError({self.name: errors})

    def _choice_key(self, value: Any) -> Any:
        return value

    def check_value(self, value: Any) -> list[str]:
        """Return problems with an already canonical value (length, range...)."""
        return []

    # -- database I/O --------------------------------------------------------------------------

    def get_prep_value(self, value: Any) -> Any:
        """Return the canonical value for a query parameter.

        Raises:
            ValidationError: When the value cannot be converted.
        """
        if value is None:
            return None
        try:
            return self.to_python(value)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise ValidationError({self.name or "value": [str(exc)]}) from None

    def get_db_prep_value(self, value: Any, ops: Any) -> Any:
        """Return ``value`` ready to be bound as a parameter for a database with ``ops``.

        Raises:
            ValidationError: The value cannot be converted, or the backend's adapter
                refused it because the database would not store it exactly (a decimal
                with more digits than SQLite keeps).
        """
        value = self.get_prep_value(value)
        if value is None:
            return None
        adapter = ops.get_adapter(self.internal_type)
        if adapter is None:
            return value
        try:
            return adapter(value)
        except ValueError as exc:
            # Adapters know what the database keeps but not which field they serve.
            raise ValidationError({self.name or "value": [str(exc)]}) from None

    def from_db_value(self, value: Any) -> Any:
        """Finish a value the backend converter produced (identity by default)."""
        return value

    finishes: bool = False

    def from_db_converter(self, ops: Any) -> Converter | None:
        """Return the full DB-to-Python converter for this field on ``ops`` (None: identity)."""
        backend = ops.get_converter(self.internal_type)
        return _compose(backend, self.from_db_value if self.finishes else None)

    def __repr__(self) -> str:
        owner = getattr(self.model, "__name__", "?")
        return f"<{type(self).__name__}: {owner}.{self.name}>"
