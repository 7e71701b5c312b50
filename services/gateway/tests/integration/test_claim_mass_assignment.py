"""Mass assignment on claims: what a claim is worth, whose it is and how it stands are never read
from the client's body. A field the contract does not name is a 422 naming it, nothing is paid,
and the gateway and the calculator each refuse it on their own."""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from stdnum.cn import uscc
from testkit import free_port

Case = Callable[..., dict[str, Any]]
_applicants = itertools.count(1)

# (where, value): fields of a claim as answered, of a calculation request, or made up.
EXTRA_FIELDS = [
    pytest.param(("tenant",), "5a0c7a0e-2f65-4f4e-8d0a-3c1b9e6a7f10", id="tenant"),
    pytest.param(("tenant_id",), "5a0c7a0e-2f65-4f4e-8d0a-3c1b9e6a7f10", id="tenant_id"),
    pytest.param(("status",), "granted", id="status"),
    pytest.param(("amount",), "99999999.00", id="amount"),
    pytest.param(("entitlement",), "99999999.00", id="entitlement"),
    pytest.param(("previously_granted",), "0.00", id="previously_granted"),
    pytest.param(("id",), "0b8f9f7e-3c1a-4e0e-9a57-6f1f2b9c1d2e", id="id"),
    pytest.param(("registry_version",), "0" * 32, id="registry_version"),
    pytest.param(("registry_as_of",), "2016-01-01T00:00:00+08:00", id="registry_as_of"),
    pytest.param(("decision",), {"status": "eligible", "amount": "99999999.00"}, id="decision"),
    pytest.param(("applicant", "tenant"), "another", id="applicant.tenant"),
    pytest.param(("applicant", "verified"), True, id="applicant.verified"),
    pytest.param(("event", "amount"), "99999999.00", id="event.amount"),
    pytest.param(("event", "status"), "granted", id="event.status"),
]


def new_enterprise() -> dict[str, Any]:
    """An applicant of its own (a valid 统一社会信用代码), so its ledger starts empty."""
    body = f"91510500MA{uuid.uuid4().int % 10**6:06d}{next(_applicants) % 10}"
    return {"id": body + uscc.calc_check_digit(body), "kind": "enterprise", "name": "泸州赋值测试"}


def clean_claim(case: Case) -> dict[str, Any]:
    calculation = case()
    return {
        "applicant": {**calculation["applicant"], **new_enterprise()},
        "event": calculation["events"][0],
    }


def with_field(body: dict[str, Any], where: tuple[str, ...], value: Any) -> dict[str, Any]:
    sent = copy.deepcopy(body)
    target = sent
    for part in where[:-1]:
        target = target[part]
    target[where[-1]] = value
    return sent


def assert_names(response: httpx.Response, where: tuple[str, ...]) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert [e["loc"] for e in problem["errors"]] == [["body", *where]], problem
    assert ".".join(where) in problem["detail"], problem


@pytest.mark.parametrize(("where", "value"), EXTRA_FIELDS)
class TestClaimBodyExtras:
    async def test_is_422_naming_it_and_nothing_is_paid(
        self, where: tuple[str, ...], value: Any, admin: httpx.AsyncClient, case: Case, film: Any
    ) -> None:
        body = clean_claim(case)
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        refused = await admin.post(
            "/v1/claims", json=with_field(body, where, value), headers=headers
        )
        assert_names(refused, where)

        applicant = body["applicant"]["id"]
        listed = await admin.get("/v1/claims", params={"applicant_id": applicant})
        assert listed.status_code == 200, listed.text
        assert listed.json()["items"] == []
        calculation = {"applicant": body["applicant"], "events": [body["event"]]}
        ledger = (await admin.post("/v1/calculations", json=calculation)).json()["results"][0]
        assert (ledger["previously_granted"], ledger["amount"]) == ("0.00", "123456.00")
        # The key was not spent either: the body without the field is the first grant, made
        # for the caller and at the registry's amount, whatever the refused body said.
        paid = await admin.post("/v1/claims", json=body, headers=headers)
        assert paid.status_code == 201, paid.text
        claim = paid.json()
        assert (claim["status"], claim["amount"], claim["previously_granted"]) == (
            "granted", "123456.00", "0.00"
        )  # fmt: skip
        assert claim["tenant"] != value
        assert claim["id"] != value

    async def test_the_gateway_refuses_it_before_any_calculator(
        self,
        where: tuple[str, ...],
        value: Any,
        stack: Any,
        another_gateway: Callable[..., Any],
        client_for: Callable[..., httpx.AsyncClient],
        case: Case,
    ) -> None:
        """A gateway whose calculator is unreachable still answers 422, not 503: its own
        contract refuses the field; it does not count on the calculator to."""
        dead = f"http://127.0.0.1:{free_port()}"
        database = stack.gateway.state.settings.database_url
        async with (
            another_gateway(database_url=database, calculator_url=dead) as app,
            client_for(app) as client,
        ):
            body = with_field(clean_claim(case), where, value)
            response = await client.post(
                "/v1/claims", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
            )
        assert_names(response, where)

    async def test_the_calculator_refuses_it_too(
        self, where: tuple[str, ...], value: Any, stack: Any, case: Case, film: Any
    ) -> None:
        """Called as the gateway calls it, the calculator refuses the field on its own."""
        body = clean_claim(case)
        headers = {
            "X-Tenant-ID": "mass-assignment-test",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        async with httpx.AsyncClient(base_url=stack.calculator_url) as calculator:
            response = await calculator.post(
                "/v1/claims", json=with_field(body, where, value), headers=headers
            )
            assert_names(response, where)
            listed = await calculator.get(
                "/v1/claims",
                params={"applicant_id": body["applicant"]["id"]},
                headers={"X-Tenant-ID": "mass-assignment-test", "X-Visibility": "all"},
            )
        assert listed.status_code == 200, listed.text
        assert listed.json()["items"] == []
