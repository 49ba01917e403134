"""Embedded body members (several ``Body()`` parameters) when the document is not an object.

Regression: schemathesis sent ``null`` to a route with two embedded bodies; the
handler was called without its arguments (a 500) because a JSON ``null`` was
mistaken for "malformed, already reported".
"""

import json
from typing import Annotated

import pytest

from covet import Covet
from covet.params import Body
from covet.testing import TestClient
from tests.params.models import Item


@pytest.fixture
def client() -> TestClient:
    app = Covet(allowed_hosts=["testserver"])

    @app.put("/pair")
    async def pair(left: Annotated[Item, Body()], right: Annotated[Item, Body()]) -> dict[str, str]:
        return {"left": left.name, "right": right.name}

    return TestClient(app)


@pytest.mark.parametrize("document", ["null", "[]", "3", '"text"'])
def test_a_document_that_is_not_an_object_is_a_422(client: TestClient, document: str) -> None:
    response = client.put("/pair", content=document, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "type": "dict_type",
            "loc": ["body"],
            "msg": "Input should be a valid dictionary",
            "input": json.loads(document),
        }
    ]


def test_malformed_json_is_reported_once(client: TestClient) -> None:
    response = client.put("/pair", content="{", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert len(response.json()["detail"]) == 1
    assert response.json()["detail"][0]["type"] == "json_invalid"
