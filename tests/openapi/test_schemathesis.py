"""schemathesis against the example API: every check, bounded examples, no failure.

One exception, for form bodies only: every form value travels as text, so a
negative "type" mutation (a number or an object where a string is declared)
arrives as a valid string that no server can reject. Form operations skip
``negative_data_rejection`` and run every other check; JSON bodies, query,
path and header parameters run them all.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection

from tests.openapi.example import app

FORMS = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})

schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_document(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
    excluded = [negative_data_rejection] if case.media_type in FORMS else []
    case.call_and_validate(excluded_checks=excluded)  # type: ignore[arg-type]
