"""Create the Django site's tables (``migrate``) and its users and notes."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.fullstack.django_site.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from benchmarks.fullstack import common  # noqa: E402
from benchmarks.fullstack.django_site.models import Note  # noqa: E402


def main() -> None:
    call_command("migrate", verbosity=0)
    users = get_user_model()
    reader = users.objects.create_user(common.READER, common.READER, common.PASSWORD)
    users.objects.create_user(common.WRITER, common.WRITER, common.PASSWORD)
    Note.objects.bulk_create(
        Note(author=reader, title=title, body=body, created_at=created)
        for title, body, created in common.seed_notes()
    )


if __name__ == "__main__":
    main()
