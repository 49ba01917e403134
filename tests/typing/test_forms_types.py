"""Static type pins for covet.forms (checked by mypy; nothing runs under pytest)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, assert_type

from pydantic import BaseModel

from covet.forms import FormErrors, HTMLForm

if TYPE_CHECKING:
    from covet.requests import Request


class NoteIn(BaseModel):
    title: str


async def check_form(request: Request) -> None:
    form = await HTMLForm.validate(request, NoteIn)
    assert_type(form, HTMLForm[NoteIn])
    assert_type(form.data, NoteIn)
    assert_type(form.is_valid, bool)
    assert_type(form.errors, FormErrors)
    assert_type(form.non_field_errors, list[str])
    assert_type(form.value("title"), Any)
    assert_type(HTMLForm(NoteIn, initial={"title": "x"}), HTMLForm[NoteIn])
