"""``ModelAdmin``: how one model appears in the admin (columns, search, filters, form, actions).

Subclass it and set class attributes, or pass the same names as keywords to
``admin.register(Model, list_display=[...])``. Every option is checked when the
model is registered, so a typo fails at start-up, not on the first page view.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from covet.auth.models import AbstractUser
from covet.db import Q
from covet.db.exceptions import RelationNotLoaded
from covet.db.fields import (
    AutoField,
    BinaryField,
    BooleanField,
    DateField,
    DateTimeField,
    EnumField,
    Field,
    ForeignKey,
    ManyToManyField,
)
from covet.db.pagination import KeysetPaginator
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from covet.db.models import Model
    from covet.db.queryset import QuerySet
    from covet.requests import Request

__all__ = ("PERMISSION_ACTIONS", "Action", "ModelAdmin", "action")

#: The per-model permissions the admin checks: ``"<model_name>.<action>"``.
PERMISSION_ACTIONS = ("view", "add", "change", "delete")

#: ``async def publish(admin, request, queryset) -> str | None``; the string is flashed.
ActionFunc = Callable[[Any, "Request", "QuerySet[Any]"], Awaitable[str | None]]


@dataclass(frozen=True)
class Action:
    """A bulk action offered on the list page.

    Attributes:
        name: The form value (the function's name).
        label: The text of the choice.
        permission: The model permission the user needs (``"change"`` by default).
        func: The coroutine, given the ModelAdmin, the request and the chosen rows.
    """

    name: str
    label: str
    permission: str
    func: ActionFunc


def action(
    *, label: str | None = None, permission: str = "change"
) -> Callable[[ActionFunc], ActionFunc]:
    """Mark a ModelAdmin method as a bulk action of the list page.

    Example::

        class PostAdmin(ModelAdmin):
            actions = ["publish"]

            @action(label="Publish the selected posts")
            async def publish(self, request, queryset):
                n = await queryset.update(published=True)
                return f"{n} posts published."

    Args:
        label: The text shown in the action menu (default: from the name).
        permission: The model permission the user must hold to run it.
    """
    if permission not in PERMISSION_ACTIONS:
        raise ImproperlyConfigured(
            f"action(permission={permission!r}) is not one of {PERMISSION_ACTIONS!r}."
        )

    def mark(func: ActionFunc) -> ActionFunc:
        func.__covet_action__ = (label, permission)  # type: ignore[attr-defined]
        return func

    return mark


@dataclass(frozen=True)
class FilterChoice:
    """One link of a list filter: its label, the query value, whether it is active."""

    label: str
    value: str
    selected: bool


def _date_ranges(today: datetime.date) -> list[tuple[str, str, datetime.date]]:
    """Return the date filter choices: ``(value, label, first day included)``."""
    return [
        ("today", "Today", today),
        ("7d", "Past 7 days", today - datetime.timedelta(days=7)),
        ("month", "This month", today.replace(day=1)),
        ("year", "This year", today.replace(month=1, day=1)),
    ]


def _search_lookup(name: str) -> str:
    """Return the lookup of a ``search_fields`` entry: ``=`` exact, ``^`` prefix, else contains.

    ``icontains`` reads every row; ``"=email"`` (equality) can use an index, which is
    what makes a search fast on a table of millions of rows.
    """
    if name.startswith("="):
        return f"{name[1:]}__exact"
    if name.startswith("^"):
        return f"{name[1:]}__istartswith"
    return f"{name}__icontains"


class ModelAdmin:
    """Options and permission checks for one model's admin pages.

    Attributes:
        list_display: Columns of the list page: field names, ``"__str__"``, or
            names of ModelAdmin methods taking the object.
        search_fields: Text fields searched (``icontains``, any of them) by the
            list page's search box; foreign-key paths (``"author__name"``) work.
            ``"=email"`` matches exactly (an index can serve it), ``"^name"``
            matches a prefix.
        list_filter: Fields offered as filters: booleans, fields with choices,
            dates and date-times, foreign keys.
        ordering: The default order of the list page (the primary key, newest
            first, by default).
        list_per_page: Rows per list page.
        fields: The form's fields (default: every editable concrete field).
        exclude: Fields left out of the form.
        readonly_fields: Fields shown on the form but never written from it.
        actions: Names of ``@action`` methods offered on the list page, besides
            "Delete selected".
        inlines: Reverse foreign keys (``related_name`` values, ``"comments"``)
            whose rows the change page edits inline (see :mod:`covet.admin.inlines`).
        inline_rows: How many existing child rows an inline shows (the newest).
        inline_extra: Empty "add" forms per inline.
        count_limit: The list page counts matching rows up to this many and
            shows "more than N" past it, so a huge table costs one bounded count.
    """

    list_display: ClassVar[Sequence[str]] = ("__str__",)
    search_fields: ClassVar[Sequence[str]] = ()
    list_filter: ClassVar[Sequence[str]] = ()
    ordering: ClassVar[Sequence[str]] = ("-pk",)
    list_per_page: ClassVar[int] = 50
    fields: ClassVar[Sequence[str] | None] = None
    exclude: ClassVar[Sequence[str]] = ()
    readonly_fields: ClassVar[Sequence[str]] = ()
    actions: ClassVar[Sequence[str]] = ()
    inlines: ClassVar[Sequence[str]] = ()
    inline_rows: ClassVar[int] = 20
    inline_extra: ClassVar[int] = 1
    count_limit: ClassVar[int] = 10_000

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.meta = model._meta
        self.name = model._meta.model_name
        self.verbose_name = model.__name__
        self._check()

    # -- configuration checks ----------------------------------------------------------------

    def _check(self) -> None:
        meta, label = self.meta, f"{type(self).__name__} for {self.model.__name__}"
        for column in self.list_display:
            if (
                column != "__str__"
                and column not in meta.fields_map
                and not callable(getattr(self, column, None))
            ):
                raise ImproperlyConfigured(
                    f"{label}: list_display names {column!r}, which is neither a field of "
                    f"{self.model.__name__} nor a method of the ModelAdmin."
                )
        for name in self.list_filter:
            field = self._field(name, "list_filter")
            if not (
                isinstance(field, BooleanField | DateField | DateTimeField | ForeignKey)
                or field.choices is not None
                or isinstance(field, EnumField)
            ):
                raise ImproperlyConfigured(
                    f"{label}: list_filter field {name!r} is a {type(field).__name__}. Filter "
                    "on booleans, fields with choices, dates or foreign keys."
                )
        for name in self.search_fields:
            # Builds (never runs) the lookup: an unknown path raises FieldError now.
            _ = self.model.objects.filter(**{_search_lookup(name): ""})
        for name in (*self.exclude, *self.readonly_fields, *(self.fields or ())):
            self._field(name, "fields/exclude/readonly_fields")
        try:
            KeysetPaginator(self.model.objects.all(), 1, order_by=self.ordering)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{label}: ordering {self.ordering!r}: {exc}") from None
        if not 1 <= self.list_per_page <= 1000:
            raise ImproperlyConfigured(f"{label}: list_per_page must be between 1 and 1000.")
        for name in self.inlines:
            rel = meta.reverse.get(name)
            if rel is None or rel.many_to_many:
                choices = sorted(k for k, r in meta.reverse.items() if not r.many_to_many)
                raise ImproperlyConfigured(
                    f"{label}: inlines names {name!r}, which is not a reverse foreign key of "
                    f"{self.model.__name__}. Choose from: {', '.join(choices)}."
                )
        self.action_list = self._actions(label)

    def _field(self, name: str, option: str) -> Field[Any]:
        field = self.meta.fields_map.get(name)
        if field is not None and field.many_to_many and "fields" in option:
            return field
        if field is None or field.many_to_many:
            raise ImproperlyConfigured(
                f"{type(self).__name__}: {option} names {name!r}, which is not a concrete field "
                f"of {self.model.__name__}. Choose from: "
                f"{', '.join(f.name for f in self.meta.concrete_fields)}."
            )
        return field

    def _actions(self, label: str) -> dict[str, Action]:
        found: dict[str, Action] = {}
        for name in self.actions:
            func = getattr(self, name, None)
            marker = getattr(func, "__covet_action__", None)
            if func is None or marker is None:
                raise ImproperlyConfigured(
                    f"{label}: actions names {name!r}, which is not a method decorated with "
                    "@action()."
                )
            text, permission = marker
            found[name] = Action(
                name, text or name.replace("_", " ").capitalize(), permission, func.__func__
            )
        return found

    # -- permissions -----------------------------------------------------------------------------

    def permission_name(self, action_name: str) -> str:
        """Return the permission name for ``action_name`` (``"post.change"``)."""
        return f"{self.name}.{action_name}"

    def has_permission(self, user: Any, action_name: str) -> bool:
        """Return whether ``user`` may ``action_name`` (view/add/change/delete) this model.

        "change" implies "view", as in Django: a user who may edit a row may see it.
        Override to add rules of your own (object ownership, say).
        """
        if action_name == "view" and user.has_perm(self.permission_name("change")):
            return True
        return bool(user.has_perm(self.permission_name(action_name)))

    # -- fields ----------------------------------------------------------------------------------

    def form_fields(self) -> list[Field[Any]]:
        """Return the fields shown on the form, in model order (editable and read-only)."""
        names = self.fields
        chosen = []
        for field in self.meta.concrete_fields:
            if names is not None and field.name not in names:
                continue
            if field.name in self.exclude or isinstance(field, BinaryField):
                continue
            if names is None and field.name == "password" and issubclass(self.model, AbstractUser):
                continue  # a password hash is never edited as text; set it with set_password()
            if isinstance(field, AutoField) or (field.primary_key and field.auto_created):
                continue
            chosen.append(field)
        return chosen

    def m2m_fields(self) -> list[ManyToManyField]:
        """Return the many-to-many fields on the form (picked by key, never listed in full).

        Only relations with covet's own join table: an explicit ``through`` model
        may need more than the two keys, so it is edited on its own page.
        """
        names = self.fields
        return [
            f
            for f in self.meta.many_to_many
            if (names is None or f.name in names)
            and f.name not in self.exclude
            and f.through is None
        ]

    def is_readonly(self, field: Field[Any]) -> bool:
        """Return whether ``field`` is shown but never written from the form."""
        auto = isinstance(field, DateTimeField) and (field.auto_now or field.auto_now_add)
        return field.name in self.readonly_fields or auto

    def sortable(self, column: str) -> bool:
        """Return whether the list may be ordered by ``column`` (a non-null concrete field).

        The list pages by keyset, which needs non-null keys: nullable columns sort
        NULLs differently on each database.
        """
        field = self.meta.fields_map.get(column)
        return field is not None and not field.many_to_many and not field.null

    # -- list queries ----------------------------------------------------------------------------

    def get_queryset(self, request: Request) -> QuerySet[Any]:
        """Return every row the admin may show; override to narrow it (per user, say)."""
        related = [
            name
            for name in self.list_display
            if isinstance(self.meta.fields_map.get(name), ForeignKey)
        ]
        qs = self.model.objects.all()
        return qs.select_related(*related) if related else qs

    def search(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        """Return ``queryset`` narrowed to rows where any search field contains ``term``.

        Raises:
            ValueError: For a term with a NUL character (the view answers 400).
        """
        term = term.strip()
        if not term or not self.search_fields:
            return queryset
        if "\x00" in term:
            # PostgreSQL refuses NUL in text; the other databases would only find nothing.
            raise ValueError("A search cannot contain the NUL character (\\x00).")
        condition = Q()
        for name in self.search_fields:
            condition |= Q(**{_search_lookup(name): term})
        return queryset.filter(condition)

    def filter_choices(self, field: Field[Any], current: str | None) -> list[FilterChoice]:
        """Return the choices of a non-foreign-key filter (foreign keys use a lookup box)."""
        if isinstance(field, BooleanField):
            values = [("1", "Yes"), ("0", "No")]
        elif isinstance(field, DateField | DateTimeField):
            today = datetime.datetime.now(datetime.UTC).date()
            values = [(value, text) for value, text, _ in _date_ranges(today)]
        elif isinstance(field, EnumField):
            values = [(str(m.value), str(m.value)) for m in field.enum_cls]
        else:
            values = [(str(c), str(c)) for c in field.choices or ()]
        return [FilterChoice(text, value, value == current) for value, text in values]

    def apply_filter(self, queryset: QuerySet[Any], field: Field[Any], value: str) -> QuerySet[Any]:
        """Return ``queryset`` filtered by ``field`` = the query-string ``value``.

        Raises:
            ValueError: When ``value`` is not a choice of the filter (the view answers 400).
        """
        if isinstance(field, BooleanField):
            if value not in ("0", "1"):
                raise ValueError(f"Filter {field.name}={value!r} is not 0 or 1.")
            return queryset.filter(**{field.name: value == "1"})
        if isinstance(field, DateField | DateTimeField):
            today = datetime.datetime.now(datetime.UTC).date()
            for key, _, first in _date_ranges(today):
                if key == value:
                    start: Any = first
                    if isinstance(field, DateTimeField):
                        start = datetime.datetime.combine(first, datetime.time(), datetime.UTC)
                    return queryset.filter(**{f"{field.name}__gte": start})
            raise ValueError(f"Filter {field.name}={value!r} is not a date range.")
        if isinstance(field, ForeignKey):
            target = field.target_field.to_python(value)
            return queryset.filter(**{field.attname: target})
        if isinstance(field, EnumField):
            return queryset.filter(**{field.name: field.to_python(value)})
        choice = field.to_python(value)
        if field.choices is not None and choice not in field.choices:
            raise ValueError(f"Filter {field.name}={value!r} is not a choice.")
        return queryset.filter(**{field.name: choice})

    def display(self, obj: Model, column: str) -> Any:
        """Return the value of ``column`` for ``obj`` on the list page (escaped by the template)."""
        if column == "__str__":
            return str(obj)
        field = self.meta.fields_map.get(column)
        if field is None:
            return getattr(self, column)(obj)
        if isinstance(field, ForeignKey):
            try:
                related = getattr(obj, field.name)
            except RelationNotLoaded:  # a get_queryset() without select_related: show the key
                return getattr(obj, field.attname)
            return "" if related is None else str(related)
        value = getattr(obj, field.attname)
        if isinstance(value, bool):
            return "yes" if value else "no"
        return "" if value is None else value
