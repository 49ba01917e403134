"""Model fields: what a column holds, how a Python value is checked, and how it travels.

A field does three jobs. It *validates*: :meth:`Field.clean` turns an
assigned value into the field's canonical Python value or reports every
problem (length, range, null, choices, validators). It *adapts*:
:meth:`Field.get_db_prep_value` hands the canonical value to the backend's
adapter for the field's :attr:`~Field.internal_type`. And it *finishes*
values read back: :meth:`Field.from_db_converter` composes the backend's
converter with field-specific work (a ``Decimal`` quantized to
``decimal_places``, an ``Enum`` member from its stored value).

Date-times are always timezone-aware: a naive ``datetime`` is rejected with a
:class:`~covet.db.exceptions.ValidationError` naming the field, because
guessing a zone silently corrupts data. Aware values are stored in UTC and
come back in UTC.
"""

from __future__ import annotations

import copy
import datetime
import decimal
import enum
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, Self, TypeVar, overload

from covet.db.exceptions import FieldError, ValidationError
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from covet.db.models import Model

__all__ = (
    "CASCADE",
    "NOT_PROVIDED",
    "PROTECT",
    "RESTRICT",
    "SET_NULL",
    "BigIntegerField",
    "BinaryField",
    "BooleanField",
    "CharField",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "EnumField",
    "Field",
    "FloatField",
    "ForeignKey",
    "IntegerField",
    "JSONField",
    "ManyToManyField",
    "OneToOneField",
    "SmallIntegerField",
    "TextField",
    "TimeField",
    "UUIDField",
)

T = TypeVar("T")
_V = TypeVar("_V")
M = TypeVar("M", bound="Model")
E = TypeVar("E", bound=enum.Enum)

CASCADE: Final = "CASCADE"
SET_NULL: Final = "SET_NULL"
RESTRICT: Final = "RESTRICT"
PROTECT: Final = "PROTECT"
_ON_DELETE = (CASCADE, SET_NULL, RESTRICT, PROTECT)

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


class _IntegerBase(Field[_V]):
    internal_type = "int"
    min_value: int = -(2**31)
    max_value: int = 2**31 - 1

    def to_python(self, value: Any) -> Any:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
                return int(value)
            raise ValueError(f"Value {value!r} is not an integer.")
        return value

    def check_value(self, value: Any) -> list[str]:
        """Return the problems with an already canonical value."""
        if not self.min_value <= value <= self.max_value:
            return [f"Value {value!r} is out of range [{self.min_value}, {self.max_value}]."]
        return []


