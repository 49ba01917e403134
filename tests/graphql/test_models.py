"""Model types, filters, ordering and Relay connections, and the N+1 guarantee, on every backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import strawberry

from covet.db.testing import assert_num_queries
from covet.exceptions import ImproperlyConfigured
from covet.graphql import model_type
from tests.graphql.conftest import Data, client_for, gql
from tests.graphql.example import Author, make_app, schema

if TYPE_CHECKING:
    import httpx

NESTED = """
query Page($first: Int!) {
  posts(first: $first, orderBy: [VIEWS_ASC]) {
    edges { node { title author { name } comments { body author { name } } } }
  }
}
"""


async def run(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> Any:
    response = await gql(client, query, variables)
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def test_schema_follows_the_models() -> None:
    sdl = schema.as_str()
    author = sdl.split("type Author", 1)[1].split("}", 1)[0]
    assert "email" not in author  # excluded
    assert "name: String!" in author
    assert "filter: PostFilter = null" in author and "orderBy: [PostOrder!] = null" in author
    assert "): [Post!]!" in author
    post = sdl.split("type Post ", 1)[1].split("}", 1)[0]
    assert "content: String!" in post and "body:" not in post  # renamed
    assert "status: Status!" in post  # EnumField -> enum
    assert "publishedAt: DateTime" in post and "publishedAt: DateTime!" not in post  # null=True
    assert "author: Author!" in post
    assert "kind: CommentKindChoice!" in sdl  # choices -> enum
    assert "enum PostOrder" in sdl and "VIEWS_DESC" in sdl


def test_unknown_field_names_are_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="unknown field name"):
        model_type(Author, exclude=["nope"])


async def test_nested_page_costs_one_query_per_level_whatever_its_size(data: Data) -> None:
    async with client_for(make_app()) as client:
        # posts, post authors, comments, comment authors: four levels, four queries.
        async with assert_num_queries(4):
            small = await run(client, NESTED, {"first": 2})
        async with assert_num_queries(4):
            large = await run(client, NESTED, {"first": 11})
    assert len(small["posts"]["edges"]) == 2
    assert len(large["posts"]["edges"]) == 11
    first = large["posts"]["edges"][0]["node"]
    assert first == {
        "title": "Post 00",
        "author": {"name": "Ann"},
        "comments": [
            {"body": "c0-0", "author": {"name": "Ann"}},
            {"body": "c0-1", "author": {"name": "Bob"}},
        ],
    }


async def test_reverse_relations_filter_and_order_in_the_batched_query(data: Data) -> None:
    query = """{ authors(orderBy: [NAME_ASC]) {
        name posts(filter: {views: {gte: 6}}, orderBy: [VIEWS_DESC]) { views } } }"""
    async with client_for(make_app()) as client, assert_num_queries(2):
        result = await run(client, query)
    assert result["authors"] == [
        {"name": "Ann", "posts": [{"views": 10}, {"views": 8}, {"views": 6}]},
        {"name": "Bob", "posts": [{"views": 11}, {"views": 9}, {"views": 7}]},
    ]


async def test_connection_pages_forward_and_back_with_cursors(data: Data) -> None:
    forward = """query($after: String) { posts(first: 4, after: $after, orderBy: [VIEWS_DESC]) {
        edges { cursor node { views } }
        pageInfo { hasNextPage hasPreviousPage endCursor startCursor } } }"""
    backward = """query($before: String) { posts(last: 4, before: $before, orderBy: [VIEWS_DESC]) {
        edges { node { views } } pageInfo { hasNextPage hasPreviousPage startCursor } } }"""
    async with client_for(make_app()) as client:
        seen: list[int] = []
        after = None
        while True:
            page = (await run(client, forward, {"after": after}))["posts"]
            seen += [edge["node"]["views"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        # Anonymous readers do not see the draft (views=11).
        assert seen == list(range(10, -1, -1))
        last = (await run(client, backward, {"before": None}))["posts"]
        assert [e["node"]["views"] for e in last["edges"]] == [3, 2, 1, 0]
        assert last["pageInfo"]["hasPreviousPage"] is True
        before = (await run(client, backward, {"before": last["pageInfo"]["startCursor"]}))["posts"]
        assert [e["node"]["views"] for e in before["edges"]] == [7, 6, 5, 4]


async def test_connection_page_is_one_query_and_total_count_one_more(data: Data) -> None:
    async with client_for(make_app()) as client:
        async with assert_num_queries(1):
            await run(client, "{ posts(first: 3) { edges { node { title } } } }")
        async with assert_num_queries(2):
            result = await run(client, "{ posts(first: 3) { totalCount edges { node { id } } } }")
    assert result["posts"]["totalCount"] == 11


async def test_filters_compile_to_orm_lookups(data: Data) -> None:
    query = """query($f: PostFilter) { posts(first: 50, filter: $f, orderBy: [TITLE_ASC]) {
        edges { node { title } } } }"""
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"title": {"iContains": "POST 0"}, "views": {"lt": 3}}, ["Post 00", "Post 01", "Post 02"]),
        ({"title": {"in": ["Post 03", "Post 05"]}}, ["Post 03", "Post 05"]),
        ({"author": {"eq": "__ANN__"}, "views": {"gt": 7}}, ["Post 08", "Post 10"]),
        ({"publishedAt": {"isNull": False}}, []),
        ({"title": {"startsWith": "Post 1"}}, ["Post 10"]),
        ({"status": {"eq": "PUBLISHED"}, "views": {"gte": 9}}, ["Post 09", "Post 10"]),
        ({"status": {"in": ["DRAFT"]}}, []),  # drafts are hidden from anonymous readers
    ]
    async with client_for(make_app()) as client:
        for condition, titles in cases:
            if condition.get("author"):
                condition["author"] = {"eq": str(data.ann.id)}
            result = await run(client, query, {"f": condition})
            assert [e["node"]["title"] for e in result["posts"]["edges"]] == titles, condition


async def test_choices_filter_on_reverse_lists(data: Data) -> None:
    query = """{ authors(orderBy: [NAME_ASC]) { name
        comments(filter: {kind: {eq: QUESTION}}) { body } } }"""
    async with client_for(make_app()) as client:
        result = await run(client, query)
    assert result["authors"] == [{"name": "Ann", "comments": []}, {"name": "Bob", "comments": []}]


async def test_bad_arguments_are_field_errors(data: Data) -> None:
    async with client_for(make_app()) as client:
        too_many = await gql(client, "{ posts(first: 51) { edges { cursor } } }")
        bad_cursor = await gql(client, '{ posts(first: 1, after: "nope") { edges { cursor } } }')
        both = await gql(client, "{ posts(first: 1, last: 1) { edges { cursor } } }")
    for response, fragment in (
        (too_many, "over the limit of 50"),
        (bad_cursor, "Invalid cursor"),
        (both, "not both"),
    ):
        assert response.status_code == 200
        assert fragment in response.json()["errors"][0]["message"]
        assert response.json()["data"] is None


async def test_object_field_fetches_by_id_within_the_queryset(data: Data) -> None:
    query = "query($id: ID!) { post(id: $id) { title author { name } } }"
    draft = data.posts[11]
    async with client_for(make_app()) as client:
        found = await run(client, query, {"id": str(data.posts[1].id)})
        hidden = await run(client, query, {"id": str(draft.id)})
    assert found == {"post": {"title": "Post 01", "author": {"name": "Bob"}}}
    assert hidden == {"post": None}


async def test_custom_fields_sit_beside_generated_ones(data: Data) -> None:
    async with client_for(make_app()) as client:
        result = await run(client, "{ posts(first: 1) { edges { node { excerpt status } } } }")
    assert result["posts"]["edges"][0]["node"] == {
        "excerpt": "Body of post 0",
        "status": "PUBLISHED",
    }


def test_relation_to_a_model_without_type_fails_clearly() -> None:
    from covet.db import CASCADE, Model, fields

    class Orphan(Model):
        name = fields.CharField(max_length=10)

        class Meta:
            table = "gql_orphan_never_created"

    class Child(Model):
        orphan = fields.ForeignKey(Orphan, related_name="children", on_delete=CASCADE)

        class Meta:
            table = "gql_child_never_created"

    @model_type(Child)
    class ChildType:
        pass

    @strawberry.type
    class Query:
        child = strawberry.field(graphql_type=ChildType | None, default=None)

    # graphql-core wraps the error in a TypeError naming the type; the message is ours.
    with pytest.raises((ImproperlyConfigured, TypeError), match="has no GraphQL type"):
        strawberry.Schema(query=Query)


async def test_many_to_many_both_ways_is_one_query_per_level(data: Data) -> None:
    forward = "{ posts(first: 6, orderBy: [VIEWS_ASC]) { edges { node { views tags { name } } } } }"
    backward = "{ tags(orderBy: [NAME_ASC]) { name posts { views } } }"
    async with client_for(make_app()) as client:
        async with assert_num_queries(2):
            posts = await run(client, forward)
        async with assert_num_queries(2):
            tags = await run(client, backward)
    assert [[t["name"] for t in e["node"]["tags"]] for e in posts["posts"]["edges"]] == [
        ["orm"],
        ["orm"],
        ["orm", "web"],
        ["orm", "web"],
        ["web"],
        ["web"],
    ]
    assert tags["tags"] == [
        {"name": "orm", "posts": [{"views": 0}, {"views": 1}, {"views": 2}, {"views": 3}]},
        {"name": "web", "posts": [{"views": 2}, {"views": 3}, {"views": 4}, {"views": 5}]},
    ]
