"""Read replicas and database routing on every backend.

The "replica" is a second database on the same server (a schema on
PostgreSQL, a database on MySQL, a file on SQLite) with the same tables but
its own rows, so each result, and the query log's ``database`` alias, show
which database served a query.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import Database, Model, capture_queries, fields, transaction
from covet.db.routing import (
    ReplicaRouter,
    connect_replicas,
    db_for_read,
    db_for_write,
    get_routers,
    set_routers,
)
from covet.db.schema import create_all, drop_all
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.db.conftest import Target


class Ledger(Model):
    label = fields.CharField(max_length=50)

    class Meta:
        table = "route_ledger"


class Untouched(Model):
    label = fields.CharField(max_length=50)

    class Meta:
        table = "route_untouched"


MODELS = [Ledger, Untouched]


def _replica_url(database: Database, target: Target, name: str) -> str:
    if database.vendor == "sqlite":
        return f"{target.url}.{name}"
    return database.backend.creation.test_database_url(target.admin_url, name)


@pytest.fixture
async def replica(database: Database, target: Target) -> AsyncIterator[Database]:
    """Yield a connected replica database (alias ``replica_1``) with the tables and one row."""
    name = f"covet_r_{secrets.token_hex(5)}"
    creation = database.backend.creation
    for sql in creation.create_test_database_sql(name):
        await database.execute(sql)
    await drop_all(database, MODELS)
    await create_all(database, MODELS)
    [db] = await connect_replicas(
        [_replica_url(database, target, name)], primary=database.alias, **target.options
    )
    try:
        await create_all(db, MODELS)
        await Ledger.objects.using(db.alias).create(label="on the replica")
        await Untouched.objects.using(db.alias).create(label="on the replica")
        yield db
    finally:
        set_routers([])
        await db.disconnect()
        await drop_all(database, MODELS)
        for sql in creation.drop_test_database_sql(name):
            await database.execute(sql)


async def _labels(qs: Any) -> list[str]:
    return [obj.label for obj in await qs]


async def test_reads_go_to_the_replica_and_writes_to_the_primary(database, replica):
    assert [type(r) for r in get_routers()] == [ReplicaRouter]
    async with capture_queries() as log:
        created = await Ledger.objects.create(label="on the primary")
        assert await _labels(Ledger.objects.all()) == ["on the replica"]
        assert await Ledger.objects.count() == 1
        assert (await Ledger.objects.get(label="on the replica")).label == "on the replica"
        assert await Ledger.objects.filter(label="on the primary").exists() is False
        assert [o.label async for o in Ledger.objects.all()] == ["on the replica"]
        created.label = "renamed"
        await created.save()
        assert await Ledger.objects.filter(pk=created.pk).update(label="again") == 1
    served = [(q.sql.split()[0].upper(), q.database) for q in log]
    assert served == [
        ("INSERT", database.alias),
        ("SELECT", replica.alias),
        ("SELECT", replica.alias),
        ("SELECT", replica.alias),
        ("SELECT", replica.alias),
        ("SELECT", replica.alias),
        ("UPDATE", database.alias),
        ("UPDATE", database.alias),
    ]
    # An explicit alias is never routed: read your own write from the primary.
    assert await _labels(Ledger.objects.using(database.alias).all()) == ["again"]
    assert db_for_write(Ledger) == database.alias
    assert db_for_read(Ledger) == replica.alias


async def test_reads_inside_a_transaction_use_the_primary(database, replica):
    async with transaction():
        await Ledger.objects.create(label="in the transaction")
        assert await _labels(Ledger.objects.all()) == ["in the transaction"]
    assert await _labels(Ledger.objects.all()) == ["on the replica"]


async def test_read_your_writes_pins_the_task_after_a_write(database, replica):
    set_routers([ReplicaRouter(database.alias, [replica.alias], read_your_writes=True)])
    assert await _labels(Ledger.objects.all()) == ["on the replica"]

    async def request() -> list[str]:
        await Ledger.objects.create(label="written")
        return await _labels(Ledger.objects.all())

    assert await asyncio.create_task(request()) == ["written"]
    # Another task (another request) did not write: it reads the replica again.
    assert await asyncio.create_task(_labels(Ledger.objects.all())) == ["on the replica"]


async def test_an_unavailable_replica_falls_back_to_the_primary(database, replica, target):
    slow = Database(
        replica.url.render_as_string(hide_password=False),
        alias="replica_busy",
        fallback=database.alias,
        max_size=1,
        timeout=0.05,
        **target.options,
    )
    await slow.connect()
    try:
        set_routers([ReplicaRouter(database.alias, ["replica_busy"])])
        await Ledger.objects.create(label="primary row")
        async with slow.connection():  # its only connection is taken: PoolTimeout
            async with capture_queries() as log:
                assert await _labels(Ledger.objects.all()) == ["primary row"]
            assert [q.database for q in log] == [database.alias]
            assert slow.unavailable_until > 0
            # The router now skips it without waiting for the pool again.
            assert db_for_read(Ledger) == database.alias
    finally:
        await slow.disconnect()


async def test_round_robin_and_model_scoped_routers(database, replica):
    set_routers(
        [ReplicaRouter(database.alias, [replica.alias], choice="round_robin", models=[Untouched])]
    )
    assert db_for_read(Ledger) is None  # not its model: the default database
    assert await _labels(Ledger.objects.all()) == []
    assert [db_for_read(Untouched) for _ in range(3)] == [replica.alias] * 3
    assert await _labels(Untouched.objects.all()) == ["on the replica"]


def test_router_configuration_errors():
    with pytest.raises(ImproperlyConfigured, match="round_robin"):
        ReplicaRouter("default", ["r"], choice="fastest")  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured, match="also listed"):
        ReplicaRouter("default", ["default"])
    with pytest.raises(ImproperlyConfigured, match="neither"):
        set_routers([object()])
    assert get_routers() == []
