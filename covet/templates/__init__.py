"""Jinja2 templates: ``Templates(directory="templates").render(request, "page.html", {...})``.

Autoescaping is on for ``.html``, ``.htm``, ``.xml``, ``.jinja`` and ``.j2``
templates (and templates made from strings), so every ``{{ value }}`` is
HTML-escaped; ``|safe`` (or :class:`markupsafe.Markup`) is the only way to
insert raw HTML. Every template sees:

- ``request``: the current request;
- ``url_for(name, **params)``: the absolute URL of a named route;
- ``static(path)``: the URL of a file under the mount named ``"static"``;
- ``csrf_token()`` / ``csrf_input()``: a fresh CSRF token, or a hidden
  ``<input>`` holding one (needs :class:`~covet.middleware.csrf.CSRFMiddleware`);
- ``get_flashed_messages(with_categories=False, category_filter=())``;
- ``current_user``: ``scope["user"]``, or None.

:func:`observe_renders` wraps every :meth:`Templates.render` and
:meth:`Templates.render_async` in context managers of your choosing (tracing
uses it for a span per render); without one a render pays one list check.

In debug mode templates reload when their file changes and an undefined
variable raises (:class:`jinja2.StrictUndefined`). Otherwise compiled templates
are cached (in memory, and as bytecode on disk) and an undefined variable
renders as an empty string (Jinja's default :class:`jinja2.Undefined`), so a
missing optional value does not take the page down in production.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import (
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from covet.exceptions import CovetError, ImproperlyConfigured
from covet.flash import get_flashed_messages as _get_flashed_messages
from covet.responses import HTMLResponse

if TYPE_CHECKING:
    from covet.background import BackgroundTask
    from covet.datastructures import URL
    from covet.requests import HTTPConnection

__all__ = (
    "ContextProcessor",
    "RenderHook",
    "TemplateNotFoundError",
    "Templates",
    "observe_renders",
)

#: ``processor(request)`` returns extra context for every template (async ones
#: only work with :meth:`Templates.render_async`).
ContextProcessor = Callable[["HTTPConnection"], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]

#: ``hook(name)`` returns a context manager entered around each render of template ``name``.
RenderHook = Callable[[str], contextlib.AbstractContextManager[object]]

_AUTOESCAPE_EXTENSIONS = ("html", "htm", "xml", "jinja", "j2")
_CSRF_KEY = "covet.csrf"


#: The hooks :func:`observe_renders` installed, in the order they were added.
_render_hooks: list[RenderHook] = []


def observe_renders(hook: RenderHook) -> Callable[[], None]:
    """Enter ``hook(name)`` around every render of a named template in this process.

    The block covers what the render does: the context processors, loading
    (and compiling) the template, and rendering it; it runs in the task that
    renders, so work done inside (a query run by an async template) happens
    within it, and an exception raised by the render passes through it.
    :mod:`covet.tracing` uses it for a span per render.

    Args:
        hook: Called with the template name; returns a context manager.

    Returns:
        A function that removes the hook again.
    """
    _render_hooks.append(hook)

    def remove() -> None:
        if hook in _render_hooks:
            _render_hooks.remove(hook)

    return remove


@contextlib.contextmanager
def _observed_render(name: str) -> Iterator[None]:
    """Enter every render hook around the render of ``name``, the first added outermost."""
    with contextlib.ExitStack() as stack:
        for hook in tuple(_render_hooks):
            stack.enter_context(hook(name))
        yield


class TemplateNotFoundError(CovetError, jinja2.TemplateNotFound):
    """A template could not be found in any of the template directories.

    It is also a :class:`jinja2.TemplateNotFound`, so Jinja-aware code keeps working.
    """


def _request(context: jinja2.runtime.Context) -> HTTPConnection:
    request = context.get("request")
    if request is None:
        raise ImproperlyConfigured(
            "This template helper needs 'request' in the template context. Render with "
            "templates.render(request, ...); imported macros need 'import ... with context'."
        )
    return request  # type: ignore[no-any-return]


@jinja2.pass_context
def _url_for(context: jinja2.runtime.Context, name: str, /, **params: Any) -> URL:
    return _request(context).url_for(name, **params)


@jinja2.pass_context
def _static(context: jinja2.runtime.Context, path: str) -> URL:
    return _request(context).url_for("static", path=path)


def _csrf_state(context: jinja2.runtime.Context) -> Any:
    state = _request(context).scope.get(_CSRF_KEY)
    if state is None:
        raise ImproperlyConfigured(
            "csrf_token() and csrf_input() need CSRFMiddleware, which is not installed. "
            "Add it with app.add_middleware(CSRFMiddleware) (after SessionMiddleware)."
        )
    return state


@jinja2.pass_context
def _csrf_token(context: jinja2.runtime.Context) -> str:
    token: str = _csrf_state(context).get_token()
    return token


@jinja2.pass_context
def _csrf_input(context: jinja2.runtime.Context) -> Markup:
    state = _csrf_state(context)
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        state.field_name, state.get_token()
    )


@jinja2.pass_context
def _flashed(
    context: jinja2.runtime.Context,
    with_categories: bool = False,
    category_filter: Iterable[str] = (),
) -> list[str] | list[tuple[str, str]]:
    request = _request(context)
    if with_categories:
        return _get_flashed_messages(request, True, category_filter)
    return _get_flashed_messages(request, False, category_filter)


class _Loader(jinja2.ChoiceLoader):
    """A ChoiceLoader whose not-found error names every place it searched."""

    def __init__(self, loaders: list[jinja2.BaseLoader], searched: list[str]) -> None:
        super().__init__(loaders)
        self.searched = searched

    def load(
        self,
        environment: jinja2.Environment,
        name: str,
        globals: MutableMapping[str, Any] | None = None,
    ) -> jinja2.Template:
        try:
            return super().load(environment, name, globals)
        except TemplateNotFoundError:
            raise
        except jinja2.TemplateNotFound as exc:
            if exc.name != name:
                raise  # a template included by this one is missing: already reported
            where = "; ".join(self.searched)
            raise TemplateNotFoundError(
                name,
                f"Template {name!r} not found. Searched: {where}. "
                "Create the file there, or check the name passed to render().",
            ) from None


def _package_loader(spec: str) -> tuple[jinja2.BaseLoader, str]:
    package, _, folder = spec.partition(":")
    folder = folder or "templates"
    try:
        loader = jinja2.PackageLoader(package, folder)
    except (ImportError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"Templates package {spec!r} has no {folder!r} template folder ({exc}). "
            "Pass 'package' (uses package/templates) or 'package:folder'."
        ) from None
    return loader, f"package {package!r} folder {folder!r}"


class _AsyncKeyedCache(jinja2.BytecodeCache):
    """Store async-compiled templates in ``inner`` under keys of their own."""

    def __init__(self, inner: jinja2.BytecodeCache) -> None:
        self.inner = inner

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        return self.inner.get_cache_key(name, filename) + "-async"

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.inner.load_bytecode(bucket)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.inner.dump_bytecode(bucket)

    def clear(self) -> None:
        self.inner.clear()


class Templates:
    """A Jinja2 environment wired to covet: autoescape, helpers, loaders and caching.

    Args:
        directory: A template directory, or a list of them, searched in order.
        packages: Packages whose ``templates`` folder is searched after the
            directories (``"myapp"``, or ``"myapp:folder"``); lets an
            installable app ship templates a project can override.
        debug: Development mode: reload changed templates and use
            :class:`jinja2.StrictUndefined`.
        auto_reload: Check templates for changes at each render (default: ``debug``).
        undefined: The undefined class (default: StrictUndefined in debug, Undefined otherwise).
        bytecode_cache: A :class:`jinja2.BytecodeCache`; ``True`` for a
            :class:`jinja2.FileSystemBytecodeCache` in a private per-user temp
            directory; ``False`` for none. The default caches outside debug only.
        extensions: Jinja extensions to load.
        context_processors: ``processor(request) -> dict`` callables whose
            results are added to every template's context.
        **env_options: More :class:`jinja2.Environment` options.

    Raises:
        ImproperlyConfigured: For a missing directory or package, or a bad option.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        packages: Sequence[str] | None = None,
        *,
        debug: bool = False,
        auto_reload: bool | None = None,
        undefined: type[jinja2.Undefined] | None = None,
        bytecode_cache: jinja2.BytecodeCache | bool | None = None,
        extensions: Sequence[str | type[jinja2.ext.Extension]] = (),
        context_processors: Sequence[ContextProcessor] = (),
        **env_options: Any,
    ) -> None:
        if isinstance(packages, str):
            raise ImproperlyConfigured(
                f"Templates packages={packages!r} is a string. Pass a list: [{packages!r}]."
            )
        if directory is None:
            directories: list[str | os.PathLike[str]] = []
        elif isinstance(directory, str | os.PathLike):
            directories = [directory]
        else:
            directories = list(directory)
        loaders: list[jinja2.BaseLoader] = []
        searched: list[str] = []
        for folder in directories:
            path = Path(folder).resolve()
            if not path.is_dir():
                raise ImproperlyConfigured(
                    f"Template directory {str(folder)!r} does not exist ({path}). "
                    "Create it or fix the path."
                )
            loaders.append(jinja2.FileSystemLoader(path))
            searched.append(str(path))
        for spec in packages or ():
            loader, description = _package_loader(spec)
            loaders.append(loader)
            searched.append(description)
        if not loaders:
            raise ImproperlyConfigured(
                "Templates() needs a directory or packages. Pass directory='templates'."
            )
        for processor in context_processors:
            if not callable(processor):
                raise ImproperlyConfigured(
                    f"Context processor {processor!r} is not callable. "
                    "Pass functions taking the request and returning a dict."
                )
        if bytecode_cache is None:
            bytecode_cache = not debug
        cache: jinja2.BytecodeCache | None
        if bytecode_cache is True:
            # No directory: Jinja makes a private 0700 per-user folder and checks its
            # owner, so another local user cannot plant bytecode.
            cache = jinja2.FileSystemBytecodeCache()
        elif bytecode_cache is False:
            cache = None
        else:
            cache = bytecode_cache
        self.debug = debug
        self.context_processors = list(context_processors)
        self.env = jinja2.Environment(
            loader=_Loader(loaders, searched),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=_AUTOESCAPE_EXTENSIONS, default_for_string=True
            ),
            auto_reload=debug if auto_reload is None else auto_reload,
            undefined=undefined or (jinja2.StrictUndefined if debug else jinja2.Undefined),
            bytecode_cache=cache,
            extensions=list(extensions),
            **env_options,
        )
        self.env.globals.update(
            url_for=_url_for,
            static=_static,
            csrf_token=_csrf_token,
            csrf_input=_csrf_input,
            get_flashed_messages=_flashed,
        )
        self._async_env: jinja2.Environment | None = None

    @property
    def async_env(self) -> jinja2.Environment:
        """Return the async twin of :attr:`env` (it shares filters, globals and loader)."""
        if self._async_env is None:
            cache = self.env.bytecode_cache
            # Jinja's cache key is the template's name and file, not the mode it
            # was compiled in: sync and async code for one template would overwrite
            # each other, and render_async() would load sync code and fail.
            self._async_env = self.env.overlay(
                enable_async=True,
                bytecode_cache=None if cache is None else _AsyncKeyedCache(cache),
            )
        return self._async_env

    def add_filter(self, name: str, func: Callable[..., Any]) -> None:
        """Make ``func`` available as the ``|name`` filter."""
        self.env.filters[name] = func

    def add_global(self, name: str, value: Any) -> None:
        """Make ``value`` available as ``name`` in every template."""
        self.env.globals[name] = value

    def get_template(self, name: str) -> jinja2.Template:
        """Return the compiled template ``name``.

        Raises:
            TemplateNotFoundError: Naming the template and every searched place.
        """
        return self.env.get_template(name)

    def _context(
        self, request: HTTPConnection, context: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        merged: dict[str, Any] = {"request": request, "current_user": request.scope.get("user")}
        for processor in self.context_processors:
            extra = processor(request)
            if inspect.isawaitable(extra):
                if inspect.iscoroutine(extra):
                    extra.close()  # never awaited: close it to avoid a warning
                raise ImproperlyConfigured(
                    f"Context processor {processor!r} is async; use await templates.render_async()."
                )
            merged.update(extra)
        if context:
            merged.update(context)
        return merged

    def _response(
        self,
        content: str,
        status_code: int,
        headers: Mapping[str, str] | None,
        media_type: str | None,
        background: BackgroundTask | None,
    ) -> HTMLResponse:
        return HTMLResponse(
            content,
            status_code=status_code,
            headers=headers,
            media_type=media_type,
            background=background,
        )

    def render(
        self,
        request: HTTPConnection,
        name: str,
        context: Mapping[str, Any] | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> HTMLResponse:
        """Render template ``name`` into an HTML response.

        Args:
            request: The current request (available as ``request`` in the template).
            name: The template name, relative to a template directory.
            context: Template variables; they override context processors.
            status_code: The response status.
            headers: Extra response headers.
            media_type: The content type (default ``text/html``).
            background: A task to run after the response is sent.

        Returns:
            The response.

        Raises:
            TemplateNotFoundError: If the template does not exist.
            jinja2.TemplateError: For a syntax or rendering error (naming template and line).
        """
        if _render_hooks:
            with _observed_render(name):
                content = self.env.get_template(name).render(self._context(request, context))
        else:
            content = self.env.get_template(name).render(self._context(request, context))
        return self._response(content, status_code, headers, media_type, background)

    async def render_async(
        self,
        request: HTTPConnection,
        name: str,
        context: Mapping[str, Any] | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> HTMLResponse:
        """Render like :meth:`render`, in Jinja's async mode.

        Templates may then await coroutines and iterate async iterables
        (``{% for row in rows %}`` over an async generator), and context
        processors may be async.

        Returns:
            The response.

        Raises:
            TemplateNotFoundError: If the template does not exist.
            jinja2.TemplateError: For a syntax or rendering error.
        """
        if _render_hooks:
            with _observed_render(name):
                content = await self._render_async(request, name, context)
        else:
            content = await self._render_async(request, name, context)
        return self._response(content, status_code, headers, media_type, background)

    async def _render_async(
        self, request: HTTPConnection, name: str, context: Mapping[str, Any] | None
    ) -> str:
        merged: dict[str, Any] = {"request": request, "current_user": request.scope.get("user")}
        for processor in self.context_processors:
            extra = processor(request)
            if inspect.isawaitable(extra):
                extra = await extra
            merged.update(extra)
        if context:
            merged.update(context)
        template = self.async_env.get_template(name)
        return await template.render_async(merged)

    def render_string(self, source: str, context: Mapping[str, Any] | None = None) -> str:
        """Render template text (autoescaped), without a request. Handy for emails.

        Returns:
            The rendered text.
        """
        return self.env.from_string(source).render(dict(context or {}))
