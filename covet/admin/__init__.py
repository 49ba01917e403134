"""covet's admin: back-office pages generated from the models, for staff users.

::

    from covet.admin import Admin, ModelAdmin, action

    class PostAdmin(ModelAdmin):
        list_display = ["title", "author", "published"]
        search_fields = ["title", "author__name"]
        list_filter = ["published", "author"]

    admin = Admin(app, path="/admin")
    admin.register(Post, PostAdmin)

Server-rendered with covet's templates, sessions and CSRF; works without
JavaScript. See ``docs/admin.md``.
"""

from __future__ import annotations

from covet.admin.models import AdminLogEntry
from covet.admin.options import Action, ModelAdmin, action
from covet.admin.site import Admin

__all__ = ("Action", "Admin", "AdminLogEntry", "ModelAdmin", "action")
