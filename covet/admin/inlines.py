"""Inline rows: edit, add and delete a row's children on the parent's change page.

``ModelAdmin.inlines = ("comments",)`` names reverse foreign keys. The change
page then shows each child row (the newest ``inline_rows``) as a small form of
its own fields, the key back to the parent left out, with a "delete" box,
plus ``inline_extra`` empty forms for new rows. Inputs are prefixed
(``comments-3-text``; ``comments-new-0-text``) so one post carries them all.

Everything is validated before anything is written; then the parent and the
children are saved in one transaction, each change in the audit log. The
child model's own admin (when registered) decides the form fields and the
permissions: changing a child needs ``"<child>.change"``, adding
``"<child>.add"``, deleting ``"<child>.delete"``; a child model without an
admin of its own is covered by the parent's ``"change"`` permission.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from covet.admin.forms import AdminForm
from covet.admin.options import ModelAdmin
from covet.db import ValidationError
from covet.db.fields import BooleanField, ForeignKey
from covet.exceptions import HTTPException

if TYPE_CHECKING:
    from covet.datastructures import FormData
    from covet.db.models import Model

__all__ = ("InlineRow", "InlineSet", "bind_inlines", "build_inlines", "check_inlines")


@dataclass
class InlineRow:
    """One child row's form (``obj`` is None for an empty "add" form)."""

    obj: Model | None
    form: AdminForm
    prefix: str
    delete: bool = False
    used: bool = True
    target: Model | None = None
    changes: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class InlineSet:
    """The children of one reverse foreign key on a parent's change page."""

    name: str
    label: str
    admin: ModelAdmin
    registered: bool
    fk: ForeignKey[Any]
    rows: list[InlineRow] = field(default_factory=list)
    more: bool = False
    can_add: bool = False
    can_change: bool = False
    can_delete: bool = False


async def build_inlines(
    parent_admin: ModelAdmin, registry: dict[str, ModelAdmin], obj: Model, user: Any
) -> list[InlineSet]:
    """Return the inline sets of ``obj``'s change page, the rows the user may see."""
    sets = []
    allowed = parent_admin.has_permission(user, "change")
    for name in parent_admin.inlines:
        rel = parent_admin.meta.reverse[name]
        fk = rel.field
        assert isinstance(fk, ForeignKey)  # noqa: S101 - checked at registration
        child = registry.get(rel.model._meta.model_name)
        registered = child is not None
        child = child or ModelAdmin(rel.model)
        if registered and not child.has_permission(user, "view"):
            continue

        def may(action: str, child: ModelAdmin = child, registered: bool = registered) -> bool:
            return child.has_permission(user, action) if registered else allowed

        limit = parent_admin.inline_rows
        rows = await rel.model.objects.filter(**{fk.attname: obj.pk}).order_by("-pk")[: limit + 1]
        inline = InlineSet(
            name=name,
            label=name.replace("_", " ").capitalize(),
            admin=child,
            registered=registered,
            fk=fk,
            more=len(rows) > limit,
            can_add=allowed and may("add"),
            can_change=allowed and may("change"),
            can_delete=allowed and may("delete"),
        )
        for row in rows[:limit]:
            prefix = f"{name}-{row.pk}-"
            inline.rows.append(
                InlineRow(row, AdminForm(child, row, prefix=prefix, exclude=[fk.name]), prefix)
            )
        if inline.can_add:
            for j in range(parent_admin.inline_extra):
                prefix = f"{name}-new-{j}-"
                form = AdminForm(child, None, prefix=prefix, exclude=[fk.name])
                inline.rows.append(InlineRow(None, form, prefix))
        sets.append(inline)
    return sets


def _blank(row: InlineRow, submitted: FormData) -> bool:
    """Return whether an "add" row was left empty (its booleans at their defaults)."""
    for f in row.form.editable:
        values = [v for v in submitted.getlist(row.prefix + f.name) if isinstance(v, str)]
        if isinstance(f, BooleanField):
            default = f.default() if callable(f.default) else f.default
            if values and (values[-1] == "true") != bool(default):
                return False
        elif values and values[-1].strip():
            return False
    return True


def bind_inlines(sets: list[InlineSet], submitted: FormData) -> bool:
    """Bind every inline row to the post; return whether all are valid.

    Raises:
        HTTPException: 403 when the post changes, adds or deletes a child row
            the user has no permission for.
    """
    valid = True
    for inline in sets:
        for row in inline.rows:
            if row.obj is None:
                row.used = not _blank(row, submitted)
                if not row.used:
                    continue
            elif submitted.get(row.prefix + "DELETE") == "on":
                if not inline.can_delete:
                    raise HTTPException(403, f"You may not delete {inline.label.lower()}.")
                row.delete = True
                continue
            elif not inline.can_change:
                row.used = False  # shown read-only; nothing posted for it is read
                continue
            valid = row.form.bind(submitted) and valid
    return valid


async def check_inlines(sets: list[InlineSet], parent: Model) -> bool:
    """Check foreign keys and ``full_clean()`` of the bound rows; return validity."""
    valid = True
    for inline in sets:
        for row in inline.rows:
            if row.delete or not row.used or not row.form.cleaned:
                continue
            target = row.obj if row.obj is not None else inline.admin.model()
            setattr(target, inline.fk.attname, parent.pk)
            row.changes = row.form.apply(target)
            row.target = target
            try:
                target.full_clean()
            except ValidationError as exc:
                row.form.add_model_errors(exc.error_dict)
                valid = False
    return valid and not any(r.form.errors for s in sets for r in s.rows if r.used)
