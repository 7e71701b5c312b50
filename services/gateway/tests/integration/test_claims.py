"""Claims through the gateway: granted once, topped up, replayed, scoped, revoked."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from stdnum.cn import ric

Case = Callable[..., dict[str, Any]]


def claim_body(case: Case, subject: str | None = None, **applicant: Any) -> dict[str, Any]:
    calculation = case()
    event = calculation["events"][0]
    if subject is not None:
        event["subject"] = subject
    return {"applicant": {**calculation["applicant"], **applicant}, "event": event}


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def operator(admin: httpx.AsyncClient, region: str = "510500-CJ") -> str:
    # Real tenant names are Chinese: they travel between services in headers too.
    response = await admin.post(
        "/v1/admin/tenants",
        json={
            "name": f"长江经开区经发局-{uuid.uuid4().hex[:8]}",
            "role": "operator",
            "region": region,
        },
    )
    api_key: str = response.json()["api_key"]
    return api_key


class TestSubmit:
    async def test_first_claim_is_granted_then_duplicate(
        self, admin: httpx.AsyncClient, case: Case, film: Any
    ) -> None:
        body = claim_body(case)
        first = await admin.post("/v1/claims", json=body, headers=key())
        assert first.status_code == 201, first.text
        assert (first.json()["status"], first.json()["amount"]) == ("granted", "123456.00")
        where = first.headers["location"]
        assert where == f"/v1/claims/{first.json()['id']}"
        assert (await admin.get(where)).json()["id"] == first.json()["id"]
        second = await admin.post("/v1/claims", json=body, headers=key())
        assert second.status_code == 201
        assert (second.json()["status"], second.json()["amount"]) == ("duplicate", "0.00")
        assert second.json()["duplicate_of"] == [first.json()["id"]]

    async def test_same_key_replays_byte_for_byte(
        self, admin: httpx.AsyncClient, case: Case, film: Any
    ) -> None:
        body, headers = claim_body(case), key()
        first = await admin.post("/v1/claims", json=body, headers=headers)
        again = await admin.post("/v1/claims", json=body, headers=headers)
        assert again.status_code == first.status_code == 201
        assert again.content == first.content

    async def test_two_idempotency_keys_are_422(
        self, admin: httpx.AsyncClient, case: Case, film: Any
    ) -> None:
        """Which one would the retry send? The first had been used and the second passed over."""
        response = await admin.post(
            "/v1/claims",
            json=claim_body(case),
            headers=[("Idempotency-Key", "two-a"), ("Idempotency-Key", "two-b")],
        )
        assert response.status_code == 422, response.text
        assert [e["loc"] for e in response.json()["errors"]] == [["header", "Idempotency-Key"]]

    async def test_an_event_problem_is_told_at_the_claims_event(
        self, admin: httpx.AsyncClient, case: Case, film: Any
    ) -> None:
        """A claim has one `event`: its problems are not told at a calculation's `events[0]`."""
        body = claim_body(case, subject="- -")
        body["event"]["matter"] = "no.such.matter"
        response = await admin.post("/v1/claims", json=body, headers=key())
        assert response.status_code == 422, response.text
        assert sorted(e["loc"] for e in response.json()["errors"]) == [
            ["body", "event", "matter"],
            ["body", "event", "subject"],
        ]

    async def test_same_key_other_body_is_422(
        self, admin: httpx.AsyncClient, case: Case, film: Any
    ) -> None:
        headers = key()
        await admin.post("/v1/claims", json=claim_body(case), headers=headers)
        response = await admin.post("/v1/claims", json=claim_body(case), headers=headers)
        assert response.status_code == 422
        assert response.json()["type"].endswith("idempotency-key-reused")

    async def test_missing_key_is_400(self, admin: httpx.AsyncClient, case: Case) -> None:
        response = await admin.post("/v1/claims", json=claim_body(case))
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"

    async def test_concurrent_submissions_grant_once(
        self,
        admin: httpx.AsyncClient,
        as_key: Callable[[str], httpx.AsyncClient],
        case: Case,
        film: Any,
    ) -> None:
        body = claim_body(case)
        tenants = [as_key(await operator(admin)) for _ in range(3)] + [admin]
        responses = await asyncio.gather(
            *[tenants[i % 4].post("/v1/claims", json=body, headers=key()) for i in range(40)]
        )
        for client in tenants[:3]:
            await client.aclose()
        assert all(r.status_code == 201 for r in responses), [
            r.text for r in responses if r.status_code != 201
        ]
        granted = [r.json() for r in responses if r.json()["status"] == "granted"]
        assert len(granted) == 1
        assert sum(float(r.json()["amount"]) for r in responses) == 123456.0

    async def test_same_company_written_two_ways_is_one_applicant(
        self, admin: httpx.AsyncClient, case: Case, film: Any
    ) -> None:
        subject = f"FILM-{uuid.uuid4().hex[:6]}"
        first = await admin.post("/v1/claims", json=claim_body(case, subject), headers=key())
        spaced = claim_body(case, subject, id="９１５１０５００-ma62b8xy4f")
        second = await admin.post("/v1/claims", json=spaced, headers=key())
        assert first.json()["status"] == "granted"
        assert second.json()["status"] == "duplicate"

    @pytest.mark.parametrize("by", ["the same tenant", "another tenant"])
    async def test_look_alike_name_under_another_code_is_held_for_review(
        self,
        by: str,
        admin: httpx.AsyncClient,
        as_key: Callable[[str], httpx.AsyncClient],
        case: Case,
        film: Any,
    ) -> None:
        subject = f"FILM-{uuid.uuid4().hex[:6]}"
        await admin.post(
            "/v1/claims", json=claim_body(case, subject, name="泸州示例科技有限公司"), headers=key()
        )
        other = claim_body(case, subject, id="91510500MA62B8XY5J", name="泸州示例科技有限责任公司")
        if by == "the same tenant":
            response = await admin.post("/v1/claims", json=other, headers=key())
        else:
            async with as_key(await operator(admin, region="510500")) as city:
                response = await city.post("/v1/claims", json=other, headers=key())
        body = response.json()
        assert response.status_code == 201, response.text
        assert (body["status"], body["amount"]) == ("needs_review", "0.00")
        # Another tenant's claims are counted, not shown.
        shown = [item["name"] for item in body["review"]["similar_to"]]
        expected = (["泸州示例科技有限公司"], 0) if by == "the same tenant" else ([], 1)
        assert (shown, body["review"]["in_other_tenants"]) == expected

    async def test_an_event_after_today_in_china_is_weighed_but_not_claimed(
        self, admin: httpx.AsyncClient, case: Case, stack: Any
    ) -> None:
        """A future date opened a payment now, and each future year a fresh yearly cap."""
        document = {
            "id": f"open-{uuid.uuid4().hex[:8]}", "title": "未规定截止日期的测试文件",
            "issuer": "泸州市人民政府", "level": "city", "jurisdiction": ["510524"],
            "effective_from": "2020-01-01", "source": {"title": "测试"},
            "clauses": [{"id": "award", "ref": "（一）", "matter": "film.city_promotion",
                         "beneficiaries": ["enterprise"], "amount": {"kind": "fixed", "value": 700},
                         "quote": "给予 700 元奖励"}],
        }  # fmt: skip
        created = await admin.post(
            "/v1/admin/policies", json={"reason": "测试", "document": document}
        )
        assert created.status_code == 201, created.text
        await stack.refresh_snapshot()
        china = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
        tomorrow = (china + dt.timedelta(days=1)).isoformat()
        weighed = await admin.post("/v1/calculations", json=case("510524", tomorrow))
        assert weighed.json()["total"] == "700.00", weighed.text
        body = claim_body(lambda: case("510524", tomorrow))
        refused = await admin.post("/v1/claims", json=body, headers=key())
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["errors"]
        assert error["loc"] == ["body", "event", "date"]
        body["event"]["date"] = china.isoformat()
        paid = await admin.post("/v1/claims", json=body, headers=key())
        assert (paid.json()["status"], paid.json()["amount"]) == ("granted", "700.00")

    async def test_a_patent_is_one_however_written_and_shown_as_sent(
        self, admin: httpx.AsyncClient, case: Case, film: Any
    ) -> None:
        """Dots, 。 and ·, and the ZL or CN before the number, made other patents, each paid."""
        digits = f"{uuid.uuid4().int % 10**12:012d}"
        weighed = await admin.post(
            "/v1/calculations",
            json={**case(), "events": [{**case()["events"][0], "subject": f"zl {digits}.7"}]},
        )
        assert weighed.json()["results"][0]["subject"] == f"zl {digits}.7"
        first = await admin.post(
            "/v1/claims", json=claim_body(case, f"ZL{digits}.7"), headers=key()
        )
        assert first.json()["status"] == "granted", first.text
        for typed in (f"{digits}.7", f"CN{digits}。7", f"ZL{digits[:4]}.{digits[4:]}·7"):
            again = await admin.post("/v1/claims", json=claim_body(case, typed), headers=key())
            assert again.json()["status"] == "duplicate", (typed, again.text)

    async def test_a_subject_that_is_a_persons_identity_number_is_masked(
        self, admin: httpx.AsyncClient, case: Case, film: Any
    ) -> None:
        """Masked as the applicant's own number is, however written; a talent's claim showed it
        whole (and one whose division stdnum does not list failed)."""
        for subject, typed_again, masked in (
            ("11010519491231002X", "110105·19491231002x", "110105********002X"),
            ("510599199001011239", "510599.19900101.1239", "510599********1239"),
        ):
            claimed = await admin.post("/v1/claims", json=claim_body(case, subject), headers=key())
            assert claimed.status_code == 201, claimed.text
            read = await admin.get(f"/v1/claims/{claimed.json()['id']}")
            again = await admin.post(
                "/v1/claims", json=claim_body(case, typed_again), headers=key()
            )
            assert again.json()["status"] == "duplicate"
            for shown in (claimed.json(), read.json(), again.json()):
                assert shown["subject"] == shown["decision"]["subject"] == masked

    async def test_input_the_ledger_cannot_keep_is_422_naming_it(
        self, admin: httpx.AsyncClient, case: Case, film: Any
    ) -> None:
        """An integer beyond 64 bits, or a subject NFKC writes longer than the ledger keeps
        (㍿ is 株式会社), was a 500; a name NFKC writes long is kept as far as it tells."""
        body = claim_body(case)
        body["event"]["attributes"] = {"count": 2**64}
        huge = await admin.post("/v1/claims", json=body, headers=key())
        assert huge.status_code == 422, huge.text
        assert huge.json()["errors"][0]["loc"][:3] == ["body", "event", "attributes"]
        long = await admin.post("/v1/claims", json=claim_body(case, "㍿" * 60), headers=key())
        assert long.status_code == 422, long.text
        assert long.json()["errors"][0]["loc"] == ["body", "event", "subject"]
        named = await admin.post(
            "/v1/claims", json=claim_body(case, name="\ufdfa" * 20), headers=key()
        )
        assert named.status_code == 201, named.text

    async def test_a_persons_number_among_other_words_is_one_person_and_masked(
        self, admin: httpx.AsyncClient, case: Case, film: Any
    ) -> None:
        """`身份证号：…（本人）` was a person of its own, paid again, and shown whole."""
        first17 = f"110105{1950 + uuid.uuid4().int % 50}0615{uuid.uuid4().int % 1000:03d}"
        number = first17 + ric.calc_check_digit(first17 + "0")  # it skips the last
        masked = f"110105********{number[-4:]}"
        claimed = await admin.post("/v1/claims", json=claim_body(case, number), headers=key())
        assert claimed.json()["status"] == "granted", claimed.text
        written = f"身份证号：{number[:6]} {number[6:14]} {number[14:]}（本人）"
        again = await admin.post("/v1/claims", json=claim_body(case, written), headers=key())
        assert again.json()["status"] == "duplicate", again.text
        assert again.json()["subject"] == masked
        noted = await admin.post("/v1/claims", json=claim_body(case, f"No.{number}"), headers=key())
        assert noted.json()["subject"] == f"NO.{masked}", noted.text  # the ledger's key
        assert number not in noted.text

    async def test_look_alikes_claiming_at_once_are_paid_once(
        self, admin: httpx.AsyncClient, case: Case, film: Any
    ) -> None:
        """Each read the others' claims before any was written, and all were granted."""
        subject = f"FILM-{uuid.uuid4().hex[:6]}"
        ids = ["91510500MA62B8XY4F", "91510500MA62B8XY5J", "91510500MA62B8XY6M",
               "91510500MA62B8XY7Q", "91510500MA62B8XY8U"]  # fmt: skip
        bodies = [claim_body(case, subject, id=i, name="泸州示例科技有限公司") for i in ids]
        answers = await asyncio.gather(
            *(admin.post("/v1/claims", json=b, headers=key()) for b in bodies)
        )
        statuses = sorted(a.json()["status"] for a in answers)
        assert statuses == ["granted"] + ["needs_review"] * 4, [a.text for a in answers]

    async def test_a_cursor_that_is_no_claim_id_is_422(self, admin: httpx.AsyncClient) -> None:
        response = await admin.get("/v1/claims", params={"cursor": "zzz"})
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["query", "cursor"]
        unknown = await admin.get("/v1/claims", params={"cursor": str(uuid.uuid4()), "limit": 1})
        assert unknown.status_code == 422, "as every list answers a cursor it never gave"
        assert unknown.json()["errors"][0]["loc"] == ["query", "cursor"]

    async def test_a_cursor_naming_another_tenants_claim_is_422_as_an_unknown_one(
        self,
        admin: httpx.AsyncClient,
        as_key: Callable[[str], httpx.AsyncClient],
        case: Case,
        film: Any,
    ) -> None:
        async with as_key(await operator(admin)) as one, as_key(await operator(admin)) as other:
            made = await one.post("/v1/claims", json=claim_body(case), headers=key())
            assert made.status_code == 201, made.text
            own = await one.get("/v1/claims", params={"cursor": made.json()["id"]})
            foreign = await other.get("/v1/claims", params={"cursor": made.json()["id"]})
        assert own.status_code == 200
        assert foreign.status_code == 422
        assert foreign.json()["errors"] == [
            {"loc": ["query", "cursor"], "msg": "not a cursor this list gave"}
        ]


