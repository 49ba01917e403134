"""Typed handler parameters: declare inputs by annotation, get them validated, or a 422.

::

    from typing import Annotated
    from pydantic import BaseModel
    from covet.params import Depends, Header, Query

    class Item(BaseModel):
        name: str
        price: float

    @app.post("/items", status_code=201)
    async def create(item: Item, page: Annotated[int, Query(ge=1)] = 1) -> Item:
        return item

Parameters come from the path, the query string, headers, cookies, the JSON
body or a form, or from a dependency (:class:`Depends`); the request itself is
injected by its annotation. Models are pydantic v2 models or msgspec Structs
(dataclasses and TypedDicts are validated by either library). The libraries
are optional (``pip install 'covet-web[validation]'``) and imported only when
a route uses them. The signature is read once, when the route is registered;
:attr:`covet.routing.Route.signature` holds what was found (see
:class:`Signature`).
"""

from __future__ import annotations

from covet.params.errors import (
    RequestValidationError,
    ResponseValidationError,
    request_validation_error_handler,
)
from covet.params.markers import (
    MISSING,
    Body,
    Cookie,
    Depends,
    File,
    Form,
    Header,
    Param,
    Path,
    Query,
)
from covet.params.signature import INFER, Dependant, Parameter, ResponseSpec, Signature

__all__ = (
    "INFER",
    "MISSING",
    "Body",
    "Cookie",
    "Dependant",
    "Depends",
    "File",
    "Form",
    "Header",
    "Param",
    "Parameter",
    "Path",
    "Query",
    "RequestValidationError",
    "ResponseSpec",
    "ResponseValidationError",
    "Signature",
    "request_validation_error_handler",
)
