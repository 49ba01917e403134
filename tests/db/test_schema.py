"""create_all/drop_all and the schema they build, on every backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest

from covet.db import IntegrityError, Model, fields
from covet.db.schema import build_metadata, create_all, create_ddl, drop_all, sqlalchemy_dialect
from tests.db.models import ALL_MODELS, Author, Post

if TYPE_CHECKING:
    from covet.db.database import Database


class Widget(Model):
    name = fields.CharField(max_length=30, unique=True)
    kind = fields.CharField(max_length=10, index=True)
    size = fields.IntegerField(default=1)

    class Meta:
        table = "schema_widget"
        unique_together = (("kind", "size"),)
        indexes = (("kind", "name"),)


class Gadget(Model):
    widget = fields.ForeignKey(Widget, related_name="gadgets", on_delete="CASCADE")
    spare = fields.ForeignKey(Widget, related_name="spares", on_delete="SET_NULL", null=True)

    class Meta:
        table = "schema_gadget"


def test_metadata_describes_tables_columns_and_constraints():
    metadata = build_metadata([Author, Post])
    assert set(metadata.tables) == {"author", "posts", "posts_tags"}
    posts = metadata.tables["posts"]
    assert posts.c.id.primary_key and posts.c.id.autoincrement is True
    assert not posts.c.title.nullable and posts.c.published_at.nullable
    assert {fk.ondelete for fk in posts.c.author_id.foreign_keys} == {"CASCADE"}
    assert {fk.ondelete for fk in posts.c.editor_id.foreign_keys} == {"SET NULL"}
    assert any(ix.name == "ix_posts_title" for ix in posts.indexes)
    through = metadata.tables["posts_tags"]
    assert {c.name for c in through.c} == {"id", "post_id", "tag_id"}


def test_metadata_for_mysql_carries_table_options():
    from covet.db.backends.mysql import MySQLFeatures, MySQLOperations

    metadata = build_metadata([Widget], ops=MySQLOperations(MySQLFeatures()))
    table = metadata.tables["schema_widget"]
    assert table.kwargs["mysql_engine"] == "InnoDB"
    assert table.kwargs["mysql_charset"] == "utf8mb4"
    assert table.kwargs["mysql_collate"] == "utf8mb4_bin"


def test_ddl_per_dialect_uses_variants():
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    metadata = build_metadata([Widget, Gadget])
    lite = "\n".join(create_ddl(metadata, cast(Any, sqlite).dialect()))
    assert "id INTEGER NOT NULL" in lite
    pg = "\n".join(create_ddl(metadata, cast(Any, postgresql).dialect()))
    assert "id BIGSERIAL NOT NULL" in pg
    assert "ON DELETE SET NULL" in pg and "ON DELETE CASCADE" in pg
    my = "\n".join(create_ddl(build_metadata(ALL_MODELS), cast(Any, mysql).dialect()))
    assert "DATETIME(6)" in my and "LONGTEXT" in my and "CHAR(36)" in my


async def test_create_all_is_idempotent_and_drop_all_removes(database: Database):
    models = [Widget, Gadget]
    await drop_all(database, models)
    await create_all(database, models)
    await create_all(database, models)  # IF NOT EXISTS: no error
    widget = await Widget.objects.create(name="w", kind="k")
    assert await Widget.objects.count() == 1
    with pytest.raises(IntegrityError):
        await Widget.objects.create(name="w", kind="other")
    with pytest.raises(IntegrityError):
        await Widget.objects.create(name="w2", kind="k", size=1)
    gadget = await Gadget.objects.create(widget=widget, spare=widget)
    assert gadget.pk is not None
    await drop_all(database, models)
    await drop_all(database, models)
    await create_all(database, models)
    assert await Widget.objects.count() == 0
    await drop_all(database, models)


async def test_foreign_keys_are_enforced_by_the_database(database: Database):
    models = [Widget, Gadget]
    await create_all(database, models)
    try:
        with pytest.raises(IntegrityError):
            await Gadget.objects.create(widget_id=999_999)
        widget = await Widget.objects.create(name="x", kind="k")
        await Gadget.objects.create(widget=widget, spare=widget)
        await Widget.objects.filter(pk=widget.pk).delete()
        assert await Gadget.objects.count() == 0  # ON DELETE CASCADE ran in the database
    finally:
        await drop_all(database, models)


def test_sqlalchemy_dialect_matches_database(database: Database):
    dialect = sqlalchemy_dialect(database)
    assert dialect.name in {"sqlite", "postgresql", "mysql"}
