"""The ``openapi=`` setting of ``Covet()``: the document's metadata and where it is served."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from covet.exceptions import ImproperlyConfigured

__all__ = ("OpenAPIConfig", "check_config")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OpenAPIConfig:
    """What ``app.openapi()`` says about the API, and where it is served.

    ``Covet()`` uses ``OpenAPIConfig()``: ``/openapi.json`` and ``/docs`` are
    served, as in FastAPI and Litestar. ``Covet(openapi=None)`` serves
    neither (``app.openapi()`` still builds the document, for export).

    Attributes:
        title: The API's name (``info.title``).
        version: The API's version (``info.version``), not covet's.
        description: A longer description, CommonMark (``info.description``).
        summary: A one-line summary (``info.summary``).
        path: Where the JSON document is served; None serves none (nor the UI,
            which reads it).
        docs_path: Where the API reference UI (Swagger UI, shipped inside
            covet, no CDN) is served; None serves none.
        servers: ``servers`` entries (``[{"url": "https://api.example.com"}]``).
            Without them the document served under a ``root_path`` names that
            path as its server.
        tags: Tag descriptions (``[{"name": "items", "description": "..."}]``),
            in the order the UI should show them; tags used by routes and not
            listed here follow.
        contact: ``info.contact`` (``{"name": ..., "url": ..., "email": ...}``).
        license: ``info.license`` (``{"name": "MIT", "identifier": "MIT"}``).
        terms_of_service: ``info.termsOfService``, a URL.
    """

    title: str = "API"
    version: str = "0.1.0"
    description: str | None = None
    summary: str | None = None
    path: str | None = "/openapi.json"
    docs_path: str | None = "/docs"
    servers: Sequence[Mapping[str, Any]] = ()
    tags: Sequence[Mapping[str, Any]] = ()
    contact: Mapping[str, Any] | None = None
    license: Mapping[str, Any] | None = None
    terms_of_service: str | None = None

    def __post_init__(self) -> None:
        for name in ("title", "version"):
            value: object = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ImproperlyConfigured(
                    f"OpenAPIConfig got {name}={value!r}. Pass a non-empty string."
                )
        for name in ("path", "docs_path"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, str) or not value.startswith("/") or value.endswith("/")
            ):
                raise ImproperlyConfigured(
                    f"OpenAPIConfig got {name}={value!r}. Pass a path starting with '/' and "
                    "not ending with one (for example '/docs'), or None to serve nothing there."
                )
        if self.path is not None and self.path == self.docs_path:
            raise ImproperlyConfigured(
                f"OpenAPIConfig serves the document and the UI both at {self.path!r}. "
                "Give them different paths."
            )
        for tag in self.tags:
            given: object = tag  # callers may be untyped
            if not isinstance(given, Mapping) or not isinstance(tag.get("name"), str):
                raise ImproperlyConfigured(
                    f"OpenAPIConfig got the tag {tag!r}. Pass mappings with a 'name', for "
                    "example {'name': 'items', 'description': 'Things for sale'}."
                )

    @property
    def serves_docs(self) -> bool:
        """Return whether the UI is served (it needs the JSON document served too)."""
        return self.path is not None and self.docs_path is not None


def check_config(value: object) -> OpenAPIConfig | None:
    """Return the ``openapi=`` value of ``Covet()``: a config, or None (serve nothing).

    Anything but an :class:`OpenAPIConfig` or None means ``OpenAPIConfig()``
    when it is covet's default marker, and an error otherwise.

    Raises:
        ImproperlyConfigured: For a value of another type.
    """
    if value is None or isinstance(value, OpenAPIConfig):
        return value
    if type(value) is object:  # covet.app's "not given" marker
        return OpenAPIConfig()
    raise ImproperlyConfigured(
        f"openapi={value!r} is not an OpenAPIConfig. Pass covet.openapi.OpenAPIConfig(title=..., "
        "version=...), or None to serve no /openapi.json and /docs."
    )
