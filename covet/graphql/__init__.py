"""GraphQL for covet apps, on strawberry-graphql.

::

    import strawberry
    from covet.graphql import GraphQL, connection_field, model_type

    @model_type(Post)
    class PostType:
        pass

    @strawberry.type
    class Query:
        posts = connection_field(PostType)

    app.mount("/graphql", GraphQL(strawberry.Schema(query=Query)))

strawberry builds and executes the schema; covet adds the HTTP transport
(the GraphQL-over-HTTP specification), the resolver context (request,
session, user, batched loaders), types from covet.db models with filters and
Relay connections, auth permissions, request limits, offline GraphiQL, and
subscriptions over graphql-transport-ws fed by covet.channels. See
``docs/graphql.md``.

Needs the ``graphql`` extra: ``pip install 'covet-web[graphql]'``.
"""

from __future__ import annotations

try:
    import strawberry  # noqa: F401 - checked here to name the extra
except ImportError:  # pragma: no cover - exercised without the extra installed
    from covet.exceptions import MissingDependencyError

    raise MissingDependencyError("strawberry-graphql", extra="graphql") from None

from covet.graphql.connections import (
    Connection,
    Edge,
    PageInfo,
    connection_field,
    list_field,
    object_field,
)
from covet.graphql.context import GraphQLContext
from covet.graphql.filters import (
    BooleanFilter,
    DateTimeFilter,
    FloatFilter,
    IDFilter,
    IntFilter,
    StringFilter,
)
from covet.graphql.http import GRAPHQL_RESPONSE_JSON, GraphQL
from covet.graphql.limits import GraphQLLimits
from covet.graphql.loaders import Loaders
from covet.graphql.models import model_type
from covet.graphql.permissions import LoginRequired, requires

__all__ = (
    "GRAPHQL_RESPONSE_JSON",
    "BooleanFilter",
    "Connection",
    "DateTimeFilter",
    "Edge",
    "FloatFilter",
    "GraphQL",
    "GraphQLContext",
    "GraphQLLimits",
    "IDFilter",
    "IntFilter",
    "Loaders",
    "LoginRequired",
    "PageInfo",
    "StringFilter",
    "connection_field",
    "list_field",
    "model_type",
    "object_field",
    "requires",
)