class IntegerField(_IntegerBase[_V]):
    """A 32-bit signed integer."""

    @overload
    def __init__(
        self: IntegerField[int], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: IntegerField[int | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)


class BigIntegerField(_IntegerBase[_V]):
    """A 64-bit signed integer."""

    @overload
    def __init__(
        self: BigIntegerField[int], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: BigIntegerField[int | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    min_value = -(2**63)
    max_value = 2**63 - 1


class SmallIntegerField(_IntegerBase[_V]):
    """A 16-bit signed integer."""

    @overload
    def __init__(
        self: SmallIntegerField[int], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: SmallIntegerField[int | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    min_value = -(2**15)
    max_value = 2**15 - 1


class AutoField(BigIntegerField[int]):
    """The automatic 64-bit auto-increment primary key every model gets as ``id``."""

    auto_created = True

    def __init__(self) -> None:
        super().__init__(primary_key=True)


class FloatField(Field[_V]):
    """A double-precision floating point number."""

    @overload
    def __init__(
        self: FloatField[float], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: FloatField[float | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    internal_type = "float"

    def to_python(self, value: Any) -> float:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
            raise ValueError(f"Value {value!r} is not a number.")
        return float(value)


def parse_decimal(value: Any) -> decimal.Decimal:
    """Return ``value`` (a number or numeric text) as a finite ``Decimal``, or raise ``ValueError``.

    A float goes through its shortest ``repr`` (``0.1`` becomes ``Decimal("0.1")``,
    not the binary expansion); booleans, NaN and infinities are refused.
    """
    if isinstance(value, bool):
        raise ValueError(f"Value {value!r} is not a decimal number.")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = decimal.Decimal(value)
    except (decimal.InvalidOperation, TypeError):
        raise ValueError(f"Value {value!r} is not a decimal number.") from None
    if not result.is_finite():
        raise ValueError(f"Value {value!r} is not a finite decimal number.")
    return result


class DecimalField(Field[_V]):
    """A fixed-precision decimal number.

    Args:
        max_digits: Total number of digits.
        decimal_places: Digits after the decimal point; values are quantized to it.
    """

    internal_type = "decimal"
    finishes = True

    @overload
    def __init__(
        self: DecimalField[decimal.Decimal],
        *,
        max_digits: int,
        decimal_places: int,
        null: Literal[False] = ...,
        **options: Any,
    ) -> None: ...
    @overload
    def __init__(
        self: DecimalField[decimal.Decimal | None],
        *,
        max_digits: int,
        decimal_places: int,
        null: Literal[True],
        **options: Any,
    ) -> None: ...
    def __init__(self, *, max_digits: int, decimal_places: int, **options: Any) -> None:
        if max_digits < 1 or not 0 <= decimal_places <= max_digits:
            raise ImproperlyConfigured(
                f"Invalid DecimalField(max_digits={max_digits!r}, "
                f"decimal_places={decimal_places!r}). Need max_digits >= decimal_places >= 0."
            )
        super().__init__(**options)
        self.max_digits = max_digits
        self.decimal_places = decimal_places
        self._quantum = decimal.Decimal(1).scaleb(-decimal_places)
        self._context = decimal.Context(prec=max_digits + 2)

    def to_python(self, value: Any) -> decimal.Decimal:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        return parse_decimal(value)

    def _too_large(self, value: decimal.Decimal) -> str | None:
        """Say what is wrong with a value that has too many digits before the point, else None."""
        whole = self.max_digits - self.decimal_places
        # adjusted() is the exponent of the leading digit: no arithmetic, so 1E+30 is
        # caught here instead of overflowing a quantize().
        if value and value.adjusted() >= whole:
            return f"Value {value!r} has more than {whole} digits before the decimal point."
        return None

    def check_value(self, value: Any) -> list[str]:
        """Return the problems with an already canonical value."""
        too_large = self._too_large(value)
        if too_large is not None:
            return [too_large]
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)  # noqa: S101 - internal invariant
        # Within range, the quantized value has at most max_digits + 1 digits (after a carry).
        if -exponent > self.decimal_places and value != value.quantize(
            self._quantum, context=self._context
        ):
            return [f"Value {value!r} has more than {self.decimal_places} decimal places."]
        return []

    def pre_save(self, instance: Model, add: bool) -> Any:
        """Return the value to save, refusing one beyond the column's range even unvalidated.

        :meth:`get_prep_value` turns such a value into the bound just past the
        range, which is right for a comparison but would be a silently changed
        row if written (SQLite does not enforce ``max_digits``), so a write
        with ``validate=False`` still raises.

        Raises:
            ValidationError: The value has more digits before the decimal point
                than ``max_digits - decimal_places``.
        """
        value = super().pre_save(instance, add)
        if isinstance(value, decimal.Decimal) and value.is_finite():
            too_large = self._too_large(value)
            if too_large is not None:
                raise ValidationError({self.name or "value": [too_large]})
        return value

    def get_prep_value(self, value: Any) -> Any:
        """Return the canonical value for a query parameter, quantized to ``decimal_places``.

        A value with more digits before the decimal point than the column holds
        (``Decimal("1e20")`` for ``max_digits=20, decimal_places=6``) is beyond
        every value the column stores, so a comparison with it has a known answer.
        It becomes the bound just past the column's range, ``±10**(max_digits -
        decimal_places)``, which gives every lookup (``exact``, ``lt``,
        ``gte``, ``in``, ``range``...) the same result, and which every backend
        binds exactly however large the value was. Writes validate first and
        refuse such a value with a ValidationError naming the field.

        Raises:
            ValidationError: The value is not a decimal number.
        """
        result = super().get_prep_value(value)
        if not isinstance(result, decimal.Decimal):
            return result
        if self._too_large(result) is not None:
            whole = self.max_digits - self.decimal_places
            return decimal.Decimal((int(result.is_signed()), (1,), whole))
        # In range, so at most max_digits + 1 digits (after a carry): the context holds it.
        return result.quantize(self._quantum, context=self._context)

    def from_db_value(self, value: Any) -> decimal.Decimal:
        """Finish a value read from the database."""
        if not isinstance(value, decimal.Decimal):
            value = decimal.Decimal(str(value))
        result: decimal.Decimal = value.quantize(self._quantum, context=self._context)
        return result


class BooleanField(Field[_V]):
    """A true/false value."""

    @overload
    def __init__(
        self: BooleanField[bool], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: BooleanField[bool | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    internal_type = "bool"

    def to_python(self, value: Any) -> bool:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(f"Value {value!r} is not a boolean.")


class CharField(Field[_V]):
    """A string with a maximum length (in characters), stored as ``VARCHAR``.

    Args:
        max_length: The maximum number of characters; longer values are rejected,
            never truncated.
    """

    @overload
    def __init__(
        self: CharField[str], *, max_length: int, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: CharField[str | None], *, max_length: int, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, *, max_length: int, **options: Any) -> None:
        if max_length < 1:
            raise ImproperlyConfigured(f"Invalid CharField max_length {max_length!r}. Use >= 1.")
        super().__init__(**options)
        self.max_length = max_length

    def to_python(self, value: Any) -> str:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if not isinstance(value, str):
            raise ValueError(f"Value {value!r} is not a string.")
        return value

    def check_value(self, value: Any) -> list[str]:
        """Return the problems with an already canonical value."""
        if len(value) > self.max_length:
            return [
                f"Ensure this value has at most {self.max_length} characters (it has {len(value)})."
            ]
        return []


class TextField(Field[_V]):
    """An unbounded string."""

    @overload
    def __init__(self: TextField[str], *, null: Literal[False] = ..., **options: Any) -> None: ...
    @overload
    def __init__(self: TextField[str | None], *, null: Literal[True], **options: Any) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    def to_python(self, value: Any) -> str:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if not isinstance(value, str):
            raise ValueError(f"Value {value!r} is not a string.")
        return value


class DateField(Field[_V]):
    """A calendar date."""

    @overload
    def __init__(
        self: DateField[datetime.date], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: DateField[datetime.date | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    internal_type = "date"

    def to_python(self, value: Any) -> datetime.date:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
            if isinstance(value, str):
                return datetime.date.fromisoformat(value)
            raise ValueError(f"Value {value!r} is not a date.")
        return value


class TimeField(Field[_V]):
    """A time of day, without a time zone."""

    @overload
    def __init__(
        self: TimeField[datetime.time], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: TimeField[datetime.time | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    internal_type = "time"

    def to_python(self, value: Any) -> datetime.time:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, str):
            value = datetime.time.fromisoformat(value)
        if not isinstance(value, datetime.time):
            raise ValueError(f"Value {value!r} is not a time.")
        if value.tzinfo is not None:
            raise ValueError(f"Time {value!r} has a time zone. Use a naive time of day.")
        return value


class DateTimeField(Field[_V]):
    """A timezone-aware date and time, stored in UTC (naive values are rejected).

    Args:
        auto_now: Set to the current time on every save.
        auto_now_add: Set to the current time when the row is inserted.
    """

    internal_type = "datetime"
    finishes = True

    @overload
    def __init__(
        self: DateTimeField[datetime.datetime],
        *,
        auto_now: bool = ...,
        auto_now_add: bool = ...,
        null: Literal[False] = ...,
        **options: Any,
    ) -> None: ...
    @overload
    def __init__(
        self: DateTimeField[datetime.datetime | None],
        *,
        auto_now: bool = ...,
        auto_now_add: bool = ...,
        null: Literal[True],
        **options: Any,
    ) -> None: ...
    def __init__(
        self, *, auto_now: bool = False, auto_now_add: bool = False, **options: Any
    ) -> None:
        super().__init__(**options)
        self.auto_now = auto_now
        self.auto_now_add = auto_now_add

    def to_python(self, value: Any) -> datetime.datetime:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, str):
            value = datetime.datetime.fromisoformat(value)
        if not isinstance(value, datetime.datetime):
            raise ValueError(f"Value {value!r} is not a datetime.")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"Datetime {value!r} is naive. Pass an aware datetime, "
                "e.g. datetime.now(timezone.utc)."
            )
        return value.astimezone(datetime.UTC)

    def pre_save(self, instance: Model, add: bool) -> Any:
        """Return the value to save, stamping the current time when configured."""
        if self.auto_now or (self.auto_now_add and add):
            now = datetime.datetime.now(datetime.UTC)
            instance.__dict__[self.attname] = now
            return now
        return super().pre_save(instance, add)

    def from_db_converter(self, ops: Any) -> Converter | None:
        """Return the backend's converter alone when it already yields aware UTC datetimes."""
        if getattr(ops, "datetime_converter_returns_utc", False):
            backend: Converter | None = ops.get_converter(self.internal_type)
            if backend is not None:
                return backend
        return super().from_db_converter(ops)

    def from_db_value(self, value: Any) -> datetime.datetime:
        """Finish a value read from the database."""
        tz = value.tzinfo
        if tz is datetime.UTC:
            return value  # type: ignore[no-any-return]
        if tz is None:
            return value.replace(tzinfo=datetime.UTC)  # type: ignore[no-any-return]
        return value.astimezone(datetime.UTC)  # type: ignore[no-any-return]


class UUIDField(Field[_V]):
    """A UUID (native on PostgreSQL, ``CHAR(36)`` elsewhere)."""

    @overload
    def __init__(
        self: UUIDField[uuid.UUID], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: UUIDField[uuid.UUID | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    internal_type = "uuid"

    def to_python(self, value: Any) -> uuid.UUID:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, uuid.UUID):
            return value
        if isinstance(value, str):
            return uuid.UUID(value)
        raise ValueError(f"Value {value!r} is not a UUID.")


class JSONField(Field[Any]):
    """Any JSON value: dicts, lists, strings, numbers, booleans (SQL NULL for ``None``)."""

    internal_type = "json"


class BinaryField(Field[_V]):
    """Raw bytes."""

    @overload
    def __init__(
        self: BinaryField[bytes], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: BinaryField[bytes | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    internal_type = "bytes"
    finishes = True

    def to_python(self, value: Any) -> bytes:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        raise ValueError(f"Value {value!r} is not bytes.")

    def from_db_value(self, value: Any) -> bytes:
        """Finish a value read from the database."""
        return bytes(value)


class EnumField(Field[_V]):
    """An :class:`enum.Enum` member, stored as its value (all values str, or all int).

    Args:
        enum_cls: The enum class; its values decide the column type.
        max_length: Column length for str values (default: the longest value).
    """

    finishes = True

    @overload
    def __init__(
        self: EnumField[E],
        enum_cls: type[E],
        *,
        max_length: int | None = ...,
        null: Literal[False] = ...,
        **options: Any,
    ) -> None: ...
    @overload
    def __init__(
        self: EnumField[E | None],
        enum_cls: type[E],
        *,
        max_length: int | None = ...,
        null: Literal[True],
        **options: Any,
    ) -> None: ...
    def __init__(
        self, enum_cls: type[Any], *, max_length: int | None = None, **options: Any
    ) -> None:
        values = [member.value for member in enum_cls]
        if values and all(isinstance(v, str) for v in values):
            self.internal_type = "str"
            self.max_length: int | None = max_length or max(len(v) for v in values)
        elif values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            self.internal_type = "int"
            self.max_length = None
        else:
            raise ImproperlyConfigured(
                f"EnumField needs an enum whose values are all str or all int, got {enum_cls!r}."
            )
        super().__init__(**options)
        self.enum_cls = enum_cls

    def to_python(self, value: Any) -> Any:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, self.enum_cls):
            return value
        try:
            return self.enum_cls(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in self.enum_cls)
            raise ValueError(
                f"Value {value!r} is not a valid {self.enum_cls.__name__}. Use one of: {allowed}."
            ) from None

    def _choice_key(self, value: Any) -> Any:
        return value.value if value in self.choices_members() else value

    def choices_members(self) -> tuple[Any, ...]:
        """Return the configured choices as enum members."""
        return tuple(
            self.enum_cls(c) if not isinstance(c, enum.Enum) else c for c in self.choices or ()
        )

    def get_prep_value(self, value: Any) -> Any:
        """Return the canonical value for a query parameter."""
        result = super().get_prep_value(value)
        return None if result is None else result.value

    def from_db_value(self, value: Any) -> Any:
        """Finish a value read from the database."""
        return self.enum_cls(value)


# -- relations -----------------------------------------------------------------------------------


_model_class: list[type[Model]] = []


def _model_base() -> type[Model]:
    # covet.db.models imports this module: look the Model base up once, lazily (hot path).
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
        if action not in _ON_DELETE:
            raise ImproperlyConfigured(
                f"Invalid on_delete {on_delete!r}. Use one of: {', '.join(_ON_DELETE)}."
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
        if isinstance(value, _model_base()):
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
