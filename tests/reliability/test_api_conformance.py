"""The API document is the API: every answer of the daemon is one /api/openapi.json lists.

Schemathesis generates requests from the daemon's own document (tests/reliability/conftest.py's
`fuzz_daemon` and `api_schema`) and checks each answer against it: its status is listed for
the operation, its content type is the one listed, the headers listed as required are there
and its body fits the listed schema. A generated client (openapi-generator, openapi-typescript)
would otherwise meet a status or a body it was never told of.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# A bounded run for CI, as test_api_fuzz.py: this many generated requests per route (besides
# schemathesis' coverage cases: each boundary and each missing input once), the same each run.
EXAMPLES_PER_ROUTE = 10
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def customer_token(fuzz_daemon: dict[str, Any]) -> str:
    """A customer's login token: the routes that check a login's role answer it otherwise.

    Made with the API token, which no per-client limit counts, so the generated logins that
    use up [limits] logins cannot refuse this one.
    """
    http: httpx.Client = fuzz_daemon["http"]
    auth = {"Authorization": f"Bearer {fuzz_daemon['token']}"}
    account = {"username": "conformance-customer", "password": "a long enough password"}
    created = http.post(f"{fuzz_daemon['url']}/api/v1/accounts", json=account, headers=auth)
    assert created.status_code == 201, created.text
    login = http.post(f"{fuzz_daemon['url']}/api/v1/accounts/login", json=account, headers=auth)
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])


def test_the_document_is_valid_openapi(api_schema: schemathesis.BaseSchema) -> None:
    api_schema.validate()  # against the OpenAPI 3 meta-schema
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 50, "every route of the API is in the document"


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_ROUTE,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    # No shrinking: the first answer off the document is reported as it came.
    phases=[Phase.explicit, Phase.generate],
)
def test_every_answer_is_in_the_api_document(
    case: schemathesis.Case, fuzz_daemon: dict[str, Any], customer_token: str
) -> None:
    # Schemathesis fills the Authorization header with made-up tokens, or leaves it out to see
    # the route refuse. A missing one stays missing, so the door's 401 is checked; a made-up
    # one is sent as the API token (the route itself answers) and as a customer's login (the
    # role checks answer, and the routes a login may not call).
    callers = [{}]
    if "Authorization" in (case.headers or {}):
        callers = [
            {"Authorization": f"Bearer {token}"} for token in (fuzz_daemon["token"], customer_token)
        ]
    for headers in callers:
        response = case.call(base_url=fuzz_daemon["url"], headers=headers, timeout=10)
        case.validate_response(response, checks=CONFORMANCE)
