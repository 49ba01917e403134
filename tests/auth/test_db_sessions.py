from __future__ import annotations

import datetime
import time

import pytest

from covet.sessions import (
    DatabaseSession,
    DatabaseStore,
    SessionRecord,
    SessionStore,
    generate_session_key,
)
from tests.auth.conftest import client_for
from tests.auth.helpers import PASSWORD, make_app, make_user

pytestmark = pytest.mark.usefixtures("db")


def _record(data: dict[str, object] | None = None) -> SessionRecord:
    now = time.time()
    return SessionRecord(generate_session_key(), data or {"a": 1}, now - 5, now)


async def test_round_trip_update_and_delete():
    store = DatabaseStore()
    assert isinstance(store, SessionStore)
    record = _record({"cart": [1, 2], "name": "Zoë"})
    assert await store.save(record, ttl=60) == record.key
    loaded = await store.load(record.key)
    assert loaded is not None
    assert (loaded.key, loaded.data) == (record.key, {"cart": [1, 2], "name": "Zoë"})
    assert loaded.created == pytest.approx(record.created)
    record.data["cart"] = [3]
    await store.save(record, ttl=60)
    await store.save(record, ttl=60)  # unchanged values: still fine (MySQL reports 0 rows)
    assert (await store.load(record.key)).data["cart"] == [3]  # type: ignore[union-attr]
    assert await store.touch(record, ttl=60) == record.key
    assert await DatabaseSession.objects.count() == 1
    await store.delete(record.key)
    assert await store.load(record.key) is None
    await store.delete(record.key)  # unknown: no error


async def test_unknown_malformed_and_expired_payloads_load_nothing():
    store = DatabaseStore()
    for payload in (None, 42, "", "x" * 65, "unknown-key", {"k": "v"}):
        assert await store.load(payload) is None
    record = _record()
    await store.save(record, ttl=60)
    await DatabaseSession.objects.filter(session_key=record.key).update(
        expires_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    )
    assert await store.load(record.key) is None
    live = _record()
    await store.save(live, ttl=60)
    assert await store.clear_expired() == 1
    assert await DatabaseSession.objects.count() == 1
    broken = _record()
    await store.save(broken, ttl=60)
    await DatabaseSession.objects.filter(session_key=broken.key).update(data="not json")
    assert await store.load(broken.key) is None


async def test_user_sessions_can_be_revoked_together():
    store = DatabaseStore()
    mine = [_record({"_auth_user_id": 7}) for _ in range(3)]
    theirs = _record({"_auth_user_id": 8})
    anonymous = _record({"lang": "fr"})
    for record in (*mine, theirs, anonymous):
        await store.save(record, ttl=60)
    assert (await DatabaseSession.objects.get(session_key=theirs.key)).user_id == "8"
    assert (await DatabaseSession.objects.get(session_key=anonymous.key)).user_id is None
    assert await store.delete_for_user(7, except_key=mine[0].key) == 2
    assert await store.load(mine[0].key) is not None
    assert await store.load(mine[1].key) is None
    assert await store.load(theirs.key) is not None
    assert await store.delete_for_user("7") == 1


async def test_login_flow_on_database_sessions():
    user = await make_user()
    store = DatabaseStore()
    app = make_app(store=store)
    async with client_for(app) as client, client_for(app) as other:
        await client.post("/remember", json={"lang": "en"})
        planted = (await DatabaseSession.objects.get()).session_key
        response = await client.post(
            "/login", json={"email": "ann@example.com", "password": PASSWORD}
        )
        assert response.status_code == 200
        rows = await DatabaseSession.objects.all()
        assert [row.user_id for row in rows] == [str(user.pk)]
        assert rows[0].session_key != planted  # rotated at login, the old row deleted
        assert (await client.get("/me")).json()["authenticated"] is True
        await other.post("/login", json={"email": "ann@example.com", "password": PASSWORD})
        assert await DatabaseSession.objects.filter(user_id=str(user.pk)).count() == 2
        # "Log out everywhere": revoke every session of the user server-side.
        assert await store.delete_for_user(user.pk) == 2
        assert (await client.get("/me")).json()["authenticated"] is False
        assert (await other.get("/me")).json()["authenticated"] is False
        await other.post("/login", json={"email": "ann@example.com", "password": PASSWORD})
        await other.post("/logout")
        assert await DatabaseSession.objects.filter(user_id=str(user.pk)).count() == 0


async def test_a_revoked_row_is_not_recreated_by_a_late_save():
    store = DatabaseStore()
    record = _record({"_auth_user_id": 7})
    assert await store.save(record, ttl=60) == record.key
    loaded = await store.load(record.key)
    assert loaded is not None
    loaded.existing = True
    assert await store.save(loaded, ttl=60) == record.key
    assert await store.save(loaded, ttl=60) == record.key  # identical values (MySQL: 0 rows)
    assert await store.delete_for_user(7) == 1
    # A request that loaded the session before the revocation saves afterwards.
    loaded.data["late"] = True
    assert await store.save(loaded, ttl=60) is None
    assert await store.touch(loaded, ttl=60) is None
    assert await store.load(record.key) is None
    assert await DatabaseSession.objects.count() == 0
