"""The Django site's URLs."""

from __future__ import annotations

from django.urls import path

from benchmarks.fullstack.django_site import views

urlpatterns = [
    path("fs/page", views.page),
    path("fs/notes.json", views.notes_json),
    path("fs/notes", views.create_note),
    path("fs/login", views.login),
]
