"""Models of the admin tests."""

from __future__ import annotations

from covet.auth import AbstractUser
from covet.db import CASCADE, PROTECT, Model, fields


class StaffUser(AbstractUser):
    class Meta:
        table = "admin_t_users"


class Writer(Model):
    name = fields.CharField(max_length=100)

    class Meta:
        table = "admin_t_writers"

    def __str__(self) -> str:
        return self.name


class Topic(Model):
    name = fields.CharField(max_length=30)

    class Meta:
        table = "admin_t_topics"

    def __str__(self) -> str:
        return self.name


def not_blank(value: str) -> None:
    if not value.strip():
        raise ValueError("Enter a title.")


class Article(Model):
    title = fields.CharField(max_length=100, validators=[not_blank])
    body = fields.TextField(default="")
    published = fields.BooleanField(default=False)
    status = fields.CharField(max_length=10, choices=["draft", "review", "final"], default="draft")
    writer = fields.ForeignKey(Writer, related_name="articles", on_delete=CASCADE)
    views = fields.IntegerField(default=0)
    created = fields.DateTimeField(null=True)
    topics = fields.ManyToManyField(Topic, related_name="articles")

    class Meta:
        table = "admin_t_articles"

    def __str__(self) -> str:
        return self.title


class Remark(Model):
    article = fields.ForeignKey(Article, related_name="remarks", on_delete=CASCADE)
    text = fields.CharField(max_length=100)

    class Meta:
        table = "admin_t_remarks"

    def __str__(self) -> str:
        return self.text


class Label(Model):
    """Something a PROTECT key guards: a Label in use by a Sticker cannot be deleted."""

    name = fields.CharField(max_length=30)

    class Meta:
        table = "admin_t_labels"

    def __str__(self) -> str:
        return self.name


class Sticker(Model):
    label = fields.ForeignKey(Label, related_name="stickers", on_delete=PROTECT)

    class Meta:
        table = "admin_t_stickers"
