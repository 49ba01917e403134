"""The note model of the Django site (users are ``django.contrib.auth``'s)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Note(models.Model):
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    title = models.CharField(max_length=200)
    body = models.TextField(default="")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "notes"
