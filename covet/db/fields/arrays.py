"""ArrayField: a PostgreSQL array of one scalar field's values.

Only PostgreSQL has array columns. On another database an ArrayField is refused
when it is used, with :class:`~covet.db.exceptions.NotSupportedError`: when its
table is created (``create_all()``, ``covet migrate``/``makemigrations`` compile
the column for the dialect), when a value is bound (save, filter) and when a
lookup is rendered. Model definition itself does not fail, because a model is
not tied to one database (``using=`` may point it anywhere).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from covet.db.exceptions import NotSupportedError
from covet.db.fields.base import Field
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from covet.db.fields.base import Converter

__all__ = ("ArrayField",)


class ArrayField(Field[Any]):
    """A list of ``base_field`` values in one PostgreSQL array column.

    Args:
        base_field: The field of each element (not a relation, JSON or another array).
        size: The most elements a value may hold (checked by ``full_clean()`` and on
            save; PostgreSQL itself does not enforce array sizes). None: no limit.

    Lookups: ``contains``, ``contained_by``, ``overlap`` (a list), ``len`` and an
    index (``tags__0``, 0-based) followed by a comparison. ``index=True`` makes a
    GIN index, which serves ``contains``/``contained_by``/``overlap``.
    """

    internal_type = "array"

    def __init__(self, base_field: Field[Any], *, size: int | None = None, **options: Any) -> None:
        given: object = base_field  # checked at run time: a class is a common slip
        if not isinstance(given, Field) or given.is_relation:
            raise ImproperlyConfigured(
                f"ArrayField() takes a scalar field instance, not {base_field!r}. "
                "Use e.g. ArrayField(fields.CharField(max_length=50))."
            )
        if base_field.internal_type in ("json", "array"):
            raise ImproperlyConfigured(
                f"ArrayField() cannot hold a {type(base_field).__name__}. Use a JSONField "
                "for nested or mixed data."
            )
        if size is not None and (type(size) is not int or size < 1):
            raise ImproperlyConfigured(f"Invalid ArrayField size {size!r}. Use a positive int.")
        super().__init__(**options)
        self.base_field = base_field
        self.size = size

    def to_python(self, value: Any) -> list[Any]:
        """Return a list of the base field's canonical values, or raise ``ValueError``."""
        if isinstance(value, str | bytes | dict) or not hasattr(value, "__iter__"):
            raise ValueError(f"Value {value!r} is not a list.")
        items = [None if v is None else self.base_field.to_python(v) for v in value]
        if self.size is not None and len(items) > self.size:
            raise ValueError(f"List has {len(items)} elements; at most {self.size} are allowed.")
        return items

    def get_db_prep_value(self, value: Any, ops: Any) -> Any:
        """Return the list with each element adapted by the base field.

        Raises:
            NotSupportedError: The database has no array columns.
        """
        if not ops.features.supports_array_field:
            raise NotSupportedError(
                f"{self!r} is an ArrayField, which only PostgreSQL supports. Use a "
                "JSONField on this database."
            )
        value = self.get_prep_value(value)
        if value is None:
            return None
        return [None if v is None else self.base_field.get_db_prep_value(v, ops) for v in value]

    def from_db_converter(self, ops: Any) -> Converter | None:
        """Convert each element as the base field would."""
        inner = self.base_field.from_db_converter(ops)
        if inner is None:
            return None
        convert = inner

        def convert_list(value: Any) -> Any:
            if value is None:
                return None
            return [None if v is None else convert(v) for v in value]

        return convert_list
