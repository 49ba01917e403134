"""The Django site's ASGI application."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.fullstack.django_site.settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()
