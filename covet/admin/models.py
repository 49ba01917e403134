"""The admin's audit log: one row per change made through the admin pages.

Add ``"covet.admin.models"`` to ``models`` in ``[tool.covet]`` so migrations
create the ``covet_admin_log`` table. The user is stored by primary key and
name, not by foreign key: the project defines the user model, and the log must
outlive the deletion of the user who wrote it.
"""

from __future__ import annotations

import datetime
from typing import Any

from covet.db import Model, fields

__all__ = ("ADDITION", "CHANGE", "DELETION", "AdminLogEntry")

ADDITION = "add"
CHANGE = "change"
DELETION = "delete"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class AdminLogEntry(Model):
    """Who changed what, and when, through the admin.

    Attributes:
        action_time: When the change was saved (UTC).
        user_id: The primary key of the staff user, as text.
        user_repr: The user's login name at the time.
        action: ``"add"``, ``"change"`` or ``"delete"``.
        model: The model's name (``"post"``, its ``Meta`` model name).
        object_id: The primary key of the changed row, as text.
        object_repr: ``str()`` of the row at the time (up to 200 characters).
        changes: ``{field: [before, after]}`` for the fields that changed (an
            addition has ``None`` before, a deletion ``None`` after).
    """

    action_time = fields.DateTimeField(default=_now, index=True)
    user_id = fields.CharField(max_length=64, index=True)
    user_repr = fields.CharField(max_length=254)
    action = fields.CharField(max_length=10, choices=[ADDITION, CHANGE, DELETION])
    model = fields.CharField(max_length=100, index=True)
    object_id = fields.CharField(max_length=64)
    object_repr = fields.CharField(max_length=200)
    changes = fields.JSONField(default=dict)

    class Meta:
        """The table is ``covet_admin_log``, newest first."""

        table = "covet_admin_log"
        ordering = ("-action_time", "-id")
        indexes = (("model", "object_id"),)

    def __str__(self) -> str:
        return f"{self.user_repr} {self.action} {self.model} {self.object_repr}"

    @property
    def changed_fields(self) -> list[tuple[str, Any, Any]]:
        """Return ``(field, before, after)`` for each changed field, for templates."""
        changes = self.changes if isinstance(self.changes, dict) else {}
        return [(name, pair[0], pair[1]) for name, pair in changes.items()]
