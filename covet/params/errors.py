"""Validation errors: the 422 a client gets for invalid input, and the 500 for invalid output.

The 422 body has the shape FastAPI clients already parse::

    {"detail": [{"type": "missing", "loc": ["body", "price"], "msg": "Field required",
                 "input": {...}}, ...]}

``loc`` starts with where the value was read (``path``, ``query``, ``header``,
``cookie``, ``body``) and continues with the wire name and the path inside
the value. ``type`` is a stable machine-readable code (pydantic's codes; the
msgspec engine maps its messages onto the same codes).
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from covet.exceptions import CovetError, HTTPException
from covet.responses import JSONResponse

if TYPE_CHECKING:
    from covet.requests import Request
    from covet.responses import Response

__all__ = (
    "ErrorList",
    "RequestValidationError",
    "ResponseValidationError",
    "ValidationFailed",
    "json_safe",
    "request_validation_error_handler",
)

#: One error: ``{"type": ..., "loc": [...], "msg": ..., "input": ..., "ctx": {...}}``.
ErrorList = list[dict[str, Any]]

_PRIMITIVES = (str, int, float, bool, type(None))
_MAX_DEPTH = 16


def json_safe(value: Any, depth: int = 0) -> Any:
    """Return ``value`` with everything JSON cannot hold turned into text.

    Error inputs and contexts may hold anything a client sent or a validator
    raised (bytes, uploaded files, exceptions); the 422 body must still encode.
    """
    if isinstance(value, _PRIMITIVES):
        return value
    if depth >= _MAX_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        return {str(key): json_safe(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item, depth + 1) for item in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, enum.Enum):
        return json_safe(value.value, depth + 1)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value), depth + 1)
    return str(value)


class ValidationFailed(Exception):  # noqa: N818 - internal signal, never reaches users
    """Raised by a validation engine with the errors found, ``loc`` relative to the value."""

    def __init__(self, errors: ErrorList) -> None:
        super().__init__(errors)
        self.errors = errors


def _summary(errors: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', '')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    count = len(errors)
    return f"{count} validation error{'s' if count != 1 else ''}: {'; '.join(parts)}{more}"


class RequestValidationError(HTTPException):
    """The request's parameters or body are invalid: answered with a 422 listing every error.

    Raised by typed handlers before the handler runs. The default handler
    answers ``{"detail": exc.errors()}`` as JSON whatever the ``Accept``
    header (API clients parse it); register your own with
    ``app.add_exception_handler(RequestValidationError, handler)``.

    Args:
        errors: The errors, each a dict with ``type``, ``loc``, ``msg`` and
            usually ``input`` and ``ctx``.
    """

    def __init__(self, errors: Sequence[Mapping[str, Any]]) -> None:
        self._errors: ErrorList = [json_safe(dict(error)) for error in errors]
        super().__init__(422, _summary(self._errors))

    def errors(self) -> ErrorList:
        """Return the errors: a list of ``{"type", "loc", "msg", "input", "ctx"}`` dicts."""
        return self._errors


class ResponseValidationError(CovetError):
    """A handler returned data its response model refuses: a bug in the handler, so a 500.

    The client sees a plain 500; the log names the route and every error.

    Args:
        handler: The handler's name.
        errors: The errors found, as for :class:`RequestValidationError`.
    """

    def __init__(self, handler: str, errors: Sequence[Mapping[str, Any]]) -> None:
        self._errors: ErrorList = [json_safe(dict(error)) for error in errors]
        super().__init__(
            f"Handler {handler!r} returned a value its response model refuses "
            f"({_summary(self._errors)}). Return data matching the model, or fix the model."
        )

    def errors(self) -> ErrorList:
        """Return the errors found in the returned value."""
        return self._errors


async def request_validation_error_handler(
    request: Request, exc: RequestValidationError
) -> Response:
    """Answer a :class:`RequestValidationError`: 422 with ``{"detail": [errors]}`` as JSON.

    Args:
        request: The request being answered.
        exc: The validation error.

    Returns:
        The 422 response.
    """
    return JSONResponse({"detail": exc.errors()}, status_code=422, headers=exc.headers)
