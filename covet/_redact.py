"""What covet shows of a request and of Python values when something failed, secrets masked.

The one home of the masking rule shared by the debug page (:mod:`covet._debug`)
and error reports (:mod:`covet.errorreports`), modelled on Django's
``SafeExceptionReporterFilter``: a header, query parameter, form field, local
variable or mapping key whose name matches :data:`SENSITIVE` (``API``,
``TOKEN``, ``KEY``, ``SECRET``, ``PASS``, ``SIGNATURE``, ``COOKIE``, ``AUTH``,
``SESSION``, ``CSRF``, ``XSRF``) shows :data:`MASK`; a password in a URL and a
sensitive ``name=value`` pair inside a text are hidden too. Values are
``repr()``-ed with a length cap, and a failing ``__repr__`` gives a placeholder
instead of an exception: code showing a failure must not fail in turn.

Cookie values are masked whatever their names: a session id can live in a
cookie of any name (``SessionMiddleware(cookie_name=...)``), so only the names
are shown.
"""

from __future__ import annotations

import re
import reprlib
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from covet.requests import HTTPConnection, Request

if TYPE_CHECKING:
    from covet.datastructures import FormData
    from covet.types import Scope

__all__ = (
    "MASK",
    "MAX_REPR",
    "SENSITIVE",
    "hide_secrets",
    "masked_cookies",
    "masked_form",
    "masked_headers",
    "masked_path",
    "masked_path_params",
    "masked_query",
    "masked_url",
    "parsed_form",
    "path_secrets",
    "safe_repr",
    "sensitive",
    "shown",
    "shown_text",
)

#: Names whose values are hidden (Django's ``HIDDEN_SETTINGS`` pattern, plus session and CSRF).
SENSITIVE = re.compile(
    r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|COOKIE|AUTH|SESSION|CSRF|XSRF", re.IGNORECASE
)
#: What a hidden value shows.
MASK = "********"
#: Characters of one value's repr.
MAX_REPR = 1000

# user:password@ in URLs (database URLs in settings, DSNs in locals).
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^/:@\s'\"]*:)[^@\s'\"/]+@")
_SENSITIVE_PAIR = re.compile(
    r"([\w.\-]*(?:" + SENSITIVE.pattern + r")[\w.\-]*=)[^&;\s'\"]+", re.IGNORECASE
)


