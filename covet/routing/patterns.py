"""Compiled route path patterns: matching, converting and reverse formatting.

A pattern such as ``/items/{item_id:int}`` compiles to a regular expression
(whose source the index merges into one alternation per group), the tuple of
converters (see :mod:`covet.convertors`) and the literal/parameter parts
``url_path_for()`` joins back together.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from covet.convertors import CONVERTOR_TYPES, Convertor, PathConvertor
from covet.exceptions import CovetError, ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ("NoMatchFound",)


# Characters left unescaped by url_path_for(): RFC 3986 "pchar" minus "%",
# so every value round-trips through the decoding the server applies.
_SAFE_SEGMENT = "!$&'()*+,;=:@"
_SAFE_PATH = _SAFE_SEGMENT + "/"
_PARAM_RE = re.compile(r"\{([^{}]*)\}")
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class NoMatchFound(CovetError, LookupError):  # noqa: N818 - Starlette's well-known name
    """No route has the given name, or it needs other path parameters.

    Raised by ``url_path_for()`` and ``Request.url_for()``.
    """


class _PathPattern:
    """A compiled route path: its regular expression, parameters and reverse format."""

    __slots__ = (
        "convertors",
        "first_segment",
        "is_static",
        "param_names",
        "parts",
        "path",
        "regex",
        "source",
    )

    def __init__(self, path: str, *, what: str, tail: str = "") -> None:
        if "?" in path or "#" in path:
            raise ImproperlyConfigured(
                f"{what} path {path!r} contains '?' or '#'. Route paths match the URL path "
                "only; read query parameters from request.query_params."
            )
        sources: list[str] = []
        parts: list[str | int] = []
        names: list[str] = []
        convertors: list[Convertor[Any]] = []
        position = 0
        for match in _PARAM_RE.finditer(path):
            literal = path[position : match.start()]
            self._check_literal(path, literal, what)
            sources.append(re.escape(literal))
            parts.append(literal)
            name, colon, convertor_name = match.group(1).partition(":")
            if _IDENTIFIER_RE.fullmatch(name) is None:
                raise ImproperlyConfigured(
                    f"{what} path {path!r} has an invalid parameter name {name!r}. "
                    "Use a Python identifier such as '{item_id}' or '{item_id:int}'."
                )
            if name in names:
                raise ImproperlyConfigured(
                    f"{what} path {path!r} uses the parameter {name!r} twice. "
                    "Give each parameter a distinct name."
                )
            if not colon:
                convertor_name = "str"
            convertor = CONVERTOR_TYPES.get(convertor_name)
            if convertor is None:
                known = ", ".join(sorted(CONVERTOR_TYPES))
                raise ImproperlyConfigured(
                    f"{what} path {path!r} uses the unknown converter {convertor_name!r}. "
                    f"Use one of: {known}; or register one with "
                    "covet.convertors.register_convertor()."
                )
            sources.append(f"({convertor.regex})")
            parts.append(len(names))
            names.append(name)
            convertors.append(convertor)
            position = match.end()
        literal = path[position:]
        self._check_literal(path, literal, what)
        sources.append(re.escape(literal))
        parts.append(literal)
        self.path = path
        self.source = "".join(sources) + tail
        self.regex = re.compile(self.source)
        self.param_names = tuple(names)
        self.convertors = tuple(convertors)
        self.parts = tuple(part for part in parts if part != "")
        self.is_static = not names and not tail
        first = path[1:].split("/", 1)[0]
        self.first_segment: str | None = None if "{" in first else first

    @staticmethod
    def _check_literal(path: str, literal: str, what: str) -> None:
        if "{" in literal or "}" in literal:
            raise ImproperlyConfigured(
                f"{what} path {path!r} has an unbalanced '{{' or '}}'. "
                "Write parameters as '{name}' or '{name:converter}'."
            )

    def convert(self, raw: Sequence[str]) -> dict[str, Any]:
        """Convert matched strings into handler values; raise ValueError on a bad value."""
        if len(raw) == 1:  # the common single-parameter case, without the comprehension
            return {self.param_names[0]: self.convertors[0].convert(raw[0])}
        return {
            name: convertor.convert(value)
            for name, convertor, value in zip(self.param_names, self.convertors, raw, strict=True)
        }

    def format(self, route_name: str, params: Mapping[str, Any]) -> str:
        """Build the path for ``params``, which must hold exactly the parameters."""
        if params.keys() != set(self.param_names):
            raise NoMatchFound(_params_message(route_name, self.param_names, params))
        pieces: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            name = self.param_names[part]
            convertor = self.convertors[part]
            try:
                text = convertor.to_string(params[name])
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"Cannot build the path of route {route_name!r}: parameter {name!r} "
                    f"is {params[name]!r}, which its converter refuses ({exc})"
                ) from exc
            safe = _SAFE_PATH if isinstance(convertor, PathConvertor) else _SAFE_SEGMENT
            pieces.append(quote(text, safe=safe))
        return "".join(pieces)


def _params_message(name: str, expected: Sequence[str], params: Mapping[str, Any]) -> str:
    missing = [p for p in expected if p not in params]
    extra = sorted(p for p in params if p not in expected)
    problems = []
    if missing:
        problems.append(f"missing {', '.join(map(repr, missing))}")
    if extra:
        problems.append(f"unexpected {', '.join(map(repr, extra))}")
    return (
        f"Route {name!r} takes the path parameters {list(expected)!r}, "
        f"got {sorted(params)!r} ({'; '.join(problems)}). Pass exactly its parameters."
    )


class _RootMountPattern(_PathPattern):
    """The pattern of a mount at the root: every path, all of it the remainder."""

    def __init__(self) -> None:
        self.path = ""
        self.source = "(/.*)"
        self.regex = re.compile(self.source)
        self.param_names = ()
        self.convertors = ()
        self.parts = ()
        self.is_static = False
        self.first_segment = None
