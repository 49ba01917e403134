"""Server-side sessions in the application's database: :class:`DatabaseStore`.

Sessions live in the ``covet_sessions`` table (model :class:`DatabaseSession`),
shared by every worker, and survive restarts. Each row records the id of the
logged-in user, so all of one user's sessions can be ended at once
(:meth:`DatabaseStore.delete_for_user`), for example from an admin page or a
"log out everywhere" button::

    from covet.sessions import DatabaseStore

    app.add_middleware(SessionMiddleware, secret_key=SECRET_KEY, store=DatabaseStore())

Add ``"covet.sessions.database"`` to ``models`` in ``[tool.covet]`` so migrations
create the table, and run :meth:`DatabaseStore.clear_expired` now and then
(a cron job or a periodic task) to delete expired rows.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from covet.db import IntegrityError, Model, ObjectDoesNotExist, fields, transaction
from covet.sessions.stores import (
    SESSION_USER_KEY,
    SessionRecord,
    _decode_record,
    _encode_record,
    _untouched,
)

if TYPE_CHECKING:
    from covet.db.queryset import QuerySet

__all__ = ("DatabaseSession", "DatabaseStore")

_MAX_KEY_LENGTH = 64


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class DatabaseSession(Model):
    """One stored session.

    Attributes:
        session_key: The session id (256 random bits, URL-safe base64).
        data: The session data and timestamps, as JSON.
        expires_at: When the row stops being valid.
        user_id: The primary key of the logged-in user (as text), or None.
    """

    session_key = fields.CharField(max_length=_MAX_KEY_LENGTH, primary_key=True)
    data = fields.TextField()
    expires_at = fields.DateTimeField(index=True)
    user_id = fields.CharField(max_length=64, null=True, index=True)

    class Meta:
        """The table is ``covet_sessions``."""

        table = "covet_sessions"


class DatabaseStore:
    """Keep sessions in a database table, shared by every worker.

    Args:
        model: The session model (default :class:`DatabaseSession`); another
            model needs the same fields, ``session_key`` its primary key (or unique).
        using: The database alias (default: the default database).
    """

    def __init__(self, model: type[Model] = DatabaseSession, *, using: str | None = None) -> None:
        self.model = model
        self.using = using

    def _rows(self) -> QuerySet[Any]:
        # The manager itself on the default database: only it remembers get() statements.
        model = self.model
        return model.objects if self.using is None else model.objects.using(self.using)

    async def load(self, payload: Any) -> SessionRecord | None:
        """Return the unexpired session whose id is ``payload``."""
        if not isinstance(payload, str) or not payload or len(payload) > _MAX_KEY_LENGTH:
            return None
        # The manager's get() by primary key binds its remembered statement directly
        # (cheaper than filter(..., expires_at__gt=now).first()); expiry is checked here.
        try:
            row = await self._rows().get(session_key=payload)
        except ObjectDoesNotExist:
            return None
        if row.expires_at <= _now():
            return None
        return _decode_record(payload, row.data)

    async def save(self, record: SessionRecord, *, ttl: int) -> Any:
        """Insert or update the row for ``record``, valid for ``ttl`` seconds; return its id.

        Returns:
            The session id, or None when ``record.existing`` and the row is gone
            (revoked meanwhile): it is not inserted again.
        """
        if record.existing and record.changes is not None:
            return await self._merge(record, ttl=ttl)
        user = record.data.get(SESSION_USER_KEY)
        values: dict[str, Any] = {
            "data": _encode_record(record).decode("utf-8"),
            "expires_at": _now() + datetime.timedelta(seconds=ttl),
            "user_id": None if user is None else str(user)[:64],
        }
        rows = self._rows().filter(session_key=record.key)
        if await rows.update(**values):
            return record.key
        if record.existing:
            # MySQL counts only changed rows: an identical row is still there.
            return record.key if await rows.exists() else None
        try:
            await self._rows().create(session_key=record.key, **values)
        except IntegrityError:
            # Another request created it first, or (MySQL) the UPDATE changed nothing
            # because the row already held these values: write ours over it.
            await rows.update(**values)
        return record.key

    async def _merge(self, record: SessionRecord, *, ttl: int) -> Any:
        """Apply ``record.changes`` to the stored row, locked for the read and the write."""
        async with transaction(using=self.using):
            row = await self._rows().select_for_update().filter(session_key=record.key).first()
            stored = None if row is None else _decode_record(record.key, row.data)
            if stored is None:
                return None  # revoked meanwhile: it stays revoked
            merged = record.merged_into(stored)
            user = merged.data.get(SESSION_USER_KEY)
            await (
                self._rows()
                .filter(session_key=record.key)
                .update(
                    data=_encode_record(merged).decode("utf-8"),
                    expires_at=_now() + datetime.timedelta(seconds=ttl),
                    user_id=None if user is None else str(user)[:64],
                )
            )
        return record.key

    async def touch(self, record: SessionRecord, *, ttl: int) -> Any:
        """Store the session again with its new access time and expiry (its data as stored)."""
        return await self.save(_untouched(record), ttl=ttl)

    async def delete(self, key: str) -> None:
        """Delete session ``key`` (nothing happens when it is unknown)."""
        await self._rows().filter(session_key=key).delete()

    async def delete_for_user(self, user_id: Any, *, except_key: str | None = None) -> int:
        """End every session of the user with primary key ``user_id``, but ``except_key``.

        Returns:
            The number of sessions deleted.
        """
        rows = self._rows().filter(user_id=str(user_id))
        if except_key is not None:
            rows = rows.exclude(session_key=except_key)
        return await rows.delete()

    async def clear_expired(self) -> int:
        """Delete expired sessions; return how many."""
        return await self._rows().filter(expires_at__lte=_now()).delete()
