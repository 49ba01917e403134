"""``Admin``: mount the back-office pages on an app and register models on it.

::

    admin = Admin(app, path="/admin")
    admin.register(Post, PostAdmin)
    admin.register(Tag, search_fields=["name"])

The pages need the middleware a covet site already has: sessions,
``AuthenticationMiddleware`` (``request.user``) and ``CSRFMiddleware`` (every
form carries ``csrf_input()``). Only active staff users (``is_staff``) get in;
each model page then checks the user's ``"<model>.view"``, ``".add"``,
``".change"`` and ``".delete"`` permissions (superusers hold all), and answers
403 without them. Every change is written to the audit log
(:class:`~covet.admin.models.AdminLogEntry`) in the transaction of the change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from covet.admin import views
from covet.admin.options import ModelAdmin
from covet.exceptions import HTTPException, ImproperlyConfigured
from covet.templates import Templates

if TYPE_CHECKING:
    from covet.app import Covet
    from covet.db.models import Model
    from covet.requests import Request

__all__ = ("Admin",)


class Admin:
    """The admin site: its URL prefix, its registered models and its templates.

    Args:
        app: The application to add the admin routes to.
        path: The URL prefix of every admin page.
        title: The heading of the pages.
        templates_dir: A directory searched before covet's own admin templates,
            to override any of them (``admin/base.html``, say).

    Raises:
        ImproperlyConfigured: For a path that does not start with ``/``.
    """

    def __init__(
        self,
        app: Covet,
        path: str = "/admin",
        *,
        title: str = "Administration",
        templates_dir: str | None = None,
    ) -> None:
        if not path.startswith("/"):
            raise ImproperlyConfigured(f"Admin path {path!r} must start with '/', like '/admin'.")
        self.app = app
        self.path = path.rstrip("/")
        self.title = title
        self.templates = Templates(templates_dir, packages=["covet.admin"])
        self.templates.add_global("admin_url", self.url)
        self._registry: dict[str, ModelAdmin] = {}
        views.add_routes(self)

    # -- registry --------------------------------------------------------------------------------

    def register(
        self, model: type[Model], admin_class: type[ModelAdmin] | None = None, **options: Any
    ) -> ModelAdmin:
        """Show ``model`` in the admin, configured by ``admin_class`` and/or keyword options.

        Args:
            model: The model class.
            admin_class: A :class:`ModelAdmin` subclass (default: ModelAdmin).
            options: ModelAdmin attributes (``list_display=[...]``) overriding the class's.

        Returns:
            The ModelAdmin instance.

        Raises:
            ImproperlyConfigured: For a model registered twice, or an invalid option.
        """
        name = model._meta.model_name
        if name in views.RESERVED_NAMES:
            raise ImproperlyConfigured(
                f"{model.__name__}'s admin name {name!r} is one of the admin's own pages "
                f"({', '.join(sorted(views.RESERVED_NAMES))}). Rename the model."
            )
        if name in self._registry:
            raise ImproperlyConfigured(f"{model.__name__} is already registered with the admin.")
        base = admin_class or ModelAdmin
        unknown = [key for key in options if not hasattr(base, key) or key.startswith("_")]
        if unknown:
            raise ImproperlyConfigured(
                f"Unknown ModelAdmin option(s) {unknown!r} for {model.__name__}."
            )
        cls = type(f"{model.__name__}Admin", (base,), options) if options else base
        model_admin: ModelAdmin = cls(model)
        self._registry[name] = model_admin
        return model_admin

    @property
    def registry(self) -> dict[str, ModelAdmin]:
        """Return the registered models' admins by model name (read-only use)."""
        return dict(self._registry)

    def model_admin(self, name: str) -> ModelAdmin:
        """Return the ModelAdmin registered as ``name``, or raise a 404."""
        try:
            return self._registry[name]
        except KeyError:
            raise HTTPException(404, f"No model {name!r} in the admin.") from None

    def visible_models(self, user: Any) -> list[ModelAdmin]:
        """Return the registered models ``user`` may view, by name."""
        return [
            ma
            for _, ma in sorted(self._registry.items())
            if ma.has_permission(user, "view") or ma.has_permission(user, "add")
        ]

    # -- urls --------------------------------------------------------------------------------------

    def url(self, *parts: Any, **query: Any) -> str:
        """Return the admin URL of ``parts`` (quoted), with ``query`` (None values left out)."""
        path = "/".join(quote(str(p), safe="") for p in parts)
        url = f"{self.path}/{path}" if path else f"{self.path}/"
        params = {k: v for k, v in query.items() if v not in (None, "")}
        return f"{url}?{urlencode(params)}" if params else url

    def render(
        self, request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> Any:
        """Render an admin template with the site's common context."""
        user = request.scope.get("user")
        base = {"site": self, "user": user, "nav": self.visible_models(user) if user else []}
        return self.templates.render(request, name, {**base, **context}, status_code=status_code)
