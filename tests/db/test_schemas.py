"""Schemas derived from ORM models, and ORM rows served through them, on every backend."""

from __future__ import annotations

import datetime
import decimal
from typing import TYPE_CHECKING, Any

import msgspec
import pydantic
import pytest

from covet import Covet
from covet.db import Model, fields, model_schema
from covet.exceptions import ImproperlyConfigured
from tests.auth.conftest import client_for
from tests.db.models import Author, Post

if TYPE_CHECKING:
    from covet.db.database import Database


class Event(Model):
    """Not created in any database: only its fields are read."""

    title = fields.CharField(max_length=20, help_text="What happens")
    kind = fields.CharField(max_length=10, choices=[("talk", "Talk"), ("demo", "Demo")])
    seats = fields.SmallIntegerField(default=10)
    price = fields.DecimalField(max_digits=5, decimal_places=2, null=True)
    starts = fields.DateTimeField()
    created = fields.DateTimeField(auto_now_add=True)
    updated = fields.DateTimeField(auto_now=True)
    secret = fields.CharField(max_length=10, default="s")

    class Meta:
        table = "schema_test_events"


NOW = datetime.datetime(2030, 1, 2, 3, 4, tzinfo=datetime.UTC)


def test_kinds_hold_the_right_fields() -> None:
    read = model_schema(Event, "read", exclude=["secret"])
    create = model_schema(Event, "create")
    assert issubclass(read, pydantic.BaseModel) and issubclass(create, pydantic.BaseModel)
    assert list(read.model_fields) == [
        "id",
        "title",
        "kind",
        "seats",
        "price",
        "starts",
        "created",
        "updated",
    ]
    # Server-set fields (the automatic key, auto_now, auto_now_add) are not the client's.
    assert list(create.model_fields) == ["title", "kind", "seats", "price", "starts", "secret"]
    assert model_schema(Event, "create") is create  # same arguments, same class
    assert (
        read.__name__ == "EventRead" and create.model_fields["title"].description == "What happens"
    )
    assert list(model_schema(Post, "read", include=["title", "author_id"]).model_fields) == [
        "title",
        "author_id",
    ]


def test_pydantic_schemas_carry_the_field_checks() -> None:
    create = model_schema(Event, "create")
    event = create(title="t", kind="talk", starts=NOW)
    assert (event.seats, event.price, event.secret) == (10, None, "s")
    with pytest.raises(pydantic.ValidationError) as failed:
        create(
            title="x" * 21,
            kind="party",
            seats=40_000,
            price=decimal.Decimal("1234.5"),
            starts=datetime.datetime(2030, 1, 1),  # noqa: DTZ001 - naive on purpose
            bogus=1,
        )
    assert {e["loc"][0]: e["type"] for e in failed.value.errors()} == {
        "title": "string_too_long",
        "kind": "literal_error",
        "seats": "less_than_equal",
        "price": "decimal_whole_digits",
        "starts": "timezone_aware",
        "bogus": "extra_forbidden",
    }
    update = model_schema(Event, "update")
    patch = update(title="new")
    assert patch.model_dump(exclude_unset=True) == {"title": "new"}
    with pytest.raises(pydantic.ValidationError):
        update(title=None)  # a NOT NULL column cannot be emptied


def test_msgspec_schemas() -> None:
    create = model_schema(Event, "create", library="msgspec")
    update = model_schema(Event, "update", library="msgspec")
    read = model_schema(Event, "read", library="msgspec", exclude=["secret"])
    assert issubclass(create, msgspec.Struct)
    event = msgspec.convert({"title": "t", "kind": "demo", "starts": NOW.isoformat()}, create)
    assert (event.seats, event.secret) == (10, "s")  # type: ignore[attr-defined]
    for bad in ({"title": "x" * 21}, {"kind": "party"}, {"seats": 40_000}, {"bogus": 1}):
        payload = {"title": "t", "kind": "demo", "starts": NOW.isoformat(), **bad}
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(payload, create)
    patch: Any = msgspec.convert({"seats": 3}, update)
    assert msgspec.json.encode(patch) == b'{"seats":3}'  # unset fields are left out
    row = Event(id=1, title="t", kind="talk", starts=NOW, created=NOW, updated=NOW)
    encoded = msgspec.json.decode(
        msgspec.json.encode(msgspec.convert(row, read, from_attributes=True))
    )
    assert "secret" not in encoded and encoded["id"] == 1


def test_bad_arguments() -> None:
    with pytest.raises(ImproperlyConfigured, match="kind='list'"):
        model_schema(Event, "list")
    with pytest.raises(ImproperlyConfigured, match="library='attrs'"):
        model_schema(Event, library="attrs")
    with pytest.raises(ImproperlyConfigured, match=r"unknown field\(s\) \['nope'\]"):
        model_schema(Event, exclude=["nope"])
    with pytest.raises(ImproperlyConfigured, match="not a string"):
        model_schema(Event, exclude="secret")


@pytest.mark.parametrize("library", ["pydantic", "msgspec"])
async def test_orm_rows_served_through_their_schemas(orm: Database, library: str) -> None:
    author_create = model_schema(Author, "create", library=library)
    author_read = model_schema(Author, "read", library=library, exclude=["email"])
    post_read = model_schema(Post, "read", library=library, include=["id", "title", "author_id"])
    author_update = model_schema(Author, "update", library=library)
    app = Covet(allowed_hosts=["testserver"])

    async def create(data: Any) -> Any:
        values = data.model_dump() if library == "pydantic" else msgspec.structs.asdict(data)
        return await Author.objects.create(**values)

    create.__annotations__ = {"data": author_create, "return": author_read}

    async def update(author_id: int, data: Any) -> Any:
        author = await Author.objects.get(id=author_id)
        if library == "pydantic":
            changes = data.model_dump(exclude_unset=True)
        else:
            changes = {
                k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET
            }
        for name, value in changes.items():
            setattr(author, name, value)
        await author.save()
        return author

    update.__annotations__ = {"author_id": int, "data": author_update, "return": author_read}

    async def posts(author_id: int) -> list[Post]:
        return await Post.objects.filter(author_id=author_id).order_by("id")

    app.add_route("/authors", create, methods=["POST"], status_code=201)
    app.add_route("/authors/{author_id:int}", update, methods=["PATCH"])
    many = list[post_read]  # type: ignore[valid-type]  # a class built at run time
    app.add_route("/authors/{author_id:int}/posts", posts, response_model=many)
    async with client_for(app) as client:
        answer = await client.post("/authors", json={"name": "Ann", "email": "ann@example.com"})
        assert answer.status_code == 201, answer.text
        created = answer.json()
        assert set(created) == {"id", "name", "age"}  # email is excluded from the read schema
        author_id = created["id"]
        answer = await client.post("/authors", json={"name": "Bob", "email": "b@x", "admin": True})
        assert answer.status_code == 422  # create schemas refuse unknown fields
        answer = await client.patch(f"/authors/{author_id}", json={"age": 41})
        assert answer.json() == {"id": author_id, "name": "Ann", "age": 41}
        stored = await Author.objects.get(id=author_id)
        assert (stored.name, stored.email, stored.age) == ("Ann", "ann@example.com", 41)
        await Post.objects.create(title="First", author_id=author_id, body="private draft")
        answer = await client.get(f"/authors/{author_id}/posts")
        (post,) = answer.json()
        assert post == {"id": post["id"], "title": "First", "author_id": author_id}
