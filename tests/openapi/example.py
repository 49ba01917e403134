"""A covet API using every OpenAPI feature, for the document and schemathesis tests.

(No ``from __future__ import annotations``: covet reads the handlers' annotations
at registration, so the types they name are run-time imports.)
"""

import enum
import uuid
from typing import Annotated, Literal

import msgspec
from pydantic import BaseModel, Field

from covet import Covet, Request, Router
from covet.datastructures import UploadFile
from covet.exceptions import HTTPException
from covet.openapi import OpenAPIConfig
from covet.params import Body, Depends, File, Form, Header, Path, Query


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Tag(BaseModel):
    label: str = Field(min_length=1, max_length=20)


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    price: float = Field(gt=0, le=1_000_000)
    colour: Colour = Colour.RED
    tags: list[Tag] = []


class ItemOut(BaseModel):
    id: int
    name: str
    price: float
    colour: Colour


class Page(BaseModel):
    items: list[ItemOut]
    page: int


class Filters(BaseModel):
    q: str | None = Field(default=None, max_length=30)
    limit: int = Field(default=10, ge=1, le=100)


class Note(msgspec.Struct):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    body: str = ""


def pagination(page: Annotated[int, Query(ge=1, le=1000)] = 1) -> int:
    """A dependency: its query parameter is part of the operations that use it."""
    return page


ITEMS: dict[int, ItemOut] = {1: ItemOut(id=1, name="pen", price=1.5, colour=Colour.RED)}

app = Covet(
    allowed_hosts=["testserver", "localhost", "127.0.0.1"],
    openapi=OpenAPIConfig(
        title="Example shop",
        version="2.0.0",
        description="Items and notes.",
        tags=[{"name": "items", "description": "Things for sale"}],
    ),
)
items = Router(prefix="/items", tags=["items"])


@items.get("/")
async def list_items(
    page: Annotated[int, Depends(pagination)],
    colour: Annotated[Colour | None, Query(description="Only this colour")] = None,
) -> Page:
    """List the items.

    Filtered by colour, a page at a time.
    """
    found = [i for i in ITEMS.values() if colour is None or i.colour == colour]
    return Page(items=found[:10], page=page)


@items.post("/", status_code=201)
async def create_item(item: ItemIn) -> ItemOut:
    """Create an item."""
    return ItemOut(id=2, name=item.name, price=item.price, colour=item.colour)


@items.get("/{item_id:int}")
async def read_item(item_id: Annotated[int, Path(ge=1, le=10**9)]) -> ItemOut:
    """Read one item."""
    found = ITEMS.get(item_id)
    if found is None:
        raise HTTPException(404, "No such item.")
    return found


@items.delete("/{item_id:int}", status_code=204)
async def delete_item(item_id: int) -> None:
    """Delete an item (a no-op here)."""


app.include_router(items)


@app.get("/search", tags=["search"])
async def search(filters: Annotated[Filters, Query()]) -> dict[str, object]:
    return {"q": filters.q, "limit": filters.limit}


@app.get("/whoami")
async def whoami(
    x_client: Annotated[str | None, Header(max_length=40)] = None,
) -> dict[str, object]:
    # No cookie parameter here: schemathesis sends negative cookie values such as "abc "
    # that every cookie parser trims (RFC 6265) into valid ones. test_document covers them.
    return {"client": x_client}


@app.post("/login-form")
async def login_form(
    email: Annotated[str, Form(max_length=100)],
    # Not a bool: a form's bool also accepts "0"/"1"/"on", which a JSON Schema cannot say,
    # so schemathesis would call them accepted negative data.
    remember: Annotated[Literal["yes", "no"], Form()] = "no",
) -> dict[str, object]:
    return {"email": email, "remember": remember}


@app.post("/upload")
async def upload(
    title: Annotated[str, Form(max_length=50)],
    file: UploadFile,
    extra: Annotated[list[UploadFile] | None, File()] = None,
) -> dict[str, object]:
    return {"title": title, "name": file.filename, "extra": len(extra or [])}


@app.post("/notes", status_code=201)
async def create_note(note: Note) -> Note:
    """Notes are msgspec Structs."""
    return note


@app.put("/pair")
async def pair(left: Annotated[Tag, Body()], right: Annotated[Tag, Body()]) -> dict[str, str]:
    """Two embedded bodies: {"left": {...}, "right": {...}}."""
    return {"left": left.label, "right": right.label}


@app.get("/things/{thing:uuid}/{slug:slug}")
async def thing(request: Request, thing: uuid.UUID, slug: str) -> dict[str, str]:
    return {"thing": str(thing), "slug": slug}


@app.get("/internal", include_in_schema=False)
async def internal(request: Request) -> dict[str, bool]:
    return {"hidden": True}
