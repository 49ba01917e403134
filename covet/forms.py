"""HTML forms on the typed-handler schemas: validate a form post, re-render it with errors.

::

    from covet.forms import HTMLForm

    class NoteIn(BaseModel):
        title: Annotated[str, Field(min_length=1, max_length=200)]
        body: str = ""

    @app.post("/notes")
    async def create(request: Request) -> Response:
        form = await HTMLForm.validate(request, NoteIn)
        if not form.is_valid:
            return templates.render(request, "form.html", {"form": form}, status_code=422)
        note = await Note.objects.create(**form.data.model_dump())
        ...

The schema is the same pydantic model or msgspec Struct a JSON handler
validates with. What differs is the answer to invalid input: an API client
gets a 422 JSON list, a browser gets its page again, with a sentence under
each field ("This field is required.") and the values it typed, never its
password. In a template, ``form.errors.title`` lists a field's messages,
``form.non_field_errors`` the others and ``form.value("title")`` is what to
put back in the input.

A typed handler gets the same object by annotation, valid or not, instead of
an automatic 422: ``async def create(request: Request, form: HTMLForm[NoteIn])``.

CSRF is unchanged: the middleware checks the token before the handler runs,
the token field never reaches the schema (so ``extra="forbid"`` models work)
and the re-rendered template calls ``csrf_input()`` as the first render did.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from covet.exceptions import ImproperlyConfigured
from covet.params.engines import (
    FieldShape,
    Validator,
    default_library,
    get_engine,
    is_model_type,
    libraries_in,
)
from covet.params.errors import ErrorList, ValidationFailed
from covet.params.markers import Depends
from covet.requests import Request  # noqa: TC001 - read_form's annotation, read at run time

if typing.TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ("NON_FIELD_ERRORS", "FormErrors", "HTMLForm", "error_message")

#: The key of the errors that belong to no one field (a model validator's, say).
NON_FIELD_ERRORS = "__all__"

T = TypeVar("T")

#: Error codes (pydantic's; the msgspec engine maps onto them) to the sentence a
#: person reads. ``{name}`` is filled from the error's ``ctx``.
_MESSAGES: dict[str, str] = {
    "missing": "This field is required.",
    "string_too_short": "Enter at least {min_length} characters.",
    "string_too_long": "Enter at most {max_length} characters.",
    "too_short": "Choose at least {min_length} items.",
    "too_long": "Choose at most {max_length} items.",
    "string_type": "Enter text.",
    "string_pattern_mismatch": "Enter a valid value.",
    "int_type": "Enter a whole number.",
    "int_parsing": "Enter a whole number.",
    "int_from_float": "Enter a whole number.",
    "float_type": "Enter a number.",
    "float_parsing": "Enter a number.",
    "decimal_type": "Enter a number.",
    "decimal_parsing": "Enter a number.",
    "decimal_max_digits": "Enter a number with at most {max_digits} digits.",
    "decimal_max_places": "Enter a number with at most {decimal_places} decimal places.",
    "finite_number": "Enter a finite number.",
    "bool_type": "Choose yes or no.",
    "bool_parsing": "Choose yes or no.",
    "greater_than": "Enter a value greater than {gt}.",
    "greater_than_equal": "Enter a value greater than or equal to {ge}.",
    "less_than": "Enter a value less than {lt}.",
    "less_than_equal": "Enter a value less than or equal to {le}.",
    "multiple_of": "Enter a multiple of {multiple_of}.",
    "enum": "Select a valid choice.",
    "literal_error": "Select a valid choice.",
    "date_type": "Enter a valid date.",
    "date_parsing": "Enter a valid date.",
    "date_from_datetime_parsing": "Enter a valid date.",
    "date_from_datetime_inexact": "Enter a valid date.",
    "datetime_type": "Enter a valid date and time.",
    "datetime_parsing": "Enter a valid date and time.",
    "datetime_from_date_parsing": "Enter a valid date and time.",
    "time_type": "Enter a valid time.",
    "time_parsing": "Enter a valid time.",
    "timezone_aware": "Enter a date and time with a time zone.",
    "timezone_naive": "Enter a date and time without a time zone.",
    "uuid_type": "Enter a valid UUID.",
    "uuid_parsing": "Enter a valid UUID.",
    "url_type": "Enter a valid URL.",
    "url_parsing": "Enter a valid URL.",
    "url_scheme": "Enter a valid URL.",
    "list_type": "Enter a list of values.",
    "extra_forbidden": "This field is not expected.",
    "is_instance_of": "Upload a file.",
    "none_required": "Leave this field empty.",
}
#: The codes whose message the application wrote (a validator's ``ValueError``).
_OWN_MESSAGE = ("value_error", "assertion_error")
_OWN_PREFIXES = ("Value error, ", "Assertion failed, ")


def error_message(error: Mapping[str, Any]) -> str:
    """Return the sentence a person reads for one validation error.

    A message the application wrote (a ``ValueError`` raised by a validator)
    is kept as it is; the library's own ones become sentences such as "This
    field is required." or "Enter at most 200 characters.".

    Args:
        error: One error, ``{"type", "loc", "msg", "ctx"}`` as
            :class:`~covet.params.RequestValidationError` lists them.

    Returns:
        The message.
    """
    code = str(error.get("type", ""))
    msg = str(error.get("msg", ""))
    ctx = error.get("ctx") or {}
    if code in _OWN_MESSAGE:
        own = ctx.get("error")
        if own is not None and str(own):
            return str(own)
        for prefix in _OWN_PREFIXES:
            msg = msg.removeprefix(prefix)
        return msg or "Enter a valid value."
    template = _MESSAGES.get(code)
    if template is None:
        return msg or "Enter a valid value."
    if code in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        return "This field is required." if code == "string_too_short" else "Choose an item."
    try:
        text = template.format_map({key: _plain(value) for key, value in ctx.items()})
    except (KeyError, IndexError, ValueError):
        return msg or "Enter a valid value."
    # "Enter at most 1 characters." reads wrong: use the singular for a limit of one.
    return text.replace(" 1 characters.", " 1 character.").replace(" 1 items.", " 1 item.")


def _placed(error: Mapping[str, Any], field: str | None) -> list[tuple[str | None, str]]:
    """Return ``(field, message)`` pairs for one error, spreading a validator's several messages.

    A validator may raise a ``ValueError`` carrying ``error_dict`` (field name to
    messages, as :class:`covet.db.ValidationError` and Django's do; ``"__all__"``
    is where it was raised) or ``messages`` (a list, as
    :class:`covet.auth.WeakPasswordError` does): each message is shown on its own.
    """
    raised = (error.get("ctx") or {}).get("error") if error.get("type") in _OWN_MESSAGE else None
    error_dict = getattr(raised, "error_dict", None)
    if isinstance(error_dict, Mapping):
        return [
            (field if key == NON_FIELD_ERRORS else str(key), str(message))
            for key, messages in error_dict.items()
            for message in messages
        ]
    messages = getattr(raised, "messages", None)
    if isinstance(messages, list) and messages:
        return [(field, str(message)) for message in messages]
    return [(field, error_message(error))]


def _plain(value: Any) -> Any:
    """Show ``2.0`` as ``2``: bounds come back as floats from the constraints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class FormErrors(dict[str, list[str]]):
    """Messages by field name, plus :data:`NON_FIELD_ERRORS` for the rest.

    A field without errors reads as an empty list, so templates can loop
    without checking: ``{% for message in form.errors.title %}``. (Jinja
    reads ``form.errors.title`` as ``form.errors["title"]`` because a dict
    has no such attribute; a field named like a dict method, ``items`` or
    ``values``, needs ``form.errors["items"]``.)
    """

    def __missing__(self, key: str) -> list[str]:
        return []

    def add(self, field: str | None, message: str) -> None:
        """Add ``message`` to ``field`` (None: a non-field error)."""
        self.setdefault(field or NON_FIELD_ERRORS, []).append(message)


