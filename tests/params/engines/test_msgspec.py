"""msgspec's error messages, mapped onto the error codes clients already parse."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import pytest

from covet.params.engines import get_engine
from covet.params.engines.msgspec import translate
from covet.params.errors import ValidationFailed
from tests.params.models import Color, SUser, SUserInDB


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Object missing required field `name` - at `$.items[0]`",
            {"type": "missing", "loc": ["items", 0, "name"], "msg": "Field required"},
        ),
        (
            "Object contains unknown field `z`",
            {"type": "extra_forbidden", "loc": ["z"], "msg": "Extra inputs are not permitted"},
        ),
        (
            "Expected `int`, got `str` - at `$.a.b`",
            {"type": "int_type", "loc": ["a", "b"], "msg": "Expected `int`, got `str`"},
        ),
        (
            "Expected `int` >= 1 - at `$.n`",
            {
                "type": "greater_than_equal",
                "loc": ["n"],
                "msg": "Input should be greater than or equal to 1",
                "ctx": {"ge": 1},
            },
        ),
        (
            "Expected `float` < 2.5",
            {
                "type": "less_than",
                "loc": [],
                "msg": "Input should be less than 2.5",
                "ctx": {"lt": 2.5},
            },
        ),
        (
            "Expected `str` of length >= 3",
            {
                "type": "string_too_short",
                "loc": [],
                "msg": "Expected `str` of length >= 3",
                "ctx": {"min_length": 3},
            },
        ),
        (
            "Expected `array` of length <= 2 - at `$.tags`",
            {
                "type": "too_long",
                "loc": ["tags"],
                "msg": "Expected `array` of length <= 2",
                "ctx": {"max_length": 2},
            },
        ),
        (
            "Invalid enum value 'green' - at `$.color`",
            {"type": "enum", "loc": ["color"], "msg": "Invalid enum value 'green'"},
        ),
        (
            "Expected `str` matching regex '^a' - at `$[...]`",
            {
                "type": "string_pattern_mismatch",
                "loc": ["..."],
                "msg": "Expected `str` matching regex '^a'",
            },
        ),
        (
            "Something new",
            {"type": "value_error", "loc": [], "msg": "Something new"},
        ),
    ],
)
def test_messages_become_pydantic_shaped_errors(message: str, expected: dict[str, Any]) -> None:
    assert translate(message) == [expected]


def test_a_known_input_is_kept_for_top_level_errors() -> None:
    (error,) = translate("Expected `int`, got `str`", "abc")
    assert error["input"] == "abc"


def test_validator_converts_text_and_reports_failures() -> None:
    engine = get_engine("msgspec")
    as_text = engine.validator(int, {"ge": 1}, text=True)
    assert as_text.python("5") == 5
    with pytest.raises(ValidationFailed) as failed:
        as_text.python("0")
    assert failed.value.errors[0]["type"] == "greater_than_equal"
    strict = engine.validator(int, {}, text=False)
    with pytest.raises(ValidationFailed):
        strict.python("5")  # JSON semantics: a string is not a number
    with pytest.raises(ValidationFailed) as failed:
        strict.json(b"")
    assert failed.value.errors[0]["type"] == "json_invalid"
    enum = engine.validator(Annotated[Color, msgspec.Meta(description="c")], {}, text=True)
    assert enum.python("red") is Color.red


def test_serializer_builds_the_declared_type() -> None:
    serialize = get_engine("msgspec").serializer(SUser)
    assert serialize(SUserInDB(name="a", password_hash="h")) == b'{"name":"a"}'
    assert serialize(SUser(name="b")) == b'{"name":"b"}'
    assert serialize({"name": "c", "other": 1}) == b'{"name":"c"}'
    with pytest.raises(ValidationFailed):
        serialize({"other": 1})