class TestVisibility:
    async def test_other_tenants_claim_is_404_like_a_missing_one(
        self,
        admin: httpx.AsyncClient,
        as_key: Callable[[str], httpx.AsyncClient],
        case: Case,
        film: Any,
    ) -> None:
        async with as_key(await operator(admin)) as one, as_key(await operator(admin)) as other:
            mine = (await one.post("/v1/claims", json=claim_body(case), headers=key())).json()
            theirs = await other.get(f"/v1/claims/{mine['id']}")
            missing = await other.get(f"/v1/claims/{uuid.uuid4()}")
            assert (await one.get(f"/v1/claims/{mine['id']}")).status_code == 200
            listed = (await other.get("/v1/claims")).json()["items"]
        assert theirs.status_code == missing.status_code == 404
        assert (
            theirs.json()["detail"].replace(mine["id"], "X")
            == missing.json()["detail"].split("'")[0] + "'X'."
        )
        assert all(c["id"] != mine["id"] for c in listed)
        assert (await admin.get(f"/v1/claims/{mine['id']}")).status_code == 200

    async def test_operator_outside_its_region_is_403(
        self, admin: httpx.AsyncClient, as_key: Callable[[str], httpx.AsyncClient], case: Case
    ) -> None:
        async with as_key(await operator(admin, "510502")) as county:
            response = await county.post("/v1/claims", json=claim_body(case), headers=key())
        assert response.status_code == 403

    async def test_auditor_reads_but_cannot_submit(
        self, admin: httpx.AsyncClient, as_key: Callable[[str], httpx.AsyncClient], case: Case
    ) -> None:
        auditor_key = (
            await admin.post(
                "/v1/admin/tenants",
                json={"name": f"a-{uuid.uuid4().hex[:8]}", "role": "auditor", "region": "510500"},
            )
        ).json()["api_key"]
        async with as_key(auditor_key) as auditor:
            assert (
                await auditor.post("/v1/claims", json=claim_body(case), headers=key())
            ).status_code == 403
            assert (await auditor.get("/v1/claims")).status_code == 200


