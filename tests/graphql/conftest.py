"""Fixtures for the GraphQL tests: the example API's tables on every backend, and clients.

Like ``tests/auth``, the ``database`` fixture is package-scoped and makes a
throw-away schema (PostgreSQL) or database (MySQL) per run; SQLite always
runs. Apps are called through httpx's ASGITransport in the test's own event
loop, where the database pool lives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
import pytest_asyncio

from covet.auth import PBKDF2PasswordHasher, set_hashers
from tests.db.conftest import BACKENDS, models_database
from tests.graphql.example import MODELS, PASSWORD, Author, Comment, Post, Status, Tag, User

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from covet.db.database import Database


@pytest.fixture(autouse=True)
def cheap_hashers() -> Iterator[None]:
    """Hash passwords with cheap parameters so that logging in stays fast."""
    set_hashers([PBKDF2PasswordHasher(iterations=1000)])
    yield
    set_hashers(None)


@pytest_asyncio.fixture(scope="package", loop_scope="session", params=BACKENDS)
async def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """Yield a connected default Database with the example tables, on each backend."""
    async with models_database(request.param, "covet_g", tmp_path_factory, MODELS) as db:
        yield db


class Data:
    """The rows the tests read: 2 authors, 12 posts (one draft), 2 comments per post."""

    ann: Author
    bob: Author
    posts: list[Post]


@pytest_asyncio.fixture(loop_scope="session")
async def data(database: Database) -> Data:
    """Empty the example tables and fill them with :class:`Data`."""
    through = Post._meta.get_field("tags").through_model  # type: ignore[attr-defined]
    for model in (through, Comment, Post, Author, User, Tag):
        await model.objects.all().delete()
    found = Data()
    found.ann = await Author.objects.create(name="Ann", email="ann@example.com")
    found.bob = await Author.objects.create(name="Bob", email="bob@example.com")
    found.posts = []
    for i in range(12):
        author = found.ann if i % 2 == 0 else found.bob
        status = Status.DRAFT if i == 11 else Status.PUBLISHED
        post = await Post.objects.create(
            title=f"Post {i:02d}", body=f"Body of post {i}", author=author, views=i, status=status
        )
        found.posts.append(post)
        for j in range(2):
            await Comment.objects.create(
                post=post, author=found.bob if j else found.ann, body=f"c{i}-{j}"
            )
    orm = await Tag.objects.create(name="orm")
    web = await Tag.objects.create(name="web")
    for post in found.posts[0:4]:
        await post.tags.add(orm)
    for post in found.posts[2:6]:
        await post.tags.add(web)
    await User.create_user(email="reader@example.com", password=PASSWORD)
    await User.create_user(email="admin@example.com", password=PASSWORD, is_superuser=True)
    return found


def client_for(app: Any) -> httpx.AsyncClient:
    """Return an httpx client calling ``app`` in the test's event loop."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None, **kw: Any
) -> httpx.Response:
    """POST a GraphQL request."""
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return await client.post("/graphql", json=body, **kw)
