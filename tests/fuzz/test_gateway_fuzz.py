"""Schemathesis against the gateway's OpenAPI document, over real HTTP, as the admin tenant.

Every operation of the document, every default check of schemathesis 4 (in its examples,
coverage and fuzzing phases, with positive and negative data), plus ours: every 4xx and 5xx
answer is an RFC 9457 `application/problem+json` document. No 5xx at all: schemathesis'
`not_a_server_error` is among the default checks.

The document is built from the gateway app when this module is imported, so that pytest
collects one test per operation; `test_the_live_gateway_serves_the_fuzzed_document` proves it is
the document the live gateway serves at /openapi.json. (Loading it lazily from the live server
through `schemathesis.pytest.from_fixture` does not work with pytest 9.2: schemathesis 4.32 sets
`Function._nodeid` there, which pytest 9.2 no longer has.)

The batch endpoint is fuzzed with both bodies it declares: `{"cases": [...]}` and NDJSON (one
case a line, serialized here). By contract a bad case does not fail the batch: it gets a problem
object in its place. So an NDJSON line that breaks the case schema must come back as a problem
item, and everything else negative must be rejected as usual (`bad_batch_lines_yield_problems`).

`FUZZ_EXAMPLES` sets how many examples each operation gets in the fuzzing phase: 10 by default,
300 under `make fuzz`.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import re
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import schemathesis
from fuzz.live_stack import ADMIN_KEY, LiveStack
from gateway.config import Settings as GatewaySettings
from gateway.contract.calculations import CalculationRequest
from gateway.main import create_app as create_gateway
from hypothesis import HealthCheck, settings
from pydantic import BaseModel, ValidationError
from schemathesis import Case, CheckContext, Response
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import ignored_auth, negative_data_rejection

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
PROBLEM_JSON = "application/problem+json"
NDJSON = "application/x-ndjson"
BATCH = ("POST", "/v1/calculations/batch")
KEY_MAX = 255  # the longest Idempotency-Key the document allows
SCHEMA_REF = re.compile(r"^#/components/schemas/(?P<name>[^/]+)$")

# Where the models of the document live: a model the document names without defining (see
# `test_every_reference_in_the_document_resolves`) is looked up here, and the fuzzed copy of the
# document gets its real schema, so that the operation is still fuzzed with every media type.
CONTRACT_MODULES = (
    "gateway.contract.calculations",
    "gateway.contract.claims",
    "gateway.contract.policies",
    "gateway.contract.reference",
)


def gateway_document() -> dict[str, Any]:
    """The gateway's OpenAPI document; building the app connects to nothing."""
    settings = GatewaySettings(database_url="postgresql+asyncpg://unused/unused")
    return create_gateway(settings).openapi()


def schema_refs(node: Any) -> Iterator[str]:
    """Every `$ref` in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from schema_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from schema_refs(value)


def unresolved_refs(document: dict[str, Any]) -> list[str]:
    components = document.get("components", {}).get("schemas", {})
    unresolved = set()
    for ref in schema_refs(document):
        match = SCHEMA_REF.match(ref)
        if match is None or match["name"] not in components:
            unresolved.add(ref)
    return sorted(unresolved)


def completed(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of the document with the contract models it names but lacks filled in."""
    document = copy.deepcopy(document)
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for ref in unresolved_refs(document):
        match = SCHEMA_REF.match(ref)
        model = contract_model(match["name"]) if match is not None else None
        if model is not None:
            components[match["name"]] = model.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
    return document


def contract_model(name: str) -> type[BaseModel] | None:
    for module in CONTRACT_MODULES:
        model = getattr(importlib.import_module(module), name, None)
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model
    return None


DOCUMENT = gateway_document()
# What a request the document does not allow may be answered with: schemathesis's own list, and
# 413 for a JSON batch of more cases than it holds (the document sends those to NDJSON).
REJECTED = [
    *("400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"),
    "5xx",
]
schema = schemathesis.openapi.from_dict(
    completed(DOCUMENT),
    config=schemathesis.Config.from_dict(
        {
            "headers": {"Authorization": f"Bearer {ADMIN_KEY}"},
            "checks": {
                # Schema-valid requests the contract still refuses: ids that do not exist (404),
                # conflicts with stored state (409, 412), and rules no schema can state, such as
                # a 统一社会信用代码 check character, a region or matter the registry does not
                # know, or a control character in free text (422).
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "404", "409", "412", "422"]
                },
                "negative_data_rejection": {"expected-statuses": REJECTED},
                # A missing If-Match is 428 Precondition Required (RFC 6585), not 400.
                "missing_required_header": {
                    "expected-statuses": ["400", "401", "403", "406", "422", "428"]
                },
            },
        }
    ),
)