class _Compiled:
    """What one schema needs per request, built once: its validator and fields."""

    __slots__ = ("fields", "library", "schema", "secret", "sequences", "validator")

    def __init__(self, schema: Any, library: str | None) -> None:
        if not is_model_type(schema) or typing.get_origin(schema) is not None:
            raise ImproperlyConfigured(
                f"HTMLForm needs a model class (a pydantic model, msgspec Struct, dataclass or "
                f"TypedDict), not {schema!r}. Declare the form's fields in one."
            )
        if library is None:
            found = libraries_in(schema)
            library = next(iter(found)) if len(found) == 1 else default_library()
        engine = get_engine(library)
        self.schema = schema
        self.library = library
        self.validator: Validator = engine.validator(schema, {}, text=True)
        shapes: list[FieldShape] = engine.fields(schema)
        self.fields = tuple(shape.name for shape in shapes)
        self.sequences = frozenset(shape.name for shape in shapes if shape.sequence)
        self.secret = frozenset(_secret_fields(schema, self.fields))


def _secret_fields(schema: Any, names: Iterable[str]) -> Iterable[str]:
    """Yield the fields never sent back: passwords and pydantic ``SecretStr`` fields."""
    model_fields = getattr(schema, "model_fields", None)
    for name in names:
        if "password" in name.lower():
            yield name
    if isinstance(model_fields, dict):
        for name, info in model_fields.items():
            kinds = (info.annotation, *typing.get_args(info.annotation))  # SecretStr | None
            if any(getattr(kind, "__name__", "") in ("SecretStr", "SecretBytes") for kind in kinds):
                yield info.alias or name


