"""The endpoints, as async views over Django's async ORM API."""

from __future__ import annotations

from django.contrib.auth import aauthenticate, alogin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render

from benchmarks.fullstack import common
from benchmarks.fullstack.django_site.models import Note


def own_notes(user_id: int):  # type: ignore[no-untyped-def]
    return Note.objects.filter(author_id=user_id).order_by("-created_at", "-id")


async def page(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponseRedirect("/fs/login")
    notes = own_notes(user.pk)
    total = await notes.acount()
    rows = [note async for note in notes[: common.PAGE_SIZE]]
    context = {"user_email": user.email, "total": total, "notes": rows}
    return render(request, "page.html", context, using="jinja2")


async def notes_json(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    if not user.is_authenticated:
        return JsonResponse({"detail": "Log in first."}, status=401)
    rows = [
        common.note_dict(n.id, n.title, n.body, n.created_at)
        async for n in own_notes(user.pk)[: common.PAGE_SIZE]
    ]
    return JsonResponse(rows, safe=False)


async def create_note(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405)
    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponseRedirect("/fs/login")
    title = request.POST.get("title", "").strip()
    if not title or len(title) > 200:
        return HttpResponse("Give the note a title.", status=422)
    await Note.objects.acreate(
        author_id=user.pk,
        title=title,
        body=request.POST.get("body", ""),
        created_at=common.utc_now(),
    )
    return _see_other("/fs/page")


def _see_other(location: str) -> HttpResponse:
    response = HttpResponse(status=303)
    response["Location"] = location
    return response


async def login(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        user = await aauthenticate(
            request,
            username=request.POST.get("email", ""),
            password=request.POST.get("password", ""),
        )
        if user is None:
            return HttpResponse("Wrong email or password.", status=400)
        await alogin(request, user)
        return _see_other("/fs/page")
    return render(request, "login.html", using="jinja2")
