"""HTTP benchmark: bare ASGI vs Starlette vs covet under uvicorn."""
