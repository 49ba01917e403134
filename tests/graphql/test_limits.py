"""Limits: depth, cost, aliases, introspection, query length and time."""

from __future__ import annotations

import asyncio

import pytest
import strawberry

from covet import Covet
from covet.exceptions import ImproperlyConfigured
from covet.graphql import GraphQL, GraphQLLimits
from tests.graphql.conftest import Data, client_for, gql
from tests.graphql.example import make_app


async def codes(query: str, **options: object) -> tuple[int, list[str]]:
    async with client_for(make_app(**options)) as client:  # type: ignore[arg-type]
        response = await gql(client, query)
    errors = response.json().get("errors", [])
    return response.status_code, [e.get("extensions", {}).get("code") for e in errors]


async def test_depth_limit(data: Data) -> None:
    limits = GraphQLLimits(max_depth=3, max_cost=None)
    assert await codes("{ authors { posts { title } } }", limits=limits) == (200, [])
    deep = "{ authors { posts { author { name } } } }"
    assert await codes(deep, limits=limits) == (400, ["DEPTH_LIMIT_EXCEEDED"])


async def test_cost_limit_counts_pages_and_nested_lists(data: Data) -> None:
    # 50 posts x (1 + 20 comments x 2): about 2,100 - fine; x a nested list of 20 - too much.
    cheap = "{ posts(first: 50) { edges { node { comments { body } } } } }"
    dear = "{ posts(first: 50) { edges { node { comments { author { posts { title } } } } } } }"
    _, found = await codes(cheap)
    assert "COST_LIMIT_EXCEEDED" not in found
    assert await codes(dear) == (400, ["COST_LIMIT_EXCEEDED"])
    async with client_for(make_app()) as client:
        response = await gql(client, dear, headers={"accept": "application/json"})
    assert response.status_code == 200
    assert "exceeds the limit of 5000" in response.json()["errors"][0]["message"]


async def test_cost_reads_first_from_variables(data: Data) -> None:
    query = (
        "query($n: Int!) { posts(first: $n) { edges { node { comments { author { name } } } } } }"
    )
    async with client_for(make_app(limits=GraphQLLimits(max_cost=500))) as client:
        small = await gql(client, query, {"n": 1})
        large = await gql(client, query, {"n": 50})
    assert "COST_LIMIT_EXCEEDED" not in str(small.json())
    assert large.json()["errors"][0]["extensions"]["code"] == "COST_LIMIT_EXCEEDED"


async def test_alias_limit() -> None:
    aliases = " ".join(f"a{i}: __typename" for i in range(11))
    assert await codes("{ " + aliases + " }") == (400, ["ALIAS_LIMIT_EXCEEDED"])


async def test_fragment_cycles_do_not_recurse() -> None:
    query = "{ authors { ...A } } fragment A on Author { posts { author { ...A } } }"
    status, found = await codes(query)
    assert status == 400  # graphql-core's NoFragmentCycles rule refuses it first
    assert found


async def test_introspection_is_off_in_production_and_on_in_debug() -> None:
    query = "{ __schema { queryType { name } } }"
    assert await codes(query) == (400, ["INTROSPECTION_DISABLED"])
    assert await codes(query, debug=True) == (200, [])
    assert await codes(query, introspection=True) == (200, [])
    assert await codes("{ __typename }") == (200, [])


async def test_query_length_limit() -> None:
    query = "{ __typename }" + " " * 200
    assert (await codes(query, limits=GraphQLLimits(max_query_length=100)))[0] == 400


async def test_slow_operation_is_cancelled_with_an_error() -> None:
    @strawberry.type
    class Query:
        @strawberry.field
        async def slow(self) -> int:
            await asyncio.sleep(5)
            return 1

    app = Covet(allowed_hosts=["testserver"])
    GraphQL(strawberry.Schema(query=Query), limits=GraphQLLimits(timeout=0.05)).add_to(app)
    async with client_for(app) as client:
        response = await gql(client, "{ slow }")
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert response.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"


def test_limits_are_validated() -> None:
    with pytest.raises(ImproperlyConfigured, match="max_depth"):
        GraphQLLimits(max_depth=0)
