"""Serve static files from a directory or from installed packages.

:class:`StaticFiles` is an ASGI application meant to be mounted::

    app.mount("/static", StaticFiles(directory="static"), name="static")

It serves ``GET`` and ``HEAD`` only, with correct content types,
``Cache-Control``, ``ETag``/``Last-Modified`` and conditional and range
requests (through :class:`~covet.responses.FileResponse`). No request can reach
a file outside the configured directories: ``..`` segments, backslashes, NUL
bytes and symlinks that resolve outside are all answered with 404.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import stat
from typing import TYPE_CHECKING

from covet._utils import get_route_path
from covet.datastructures import URL
from covet.exceptions import HTTPException, ImproperlyConfigured
from covet.responses import FileResponse, PlainTextResponse, RedirectResponse, Response

if TYPE_CHECKING:
    from collections.abc import Sequence

    from covet.types import Receive, Scope, Send

__all__ = ("StaticFiles",)

_ALLOWED_METHODS = ("GET", "HEAD")


def _package_directory(package: str | tuple[str, str]) -> str:
    name, subdirectory = (package, "statics") if isinstance(package, str) else package
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ImproperlyConfigured(
            f"StaticFiles could not find the package {name!r}. Check the name and that it is "
            "installed."
        )
    if spec.submodule_search_locations:
        roots = list(spec.submodule_search_locations)
    elif spec.origin is not None:
        roots = [os.path.dirname(spec.origin)]  # noqa: PTH120 - plain strings throughout
    else:
        roots = []
    for root in roots:
        candidate = os.path.join(root, subdirectory)  # noqa: PTH118
        if os.path.isdir(candidate):  # noqa: PTH112
            return candidate
    raise ImproperlyConfigured(
        f"Package {name!r} has no {subdirectory!r} directory. Create it, or pass "
        f"({name!r}, 'other_directory') in packages=."
    )


class StaticFiles:
    """An ASGI application that serves files below one or more directories.

    Args:
        directory: The directory to serve.
        packages: Packages whose ``statics/`` directory to serve, as names
            (``"mypkg"``) or ``(name, subdirectory)`` pairs. They are searched in
            order, after ``directory``.
        html: Serve ``index.html`` for a directory (redirecting ``/docs`` to
            ``/docs/``) and ``404.html``, if present, for a missing file.
        check_dir: Check at construction that ``directory`` exists.
        follow_symlink: Serve symlinks that point outside the directories. By
            default a symlink is followed only if its target is inside them.
        cache_max_age: Seconds for ``Cache-Control: public, max-age=...``; ``None``
            sends no ``Cache-Control``.

    Raises:
        ImproperlyConfigured: If no directory or package is given, ``directory``
            is missing (with ``check_dir``), or a package or its directory is not found.
    """

    def __init__(
        self,
        *,
        directory: str | os.PathLike[str] | None = None,
        packages: Sequence[str | tuple[str, str]] | None = None,
        html: bool = False,
        check_dir: bool = True,
        follow_symlink: bool = False,
        cache_max_age: int | None = 3600,
    ) -> None:
        if directory is None and not packages:
            raise ImproperlyConfigured(
                "StaticFiles needs a directory or packages. Pass directory='static', say."
            )
        self.directory = os.fspath(directory) if directory is not None else None
        self.packages = list(packages or [])
        self.html = html
        self.follow_symlink = follow_symlink
        self.cache_max_age = cache_max_age
        if check_dir and self.directory is not None and not os.path.isdir(self.directory):  # noqa: PTH112
            raise ImproperlyConfigured(
                f"StaticFiles directory {self.directory!r} does not exist. Create it, or fix "
                "the path (relative paths are relative to the working directory)."
            )
        directories = [self.directory] if self.directory is not None else []
        directories += [_package_directory(package) for package in self.packages]
        # Resolved once, so containment checks compare real paths with real paths.
        self.all_directories = [os.path.realpath(d) for d in directories]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the file that the request path names (an ASGI application)."""
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": ""})
            return
        response = await self._response(scope)
        try:
            await response(scope, receive, send)
        except FileNotFoundError:
            # The file vanished between lookup and open; nothing was sent yet.
            await self._not_found(scope)(scope, receive, send)

    async def _response(self, scope: Scope) -> Response:
        if scope["method"] not in _ALLOWED_METHODS:
            return self._error(scope, 405, {"Allow": ", ".join(_ALLOWED_METHODS)})
        path = get_route_path(scope)
        full_path, stat_result = await self.lookup_path(path)
        if stat_result is not None and stat.S_ISREG(stat_result.st_mode):
            return self.file_response(full_path, stat_result)
        if stat_result is not None and stat.S_ISDIR(stat_result.st_mode) and self.html:
            index_path, index_stat = await self.lookup_path(os.path.join(path, "index.html"))  # noqa: PTH118
            if index_stat is not None and stat.S_ISREG(index_stat.st_mode):
                if not scope["path"].endswith("/"):
                    # Relative links in index.html need the trailing slash.
                    url = URL(scope=scope)
                    return RedirectResponse(url.replace(path=url.path + "/"))
                return self.file_response(index_path, index_stat)
        return self._not_found(scope)

    def _not_found(self, scope: Scope) -> Response:
        if self.html:
            for directory in self.all_directories:
                candidate = os.path.join(directory, "404.html")  # noqa: PTH118
                if os.path.isfile(candidate):  # noqa: PTH113 - one stat, only on a miss
                    return FileResponse(candidate, status_code=404)
        return self._error(scope, 404)

    def _error(
        self, scope: Scope, status_code: int, headers: dict[str, str] | None = None
    ) -> Response:
        if "app" in scope:
            # Mounted in a covet app: let its exception handlers render the error.
            raise HTTPException(status_code, headers=headers)
        exc = HTTPException(status_code)
        return PlainTextResponse(exc.detail, status_code=status_code, headers=headers)

    def file_response(self, full_path: str, stat_result: os.stat_result) -> Response:
        """Build the response for a file found by :meth:`lookup_path`.

        Args:
            full_path: The file's path on disk.
            stat_result: Its ``os.stat()`` result.

        Returns:
            A :class:`~covet.responses.FileResponse` with ``Cache-Control`` set.
        """
        headers = None
        if self.cache_max_age is not None:
            headers = {"Cache-Control": f"public, max-age={int(self.cache_max_age)}"}
        return FileResponse(full_path, headers=headers, stat_result=stat_result)

    async def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        """Find ``path`` (relative to the mount point) in the served directories.

        The file-system calls run in a worker thread.

        Args:
            path: The decoded request path below the mount point.

        Returns:
            The full path and its ``stat()`` result, or ``("", None)`` if the path is
            unsafe or names nothing.
        """
        return await asyncio.to_thread(self._lookup, path)

    def _lookup(self, path: str) -> tuple[str, os.stat_result | None]:
        if "\x00" in path or "\\" in path:
            return "", None
        parts = [part for part in path.split("/") if part not in ("", ".")]
        if any(part == ".." or os.sep in part for part in parts):
            return "", None
        relative = os.path.join(*parts) if parts else ""  # noqa: PTH118
        if os.path.isabs(relative) or os.path.splitdrive(relative)[0]:  # noqa: PTH117
            return "", None
        # follow_symlink: normalise lexically (no ".." can remain); otherwise resolve links.
        resolve = os.path.abspath if self.follow_symlink else os.path.realpath
        for directory in self.all_directories:
            full_path = resolve(os.path.join(directory, relative))  # noqa: PTH118
            if os.path.commonpath([full_path, directory]) != directory:
                continue  # A symlink leading out of the directory.
            try:
                return full_path, os.stat(full_path)  # noqa: PTH116
            except OSError:  # ENOENT, ENOTDIR, EACCES, ENAMETOOLONG, ELOOP: not servable.
                continue
        return "", None

    def __repr__(self) -> str:
        return f"StaticFiles(directory={self.directory!r}, packages={self.packages!r})"
