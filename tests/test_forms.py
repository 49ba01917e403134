"""HTML forms: the typed-handler schemas validate a form post and keep what a re-render needs."""

from __future__ import annotations

import dataclasses
import datetime  # noqa: TC003 - pydantic reads the annotations at run time
import enum
import re
import uuid  # noqa: TC003 - as datetime
from typing import Annotated, Any, Literal

import msgspec
import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from covet import Covet, JSONResponse, Request
from covet.auth import WeakPasswordError
from covet.datastructures import UploadFile  # noqa: TC001 - as datetime
from covet.db import ValidationError
from covet.exceptions import ImproperlyConfigured
from covet.forms import NON_FIELD_ERRORS, FormErrors, HTMLForm, error_message
from covet.middleware import SessionMiddleware
from covet.middleware.csrf import CSRFMiddleware
from covet.params import Form
from covet.templates import Templates
from covet.testing import TestClient

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Everything(BaseModel):
    """One field per error kind a form meets."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=2, max_length=5)]
    age: Annotated[int, Field(ge=18, lt=130)] = 30
    score: Annotated[float, Field(gt=0, le=10, multiple_of=0.5)] = 1.0
    agree: bool = False
    color: Color = Color.RED
    size: Literal["s", "m"] = "s"
    born: datetime.date | None = None
    at: datetime.datetime | None = None
    ident: uuid.UUID | None = None
    code: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "ABC"
    tags: Annotated[list[int], Field(max_length=2)] = []


class Struct(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=2, max_length=5)]
    age: Annotated[int, msgspec.Meta(ge=18)] = 30
    color: Color = Color.RED
    password: str = ""

    def __post_init__(self) -> None:
        if self.name == "admin":
            raise ValueError("This name is reserved.")


class Signup(BaseModel):
    email: str
    password: str
    password_confirmation: str
    token: SecretStr | None = None

    @field_validator("password_confirmation")
    @classmethod
    def _passwords(cls, value: str, info: Any) -> str:
        password = info.data.get("password", "")
        errors: dict[str, list[str]] = {}
        if len(password) < 8:
            errors["password"] = ["Too short.", "Too simple."]
        if value != password:
            errors["password_confirmation"] = ["The two passwords differ."]
        if errors:
            raise ValidationError(errors)
        return value


class Range(BaseModel):
    low: int
    high: int

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError("The low end must not be above the high end.")
        return self


class Weak(BaseModel):
    password: str

    @field_validator("password")
    @classmethod
    def _strong(cls, value: str) -> str:
        raise WeakPasswordError(["This password is too short.", "This password is too common."])


class Upload(BaseModel):
    title: str
    image: UploadFile
    extra: list[UploadFile] = []


def _app(schema: Any, **options: Any) -> TestClient:
    app = Covet()

    @app.post("/")
    async def submit(request: Request) -> JSONResponse:
        form = await HTMLForm.validate(request, schema, **options)
        data = form.data if form.is_valid else None
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json")
        elif dataclasses.is_dataclass(data) and not isinstance(data, type):
            data = dataclasses.asdict(data)
        elif data is not None:
            data = msgspec.to_builtins(data)
        return JSONResponse(
            {"valid": form.is_valid, "errors": form.errors, "values": form.values, "data": data}
        )

    return TestClient(app)


def _post(client: TestClient, data: Any, **kwargs: Any) -> dict[str, Any]:
    response = client.post("/", data=data, **kwargs)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_a_valid_pydantic_form_gives_the_model() -> None:
    result = _post(
        _app(Everything), {"name": "Ann", "age": "40", "agree": "on", "tags": ["1", "2"]}
    )
    assert result["valid"] is True
    assert result["errors"] == {}
    assert result["data"]["age"] == 40 and result["data"]["agree"] is True
    assert result["data"]["tags"] == [1, 2]
    assert result["values"] == {"name": "Ann", "age": "40", "agree": "on", "tags": ["1", "2"]}


@pytest.mark.parametrize(
    ("field", "sent", "message"),
    [
        ("name", "", "This field is required."),
        ("name", "A", "Enter at least 2 characters."),
        ("name", "Annabel", "Enter at most 5 characters."),
        ("age", "old", "Enter a whole number."),
        ("age", "1.5", "Enter a whole number."),
        ("age", "17", "Enter a value greater than or equal to 18."),
        ("age", "130", "Enter a value less than 130."),
        ("score", "many", "Enter a number."),
        ("score", "0", "Enter a value greater than 0."),
        ("score", "11", "Enter a value less than or equal to 10."),
        ("score", "0.3", "Enter a multiple of 0.5."),
        ("agree", "perhaps", "Choose yes or no."),
        ("color", "green", "Select a valid choice."),
        ("size", "xl", "Select a valid choice."),
        ("born", "yesterday", "Enter a valid date."),
        ("at", "noon", "Enter a valid date and time."),
        ("ident", "nope", "Enter a valid UUID."),
        ("code", "abc", "Enter a valid value."),
        ("tags", ["1", "2", "3"], "Choose at most 2 items."),
        ("unknown", "x", "This field is not expected."),
    ],
)
def test_every_pydantic_error_kind_reads_as_a_sentence(field: str, sent: Any, message: str) -> None:
    data = {"name": "Ann", field: sent}
    result = _post(_app(Everything), data)
    assert result["valid"] is False
    assert result["errors"] == {field: [message]}
    assert result["values"][field] == sent  # what was typed comes back, even when wrong
    assert result["data"] is None


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({}, {"name": ["This field is required."]}),
        ({"name": "A"}, {"name": ["Enter at least 2 characters."]}),
        ({"name": "Annabel"}, {"name": ["Enter at most 5 characters."]}),
        ({"name": "Ann", "age": "old"}, {"age": ["Enter a whole number."]}),
        ({"name": "Ann", "age": "17"}, {"age": ["Enter a value greater than or equal to 18."]}),
        ({"name": "Ann", "color": "green"}, {"color": ["Select a valid choice."]}),
        ({"name": "Ann", "unknown": "x"}, {"unknown": ["This field is not expected."]}),
        ({"name": "admin"}, {NON_FIELD_ERRORS: ["This name is reserved."]}),
    ],
)
def test_every_msgspec_error_kind_reads_as_a_sentence(
    data: dict[str, str], errors: dict[str, list[str]]
) -> None:
    result = _post(_app(Struct), data)
    assert result["valid"] is False
    assert result["errors"] == errors


def test_a_valid_msgspec_form_gives_the_struct() -> None:
    result = _post(_app(Struct), {"name": "Ann", "age": "20", "color": "blue", "password": "pw"})
    assert result["valid"] is True
    assert result["data"] == {"name": "Ann", "age": 20, "color": "blue", "password": "pw"}
    assert result["values"] == {"name": "Ann", "age": "20", "color": "blue"}  # no password


def test_every_pydantic_error_is_reported_at_once_several_per_field() -> None:
    result = _post(_app(Everything), {"name": "A", "age": "x", "tags": ["a", "b"]})
    assert result["errors"] == {
        "name": ["Enter at least 2 characters."],
        "age": ["Enter a whole number."],
        "tags": ["Enter a whole number.", "Enter a whole number."],
    }


def test_passwords_and_secrets_are_never_sent_back() -> None:
    client = _app(Signup)
    result = _post(
        client,
        {"email": "ann@example.com", "password": "short", "password_confirmation": "other"},
    )
    assert result["values"] == {"email": "ann@example.com"}
    # A validator's error_dict puts each message under its own field, several per field.
    assert result["errors"] == {
        "password": ["Too short.", "Too simple."],
        "password_confirmation": ["The two passwords differ."],
    }
    good = "long enough"
    sent = {"email": "a@b.c", "password": good, "password_confirmation": good, "token": "t0k"}
    valid = _post(client, sent)
    assert valid["valid"] is True
    assert valid["values"] == {"email": "a@b.c"}  # SecretStr fields stay hidden too
    hidden = _post(_app(Range, secret=["low"]), {"low": "1", "high": "2"})
    assert hidden["values"] == {"high": "2"}


def test_a_validators_list_of_messages_gives_one_error_each() -> None:
    result = _post(_app(Weak), {"password": "x"})
    assert result["errors"] == {
        "password": ["This password is too short.", "This password is too common."]
    }


def test_model_validator_errors_are_non_field_errors() -> None:
    result = _post(_app(Range), {"low": "5", "high": "1"})
    assert result["errors"] == {NON_FIELD_ERRORS: ["The low end must not be above the high end."]}
    assert result["values"] == {"low": "5", "high": "1"}


@pytest.mark.parametrize("library", ["pydantic", "msgspec"])
def test_dataclasses_validate_with_either_library(library: str) -> None:
    @dataclasses.dataclass
    class Point:
        x: int
        y: int = 0

    result = _post(_app(Point, library=library), {"x": "nope"})
    assert result["errors"] == {"x": ["Enter a whole number."]}
    assert _post(_app(Point, library=library), {"x": "3"})["data"] == {"x": 3, "y": 0}


def test_file_fields_get_upload_objects_and_are_never_echoed() -> None:
    app = Covet()

    @app.post("/")
    async def submit(request: Request) -> JSONResponse:
        form = await HTMLForm.validate(request, Upload)
        if not form.is_valid:
            return JSONResponse({"errors": form.errors, "values": form.values}, status_code=422)
        data = form.data
        content = await data.image.read()
        return JSONResponse(
            {"file": data.image.filename, "size": len(content), "extra": len(data.extra)}
        )

    client = TestClient(app)
    files = [("image", ("me.png", b"\x89PNG")), ("extra", ("a.txt", b"a")), ("extra", ("b", b""))]
    sent = client.post("/", data={"title": "me"}, files=files)
    assert sent.json() == {"file": "me.png", "size": 4, "extra": 2}
    missing = client.post("/", data={"title": "me"}, files={"other": ("x", b"x")})
    assert missing.status_code == 422
    assert missing.json()["errors"] == {"image": ["This field is required."]}
    text = client.post("/", data={"title": "me", "image": "not a file"}, files={"x": ("x", b"")})
    assert text.json()["errors"] == {"image": ["Upload a file."]}
    assert text.json()["values"] == {"title": "me", "image": "not a file"}


def test_an_unbound_form_shows_initial_values_and_no_errors() -> None:
    form = HTMLForm(Range, initial={"low": 1, "high": 2})
    assert not form.bound and not form.is_valid
    assert form.errors == {} and form.errors["low"] == [] and form.non_field_errors == []
    assert form.value("low") == 1 and form.value("nothing") == "" and form.value("x", None) is None
    assert repr(form) == "<HTMLForm[Range] unbound>"
    assert HTMLForm(Signup, initial={"password": "x"}).values == {}  # never shown, even initially
    with pytest.raises(ImproperlyConfigured, match=r"Check form.is_valid first"):
        _ = form.data


def test_errors_added_after_validation_make_the_form_invalid() -> None:
    app = Covet()

    @app.post("/")
    async def submit(request: Request) -> JSONResponse:
        form = await HTMLForm.validate(request, Range)
        assert form.is_valid and repr(form) == "<HTMLForm[Range] valid>"
        form.add_error("low", "Taken.")
        form.add_error(None, "Try again.")
        return JSONResponse({"valid": form.is_valid, "errors": form.errors, "r": repr(form)})

    answer = TestClient(app).post("/", data={"low": "1", "high": "2"}).json()
    assert answer == {
        "valid": False,
        "errors": {"low": ["Taken."], NON_FIELD_ERRORS: ["Try again."]},
        "r": "<HTMLForm[Range] invalid>",
    }


def test_a_schema_that_is_no_model_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"HTMLForm needs a model class"):
        HTMLForm(int)
    with pytest.raises(ImproperlyConfigured, match=r"HTMLForm needs a model class"):
        HTMLForm(list[Range])


def test_typed_handlers_get_the_form_valid_or_not() -> None:
    app = Covet()

    @app.post("/ranges")
    async def create(request: Request, form: HTMLForm[Range], page: int = 1) -> JSONResponse:
        status = 200 if form.is_valid else 422
        return JSONResponse({"errors": form.errors, "page": page}, status_code=status)

    client = TestClient(app)
    ok = client.post("/ranges?page=2", data={"low": "1", "high": "2"})
    assert ok.status_code == 200 and ok.json() == {"errors": {}, "page": 2}
    bad = client.post("/ranges", data={"low": "x"})
    assert bad.status_code == 422
    assert bad.json()["errors"] == {
        "low": ["Enter a whole number."],
        "high": ["This field is required."],
    }
    # Other parameters keep the automatic 422 JSON.
    assert client.post("/ranges?page=x", data={}).json()["detail"][0]["loc"] == ["query", "page"]
    # A Form() model still answers 422 JSON: HTMLForm is what opts out.
    strict = Covet()

    @strict.post("/")
    async def json_errors(data: Annotated[Range, Form()]) -> Range:
        return data

    assert TestClient(strict).post("/", data={"low": "x"}).status_code == 422


def test_htmlform_without_a_model_is_refused_at_registration() -> None:
    app = Covet()
    with pytest.raises(ImproperlyConfigured, match=r"HTMLForm\[YourModel\]"):

        @app.post("/")
        async def create(form: HTMLForm) -> None:  # type: ignore[type-arg]
            return None


def test_rerender_keeps_values_and_csrf_and_the_token_never_reaches_the_schema(tmp_path) -> None:
    (tmp_path / "form.html").write_text(
        '<form method="post">{{ csrf_input() }}'
        "{% for message in form.non_field_errors %}<p class=all>{{ message }}</p>{% endfor %}"
        "<input name=name value=\"{{ form.value('name') }}\">"
        "{% for message in form.errors.name %}<p class=error>{{ message }}</p>{% endfor %}"
        "<input name=age value=\"{{ form.value('age') }}\">"
        "{% for message in form.errors.age %}<p class=error>{{ message }}</p>{% endfor %}"
        "</form>"
    )
    templates = Templates(tmp_path)
    app = Covet()

    @app.get("/")
    async def show(request: Request) -> Any:
        return templates.render(request, "form.html", {"form": HTMLForm(Everything)})

    @app.post("/")
    async def submit(request: Request) -> Any:
        form = await HTMLForm.validate(request, Everything)  # extra="forbid"
        status = 200 if form.is_valid else 422
        return templates.render(request, "form.html", {"form": form}, status_code=status)

    app.add_middleware(SessionMiddleware, secret_key="secret")
    app.add_middleware(CSRFMiddleware)
    client = TestClient(app)
    token = _CSRF.search(client.get("/").text)
    assert token is not None
    invalid = client.post("/", data={"csrf_token": token.group(1), "name": "<b>", "age": "x"})
    assert invalid.status_code == 422
    assert 'value="&lt;b&gt;"' in invalid.text  # escaped, as every template value
    assert "<p class=error>Enter a whole number.</p>" in invalid.text
    assert _CSRF.search(invalid.text) is not None  # the form can be sent again
    assert "csrf_token" not in invalid.text.split("</form>")[0].split("value=")[-1]
    valid = client.post("/", data={"csrf_token": token.group(1), "name": "Ann"})
    assert valid.status_code == 200  # the token was no unknown field
    assert client.post("/", data={"name": "Ann"}).status_code == 403  # CSRF still enforced


def test_form_errors_is_a_dict_with_empty_defaults() -> None:
    errors = FormErrors()
    assert errors["title"] == [] and "title" not in errors and not errors
    errors.add("title", "Bad.")
    errors.add(None, "Worse.")
    assert errors == {"title": ["Bad."], NON_FIELD_ERRORS: ["Worse."]}


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ({"type": "value_error", "msg": "Value error, Nope.", "ctx": {}}, "Nope."),
        ({"type": "assertion_error", "msg": "Assertion failed, No.", "ctx": {}}, "No."),
        ({"type": "value_error", "msg": "", "ctx": {}}, "Enter a valid value."),
        (
            {"type": "string_too_long", "msg": "x", "ctx": {"max_length": 1}},
            "Enter at most 1 character.",
        ),
        ({"type": "too_short", "msg": "x", "ctx": {"min_length": 1}}, "Choose an item."),
        ({"type": "greater_than", "msg": "x", "ctx": {}}, "x"),
        ({"type": "some_new_code", "msg": "Library text."}, "Library text."),
        ({"type": "some_new_code"}, "Enter a valid value."),
    ],
)
def test_error_message_edge_cases(error: dict[str, Any], message: str) -> None:
    assert error_message(error) == message


class _User:
    is_authenticated = True

    def has_perms(self, permissions: Any) -> bool:
        return "notes.add" in permissions


class _Anonymous:
    is_authenticated = False


def _with_user(app: Any) -> Any:
    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            known = (b"x-user", b"ann") in scope["headers"]
            scope = {**scope, "user": _User() if known else _Anonymous()}
        await app(scope, receive, send)

    return asgi


def test_login_required_and_requires_guard_typed_form_handlers() -> None:
    from covet.auth import login_required, requires

    app = Covet()

    @app.post("/ranges")
    @login_required
    async def create(request: Request, form: HTMLForm[Range]) -> dict[str, object]:
        return {"valid": form.is_valid}

    @app.post("/perm")
    @requires("notes.add")
    async def with_permission(request: Request, form: HTMLForm[Range], page: int = 1) -> Any:
        return {"errors": form.errors, "page": page}

    client = TestClient(_with_user(app))
    ann = {"X-User": "ann"}
    assert client.post("/ranges", data={"low": "1", "high": "2"}, headers=ann).json() == {
        "valid": True
    }
    anonymous = client.post("/ranges", data={"low": "1"}, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/ranges"
    checked = client.post("/perm?page=2", data={"low": "x", "high": "1"}, headers=ann).json()
    assert checked == {"errors": {"low": ["Enter a whole number."]}, "page": 2}


class StructUpload(msgspec.Struct):
    title: str
    image: UploadFile


def test_msgspec_file_fields_and_text_in_their_place() -> None:
    app = Covet()

    @app.post("/")
    async def submit(request: Request) -> dict[str, object]:
        form = await HTMLForm.validate(request, StructUpload)
        if form.is_valid:
            return {"file": form.data.image.filename}
        return {"errors": form.errors, "values": form.values}

    @app.post("/typed")
    async def typed(data: Annotated[StructUpload, Form()]) -> dict[str, object]:
        return {"file": data.image.filename}

    client = TestClient(app)
    assert client.post("/", data={"title": "t"}, files={"image": ("a.png", b"x")}).json() == {
        "file": "a.png"
    }
    text = client.post("/", data={"title": "t", "image": "text"}, files={"z": ("z", b"")}).json()
    assert text == {
        "errors": {"image": ["Upload a file."]},
        "values": {"title": "t", "image": "text"},
    }
    missing = client.post("/", data={"title": "t"}).json()
    assert missing["errors"] == {"image": ["This field is required."]}
    # The typed Form() model answers a 422 (it was a 500 before msgspec's hook raised TypeError).
    refused = client.post("/typed", data={"title": "t", "image": "text"}, files={"z": ("z", b"")})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["type"] == "is_instance_of"
