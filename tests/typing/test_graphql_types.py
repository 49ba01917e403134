"""Static type pins for covet.graphql's public API (checked by mypy; nothing runs under pytest)."""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_type

import strawberry
from strawberry.permission import BasePermission

from covet.db import Model
from covet.graphql import (
    GraphQL,
    GraphQLContext,
    GraphQLLimits,
    Loaders,
    LoginRequired,
    model_type,
    requires,
)
from covet.graphql.models import info_of
from tests.graphql.example import Post

if TYPE_CHECKING:
    from covet.requests import Request


class _PostType:
    pass


_Typed = model_type(Post)(_PostType)


@strawberry.type
class _Query:
    hello: str = "hi"


def _pins(request: Request) -> None:
    assert_type(_Typed, type[_PostType])
    assert_type(info_of(_Typed).model, type[Model])
    endpoint = GraphQL(strawberry.Schema(query=_Query), limits=GraphQLLimits(max_depth=5))
    assert_type(endpoint, GraphQL)
    assert_type(endpoint.limits, GraphQLLimits)
    assert_type(endpoint.limits.max_depth, int | None)
    context = GraphQLContext(request=request)
    assert_type(context.loaders, Loaders)
    assert_type(requires("posts.edit"), type[BasePermission])
    assert_type(LoginRequired(), LoginRequired)
