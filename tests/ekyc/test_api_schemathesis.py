"""Schemathesis against the onboarding API's own OpenAPI document: for every documented
operation, requests generated from the schema (valid ones and mutated ones) never get a 500,
and every error is one of the API's documented JSON errors."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from ekyc import api as ekyc_api

EXAMPLES = 25  # per operation and generation mode


def test_the_onboarding_api_never_fails_and_errors_are_documented(make_app, tmp_path):
    app = make_app(MEDIA_DIR=str(tmp_path / "media"), REGISTER_URL="http://127.0.0.1:9")
    schema = schemathesis.openapi.from_wsgi("/api/onboarding/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7  # consent, cases, documents, challenge, selfie, submit, status
    seen: set[int] = set()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call()
            case.validate_response(response, checks=[not_a_server_error])
            seen.add(response.status_code)
            if response.status_code >= 400:
                body = response.json()
                assert body["error"] in ekyc_api.ERROR_CODES, (case.operation.label, body)
                assert isinstance(body.get("error_description", ""), str)

        run()
    assert any(status < 300 for status in seen) and any(status >= 400 for status in seen)