@schemathesis.serializer(NDJSON)
def ndjson_lines(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    """The batch's NDJSON body; the document gives the schema of one line, one case."""
    return json.dumps(value, ensure_ascii=False).encode() + b"\n"


@schemathesis.deserializer(NDJSON)
def ndjson_text(ctx: schemathesis.DeserializationContext, response: Response) -> Any:
    """The document types the streamed NDJSON answer as a string."""
    return response.content.decode("utf-8")


def bind_idempotency_key(case: Case) -> None:
    """By contract one Idempotency-Key goes with one body (another body under the same key is
    a 422), while Hypothesis draws keys and bodies independently and repeats short keys: so a
    drawn key is made specific to its body. A key too long to be valid is sent as drawn."""
    for name, key in list((case.headers or {}).items()):
        if name.lower() != "idempotency-key" or not isinstance(key, str) or len(key) > KEY_MAX:
            continue
        body = json.dumps(case.body, sort_keys=True, default=repr).encode()
        tag = f"-{zlib.crc32(body):08x}"
        case.headers[name] = key[: KEY_MAX - len(tag)] + tag


def is_batch(case: Case) -> bool:
    return (case.operation.method.upper(), case.operation.path) == BATCH


def batch_items(response: Response) -> list[Any]:
    """The answers of a batch: `{"items": [...]}` or one NDJSON line each."""
    media_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    if media_type == NDJSON:
        return [json.loads(line) for line in response.content.splitlines() if line.strip()]
    return list(json.loads(response.content)["items"])


def is_problem(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and {"type", "title", "status"} <= item.keys()
        and isinstance(item["status"], int)
        and 400 <= item["status"] < 500
    )


def problem_json_errors(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx/5xx answer is `application/problem+json` with type, title and its status."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    media_type = content_type.split(";", 1)[0].strip().lower()
    assert media_type == PROBLEM_JSON, (
        f"{response.status_code} answered with Content-Type {content_type!r}, "
        f"not {PROBLEM_JSON}: {response.text[:300]!r}"
    )
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"the problem document is not JSON: {response.text[:300]!r}") from exc
    assert isinstance(body, dict), f"the problem document is not an object: {body!r}"
    missing = [name for name in ("type", "title", "status") if name not in body]
    assert not missing, f"the problem document lacks {missing}: {body!r}"
    assert body["status"] == response.status_code, (
        f"the problem document says status {body['status']!r}, the response is "
        f"{response.status_code}"
    )
    return None


def bad_batch_lines_yield_problems(
    ctx: CheckContext, response: Response, case: Case
) -> bool | None:
    """A batch whose cases break the schema of a calculation request, one sent as an NDJSON
    line or several in a JSON `{"cases": [...]}` of 1 to 1,000: by contract each such case gets
    a problem object in its place and the batch goes on (200), so it is not the whole request
    that is rejected; every other negative batch must be rejected as usual."""
    meta = case.meta
    cases = batch_cases(case)
    only_cases_are_bad = (
        meta is not None
        and cases is not None
        and meta.is_negative_at(ParameterLocation.BODY)
        and not any(
            component.mode.is_negative
            for location, component in meta.components.items()
            if location != ParameterLocation.BODY
        )
    )
    if not only_cases_are_bad or cases is None:
        return negative_data_rejection(ctx, response, case)
    if response.status_code >= 400:
        return None
    items = batch_items(response)
    assert len(items) == len(cases), f"{len(cases)} cases sent, {len(items)} answers: {items!r}"
    for sent, item in zip(cases, items, strict=True):
        if not is_calculation_request(sent):
            assert is_problem(item), (
                f"the case {sent!r} breaks the schema of a calculation request, yet its answer"
                f" is not a problem object: {item!r}"
            )
    return None


def batch_cases(case: Case) -> list[Any] | None:
    """The cases of a batch whose only fault can be in its cases: one NDJSON line, or a JSON
    object of nothing but 1 to 1,000 cases."""
    if case.media_type == NDJSON:
        return [case.body]
    body = case.body
    if (
        case.media_type == "application/json"
        and isinstance(body, dict)
        and set(body) == {"cases"}
        and isinstance(body["cases"], list)
        and 1 <= len(body["cases"]) <= 1000
    ):
        return list(body["cases"])
    return None


def is_calculation_request(value: Any) -> bool:
    try:
        CalculationRequest.model_validate(value)
    except ValidationError:
        return False
    return True


def test_the_live_gateway_serves_the_fuzzed_document(stack: LiveStack) -> None:
    response = httpx.get(f"{stack.gateway_url}/openapi.json", timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == DOCUMENT


def test_every_reference_in_the_document_resolves() -> None:
    """Generated clients and schemathesis alike need every `$ref` to name a component."""
    assert unresolved_refs(DOCUMENT) == []


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_gateway_operation(case: Case, stack: LiveStack) -> None:
    headers: dict[str, str] = {}
    additional = [problem_json_errors]
    # The harness sends the admin key with every request, so schemathesis' ignored_auth check
    # cannot take it away; services/gateway/tests/integration/test_openapi_security.py calls
    # every operation without a key and proves each answers 401.
    excluded = [ignored_auth]
    bind_idempotency_key(case)
    if is_batch(case):
        # Half of the batches ask for the streamed NDJSON answer (chosen by the body, so that
        # Hypothesis replays a case exactly as it first ran it).
        if zlib.crc32(repr(case.body).encode()) % 2:
            headers["Accept"] = NDJSON
        additional.append(bad_batch_lines_yield_problems)
        excluded.append(negative_data_rejection)
    case.call_and_validate(
        base_url=stack.gateway_url,
        headers=headers or None,
        additional_checks=additional,
        excluded_checks=excluded,
        timeout=30,
    )
