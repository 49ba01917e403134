"""Models shared by the ORM test-suite (created once per backend by ``orm_fixtures``)."""

from __future__ import annotations

import enum
import uuid

from covet.db import CASCADE, PROTECT, RESTRICT, SET_NULL, Model, fields


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Author(Model):
    name = fields.CharField(max_length=100)
    email = fields.CharField(max_length=255, unique=True)
    age = fields.IntegerField(null=True)


class Profile(Model):
    author = fields.OneToOneField(Author, related_name="profile", on_delete=CASCADE)
    bio = fields.TextField(default="")


class Tag(Model):
    name = fields.CharField(max_length=50, unique=True)


class Post(Model):
    title = fields.CharField(max_length=200, index=True)
    body = fields.TextField(default="")
    author = fields.ForeignKey(Author, related_name="posts", on_delete=CASCADE)
    editor = fields.ForeignKey(Author, related_name="edited_posts", on_delete=SET_NULL, null=True)
    published_at = fields.DateTimeField(null=True)
    views = fields.IntegerField(default=0)
    rating = fields.DecimalField(max_digits=5, decimal_places=2, null=True)
    tags = fields.ManyToManyField("Tag", related_name="posts")

    class Meta:
        table = "posts"


class Comment(Model):
    post = fields.ForeignKey(Post, related_name="comments", on_delete=CASCADE)
    text = fields.CharField(max_length=200)


class Category(Model):
    name = fields.CharField(max_length=50)


class Product(Model):
    category = fields.ForeignKey(Category, related_name="products", on_delete=PROTECT)
    name = fields.CharField(max_length=50)


class Shelf(Model):
    category = fields.ForeignKey(Category, related_name="shelves", on_delete=RESTRICT)


class Node(Model):
    name = fields.CharField(max_length=50)
    parent = fields.ForeignKey("self", related_name="children", on_delete=CASCADE, null=True)


class Group(Model):
    name = fields.CharField(max_length=50)
    members = fields.ManyToManyField(Author, related_name="groups", through="Membership")


class Membership(Model):
    group = fields.ForeignKey(Group, related_name="memberships", on_delete=CASCADE)
    author = fields.ForeignKey(Author, related_name="memberships", on_delete=CASCADE)
    role = fields.CharField(max_length=20, default="member")

    class Meta:
        unique_together = (("group", "author"),)


class Everything(Model):
    small = fields.SmallIntegerField(null=True)
    integer = fields.IntegerField(null=True)
    big = fields.BigIntegerField(null=True)
    flt = fields.FloatField(null=True)
    dec = fields.DecimalField(max_digits=20, decimal_places=6, null=True)
    flag = fields.BooleanField(null=True)
    char = fields.CharField(max_length=20, null=True)
    text = fields.TextField(null=True)
    day = fields.DateField(null=True)
    clock = fields.TimeField(null=True)
    moment = fields.DateTimeField(null=True)
    uid = fields.UUIDField(null=True)
    data = fields.JSONField(null=True)
    blob = fields.BinaryField(null=True)
    color = fields.EnumField(Color, null=True)
    priority = fields.EnumField(Priority, null=True)


class Plain(Model):
    """Every field type whose bulk INSERT values PostgreSQL receives as JSON (no decimal,
    time or bytes: those go as arrays)."""

    small = fields.SmallIntegerField(null=True)
    big = fields.BigIntegerField(null=True)
    flt = fields.FloatField(null=True)
    flag = fields.BooleanField(null=True)
    char = fields.CharField(max_length=40, null=True)
    text = fields.TextField(null=True)
    day = fields.DateField(null=True)
    moment = fields.DateTimeField(null=True)
    uid = fields.UUIDField(null=True)
    data = fields.JSONField(null=True)
    color = fields.EnumField(Color, null=True)
    priority = fields.EnumField(Priority, null=True)


def _default_labels() -> list[str]:
    return ["new"]


class Defaults(Model):
    counter = fields.IntegerField(default=5)
    token = fields.UUIDField(default=uuid.uuid4)
    labels = fields.JSONField(default=_default_labels)
    created = fields.DateTimeField(auto_now_add=True)
    updated = fields.DateTimeField(auto_now=True)
    state = fields.CharField(max_length=10, default="draft", choices=["draft", "live"])


class Keyed(Model):
    code = fields.CharField(max_length=10, primary_key=True)
    label = fields.CharField(max_length=50, default="")


ALL_MODELS: list[type[Model]] = [
    Author, Profile, Tag, Post, Comment, Category, Product, Shelf, Node, Group, Membership,
    Everything, Plain, Defaults, Keyed,
]  # fmt: skip
