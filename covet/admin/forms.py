"""The admin's model forms: widgets from field types, binding a post, and the change record.

Validation reuses what the rest of covet uses: the submitted text goes through
the field's schema (:func:`covet.db.schemas.model_schema`, the same checks and
sentences as :class:`covet.forms.HTMLForm`), then ``full_clean()`` runs the
model's own validators. Only the form's editable fields are read from the
post: anything else a client sends (``is_superuser=1``) is ignored, so there
is no mass assignment.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from covet.db.exceptions import ValidationError
from covet.db.fields import (
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    DecimalField,
    EnumField,
    Field,
    FloatField,
    ForeignKey,
    IntegerField,
    JSONField,
    TextField,
    TimeField,
)
from covet.db.schemas import model_schema
from covet.forms import NON_FIELD_ERRORS, FormErrors, error_message

if TYPE_CHECKING:
    from collections.abc import Collection

    from covet.admin.options import ModelAdmin
    from covet.datastructures import FormData
    from covet.db.models import Model

__all__ = ("AdminForm", "FormField", "json_safe")


def json_safe(value: Any) -> Any:
    """Return ``value`` in a form the audit log's JSON column stores and shows faithfully."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return str(value)


def _widget(f: Field[Any]) -> str:
    if isinstance(f, ForeignKey):
        return "fk"
    if isinstance(f, BooleanField):
        return "checkbox"
    if isinstance(f, EnumField) or f.choices is not None:
        return "select"
    if isinstance(f, TextField | JSONField):
        return "textarea"
    if isinstance(f, DateTimeField):
        return "datetime-local"
    if isinstance(f, DateField):
        return "date"
    if isinstance(f, TimeField):
        return "time"
    if isinstance(f, IntegerField):
        return "number"
    return "text"


def _show(f: Field[Any], value: Any) -> str:
    """Return ``value`` as the text an input of ``f``'s widget holds."""
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(f, DateTimeField) and isinstance(value, datetime.datetime):
        # datetime-local has no zone: the admin shows and reads UTC.
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC)
        return str(value.replace(tzinfo=None).isoformat(timespec="seconds"))
    if isinstance(f, JSONField):
        return json.dumps(value, indent=2, ensure_ascii=False)
    return str(value)


@dataclass
class FormField:
    """One row of the form, as the template needs it."""

    name: str
    label: str
    widget: str
    value: str
    readonly: bool
    required: bool
    help_text: str = ""
    max_length: int | None = None
    choices: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    target: str = ""  # the admin name of a foreign key's model
    target_repr: str = ""  # str() of the row a foreign key points at
    selected: list[tuple[str, str]] = field(default_factory=list)  # many-to-many: (key, text)
    input_name: str = ""  # the form input's name: the field's, after an inline's prefix


