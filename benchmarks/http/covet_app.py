"""The benchmark endpoints written with covet.

``app`` mirrors the Starlette app route for route. ``app_1`` and
``app_500`` differ only in how many parametrised routes they register, to
show that route matching cost does not grow with the route count; they are
built on first access (uvicorn's ``module:app_500`` does a getattr).
"""

from __future__ import annotations

from covet import Covet, JSONResponse, PlainTextResponse, Request

ROUTES = 100
# covet refuses unknown Host headers outside debug mode; the benchmark only
# ever talks to loopback.
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]


def build(routes: int = ROUTES) -> Covet:
    app = Covet(allowed_hosts=ALLOWED_HOSTS)

    @app.get("/plaintext")
    async def plaintext(request: Request) -> PlainTextResponse:
        return PlainTextResponse("Hello, World!")

    @app.get("/json")
    async def json_endpoint(request: Request) -> JSONResponse:
        return JSONResponse({"message": "Hello, World!"})

    for index in range(routes):
        _add_param_route(app, index)
    for index in range(routes):
        _add_static_route(app, index)
    return app


def _add_param_route(app: Covet, index: int) -> None:
    async def endpoint(request: Request, id: int) -> JSONResponse:
        return JSONResponse({"route": index, "id": id})

    app.add_route(f"/r{index}/{{id:int}}", endpoint, methods=["GET"], name=f"r{index}")


def _add_static_route(app: Covet, index: int) -> None:
    body = f"static {index}"

    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(body)

    app.add_route(f"/static{index}", endpoint, methods=["GET"], name=f"static{index}")


app = build()
_SIZES = {"app_1": 1, "app_500": 500}


def __getattr__(name: str) -> Covet:
    """Build ``app_1`` and ``app_500`` on first access.

    Each is served by its own worker; building them at import would put all
    three apps' routes in the memory of the worker measured for ``app``.
    """
    if name not in _SIZES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    built = globals()[name] = build(_SIZES[name])
    return built
