from __future__ import annotations

import re
import uuid

import pytest

from covet import Covet
from covet.convertors import (
    CONVERTOR_TYPES,
    Convertor,
    FloatConvertor,
    IntegerConvertor,
    PathConvertor,
    SlugConvertor,
    StringConvertor,
    UUIDConvertor,
    register_convertor,
)
from covet.exceptions import ImproperlyConfigured
from covet.testing import TestClient

UUID = "8a7f3c2e-1b4d-4e5f-9a6b-7c8d9e0f1a2b"


def _full(convertor: Convertor[object]) -> re.Pattern[str]:
    return re.compile(convertor.regex)


@pytest.mark.parametrize(
    ("convertor", "text", "value"),
    [
        (StringConvertor(), "hello", "hello"),
        (StringConvertor(), "caf\u00e9 au lait", "caf\u00e9 au lait"),
        (PathConvertor(), "a/b/c.txt", "a/b/c.txt"),
        (PathConvertor(), "", ""),
        (IntegerConvertor(), "0", 0),
        (IntegerConvertor(), "0042", 42),
        (FloatConvertor(), "2.5", 2.5),
        (FloatConvertor(), "3", 3.0),
        (UUIDConvertor(), UUID.upper(), uuid.UUID(UUID)),
        (SlugConvertor(), "my-first_post-2", "my-first_post-2"),
    ],
)
def test_convertor_accepts_and_converts(convertor, text, value):
    assert _full(convertor).fullmatch(text)
    assert convertor.convert(text) == value


@pytest.mark.parametrize(
    ("convertor", "text"),
    [
        (StringConvertor(), ""),
        (StringConvertor(), "a/b"),
        (IntegerConvertor(), "-1"),
        (IntegerConvertor(), "1.5"),
        (IntegerConvertor(), "12a"),
        (IntegerConvertor(), "9" * 4301),
        (FloatConvertor(), "1e5"),
        (FloatConvertor(), "nan"),
        (FloatConvertor(), "inf"),
        (FloatConvertor(), "-2.5"),
        (FloatConvertor(), "2."),
        (UUIDConvertor(), "8a7f3c2e1b4d4e5f9a6b7c8d9e0f1a2b"),
        (UUIDConvertor(), "not-a-uuid"),
        (SlugConvertor(), "has space"),
        (SlugConvertor(), "caf\u00e9"),
    ],
)
def test_convertor_regex_refuses(convertor, text):
    assert _full(convertor).fullmatch(text) is None


def test_float_overflow_is_refused_by_convert():
    with pytest.raises(ValueError, match="too large"):
        FloatConvertor().convert("9" * 400)


@pytest.mark.parametrize(
    ("convertor", "value", "text"),
    [
        (StringConvertor(), "abc", "abc"),
        (PathConvertor(), "css/a.css", "css/a.css"),
        (IntegerConvertor(), 7, "7"),
        (FloatConvertor(), 2.5, "2.5"),
        (FloatConvertor(), 3.0, "3"),
        (FloatConvertor(), 1e-7, "0.0000001"),
        (FloatConvertor(), 1e16, "10000000000000000"),
        (UUIDConvertor(), uuid.UUID(UUID), UUID),
        (UUIDConvertor(), UUID.upper(), UUID),
        (SlugConvertor(), "a-b_c", "a-b_c"),
    ],
)
def test_to_string_round_trips(convertor, value, text):
    assert convertor.to_string(value) == text
    assert _full(convertor).fullmatch(text)
    expected = uuid.UUID(str(value)) if isinstance(convertor, UUIDConvertor) else value
    assert convertor.convert(text) == expected


@pytest.mark.parametrize(
    ("convertor", "value"),
    [
        (StringConvertor(), ""),
        (StringConvertor(), "a/b"),
        (IntegerConvertor(), -1),
        (IntegerConvertor(), True),
        (IntegerConvertor(), "3"),
        (FloatConvertor(), float("nan")),
        (FloatConvertor(), float("inf")),
        (FloatConvertor(), -0.5),
        (FloatConvertor(), "1.5"),
        (UUIDConvertor(), 12),
        (SlugConvertor(), "a b"),
    ],
)
def test_to_string_refuses_bad_values(convertor, value):
    with pytest.raises(ValueError, match=r"path parameter|badly formed"):
        convertor.to_string(value)


def test_builtin_names():
    assert {"str", "path", "int", "float", "uuid", "slug"} <= set(CONVERTOR_TYPES)


class HexConvertor(Convertor[int]):
    regex = "[0-9a-f]+"

    def convert(self, value: str) -> int:
        return int(value, 16)

    def to_string(self, value: int) -> str:
        return format(value, "x")


@pytest.fixture
def hex_convertor():
    register_convertor("hex", HexConvertor())
    yield
    del CONVERTOR_TYPES["hex"]


def test_custom_convertor_routes_and_reverses(hex_convertor):
    app = Covet()

    @app.get("/colour/{value:hex}", name="colour")
    async def colour(request, value: int):
        return {"value": value}

    with TestClient(app) as client:
        assert client.get("/colour/ff").json() == {"value": 255}
        assert client.get("/colour/zz").status_code == 404
    assert app.url_path_for("colour", value=255) == "/colour/ff"


@pytest.mark.parametrize(
    ("name", "regex", "message"),
    [
        ("bad name", "[0-9]+", "not a valid identifier"),
        ("grouped", "([0-9]+)", "no capturing groups"),
        ("empty", "", "non-empty"),
        ("broken", "[0-9", "invalid regex"),
    ],
)
def test_register_convertor_validates(name, regex, message):
    convertor = HexConvertor()
    convertor.regex = regex  # type: ignore[misc]
    with pytest.raises(ImproperlyConfigured, match=message):
        register_convertor(name, convertor)
    assert name not in CONVERTOR_TYPES


def test_register_convertor_needs_an_instance():
    with pytest.raises(ImproperlyConfigured, match="not a Convertor instance"):
        register_convertor("hex", HexConvertor)  # type: ignore[arg-type]


def test_base_convertor_methods_are_abstract():
    with pytest.raises(NotImplementedError, match="convert"):
        Convertor[str]().convert("x")
    with pytest.raises(NotImplementedError, match="to_string"):
        Convertor[str]().to_string("x")
