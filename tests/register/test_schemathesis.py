"""Schemathesis against the register stub's OpenAPI document, with and without the IdP's signed
client assertion: generated requests (valid and mutated) never get a 500 and every error is
the documented `{"error", "error_description"}` body."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.register.conftest import assertion, bearer

EXAMPLES = 20  # per operation; each case is sent with and without authentication


def test_the_register_api_never_fails_and_errors_are_documented(app):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    seen: set[int] = set()
    def check(case, headers: dict) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error])
        seen.add(response.status_code)
        if response.status_code >= 400:
            body = response.json()
            assert isinstance(body["error"], str) and body["error"], body
            assert isinstance(body["error_description"], str)

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            check(case, bearer(assertion()))
            check(case, {})

        run()
    assert any(status < 300 for status in seen) and 401 in seen
