"""JSONField(index=True) on every backend: what create_all() builds, and what the index serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from covet.db import Model, fields
from covet.db.exceptions import NotSupportedError
from covet.db.schema import build_metadata, create_all, create_ddl, drop_all, sqlalchemy_dialect
from covet.db.testing import isolated_models

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.db.database import Database

# MySQL cannot create this table: keep it out of the registry (see test_array_field.py).
with isolated_models():

    class Doc(Model):
        name = fields.CharField(max_length=20)
        data = fields.JSONField(index=True)

        class Meta:
            table = "test_json_index_doc"


@pytest_asyncio.fixture(loop_scope="session")
async def docs(database: Database) -> AsyncIterator[Database]:
    if not database.features.can_index_json_field:
        pytest.skip(f"{database.vendor} cannot index a JSON column")
    await drop_all(database, [Doc])
    await create_all(database, [Doc])
    await Doc.objects.bulk_create(
        [Doc(name=f"d{i}", data={"kind": "a" if i % 50 else "b", "n": i}) for i in range(200)]
    )
    yield database
    await drop_all(database, [Doc])


async def test_refused_where_json_cannot_be_indexed(database: Database) -> None:
    if database.features.can_index_json_field:
        pytest.skip(f"{database.vendor} can index a JSON column")
    with pytest.raises(NotSupportedError, match=r"Doc\.data is a JSONField with index=True"):
        await create_all(database, [Doc])
    with pytest.raises(NotSupportedError, match="Remove index=True"):
        build_metadata([Doc], ops=database.ops)


async def test_contains_is_answered_with_the_index_in_place(docs: Database) -> None:
    names = await Doc.objects.filter(data__contains={"kind": "b"}).order_by("name")
    assert [d.name for d in names] == ["d0", "d100", "d150", "d50"]
    assert await Doc.objects.filter(data__n__gte=198).count() == 2


@pytest.mark.requires("supports_array_field")  # PostgreSQL: the GIN index and its plan
async def test_postgres_contains_uses_the_gin_index(docs: Database) -> None:
    ddl = "\n".join(create_ddl(build_metadata([Doc], ops=docs.ops), sqlalchemy_dialect(docs)))
    assert "USING gin (data jsonb_path_ops)" in ddl
    table = docs.ops.quote_name("test_json_index_doc")
    async with docs.transaction() as tx:
        # Too few rows for the planner to prefer an index on its own.
        await tx.connection.execute("SET LOCAL enable_seqscan = off")
        plan = await tx.connection.fetch_all(
            f"""EXPLAIN SELECT id FROM {table} WHERE data @> '{{"kind": "b"}}'::jsonb"""  # noqa: S608
        )
    assert "ix_test_json_index_doc_data" in "\n".join(row[0] for row in plan)
