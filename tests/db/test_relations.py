"""Relations on every backend: FK/O2O/M2M, select/prefetch, on_delete, no hidden I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from covet.db import IntegrityError, ProtectedError, RelationNotLoaded
from covet.db.testing import assert_num_queries
from tests.db.models import (
    Author,
    Category,
    Comment,
    Group,
    Membership,
    Node,
    Post,
    Product,
    Profile,
    Shelf,
    Tag,
)

if TYPE_CHECKING:
    from covet.db.database import Database


@pytest.fixture
async def blog(orm: Database) -> dict[str, object]:
    ann = await Author.objects.create(name="Ann", email="ann@example.com")
    bob = await Author.objects.create(name="Bob", email="bob@example.com")
    await Profile.objects.create(author=ann, bio="hi")
    p1 = await Post.objects.create(title="p1", author=ann, editor=bob)
    p2 = await Post.objects.create(title="p2", author=ann)
    p3 = await Post.objects.create(title="p3", author=bob)
    red, blue = await Tag.objects.create(name="red"), await Tag.objects.create(name="blue")
    await p1.tags.add(red, blue)
    await p2.tags.add(red)
    return {"ann": ann, "bob": bob, "p1": p1, "p2": p2, "p3": p3, "red": red, "blue": blue}


async def test_unloaded_relation_raises_with_advice(blog):
    post = await Post.objects.get(title="p1")
    with pytest.raises(RelationNotLoaded) as info:
        _ = post.author
    message = str(info.value)
    assert "select_related('author')" in message
    assert "await obj.fetch_related('author')" in message
    assert post.author_id == blog["ann"].pk
    no_editor = await Post.objects.get(title="p2")
    assert no_editor.editor is None  # a NULL key needs no query


async def test_select_related_uses_one_query(blog):
    async with assert_num_queries(1):
        posts = await Post.objects.select_related("author", "editor").order_by("title")
    assert [p.author.name for p in posts] == ["Ann", "Ann", "Bob"]
    assert [p.editor.name if p.editor else None for p in posts] == ["Bob", None, None]


async def test_nested_select_related(blog):
    ann = blog["ann"]
    comment = await Comment.objects.create(post=blog["p1"], text="nice")
    async with assert_num_queries(1):
        got = await Comment.objects.select_related("post__author").get(pk=comment.pk)
    assert got.post.title == "p1"
    assert got.post.author == ann


async def test_fetch_related(blog):
    post = await Post.objects.get(title="p1")
    async with assert_num_queries(1):
        await post.fetch_related("author")
    assert post.author.name == "Ann"
    ann = await Author.objects.get(name="Ann")
    await ann.fetch_related("profile", "posts")
    assert ann.profile.bio == "hi"
    assert sorted(p.title for p in await ann.posts.all()) == ["p1", "p2"]


async def test_reverse_one_to_one(blog):
    bob = await Author.objects.get(name="Bob")
    with pytest.raises(RelationNotLoaded):
        _ = bob.profile
    await bob.fetch_related("profile")
    assert bob.profile is None


async def test_prefetch_related_query_count(blog):
    async with assert_num_queries(3):
        authors = await Author.objects.order_by("name").prefetch_related("posts", "posts__tags")
    async with assert_num_queries(0):
        ann_posts = await authors[0].posts.all()
        tag_names: list[str] = []
        for post in ann_posts:
            tag_names.extend(t.name for t in await post.tags.all())
    tag_names.sort()
    assert sorted(p.title for p in ann_posts) == ["p1", "p2"]
    assert tag_names == ["blue", "red", "red"]
    async with assert_num_queries(2):
        posts = await Post.objects.prefetch_related("author").order_by("title")
    assert [p.author.name for p in posts] == ["Ann", "Ann", "Bob"]


async def test_reverse_manager(blog):
    ann = blog["ann"]
    assert sorted(p.title for p in await ann.posts.all()) == ["p1", "p2"]
    assert [p.title for p in await ann.posts.filter(title="p2")] == ["p2"]
    assert await ann.posts.count() == 2
    new = await ann.posts.create(title="p4")
    assert new.author_id == ann.pk
    await blog["bob"].posts.add(new)
    assert await ann.posts.count() == 2
    assert [p.title for p in await blog["bob"].edited_posts.all()] == ["p1"]


async def test_many_to_many_managers(blog):
    p1, p3, red, blue = blog["p1"], blog["p3"], blog["red"], blog["blue"]
    assert sorted(t.name for t in await p1.tags.all()) == ["blue", "red"]
    assert sorted(p.title for p in await red.posts.all()) == ["p1", "p2"]
    await p1.tags.add(red)  # already linked: no duplicate, no error
    assert await p1.tags.count() == 2
    await p1.tags.remove(blue)
    assert [t.name for t in await p1.tags.all()] == ["red"]
    await p3.tags.set([blue, red])
    assert sorted(t.name for t in await p3.tags.all()) == ["blue", "red"]
    await p3.tags.set([blue.pk])
    assert [t.name for t in await p3.tags.all()] == ["blue"]
    await p3.tags.clear()
    assert await p3.tags.count() == 0
    green = await p3.tags.create(name="green")
    assert [p.title for p in await green.posts.all()] == ["p3"]
    await blue.posts.add(p3)
    assert sorted(t.name for t in await p3.tags.all()) == ["blue", "green"]


async def test_filters_across_many_to_many(blog):
    red = blog["red"]
    assert sorted(p.title for p in await Post.objects.filter(tags=red)) == ["p1", "p2"]
    assert sorted(p.title for p in await Post.objects.filter(tags__name="blue")) == ["p1"]
    assert sorted(p.title for p in await Post.objects.exclude(tags__name="red")) == ["p3"]
    assert [p.title for p in await Post.objects.filter(tags__isnull=True)] == ["p3"]
    names = sorted(a.name for a in await Author.objects.filter(posts__tags__name="blue"))
    assert names == ["Ann"]
    assert sorted(t.name for t in await Tag.objects.filter(posts__author__name="Ann")) == [
        "blue",
        "red",
    ]


async def test_explicit_through_model(orm):
    ann = await Author.objects.create(name="Ann", email="a@example.com")
    admins = await Group.objects.create(name="admins")
    await admins.members.add(ann, through_defaults={"role": "owner"})
    membership = await Membership.objects.get(group=admins)
    assert membership.role == "owner"
    assert [g.name for g in await ann.groups.all()] == ["admins"]
    assert [a.name for a in await Author.objects.filter(groups__name="admins")] == ["Ann"]


async def test_on_delete_cascade_and_set_null(blog):
    bob = blog["bob"]
    await bob.delete()
    assert sorted(p.title for p in await Post.objects.all()) == ["p1", "p2"]
    p1 = await Post.objects.get(title="p1")
    assert p1.editor_id is None
    await blog["ann"].delete()
    assert await Post.objects.count() == 0
    assert await Profile.objects.count() == 0


async def test_on_delete_protect_and_restrict(orm):
    books = await Category.objects.create(name="books")
    await Product.objects.create(category=books, name="novel")
    with pytest.raises(ProtectedError, match="PROTECT"):
        await books.delete()
    with pytest.raises(ProtectedError):
        await Category.objects.filter(name="books").delete()
    assert await Category.objects.count() == 1
    await Product.objects.all().delete()
    await Shelf.objects.create(category=books)
    with pytest.raises(IntegrityError):
        await books.delete()
    await Shelf.objects.all().delete()
    assert await books.delete() == 1


async def test_self_referential_relation(orm):
    root = await Node.objects.create(name="root")
    child = await Node.objects.create(name="child", parent=root)
    await Node.objects.create(name="leaf", parent=child)
    assert [n.name for n in await root.children.all()] == ["child"]
    assert [n.name for n in await Node.objects.filter(parent__parent__name="root")] == ["leaf"]
    leaf = await Node.objects.select_related("parent__parent").get(name="leaf")
    assert leaf.parent.parent.name == "root"
    await root.delete()
    assert await Node.objects.count() == 0


async def test_assigning_relations(blog):
    post = await Post.objects.get(title="p3")
    post.author = blog["ann"]
    assert post.author_id == blog["ann"].pk
    await post.save()
    assert (await Post.objects.get(title="p3")).author_id == blog["ann"].pk
    with pytest.raises(TypeError, match="must be a Author"):
        post.author = blog["red"]
    with pytest.raises(TypeError, match="set"):
        post.tags = []
