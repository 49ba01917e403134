"""The pydantic engine: lax text conversion, exact errors, filtering serialisation."""

from __future__ import annotations

import pytest

from covet.params.engines import encode_model, get_engine
from covet.params.errors import ValidationFailed
from tests.params.models import Item, SUser, User, UserInDB


def test_validator_errors_keep_pydantic_codes() -> None:
    engine = get_engine("pydantic")
    validator = engine.validator(int, {"ge": 1, "le": 3}, text=True)
    assert validator.python("2") == 2
    with pytest.raises(ValidationFailed) as failed:
        validator.python("9")
    assert failed.value.errors == [
        {
            "type": "less_than_equal",
            "loc": [],
            "msg": "Input should be less than or equal to 3",
            "input": "9",
            "ctx": {"le": 3},
        }
    ]
    body = engine.validator(Item, {}, text=False)
    assert body.json(b'{"name": "a", "price": 1}').name == "a"
    with pytest.raises(ValidationFailed) as failed:
        body.json(b'{"price": 1}')
    assert failed.value.errors[0]["loc"] == ["name"]


def test_serializer_leaves_out_undeclared_fields() -> None:
    class Row:
        name = "row"
        password_hash = "h"

    serialize = get_engine("pydantic").serializer(User)
    assert serialize(UserInDB(name="a", password_hash="h")) == b'{"name":"a"}'
    assert serialize(Row()) == b'{"name":"row"}'
    assert serialize({"name": "d", "password_hash": "h"}) == b'{"name":"d"}'
    with pytest.raises(ValidationFailed):
        serialize({"nom": "x"})


def test_fields_of_models_for_form_and_query_binding() -> None:
    shapes = get_engine("pydantic").fields(Item)
    assert [(s.name, s.sequence) for s in shapes] == [
        ("name", False),
        ("price", False),
        ("color", False),
        ("tags", True),
    ]


def test_model_instances_encode_without_a_response_model() -> None:
    assert encode_model(User(name="a")) == b'{"name":"a"}'
    assert encode_model(SUser(name="b")) == b'{"name":"b"}'
    assert encode_model({"name": "c"}) is None
