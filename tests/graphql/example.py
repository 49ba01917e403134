"""The example API of the GraphQL tests: authors, posts and comments, with auth.

Models get table names unique to the test run. The schema exercises every
part of covet.graphql: model types (exclude, rename, enums, choices),
connections, lists, single objects, relations through batched loaders,
permissions, mutations and a subscription fed by covet.channels.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import AsyncGenerator  # noqa: TC003 - strawberry reads the annotation at run time
from typing import Any

import strawberry

from covet import Covet, Request
from covet.auth import AbstractUser, AuthenticationMiddleware, authenticate, login
from covet.channels import Channels, Message
from covet.db import CASCADE, Model, fields
from covet.graphql import (
    GraphQL,
    GraphQLLimits,
    LoginRequired,
    connection_field,
    list_field,
    model_type,
    object_field,
    requires,
)
from covet.middleware import CSRFMiddleware, SessionMiddleware
from covet.middleware.csrf import get_csrf_token
from covet.sessions import MemoryStore

RUN = secrets.token_hex(3)
SECRET = "graphql-test-secret-0123456789abcdef"
PASSWORD = "a long and fine password"


class Status(enum.Enum):
    DRAFT = "draft"
    PUBLISHED = "published"


class User(AbstractUser):
    class Meta:
        table = f"gql_users_{RUN}"


class Author(Model):
    """Someone who writes posts and comments."""

    name = fields.CharField(max_length=100)
    email = fields.CharField(max_length=255, unique=True)
    bio = fields.TextField(default="")

    class Meta:
        table = f"gql_authors_{RUN}"


class Tag(Model):
    """A label on posts."""

    name = fields.CharField(max_length=50, unique=True)

    class Meta:
        table = f"gql_tags_{RUN}"


class Post(Model):
    """A blog post."""

    title = fields.CharField(max_length=200)
    body = fields.TextField(default="")
    status = fields.EnumField(Status, default=Status.PUBLISHED)
    views = fields.IntegerField(default=0)
    published_at = fields.DateTimeField(null=True)
    author = fields.ForeignKey(Author, related_name="posts", on_delete=CASCADE)
    tags = fields.ManyToManyField(Tag, related_name="posts")

    class Meta:
        table = f"gql_posts_{RUN}"


class Comment(Model):
    """A comment on a post."""

    post = fields.ForeignKey(Post, related_name="comments", on_delete=CASCADE)
    author = fields.ForeignKey(Author, related_name="comments", on_delete=CASCADE)
    body = fields.CharField(max_length=500)
    kind = fields.CharField(max_length=20, choices=("note", "question"), default="note")

    class Meta:
        table = f"gql_comments_{RUN}"


MODELS = [User, Author, Tag, Post, Comment]


@model_type(Author, exclude=["email"])
class AuthorType:
    pass


@model_type(Post, rename={"body": "content"})
class PostType:
    @strawberry.field(description="The first 20 characters of the body.")  # type: ignore[untyped-decorator]
    def excerpt(self) -> str:
        return str(self.body)[:20]  # type: ignore[attr-defined]


@model_type(Comment)
class CommentType:
    pass


@model_type(Tag)
class TagType:
    pass


def published(info: strawberry.Info) -> Any:
    """Anonymous readers see published posts only; logged-in users see drafts too."""
    if info.context.user.is_authenticated:
        return Post.objects.all()
    return Post.objects.filter(status=Status.PUBLISHED)


@strawberry.type
class Me:
    email: str
    is_superuser: bool


@strawberry.type
class Query:
    posts = connection_field(PostType, get_queryset=published, max_page_size=50)
    post = object_field(PostType, get_queryset=published)
    authors = list_field(AuthorType, max_items=50)
    tags = list_field(TagType)

    @strawberry.field
    def me(self, info: strawberry.Info) -> Me | None:
        user = info.context.user
        if not user.is_authenticated:
            return None
        return Me(email=user.email, is_superuser=user.is_superuser)

    @strawberry.field
    def connection_param(self, info: strawberry.Info, key: str) -> str | None:
        value = info.context.state.get("connection_params", {}).get(key)
        return None if value is None else str(value)

    @strawberry.field
    def session_value(self, info: strawberry.Info, key: str) -> str | None:
        value = info.context.session.get(key)
        return None if value is None else str(value)


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[LoginRequired])  # type: ignore[untyped-decorator]
    async def add_comment(
        self, info: strawberry.Info, post_id: strawberry.ID, body: str
    ) -> CommentType:
        user = info.context.user
        post = await Post.objects.get(id=int(post_id))
        author = await Author.objects.filter(email=user.email).first()
        if author is None:
            author = await Author.objects.create(name=user.email, email=user.email)
        comment = await Comment.objects.create(post=post, author=author, body=body)
        channels = info.context.state.get("channels")
        if channels is not None:
            await channels.publish(f"comments:{post.id}", {"id": comment.id})
        return comment  # type: ignore[return-value]

    @strawberry.mutation(permission_classes=[requires("posts.delete")])  # type: ignore[untyped-decorator]
    async def delete_post(self, info: strawberry.Info, id: strawberry.ID) -> bool:
        deleted = await Post.objects.filter(id=int(id)).delete()
        return bool(deleted)


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def comment_added(
        self, info: strawberry.Info, post_id: strawberry.ID
    ) -> AsyncGenerator[CommentType, None]:
        channels: Channels = info.context.state["channels"]
        async with channels.subscribe([f"comments:{int(post_id)}"]) as subscription:
            async for item in subscription:
                if isinstance(item, Message):
                    yield await Comment.objects.get(id=item.data["id"])  # type: ignore[misc]


schema = strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription)


def make_app(
    *,
    debug: bool = False,
    csrf: bool = False,
    channels: Channels | None = None,
    **options: Any,
) -> Covet:
    """Return an app serving the example schema at /graphql (exact path), with login routes."""
    app = Covet(debug=debug, allowed_hosts=["testserver"])
    app.add_middleware(SessionMiddleware, secret_key=SECRET, store=MemoryStore())
    if csrf:
        app.add_middleware(CSRFMiddleware)
    app.add_middleware(AuthenticationMiddleware, user_model=User, secret_key=SECRET)

    def context(connection: Any) -> Any:
        from covet.graphql import GraphQLContext

        return GraphQLContext(request=connection, state={"channels": channels})

    options.setdefault("limits", GraphQLLimits(max_depth=8, max_cost=5000, max_aliases=10))
    GraphQL(schema, context_getter=context, **options).add_to(app, "/graphql")

    @app.post("/login")
    async def do_login(request: Request) -> Any:
        data = await request.json()
        user = await authenticate(request, email=data["email"], password=data["password"])
        if user is None:
            return {"ok": False}
        await login(request, user)
        return {"ok": True}

    @app.post("/remember")
    async def remember(request: Request) -> Any:
        request.session.update(await request.json())
        return {"ok": True}

    @app.get("/csrf")
    async def csrf_token(request: Request) -> Any:
        return {"token": get_csrf_token(request)}

    return app
