"""Every operation that takes an id, called by every kind of other tenant.

A claim belongs to the operator that submitted it: another operator gets 404, exactly as for
an id that does not exist. Admin operations refuse operators and auditors (403). Policies are
public to every tenant. A new operation with an id must be added to the table below.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

Case = Callable[..., dict[str, Any]]

# (method, path) → expected status for: the owner operator, another operator, an auditor.
EXPECTED: dict[tuple[str, str], tuple[int, int, int]] = {
    ("GET", "/v1/policies/{document_id}"): (200, 200, 200),
    ("GET", "/v1/policies/{document_id}/versions"): (200, 200, 200),
    ("PUT", "/v1/admin/policies/{document_id}"): (403, 403, 403),
    ("POST", "/v1/admin/policies/{document_id}/repeal"): (403, 403, 403),
    ("GET", "/v1/claims/{claim_id}"): (200, 404, 200),
    ("POST", "/v1/claims/{claim_id}/revoke"): (403, 403, 403),
    ("POST", "/v1/claims/{claim_id}/review"): (403, 403, 403),
    ("GET", "/v1/admin/tenants/{tenant_id}/keys"): (403, 403, 200),
    ("POST", "/v1/admin/tenants/{tenant_id}/keys"): (403, 403, 403),
    ("POST", "/v1/admin/tenants/{tenant_id}/keys/{key_id}/revoke"): (403, 403, 403),
    ("POST", "/v1/admin/tenants/{tenant_id}/disable"): (403, 403, 403),
    ("PUT", "/v1/admin/funds/{fund}"): (403, 403, 403),
}


async def tenant(admin: httpx.AsyncClient, role: str, region: str = "510500-CJ") -> dict[str, Any]:
    response = await admin.post(
        "/v1/admin/tenants",
        json={"name": f"矩阵-{uuid.uuid4().hex[:8]}", "role": role, "region": region},
    )
    body: dict[str, Any] = response.json()
    return body


async def test_every_id_taking_operation_as_every_other_tenant(
    admin: httpx.AsyncClient,
    as_key: Callable[[str], httpx.AsyncClient],
    case: Case,
    film: Any,
) -> None:
    document = (await admin.get("/openapi.json")).json()
    operations = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if "{" in path
    }
    assert operations == set(EXPECTED), "every operation with an id needs a row in EXPECTED"
    owner, other, auditor = (
        await tenant(admin, "operator"),
        await tenant(admin, "operator"),
        await tenant(admin, "auditor"),
    )
    calculation = case()
    claim_body = {"applicant": calculation["applicant"], "event": calculation["events"][0]}
    async with as_key(owner["api_key"]) as client:
        claim = (
            await client.post(
                "/v1/claims", json=claim_body, headers={"Idempotency-Key": uuid.uuid4().hex}
            )
        ).json()
    keys = (await admin.get(f"/v1/admin/tenants/{owner['id']}/keys")).json()["items"]
    ids = {
        "document_id": "luzhou-2015-33",
        "claim_id": claim["id"],
        "tenant_id": owner["id"],
        "key_id": keys[0]["id"],
        "fund": "市级专利资助资金",
    }
    missing_claim = (await admin.get(f"/v1/claims/{uuid.uuid4()}")).json()
    for (method, path), expected in sorted(EXPECTED.items()):
        url = path.format(**ids)
        for who, status in zip((owner, other, auditor), expected, strict=True):
            async with as_key(who["api_key"]) as client:
                response = await client.request(method, url, json={})
            assert response.status_code == status, f"{who['role']} {method} {url}: {response.text}"
            assert response.headers["content-type"].startswith(
                "application/json" if status < 400 else "application/problem+json"
            )
            if status == 404:
                body = response.json()
                assert {k: v for k, v in body.items() if k != "detail"} == {
                    k: v for k, v in missing_claim.items() if k != "detail"
                }
                assert body["detail"].replace(claim["id"], "ID").startswith("No claim 'ID'")