_COMPILED: dict[tuple[Any, str | None], _Compiled] = {}


def _compiled(schema: Any, library: str | None) -> _Compiled:
    key = (schema, library)
    found = _COMPILED.get(key)
    if found is None:
        found = _COMPILED[key] = _Compiled(schema, library)
    return found


def _csrf_field(request: Request) -> str:
    state = request.scope.get("covet.csrf")
    return str(getattr(state, "field_name", "csrf_token"))


class HTMLForm(Generic[T]):
    """A form: what was submitted, whether it is valid, the data and the errors.

    Make a bound one from a request with :meth:`validate`; make an empty one
    for the first display with ``HTMLForm(NoteIn)``, or ``HTMLForm(NoteIn,
    initial={"title": note.title})`` to edit existing data.

    Args:
        schema: The model class: a pydantic model, msgspec Struct, dataclass
            or TypedDict.
        initial: Values shown before anything is submitted.
        secret: More field names never sent back to the browser (fields
            whose name contains ``password`` and pydantic ``SecretStr``
            fields never are).
        library: ``"pydantic"`` or ``"msgspec"``, for dataclasses and
            TypedDicts (default: the model's own library, else pydantic when
            installed).

    Attributes:
        schema: The model class.
        data: The validated model instance; None until the form is valid.
        errors: The messages by field (:class:`FormErrors`).
        values: The submitted (or initial) values to show again, by field
            name, without the secret fields, the CSRF token and files.
        bound: Whether the form holds a submission.
    """

    __slots__ = (
        "_compiled",
        "_data",
        "_hidden",
        "bound",
        "errors",
        "raw_errors",
        "schema",
        "values",
    )

    def __init__(
        self,
        schema: type[T],
        *,
        initial: Mapping[str, Any] | None = None,
        secret: Iterable[str] = (),
        library: str | None = None,
    ) -> None:
        compiled = _compiled(schema, library)
        self._compiled = compiled
        self.schema = schema
        self._data: T | None = None
        self.bound = False
        self.errors = FormErrors()
        #: The errors as the library reported them (``type``, ``loc``, ``msg``...).
        self.raw_errors: ErrorList = []
        self._hidden = frozenset(secret)
        hidden = compiled.secret | self._hidden
        self.values: dict[str, Any] = {
            key: value for key, value in (initial or {}).items() if key not in hidden
        }

    @classmethod
    async def validate(
        cls,
        request: Request,
        schema: type[T],
        *,
        secret: Iterable[str] = (),
        library: str | None = None,
    ) -> HTMLForm[T]:
        """Read the request's form (urlencoded or multipart) and validate it as ``schema``.

        An empty input counts as absent, as for ``Form()`` parameters, so a
        required field left empty is "This field is required."; a field the
        model lists as a ``list[...]`` collects every repetition. Uploaded
        files reach the model as :class:`~covet.datastructures.UploadFile`.

        Args:
            request: The request; its body is read under the usual limits
                (413 past them, 400 for a malformed multipart body).
            schema: The model class.
            secret: See :class:`HTMLForm`.
            library: See :class:`HTMLForm`.

        Returns:
            The bound form; check :attr:`is_valid`.
        """
        form = cls(schema, secret=secret, library=library)
        await form._bind(request)
        return form

    async def _bind(self, request: Request) -> None:
        compiled = self._compiled
        submitted = await request.form()
        skip = _csrf_field(request)
        hidden = compiled.secret | self._hidden
        data: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for key in dict.fromkeys(submitted.keys()):
            if key == skip:
                continue
            found = [item for item in submitted.getlist(key) if item != ""]
            texts = [item for item in submitted.getlist(key) if isinstance(item, str)]
            if key not in hidden and texts:
                values[key] = texts if key in compiled.sequences else texts[-1]
            if found:
                data[key] = found if key in compiled.sequences else found[-1]
        self.bound = True
        self.values = values
        try:
            self._data = compiled.validator.python(data)
        except ValidationFailed as failed:
            self._data = None
            self.raw_errors = failed.errors
            for error in failed.errors:
                loc = error.get("loc") or []
                field = str(loc[0]) if loc else None
                for where, message in _placed(error, field):
                    self.errors.add(where, message)

    @property
    def is_valid(self) -> bool:
        """Whether the form was submitted and has no errors (none added since either)."""
        return self.bound and self._data is not None and not self.errors

    @property
    def data(self) -> T:
        """The validated model instance.

        Raises:
            ImproperlyConfigured: When the form is not valid: check
                :attr:`is_valid` first.
        """
        if self._data is None or not self.is_valid:
            raise ImproperlyConfigured(
                f"HTMLForm[{getattr(self.schema, '__name__', self.schema)}].data is read on a "
                "form that is not valid. Check form.is_valid first."
            )
        return self._data

    @property
    def non_field_errors(self) -> list[str]:
        """The messages that belong to no one field (a model validator's, say)."""
        return self.errors[NON_FIELD_ERRORS]

    def value(self, name: str, default: Any = "") -> Any:
        """Return what to show in field ``name``: the submitted or initial value, else ``default``.

        Secret fields (passwords) are always ``default``.
        """
        return self.values.get(name, default)

    def add_error(self, field: str | None, message: str) -> None:
        """Add an error found after validation (a taken email, say); the form turns invalid.

        Args:
            field: The field it belongs to, or None for a non-field error.
            message: The sentence to show.
        """
        self.errors.add(field, message)

    def __repr__(self) -> str:
        name = getattr(self.schema, "__name__", repr(self.schema))
        state = "valid" if self.is_valid else ("invalid" if self.bound else "unbound")
        return f"<HTMLForm[{name}] {state}>"

    @classmethod
    def __covet_depends__(cls, annotation: Any) -> Depends:
        """Inject ``HTMLForm[Model]`` into a typed handler: the form, valid or not, never a 422.

        Called once, when the route is registered (see
        :mod:`covet.params.signature`), to build the dependency.

        Raises:
            ImproperlyConfigured: When the annotation names no model.
        """
        args = typing.get_args(annotation)
        if len(args) != 1:
            raise ImproperlyConfigured(
                f"Annotate the parameter HTMLForm[YourModel], not {annotation!r}: covet needs "
                "the model to validate the form with."
            )
        schema = args[0]
        _compiled(schema, None)  # refuse a non-model now, at registration

        async def read_form(request: Request) -> HTMLForm[Any]:
            return await cls.validate(request, schema)

        read_form.__qualname__ = f"HTMLForm[{getattr(schema, '__name__', schema)}]"
        return Depends(read_form)
