"""The GraphQL-over-HTTP specification: media types, status codes, GET and POST rules."""

from __future__ import annotations

import hashlib
import json

import pytest

from covet.graphql import GraphQLLimits
from tests.graphql.conftest import client_for, gql
from tests.graphql.example import make_app

GRAPHQL_JSON = "application/graphql-response+json; charset=utf-8"
JSON = "application/json; charset=utf-8"


async def test_post_without_accept_answers_graphql_response_json() -> None:
    async with client_for(make_app()) as client:
        response = await gql(client, "{ __typename }")
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPHQL_JSON
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", JSON),
        ("application/graphql-response+json", GRAPHQL_JSON),
        ("application/json;q=0.5, application/graphql-response+json", GRAPHQL_JSON),
        ("application/graphql-response+json;q=0.1, application/json", JSON),
        ("*/*", GRAPHQL_JSON),
    ],
)
async def test_accept_picks_the_preferred_media_type(accept: str, expected: str) -> None:
    async with client_for(make_app()) as client:
        response = await gql(client, "{ __typename }", headers={"accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == expected


async def test_unacceptable_accept_is_406() -> None:
    async with client_for(make_app()) as client:
        response = await gql(client, "{ __typename }", headers={"accept": "text/xml"})
    assert response.status_code == 406
    assert "Accept" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
async def test_unsupported_content_type_is_415(content_type: str) -> None:
    async with client_for(make_app()) as client:
        response = await client.post(
            "/graphql",
            content=b'{"query": "{ __typename }"}',
            headers={"content-type": content_type},
        )
    assert response.status_code == 415
    assert response.headers["accept-post"] == "application/json"


async def test_post_without_content_type_is_415() -> None:
    async with client_for(make_app()) as client:
        response = await client.post("/graphql", content=b'{"query": "{ __typename }"}')
    assert response.status_code == 415


@pytest.mark.parametrize(
    "body",
    [
        b"NONSENSE",
        b'{"query":',
        b'{"qeury": "{ __typename }"}',
        b'{"query": "{ __typename }", "variables": [7]}',
        b'{"query": "{ __typename }", "operationName": 3}',
        b'{"query": "{ __typename }", "extensions": "x"}',
        b'"just a string"',
        b'[{"query": "{ __typename }"}]',
    ],
)
@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
async def test_malformed_requests_are_400_with_either_media_type(body: bytes, accept: str) -> None:
    async with client_for(make_app()) as client:
        response = await client.post(
            "/graphql", content=body, headers={"content-type": "application/json", "accept": accept}
        )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"]
    assert "data" not in response.json()


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{", None),  # parse failure
        ("{ nope }", None),  # validation failure
        ("query A { __typename } query B { __typename }", None),  # operation undetermined
        ("query Q($id: ID!) { post(id: $id) { title } }", {"id": None}),  # coercion failure
    ],
)
async def test_document_errors_are_400_or_200_by_media_type(
    query: str, variables: dict[str, object] | None
) -> None:
    async with client_for(make_app()) as client:
        strict = await gql(client, query, variables)
        legacy = await gql(client, query, variables, headers={"accept": "application/json"})
    assert strict.status_code == 400
    assert strict.headers["content-type"] == GRAPHQL_JSON
    assert legacy.status_code == 200
    assert legacy.headers["content-type"] == JSON
    for response in (strict, legacy):
        assert "data" not in response.json()
        assert response.json()["errors"]


async def test_get_runs_queries_with_json_variables() -> None:
    query = "query Q($key: String!) { sessionValue(key: $key) }"
    async with client_for(make_app()) as client:
        response = await client.get(
            "/graphql",
            params={"query": query, "variables": json.dumps({"key": "k"}), "operationName": "Q"},
        )
    assert response.status_code == 200
    assert response.json() == {"data": {"sessionValue": None}}


async def test_mutation_over_get_is_405_and_never_runs() -> None:
    async with client_for(make_app()) as client:
        response = await client.get(
            "/graphql", params={"query": 'mutation { deletePost(id: "1") }'}
        )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_get_with_bad_variables_json_is_400() -> None:
    async with client_for(make_app()) as client:
        response = await client.get(
            "/graphql", params={"query": "{ __typename }", "variables": "{nope"}
        )
    assert response.status_code == 400


async def test_head_answers_like_get_without_a_body() -> None:
    async with client_for(make_app()) as client:
        response = await client.head("/graphql", params={"query": "{ __typename }"})
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPHQL_JSON
    assert response.content == b""


async def test_other_methods_are_405() -> None:
    async with client_for(make_app()) as client:
        response = await client.put("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405


async def test_subscription_over_http_is_refused() -> None:
    async with client_for(make_app()) as client:
        response = await gql(client, 'subscription { commentAdded(postId: "1") { body } }')
    assert response.status_code == 400
    assert "websocket" in response.json()["errors"][0]["message"]


async def test_batches_when_enabled_and_bounded() -> None:
    app = make_app(batch=True, limits=GraphQLLimits(max_batch_size=2))
    async with client_for(app) as client:
        ok = await client.post("/graphql", json=[{"query": "{ __typename }"}, {"query": "{"}])
        too_many = await client.post("/graphql", json=[{"query": "{ __typename }"}] * 3)
    assert ok.status_code == 200
    first, second = ok.json()
    assert first == {"data": {"__typename": "Query"}}
    assert "Syntax Error" in second["errors"][0]["message"]
    assert too_many.status_code == 400


async def test_persisted_queries_by_hash_and_allow_list() -> None:
    query = "{ __typename }"
    digest = hashlib.sha256(query.encode()).hexdigest()
    app = make_app(persisted_queries={digest: query}, persisted_queries_only=True)
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    async with client_for(app) as client:
        by_hash = await client.post("/graphql", json={"extensions": persisted})
        unknown = await client.post(
            "/graphql", json={"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0"}}}
        )
        free_text = await gql(client, "{ __typename }")
    assert by_hash.json() == {"data": {"__typename": "Query"}}
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert free_text.status_code == 400
    assert free_text.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"


def test_persisted_query_keys_must_be_their_hash() -> None:
    from covet.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="SHA-256"):
        make_app(persisted_queries={"abc": "{ __typename }"})


async def test_mounted_app_serves_below_the_prefix() -> None:
    from covet import Covet
    from covet.graphql import GraphQL
    from tests.graphql.example import schema

    app = Covet(allowed_hosts=["testserver"])
    app.mount("/api", GraphQL(schema))
    async with client_for(app) as client:
        response = await client.post("/api/", json={"query": "{ __typename }"})
        missing = await client.post("/api/elsewhere", json={"query": "{ __typename }"})
    assert response.json() == {"data": {"__typename": "Query"}}
    assert missing.status_code == 404
