"""A bounded schemathesis run against the running app's own /openapi.json.

Every operation gets a few dozen generated requests, valid and invalid; the checks are: no 5xx,
only documented status codes and content types, and bodies matching the documented schemas.
No weights are configured, so scripts come from the fast fallback and the run stays short.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.integration

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


MAX_EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def api_schema(deploy_app, tmp_path_factory):
    app = deploy_app(model_path=str(tmp_path_factory.mktemp("no-weights") / "none"))
    return schemathesis.openapi.from_url(f"{app.url}/openapi.json")


def test_every_operation_answers_within_its_documented_contract(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answers_within_contract(case):
            case.call_and_validate(checks=CHECKS, timeout=60)

        answers_within_contract()
