"""The site in covet: the app ``covet new`` generates, with the three benchmark endpoints added.

The runner generates a real project with ``covet new benchsite`` and puts it
on ``sys.path``; this module imports its ``app`` unchanged (its middleware:
security headers, database-backed sessions, authentication with the login
throttle, CSRF, the error pages, the health routes and Prometheus metrics)
and includes one router with the endpoints the other sites have, written as
a covet user would, over the scaffold's own ``Note`` model.
"""

from __future__ import annotations

from benchsite.app import app
from benchsite.models import Note, User

from benchmarks.fullstack import common
from covet import HTTPException, JSONResponse, RedirectResponse, Request, Response, Router
from covet.auth import login_required
from covet.templates import Templates

templates = Templates(directory=common.TEMPLATES)
bench = Router(prefix="/fs")


def own_notes(user: User):  # type: ignore[no-untyped-def]
    return Note.objects.filter(author=user).order_by("-created_at", "-id")


@bench.get("/page", name="fs_page")
@login_required(login_url="login")
async def page(request: Request) -> Response:
    notes = own_notes(request.user)
    total = await notes.count()
    rows = await notes[: common.PAGE_SIZE]
    context = {"user_email": request.user.email, "total": total, "notes": rows}
    return templates.render(request, "page_covet.html", context)


@bench.get("/notes.json", name="fs_notes_json")
async def notes_json(request: Request) -> JSONResponse:
    if not request.user.is_authenticated:
        raise HTTPException(401, "Log in first.")
    rows = await own_notes(request.user)[: common.PAGE_SIZE]
    return JSONResponse([note.to_dict() for note in rows])


@bench.post("/notes", name="fs_note_create")
@login_required(login_url="login")
async def create_note(request: Request) -> Response:
    form = await request.form()
    title = str(form.get("title", "")).strip()
    if not title or len(title) > 200:
        raise HTTPException(422, "Give the note a title.")
    await Note.objects.create(author=request.user, title=title, body=str(form.get("body", "")))
    return RedirectResponse("/fs/page", status_code=303)


app.include_router(bench)


async def setup() -> None:
    """Create the two users and the reader's notes (the tables come from ``covet migrate``)."""
    from covet.db import Database

    database = Database(common.database_url())
    await database.connect()
    try:
        reader = await User.create_user(email=common.READER, password=common.PASSWORD)
        await User.create_user(email=common.WRITER, password=common.PASSWORD)
        for title, body, created in common.seed_notes():
            await Note.objects.create(author=reader, title=title, body=body, created_at=created)
    finally:
        await database.disconnect()


if __name__ == "__main__":
    import asyncio
    import sys

    if sys.argv[1:] == ["setup"]:
        asyncio.run(setup())