class TestRevoke:
    async def test_revoked_grant_stops_counting_and_keeps_history(
        self, admin: httpx.AsyncClient, case: Case, film: Any
    ) -> None:
        body = claim_body(case)
        first = (await admin.post("/v1/claims", json=body, headers=key())).json()
        revoked = await admin.post(f"/v1/claims/{first['id']}/revoke", json={"reason": "重复申报"})
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["status"] == "revoked"
        assert [h["status"] for h in revoked.json()["history"]] == ["granted", "revoked"]
        again = (await admin.post("/v1/claims", json=body, headers=key())).json()
        assert (again["status"], again["amount"]) == ("granted", "123456.00")
        twice = await admin.post(f"/v1/claims/{first['id']}/revoke", json={"reason": "再次"})
        assert twice.status_code == 409

    async def test_operators_cannot_revoke(
        self, admin: httpx.AsyncClient, as_key: Callable[[str], httpx.AsyncClient]
    ) -> None:
        async with as_key(await operator(admin)) as county:
            response = await county.post(
                f"/v1/claims/{uuid.uuid4()}/revoke", json={"reason": "越权"}
            )
        assert response.status_code == 403


class TestReview:
    async def test_a_held_claim_approved_lets_the_next_claim_be_paid(
        self, admin: httpx.AsyncClient, case: Case, film: Any
    ) -> None:
        """Two identifiers, one name: the second is held until the admin has looked."""
        body = claim_body(case, name="泸州示例科技有限公司")
        first = await admin.post("/v1/claims", json=body, headers=key())
        assert first.json()["status"] == "granted", first.text
        other = {**body, "applicant": {**body["applicant"], "id": "91510500MA62B8XY5J"}}
        held = (await admin.post("/v1/claims", json=other, headers=key())).json()
        assert held["status"] == "needs_review", held
        bad = await admin.post(
            f"/v1/claims/{held['id']}/review", json={"decision": "pay", "reason": "通过"}
        )
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["loc"] == ["body", "decision"]
        approved = await admin.post(
            f"/v1/claims/{held['id']}/review",
            json={"decision": "approve", "reason": "经核实为不同企业"},
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "review_approved"
        assert approved.json()["history"][-1]["reason"] == "经核实为不同企业"
        paid = (await admin.post("/v1/claims", json=other, headers=key())).json()
        assert (paid["status"], paid["amount"]) == ("granted", "123456.00")
        listed = await admin.get("/v1/claims", params={"status": "review_approved"})
        assert held["id"] in [c["id"] for c in listed.json()["items"]]
        again = await admin.post(
            f"/v1/claims/{held['id']}/review", json={"decision": "reject", "reason": "再次"}
        )
        assert again.status_code == 409
        not_held = await admin.post(
            f"/v1/claims/{first.json()['id']}/review",
            json={"decision": "approve", "reason": "通过"},
        )
        assert not_held.status_code == 409


class TestMasking:
    async def test_personal_id_is_masked(
        self, admin: httpx.AsyncClient, case: Case, film: Any
    ) -> None:
        from stdnum.cn import ric

        number = "51050219900101123"
        number += ric.calc_check_digit(number + "0")
        body = claim_body(case, kind="individual", id=number, name="张三")
        response = await admin.post("/v1/claims", json=body, headers=key())
        assert response.status_code == 201, response.text
        assert number not in response.text
        assert response.json()["applicant"]["id"] == "510502********" + number[-4:]


class TestMetrics:
    async def test_decisions_and_grants_are_counted(
        self, admin: httpx.AsyncClient, case: Case, film: Any, stack: Any
    ) -> None:
        await admin.post("/v1/calculations", json=case())
        await admin.post("/v1/claims", json=claim_body(case), headers=key())
        async with httpx.AsyncClient(base_url=stack.calculator_url) as calculator:
            text = (await calculator.get("/metrics")).text
        assert 'subsidy_decisions_total{status="eligible"}' in text
        assert 'subsidy_claims_total{status="granted"}' in text
        assert "subsidy_granted_yuan_total" in text

    async def test_a_batch_counts_its_decisions(
        self, admin: httpx.AsyncClient, case: Case, stack: Any
    ) -> None:
        async def eligible() -> float:
            async with httpx.AsyncClient(base_url=stack.calculator_url) as calculator:
                text = (await calculator.get("/metrics")).text
            found = re.search(r'^subsidy_decisions_total\{status="eligible"\} (\S+)$', text, re.M)
            return float(found.group(1)) if found else 0.0

        before = await eligible()
        response = await admin.post("/v1/calculations/batch", json={"cases": [case()] * 3})
        assert response.status_code == 200, response.text
        assert [r["status"] for i in response.json()["items"] for r in i["results"]] == [
            "eligible"
        ] * 3
        assert await eligible() == before + 3


async def drawn_on(admin: httpx.AsyncClient, name: str, year: int) -> str:
    """A fund of a name of its own that a new document's one clause (600 元, in `year`) draws
    on; a policy write is answered once the calculators have read it. The year is the test's
    own: the film's document is weighed in 1990 and 1991."""
    fund = f"{name}-{uuid.uuid4().hex[:6]}"
    document = {
        "id": f"fund-{uuid.uuid4().hex[:8]}", "title": "预算测试", "issuer": "泸州市人民政府",
        "level": "city", "jurisdiction": ["510500-CJ"], "effective_from": f"{year}-01-01",
        "effective_to": f"{year}-12-31", "source": {"title": "测试"},
        "clauses": [{"id": "award", "ref": "（一）", "matter": "film.city_promotion",
                     "beneficiaries": ["enterprise"], "amount": {"kind": "fixed", "value": 600},
                     "funding_source": fund, "quote": "给予 600 元奖励"}],
    }  # fmt: skip
    created = await admin.post("/v1/admin/policies", json={"reason": "测试", "document": document})
    assert created.status_code == 201, created.text
    return fund


class TestFundBudgets:
    async def test_a_claim_pays_no_more_than_the_fund_has_left(
        self, admin: httpx.AsyncClient, case: Case
    ) -> None:
        fund = await drawn_on(admin, "测试专项资金", 1993)
        set_budget = await admin.put(
            f"/v1/admin/funds/{fund}", json={"budget": "1000.00", "reason": "年度预算"}
        )
        assert set_budget.status_code == 200, set_budget.text

        def body() -> dict[str, Any]:
            b = claim_body(case, f"FUND-{uuid.uuid4().hex[:6]}")
            b["event"]["date"] = "1993-06-01"
            return b

        first = (await admin.post("/v1/claims", json=body(), headers=key())).json()
        second = (await admin.post("/v1/claims", json=body(), headers=key())).json()
        third = (await admin.post("/v1/claims", json=body(), headers=key())).json()
        assert (first["status"], first["amount"], first["withheld"]) == (
            "granted",
            "600.00",
            "0.00",
        )
        # Cut short by the budget: the rest is still due, and the claim says so.
        assert (second["status"], second["amount"]) == ("granted", "400.00")
        assert (second["entitlement"], second["withheld"]) == ("600.00", "200.00")
        assert (third["status"], third["amount"]) == ("budget_exhausted", "0.00")
        assert third["withheld"] == "600.00"
        read = (await admin.get(f"/v1/claims/{second['id']}")).json()
        assert read["withheld"] == "200.00"
        funds = (await admin.get("/v1/admin/funds")).json()["items"]
        mine = next(f for f in funds if f["fund"] == fund)
        assert (mine["granted"], mine["remaining"]) == ("1000.00", "0.00")
        revoked = await admin.post(f"/v1/claims/{first['id']}/revoke", json={"reason": "追回"})
        assert revoked.status_code == 200
        mine = next(
            f for f in (await admin.get("/v1/admin/funds")).json()["items"] if f["fund"] == fund
        )
        assert mine["remaining"] == "600.00"

    async def test_a_budget_for_a_fund_no_clause_draws_on_is_422(
        self, admin: httpx.AsyncClient
    ) -> None:
        """A mistyped fund had been a budget nothing draws on, the fund meant left without one."""
        fund = await drawn_on(admin, "测试引导资金", 1994)
        budget = {"budget": "1000.00", "reason": "年度预算"}
        mistyped = await admin.put(f"/v1/admin/funds/{fund.replace('引导', '引道')}", json=budget)
        assert mistyped.status_code == 422, mistyped.text
        assert mistyped.json()["errors"][0]["loc"] == ["path", "fund"]
        named = await admin.put(f"/v1/admin/funds/{fund}", json=budget)
        assert named.status_code == 200, named.text
