"""Auth in resolvers: context (session, user), permission classes, CSRF on cookie POSTs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.graphql.conftest import Data, client_for, gql
from tests.graphql.example import PASSWORD, Author, Post, make_app

if TYPE_CHECKING:
    import httpx

ADD_COMMENT = 'mutation($id: ID!) { addComment(postId: $id, body: "hi") { body author { name } } }'
DELETE = "mutation($id: ID!) { deletePost(id: $id) }"


async def log_in(client: httpx.AsyncClient, email: str, **headers: str) -> None:
    response = await client.post(
        "/login", json={"email": email, "password": PASSWORD}, headers=headers
    )
    assert response.json() == {"ok": True}


async def test_context_carries_session_and_user(data: Data) -> None:
    async with client_for(make_app()) as client:
        anonymous = await gql(client, "{ me { email } }")
        await client.post("/remember", json={"colour": "blue"})
        await log_in(client, "reader@example.com")
        known = await gql(client, '{ me { email isSuperuser } sessionValue(key: "colour") }')
    assert anonymous.json() == {"data": {"me": None}}
    assert known.json() == {
        "data": {
            "me": {"email": "reader@example.com", "isSuperuser": False},
            "sessionValue": "blue",
        }
    }


async def test_login_required_refuses_anonymous_users(data: Data) -> None:
    post = data.posts[0]
    async with client_for(make_app()) as client:
        refused = await gql(client, ADD_COMMENT, {"id": str(post.id)})
        await log_in(client, "reader@example.com")
        allowed = await gql(client, ADD_COMMENT, {"id": str(post.id)})
    assert refused.status_code == 200
    body = refused.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert allowed.json() == {
        "data": {"addComment": {"body": "hi", "author": {"name": "reader@example.com"}}}
    }
    assert await Author.objects.filter(email="reader@example.com").count() == 1


async def test_requires_checks_permissions(data: Data) -> None:
    post_id = str(data.posts[0].id)
    async with client_for(make_app()) as anonymous_client:
        anonymous = await gql(anonymous_client, DELETE, {"id": post_id})
    async with client_for(make_app()) as reader_client:
        await log_in(reader_client, "reader@example.com")
        forbidden = await gql(reader_client, DELETE, {"id": post_id})
    async with client_for(make_app()) as admin_client:
        await log_in(admin_client, "admin@example.com")
        deleted = await gql(admin_client, DELETE, {"id": post_id})
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert forbidden.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert deleted.json() == {"data": {"deletePost": True}}
    assert not await Post.objects.filter(id=data.posts[0].id).exists()


async def test_logged_in_users_see_drafts_through_get_queryset(data: Data) -> None:
    query = "{ posts(first: 50) { totalCount } }"
    async with client_for(make_app()) as client:
        before = await gql(client, query)
        await log_in(client, "reader@example.com")
        after = await gql(client, query)
    assert before.json()["data"]["posts"]["totalCount"] == 11
    assert after.json()["data"]["posts"]["totalCount"] == 12


async def test_cookie_authenticated_post_needs_the_csrf_token(data: Data) -> None:
    post_id = str(data.posts[0].id)
    async with client_for(make_app(csrf=True)) as client:
        token = (await client.get("/csrf")).json()["token"]
        await log_in(client, "reader@example.com", **{"x-csrf-token": token})
        token = (await client.get("/csrf")).json()["token"]  # rotated at login
        forged = await gql(client, ADD_COMMENT, {"id": post_id})
        sent = await gql(client, ADD_COMMENT, {"id": post_id}, headers={"x-csrf-token": token})
        # GET needs no token, and can only read.
        read = await client.get("/graphql", params={"query": "{ me { email } }"})
    assert forged.status_code == 403
    assert sent.json()["data"]["addComment"]["body"] == "hi"
    assert read.json() == {"data": {"me": {"email": "reader@example.com"}}}


async def test_resolver_exceptions_are_masked_outside_debug(data: Data) -> None:
    query = 'mutation { addComment(postId: "999999", body: "x") { body } }'
    async with client_for(make_app()) as client:
        await log_in(client, "reader@example.com")
        masked = await gql(client, query)
    async with client_for(make_app(debug=True)) as client:
        await log_in(client, "reader@example.com")
        shown = await gql(client, query)
    assert masked.json()["errors"][0]["message"] == "Internal server error."
    assert "does not exist" in shown.json()["errors"][0]["message"].lower()
