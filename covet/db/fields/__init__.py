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

The package holds one concept per module: :mod:`~covet.db.fields.base` (the
:class:`Field` base and shared names), :mod:`~covet.db.fields.scalars` (value
fields) and :mod:`~covet.db.fields.relations` (relation fields); everything is
imported from ``covet.db.fields``.
"""

from __future__ import annotations

from covet.db.fields.arrays import ArrayField

# Names beyond __all__ are re-exported (``X as X``) for the modules that used them here.
from covet.db.fields.base import (
    CASCADE,
    NOT_PROVIDED,
    PROTECT,
    RESTRICT,
    SET_NULL,
    Field,
)
from covet.db.fields.base import (
    IDENTIFIER as IDENTIFIER,
)
from covet.db.fields.base import (
    ON_DELETE_ACTIONS as ON_DELETE_ACTIONS,
)
from covet.db.fields.base import (
    Converter as Converter,
)
from covet.db.fields.relations import ForeignKey, ManyToManyField, OneToOneField
from covet.db.fields.scalars import (
    AutoField as AutoField,
)
from covet.db.fields.scalars import (
    BigIntegerField,
    BinaryField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    DecimalField,
    EnumField,
    FloatField,
    IntegerField,
    JSONField,
    SmallIntegerField,
    TextField,
    TimeField,
    UUIDField,
)
from covet.db.fields.scalars import (
    parse_decimal as parse_decimal,
)

__all__ = (
    "CASCADE",
    "NOT_PROVIDED",
    "PROTECT",
    "RESTRICT",
    "SET_NULL",
    "ArrayField",
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
