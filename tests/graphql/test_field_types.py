"""How model field types map to GraphQL: JSONField as the JSON scalar, ArrayField as a list."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import pytest
import strawberry

from covet import Covet
from covet.db import Model, create_all, drop_all, fields
from covet.db.testing import isolated_models
from covet.graphql import GraphQL, list_field, model_type
from tests.graphql.conftest import client_for, gql
from tests.graphql.example import RUN

if TYPE_CHECKING:
    from covet.db.database import Database


class Size(enum.Enum):
    S = "s"
    M = "m"


class Setting(Model):
    name = fields.CharField(max_length=20)
    data = fields.JSONField()
    extra = fields.JSONField(null=True)

    class Meta:
        table = f"gql_settings_{RUN}"


# PostgreSQL only: kept out of the registry so create_all() elsewhere never meets it.
with isolated_models():

    class Gadget(Model):
        name = fields.CharField(max_length=20)
        tags = fields.ArrayField(fields.CharField(max_length=10))
        scores = fields.ArrayField(fields.IntegerField(null=True), null=True)
        sizes = fields.ArrayField(fields.EnumField(Size), null=True)
        blobs = fields.ArrayField(fields.BinaryField(), null=True)

        class Meta:
            table = f"gql_gadgets_{RUN}"


@model_type(Setting)
class SettingType:
    pass


@model_type(Gadget)
class GadgetType:
    pass


@strawberry.type
class Query:
    settings = list_field(SettingType)
    gadgets = list_field(GadgetType)


schema = strawberry.Schema(query=Query)


def test_schema_maps_json_and_arrays() -> None:
    sdl = schema.as_str()
    setting = sdl.split("type Setting ", 1)[1].split("}", 1)[0]
    assert "data: JSON!" in setting
    assert "extra: JSON\n" in setting
    gadget = sdl.split("type Gadget ", 1)[1].split("}", 1)[0]
    assert "tags: [String!]!" in gadget
    assert "scores: [Int]\n" in gadget  # null=True elements, null=True list
    assert "sizes: [Size!]\n" in gadget
    assert "blobs" not in gadget  # bytes have no faithful GraphQL scalar
    # Neither JSON nor arrays are orderable; arrays are not filterable either.
    order = sdl.split("enum GadgetOrder", 1)[1].split("}", 1)[0]
    assert "TAGS" not in order
    gadget_filter = sdl.split("input GadgetFilter", 1)[1].split("}", 1)[0]
    assert "tags" not in gadget_filter


async def query(body: str) -> Any:
    app = Covet(allowed_hosts=["testserver"])
    GraphQL(schema).add_to(app, "/graphql")
    async with client_for(app) as client:
        response = await gql(client, body)
    payload = response.json()
    assert "errors" not in payload, payload
    return payload["data"]


async def test_json_values_round_trip(database: Database) -> None:
    await drop_all([Setting])
    await create_all([Setting])
    try:
        await Setting.objects.create(name="a", data={"n": 1, "tags": ["x"], "on": True})
        await Setting.objects.create(name="b", data=[1, "two"], extra="text")
        data = await query("{ settings { name data extra } }")
        assert sorted(data["settings"], key=lambda s: s["name"]) == [
            {"name": "a", "data": {"n": 1, "tags": ["x"], "on": True}, "extra": None},
            {"name": "b", "data": [1, "two"], "extra": "text"},
        ]
    finally:
        await drop_all([Setting])


async def test_array_values_resolve(database: Database) -> None:
    if not database.features.supports_array_field:
        pytest.skip(f"{database.vendor} has no array columns")
    await drop_all([Gadget])
    await create_all([Gadget])
    try:
        await Gadget.objects.create(name="g", tags=["a", "b"], scores=[1, None], sizes=[Size.M])
        data = await query("{ gadgets { name tags scores sizes } }")
        assert data["gadgets"] == [
            {"name": "g", "tags": ["a", "b"], "scores": [1, None], "sizes": ["M"]}
        ]
    finally:
        await drop_all([Gadget])
