"""Models shared by the typed-handler tests: the same shapes in pydantic and in msgspec.

They live at module level because handler annotations are evaluated in the
handler's module (``from __future__ import annotations`` makes them strings).
This module itself has no such import: pydantic and msgspec read the
annotations of the classes below at run time.
"""

import dataclasses
import enum
from typing import Annotated

import msgspec
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12

from covet.datastructures import UploadFile


class Color(enum.Enum):
    red = "red"
    blue = "blue"


# -- pydantic -----------------------------------------------------------------------------------


class Tag(BaseModel):
    name: str


class Item(BaseModel):
    """Extra fields are ignored (pydantic's default)."""

    name: str
    price: float = Field(gt=0)
    color: Color = Color.red
    tags: list[Tag] = []


class StrictItem(BaseModel):
    """Extra fields are refused: the model's own config decides."""

    model_config = ConfigDict(extra="forbid")

    name: str
    price: float


class User(BaseModel):
    name: str


class UserInDB(User):
    password_hash: str


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str | None = None
    limit: int = Field(default=10, le=100)
    tag: list[str] = []


class Signup(BaseModel):
    email: str
    age: int
    accept: bool = False
    avatar: UploadFile | None = None


# -- msgspec ------------------------------------------------------------------------------------


class STag(msgspec.Struct):
    name: str


class SItem(msgspec.Struct):
    name: str
    price: Annotated[float, msgspec.Meta(gt=0)]
    color: Color = Color.red
    tags: list[STag] = []


class SStrictItem(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    price: float


class SUser(msgspec.Struct):
    name: str


class SUserInDB(SUser):
    password_hash: str = ""


class SFilters(msgspec.Struct, forbid_unknown_fields=True):
    q: str | None = None
    limit: Annotated[int, msgspec.Meta(le=100)] = 10
    tag: list[str] = []


class SSignup(msgspec.Struct):
    email: str
    age: int
    avatar: UploadFile | None = None


# -- neither: validated by the route's library --------------------------------------------------


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Movie(TypedDict):
    title: str
    year: int
