"""Audit: a stored claim names the registry version it was decided with, and deciding its event
again against the registry as recorded when the claim was made gives the same decision, after
the policy has been amended so that the current registry decides otherwise."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
from stdnum.cn import uscc

MATTER = "film.city_promotion"
# Alone in its year and its park: no other document of the suite or of policies/ competes.
YEAR, REGION = 1987, "510500-GX"
LEDGER_FIELDS = ("amount", "previously_granted")


def document(amount: int) -> dict[str, Any]:
    serial = uuid.uuid4().hex[:10]
    return {
        "id": f"audit-{serial}",
        "doc_no": f"审计测试〔{YEAR}〕{serial}号",
        "title": "审计重放测试文件",
        "issuer": "泸州市人民政府",
        "level": "city",
        "jurisdiction": [REGION],
        "effective_from": f"{YEAR}-01-01",
        "effective_to": f"{YEAR}-12-31",
        "source": {"title": "测试"},
        "clauses": [
            {
                "id": "film",
                "ref": "（一）",
                "matter": MATTER,
                "beneficiaries": ["enterprise"],
                "amount": {"kind": "fixed", "value": amount},
                "quote": f"给予 {amount} 元奖励",
            }
        ],
    }


def without_ledger(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in LEDGER_FIELDS}


async def test_a_stored_claim_is_decided_again_alike_with_its_registry_version(
    admin: httpx.AsyncClient, stack: Any
) -> None:
    policy = document(11111)
    created = await admin.post(
        "/v1/admin/policies", json={"reason": "审计测试", "document": policy}
    )
    assert created.status_code == 201, created.text
    await stack.refresh_snapshot()
    code = f"91510500MA{uuid.uuid4().int % 10**7:07d}"
    applicant = {"id": code + uscc.calc_check_digit(code), "kind": "enterprise",
                 "name": "泸州审计重放有限公司", "region": REGION}  # fmt: skip
    event = {"matter": MATTER, "date": f"{YEAR}-06-01", "subject": f"AUDIT{uuid.uuid4().hex[:8]}"}
    submitted = await admin.post(
        "/v1/claims",
        json={"applicant": applicant, "event": event},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert submitted.status_code == 201, submitted.text
    assert (submitted.json()["status"], submitted.json()["amount"]) == ("granted", "11111.00")

    # The policy amended: a new version, a new registry.
    policy["clauses"][0]["amount"]["value"] = 22222
    amended = await admin.put(
        f"/v1/admin/policies/{policy['id']}",
        json={"reason": "提高标准", "document": policy},
        headers={"If-Match": created.headers["etag"]},
    )
    assert amended.status_code == 200, amended.text
    await stack.refresh_snapshot()

    # What the audit reads: the stored claim, its registry version, decision and instant.
    stored = (await admin.get(f"/v1/claims/{submitted.json()['id']}")).json()
    version, decision = stored["registry_version"], stored["decision"]
    made_at = stored["created_at"]
    assert decision["granted"]["policy_id"] == policy["id"]

    # The registry as recorded at that instant is the version the claim names.
    async with httpx.AsyncClient(base_url=stack.registry_url) as registry:
        then = await registry.get("/internal/v1/snapshot", params={"as_of": made_at})
        now = await registry.get("/internal/v1/snapshot")
    assert then.status_code == now.status_code == 200
    assert then.json()["version"] == version
    assert now.json()["version"] != version

    calculation = {"applicant": applicant, "events": [event]}
    current = (await admin.post("/v1/calculations", json=calculation)).json()
    assert current["registry_version"] != version
    assert current["results"][0]["entitlement"] == "22222.00"  # today's registry differs

    replayed = await admin.post("/v1/calculations", json=calculation | {"registry_as_of": made_at})
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["registry_version"] == version
    result = replayed.json()["results"][0]
    assert without_ledger(result) == without_ledger(decision)
    # Only the ledger moved since: it now holds this claim's own grant.
    assert result["previously_granted"] == stored["amount"] == "11111.00"
    assert Decimal(result["amount"]) + Decimal(result["previously_granted"]) == Decimal(
        decision["amount"]
    ) + Decimal(decision["previously_granted"])