class AdminForm:
    """The form of one model: its fields, the submitted values and the errors.

    Args:
        model_admin: The model's admin options.
        instance: The row edited, or None on the "add" page.
    """

    def __init__(
        self,
        model_admin: ModelAdmin,
        instance: Model | None = None,
        *,
        prefix: str = "",
        exclude: Collection[str] = (),
    ) -> None:
        self.admin = model_admin
        self.instance = instance
        self.prefix = prefix
        self.fields = [f for f in model_admin.form_fields() if f.name not in exclude]
        self.editable = [f for f in self.fields if not model_admin.is_readonly(f)]
        self.errors = FormErrors()
        self.values: dict[str, str] = {}
        for f in self.fields:
            if instance is not None:
                value = getattr(instance, f.attname)
            elif f.has_default():
                value = f.default() if callable(f.default) else f.default
            else:
                value = None
            self.values[f.name] = _show(f, value)
        self.cleaned: dict[str, Any] = {}
        self.related_reprs: dict[str, str] = {}
        # Inline rows (a prefix) edit their own columns only, not their many-to-many links.
        self.m2m = [] if prefix else model_admin.m2m_fields()
        #: Many-to-many selections to show, by field: ``(key, text)`` pairs.
        self.m2m_selected: dict[str, list[tuple[str, str]]] = {f.name: [] for f in self.m2m}
        self.m2m_before: dict[str, list[Any]] = {f.name: [] for f in self.m2m}
        self.m2m_cleaned: dict[str, list[Any]] = {}

    async def load_related(self, obj: Model) -> None:
        """Read the current many-to-many links of ``obj`` (one query per field)."""
        for f in self.m2m:
            rows = await getattr(obj, f.name).all().order_by("pk")
            self.m2m_before[f.name] = [row.pk for row in rows]
            self.m2m_selected[f.name] = [(str(row.pk), str(row)) for row in rows]

    async def check_related(self) -> None:
        """Refuse many-to-many keys naming rows that do not exist; label the others."""
        for f in self.m2m:
            keys = self.m2m_cleaned.get(f.name)
            if not keys:
                continue
            rows = await f.related_model.objects.filter(pk__in=keys).order_by("pk")
            found = {row.pk for row in rows}
            missing = [k for k in keys if k not in found]
            if missing:
                shown = ", ".join(str(k) for k in missing)
                self.errors.add(f.name, f"Select valid choices: {shown} do not exist.")
            labels = {row.pk: str(row) for row in rows}
            self.m2m_selected[f.name] = [(str(k), labels.get(k, str(k))) for k in keys]

    async def apply_m2m(self, obj: Model) -> dict[str, list[Any]]:
        """Link ``obj`` to exactly the chosen rows; return the changed fields' before/after."""
        changes: dict[str, list[Any]] = {}
        for f in self.m2m:
            if f.name not in self.m2m_cleaned:
                continue  # read-only
            keys = self.m2m_cleaned[f.name]
            await getattr(obj, f.name).set(keys)
            before = sorted(self.m2m_before[f.name], key=str)
            after = sorted(keys, key=str)
            if before != after:
                changes[f.name] = [json_safe(before), json_safe(after)]
        return changes

    @property
    def non_field_errors(self) -> list[str]:
        """Return the errors that belong to no one field."""
        return self.errors[NON_FIELD_ERRORS]

    def rows(self) -> list[FormField]:
        """Return the fields in display order, with values and errors, for the template."""
        out = []
        for f in self.fields:
            choices: list[str] = []
            if isinstance(f, EnumField):
                choices = [str(m.value) for m in f.enum_cls]
            elif f.choices is not None:
                choices = [str(c) for c in f.choices]
            target = ""
            if isinstance(f, ForeignKey):
                target = f.related_model._meta.model_name
            out.append(
                FormField(
                    name=f.name,
                    label=f.name.replace("_", " ").capitalize(),
                    widget=_widget(f),
                    value=self.values.get(f.name, ""),
                    readonly=self.admin.is_readonly(f),
                    required=not f.null and not isinstance(f, BooleanField),
                    help_text=f.help_text or "",
                    max_length=getattr(f, "max_length", None),
                    choices=choices,
                    errors=list(self.errors.get(f.name, [])),
                    target=target,
                    target_repr=self.related_reprs.get(f.name, ""),
                    input_name=self.prefix + f.name,
                )
            )
        for m in self.m2m:
            out.append(
                FormField(
                    name=m.name,
                    label=m.name.replace("_", " ").capitalize(),
                    widget="m2m",
                    value="",
                    readonly=m.name in self.admin.readonly_fields,
                    required=False,
                    help_text=m.help_text or "",
                    errors=list(self.errors.get(m.name, [])),
                    target=m.related_model._meta.model_name,
                    selected=self.m2m_selected[m.name],
                    input_name=m.name,
                )
            )
        return out

    def bind(self, submitted: FormData) -> bool:
        """Read the editable fields from ``submitted`` and validate them; return validity.

        On success :attr:`cleaned` maps each editable field's attribute name to
        its Python value. Nothing else from the post is read.
        """
        data: dict[str, Any] = {}
        for f in self.editable:
            raw = submitted.getlist(self.prefix + f.name)
            texts = [v for v in raw if isinstance(v, str)]
            text = texts[-1] if texts else ""
            self.values[f.name] = text
            if "\x00" in text:
                # PostgreSQL refuses NUL in text, the others keep it: refuse it everywhere.
                self.errors.add(f.name, "Remove the NUL character (\\x00) from this value.")
            elif isinstance(f, BooleanField):
                # A hidden "false" precedes the checkbox: the last value is the answer.
                data[f.attname] = text in ("true", "on", "1")
            elif isinstance(f, JSONField):
                if text.strip() == "":
                    data[f.attname] = None
                    continue
                try:
                    data[f.attname] = json.loads(text)
                except ValueError:
                    self.errors.add(f.name, "Enter valid JSON.")
            elif text == "" and (not isinstance(f, TextField | CharField) or not f.has_default()):
                # Empty text is a value only where the model has a default for it (as
                # Django's blank=True): elsewhere it is NULL, or missing.
                if f.null:
                    data[f.attname] = None
                else:
                    self.errors.add(f.name, "This field is required.")
            elif isinstance(f, DateTimeField):
                data[f.attname] = self._aware(text)
            elif isinstance(f, DecimalField | FloatField | IntegerField):
                data[f.attname] = text.strip()
            else:
                data[f.attname] = text
        for m in self.m2m:
            if m.name in self.admin.readonly_fields:
                continue
            texts = [v.strip() for v in submitted.getlist(m.name) if isinstance(v, str)]
            keys: list[Any] = []
            try:
                for text in texts:
                    if text:
                        keys.append(m.related_model._meta.pk.clean(text))
            except (ValidationError, ValueError, TypeError):
                self.errors.add(m.name, "Enter the keys of existing rows.")
            self.m2m_cleaned[m.name] = list(dict.fromkeys(keys))
            self.m2m_selected[m.name] = [(t, t) for t in texts if t]
        schema = model_schema(
            self.admin.model,
            "create",
            include=[f.attname for f in self.editable],
            name=f"{self.admin.model.__name__}AdminForm",
        )
        if not self.errors:
            try:
                validated = schema.model_validate(data)
            except Exception as exc:
                errors = getattr(exc, "errors", None)
                if errors is None:
                    raise
                self._add_errors(errors(include_url=False))
            else:
                self.cleaned = {f.attname: getattr(validated, f.attname) for f in self.editable}
                for f in self.editable:
                    key = self.cleaned[f.attname]
                    if isinstance(f, ForeignKey) and key is not None:
                        # The key must fit the target's column (a 40-digit number does not).
                        try:
                            f.target_field.clean(key)
                        except ValidationError:
                            self.errors.add(
                                f.name, "Select a valid choice: that row does not exist."
                            )
        return not self.errors

    @staticmethod
    def _aware(text: str) -> str:
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            return text  # the schema reports "Enter a valid date and time."
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return moment.isoformat()

    def _add_errors(self, errors: list[Any]) -> None:
        by_attname = {f.attname: f.name for f in self.fields}
        for error in errors:
            loc = error.get("loc") or ()
            name = by_attname.get(str(loc[0])) if loc else None
            self.errors.add(name, error_message(error))

    def add_model_errors(self, error_dict: dict[str, list[str]]) -> None:
        """Place ``full_clean()``'s errors under their fields (others above the form)."""
        names = {f.name for f in self.fields} | {f.attname for f in self.fields}
        for key, messages in error_dict.items():
            for message in messages:
                self.errors.add(key if key in names else None, message)

    def apply(self, obj: Model) -> dict[str, list[Any]]:
        """Assign the cleaned values to ``obj``; return ``{field: [before, after]}`` of changes."""
        changes: dict[str, list[Any]] = {}
        adding = obj.pk is None
        for f in self.editable:
            before = None if adding else getattr(obj, f.attname)
            after = self.cleaned[f.attname]
            if adding or json_safe(before) != json_safe(after):
                changes[f.name] = [json_safe(before), json_safe(after)]
            setattr(obj, f.attname, after)
        return changes
