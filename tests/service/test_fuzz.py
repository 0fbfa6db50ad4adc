"""Property-based fuzzing of every operation in /openapi.json against a real server: no 5xx,
and every answer, errors included, is what the published schema declares (status and body)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]

pytestmark = pytest.mark.slow  # generated requests against a real service


def test_no_generated_request_makes_the_server_fail(live_server):
    schema = schemathesis.openapi.from_url(f"{live_server}/openapi.json")
    statuses: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8

    for operation in operations:
        fuzz(operation, statuses)
    print(f"fuzzed {len(operations)} operations: {sum(statuses.values())} requests, {statuses}")
    assert sum(statuses.values()) >= 100


def fuzz(operation, statuses: dict[int, int]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def no_server_error(case):
        response = case.call(timeout=30)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, f"{operation.label}: {response.text[:300]}"
        case.validate_response(response, checks=CHECKS)

    no_server_error()
