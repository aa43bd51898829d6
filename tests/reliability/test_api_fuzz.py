"""Schemathesis against the daemon's own /api/openapi.json: no 5xx, every error in JSON format.

The daemon (`fuzz_daemon`) and its schema (`api_schema`) are tests/reliability/conftest.py's,
shared with test_api_conformance.py."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from twilio.request_validator import RequestValidator

from providers.twilio.webhook import SIGNATURE_HEADER
from tests.peers.twilio import AUTH_TOKEN

# A bounded run for CI: this many generated requests per route, the same ones every run.
EXAMPLES_PER_ROUTE = 15

schema = schemathesis.pytest.from_fixture("api_schema")


def _is_error_format(body: Any, status: int) -> bool:
    return (
        isinstance(body, dict)
        and body.get("success") is False
        and body.get("error") == status
        and isinstance(body.get("message"), str)
        and bool(body["message"])
    )


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_ROUTE,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_never_answers_5xx_and_errors_are_json(
    case: schemathesis.Case, fuzz_daemon: dict[str, Any]
) -> None:
    response = case.call(
        base_url=fuzz_daemon["url"],
        headers={"Authorization": f"Bearer {fuzz_daemon['token']}"},
        timeout=10,
    )
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:
        content_type = response.headers.get("content-type") or [""]
        assert content_type[0].startswith("application/json"), response.text
        body = response.json()
        assert _is_error_format(body, response.status_code), body


# One more than SQLite's INTEGER holds: found by this fuzzing as an OverflowError (a 500) on
# every id, offset and cursor that had no upper bound.
TOO_BIG = 2**63


def _integer_inputs(spec: dict[str, Any]) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(method, path, where, name, body) for every integer path or query parameter and every
    integer field at the top of a JSON body in the OpenAPI document; `body` is a plausible
    request body, so a body field is judged by its own rule, not by its missing neighbours."""
    schemas = spec.get("components", {}).get("schemas", {})

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = schemas[node["$ref"].rsplit("/", 1)[-1]]
        return node

    def options(node: dict[str, Any]) -> list[dict[str, Any]]:
        node = resolve(node)
        return [node, *(resolve(option) for option in node.get("anyOf", []))]

    def plausible(node: dict[str, Any]) -> Any:
        kinds = {option.get("type"): option for option in options(node)}
        if "integer" in kinds or "number" in kinds:
            return 1
        if "array" in kinds:
            return [plausible(kinds["array"].get("items", {}))]
        if "object" in kinds:
            fields = kinds["object"].get("properties", {})
            return {name: plausible(field) for name, field in fields.items()}
        enum = next((option["enum"] for option in options(node) if "enum" in option), None)
        return enum[0] if enum else "+33612345678"

    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            body_node = content.get("application/json", {}).get("schema")
            body = plausible(body_node) if body_node else None
            for parameter in operation.get("parameters", []):
                integer = any(o.get("type") == "integer" for o in options(parameter["schema"]))
                if parameter["in"] in ("path", "query") and integer:
                    found.append((method, path, parameter["in"], parameter["name"], body))
            for name, node in (resolve(body_node or {}).get("properties") or {}).items():
                if any(option.get("type") == "integer" for option in options(node)):
                    found.append((method, path, "body", name, {**body, name: TOO_BIG}))
    return found


def test_numbers_too_big_for_the_database_are_refused_naming_the_field(
    fuzz_daemon: dict[str, Any],
) -> None:
    http: httpx.Client = fuzz_daemon["http"]
    auth = {"Authorization": f"Bearer {fuzz_daemon['token']}"}
    spec = http.get(f"{fuzz_daemon['url']}/api/openapi.json").json()
    inputs = _integer_inputs(spec)
    assert len(inputs) > 20, "the OpenAPI document lists the API's integer inputs"
    wrong = []
    for method, path, where, name, body in inputs:

        def fill(match: re.Match[str], name: str = name, where: str = where) -> str:
            return str(TOO_BIG) if where == "path" and match.group(1) == name else "1"

        response = http.request(
            method.upper(),
            fuzz_daemon["url"] + re.sub(r"\{([^}]+)\}", fill, path),
            params={name: TOO_BIG} if where == "query" else None,
            json=body,
            headers=auth,
        )
        answer = response.json()
        named = [error.get("field") for error in answer.get("errors", [])]
        # Parameters are checked before the route runs; a body field may be judged after an
        # earlier refusal (a role, a missing row), but never with a 5xx.
        if (where != "body" and f"{where}.{name}" not in named) or response.status_code >= 500:
            wrong.append(f"{method.upper()} {path} {where}.{name}: {response.status_code} {answer}")
    assert not wrong, "\n".join(wrong)


class _Form(dict[str, list[str]]):
    """Every value of every field, in the `getall` shape Twilio's RequestValidator reads."""

    def getall(self, key: str) -> list[str]:
        return self[key]


TWILIO_FIELDS = ["MessageSid", "SmsSid", "From", "To", "Body", "MessageStatus", "ErrorCode"]
# No lone surrogates: a form on the wire is UTF-8.
any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
field_names = st.one_of(st.sampled_from(TWILIO_FIELDS), any_text)
field_values = st.one_of(
    st.sampled_from(["STOP", " stop. ", "HELP", "START", "+33612345678", "delivered", "30003"]),
    any_text,
)
forms = st.lists(st.tuples(field_names, field_values), max_size=10)


@given(form=forms, path=st.sampled_from(["/sms", "/twilio/status"]))
@settings(max_examples=60, derandomize=True, deadline=None)
def test_signed_webhooks_with_any_form_answer_200_or_a_clear_400(
    fuzz_daemon: dict[str, Any], form: list[tuple[str, str]], path: str
) -> None:
    url = fuzz_daemon["url"] + path
    grouped = _Form()
    for name, value in form:
        grouped.setdefault(name, []).append(value)
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, grouped)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    body = urlencode(form).encode()
    http: httpx.Client = fuzz_daemon["http"]
    signed = http.post(url, content=body, headers={**headers, SIGNATURE_HEADER: signature})
    assert signed.status_code in (200, 400), signed.text
    if signed.status_code == 400:
        assert _is_error_format(signed.json(), 400), signed.text
    elif path == "/sms":
        ElementTree.fromstring(signed.text)  # TwiML that parses, whatever the Body held
    forged = http.post(url, content=body, headers={**headers, SIGNATURE_HEADER: signature[::-1]})
    assert forged.status_code == 403 and _is_error_format(forged.json(), 403), forged.text