def hide_secrets(text: str) -> str:
    """Return ``text`` with URL passwords and sensitive ``name=value`` pairs masked."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@", text)
    # name=value pairs of query strings and cookies (a raw scope, a URL in a local).
    return _SENSITIVE_PAIR.sub(lambda m: f"{m.group(1)}{MASK}", text)


def sensitive(name: object) -> bool:
    """Return whether a value called ``name`` (str or bytes) must be masked."""
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    return isinstance(name, str) and SENSITIVE.search(name) is not None


class _SafeRepr(reprlib.Repr):
    """``reprlib`` with sensitive mapping keys masked and failing reprs survived."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = 300
        self.maxother = 300
        self.maxlong = 100
        for name in ("maxdict", "maxlist", "maxtuple", "maxset", "maxfrozenset", "maxdeque"):
            setattr(self, name, 30)

    def _mapping(self, x: Mapping[Any, Any], level: int) -> str:
        name = type(x).__name__
        if level <= 0:
            return f"{name}({{...}})"
        parts = []
        for index, key in enumerate(x):
            if index >= self.maxdict:
                parts.append("...")
                break
            value = MASK if sensitive(key) else self.repr1(x[key], level - 1)
            parts.append(f"{self.repr1(key, level - 1)}: {value}")
        body = "{" + ", ".join(parts) + "}"
        return body if type(x) is dict else f"{name}({body})"

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        return self._mapping(x, level)

    def repr_tuple(self, x: tuple[Any, ...], level: int) -> str:
        # A (name, value) pair: a raw header, a form or query item.
        if len(x) == 2 and isinstance(x[0], str | bytes) and sensitive(x[0]):
            return f"({self.repr1(x[0], level - 1)}, {MASK})"
        return super().repr_tuple(x, level)

    def repr_instance(self, x: Any, level: int) -> str:
        if isinstance(x, Mapping):
            try:
                return self._mapping(x, level)
            except Exception:  # noqa: BLE001, S110 - a broken mapping falls back to its repr
                pass
        try:
            text = repr(x)
        except Exception as exc:  # noqa: BLE001 - showing a value must survive any __repr__
            return f"<{type(x).__name__} object (repr() failed: {type(exc).__name__})>"
        if len(text) > self.maxother:
            half = max(0, (self.maxother - 3) // 2)
            text = text[:half] + "..." + text[len(text) - half :]
        return text


_repr = _SafeRepr()


def safe_repr(value: Any) -> str:
    """Return ``repr(value)`` filtered, capped at :data:`MAX_REPR` characters, never raising."""
    try:
        text = _repr.repr(value)
    except Exception as exc:  # noqa: BLE001 - showing a value must survive any value
        text = f"<{type(value).__name__} object (repr() failed: {type(exc).__name__})>"
    text = hide_secrets(text)
    if len(text) > MAX_REPR:
        text = text[:MAX_REPR] + f"... ({len(text) - MAX_REPR} more characters)"
    return text


def shown(name: str, value: Any) -> str:
    """Return what to show of the value called ``name``: :data:`MASK` or its safe repr."""
    return MASK if sensitive(name) else safe_repr(value)


def shown_text(name: str, value: str) -> str:
    """Return what to show of the text called ``name``: :data:`MASK` or the text, filtered."""
    if sensitive(name):
        return MASK
    text = hide_secrets(value)
    return text if len(text) <= MAX_REPR else text[:MAX_REPR] + "..."


# -- a request's data, masked ---------------------------------------------------------------


def path_secrets(scope: Scope) -> tuple[str, ...]:
    """Return the values of the request's sensitive path parameters, longest first.

    ``/reset/{token}`` requested as ``/reset/abc123`` gives ``("abc123",)``:
    what to mask wherever the raw path shows up (a local, a log message).
    """
    values = {
        str(value)
        for name, value in scope.get("path_params", {}).items()
        if sensitive(str(name)) and str(value)
    }
    return tuple(sorted(values, key=len, reverse=True))


def masked_path(scope: Scope) -> str:
    """Return the request path with the values of sensitive path parameters masked.

    ``/reset/{token}`` requested as ``/reset/abc`` gives ``/reset/********``.
    """
    path = str(scope.get("path", ""))
    hidden = path_secrets(scope)
    if hidden:
        path = "/".join(MASK if part in hidden else part for part in path.split("/"))
    return hide_secrets(path)


def masked_url(scope: Scope) -> str:
    """Return scheme, host and :func:`masked_path` of the request, without the query string."""
    url = HTTPConnection(scope).url
    return hide_secrets(f"{url.scheme}://{url.netloc}") + masked_path(scope)


def masked_headers(scope: Scope) -> list[tuple[str, str]]:
    """Return the request's headers as ``(name, value)`` text pairs, secrets masked."""
    return [
        (name.decode("latin-1"), shown_text(name.decode("latin-1"), value.decode("latin-1")))
        for name, value in scope.get("headers", ())
    ]


def masked_query(scope: Scope) -> list[tuple[str, str]]:
    """Return the query parameters as ``(name, value)`` pairs, secrets masked."""
    return [
        (name, shown_text(name, value))
        for name, value in HTTPConnection(scope).query_params.multi_items()
    ]


def masked_cookies(scope: Scope) -> dict[str, str]:
    """Return the request's cookie names, each with :data:`MASK` as its value."""
    return dict.fromkeys(HTTPConnection(scope).cookies, MASK)


def masked_path_params(scope: Scope) -> list[tuple[str, str]]:
    """Return the matched path parameters as ``(name, repr)`` pairs, secrets masked."""
    params = scope.get("path_params", {})
    return [(str(key), shown(str(key), value)) for key, value in params.items()]


def masked_form(form: FormData) -> list[tuple[str, str]]:
    """Return a parsed form's fields as ``(name, value)`` pairs, secrets masked.

    Text fields show their text; uploaded files their repr (name and type, not content).
    """
    return [
        (str(name), shown_text(str(name), value) if isinstance(value, str) else shown(name, value))
        for name, value in form.multi_items()
    ]


def parsed_form(scope: Scope, exc: BaseException) -> FormData | None:
    """Return the form a handler already parsed for ``scope``'s request, else None.

    The body is never read here (it may be gone, or huge): the form is looked
    for among the local variables of the frames ``exc`` passed through, as a
    :class:`~covet.requests.Request` of this scope that parsed it.
    """
    for frame, _lineno in traceback.walk_tb(exc.__traceback__):
        try:
            values = list(frame.f_locals.values())
        except Exception:  # noqa: BLE001, S112 - skip a frame whose locals cannot be read
            continue
        for value in values:
            if isinstance(value, Request) and value.scope is scope and value._form is not None:
                return value._form
    return None
