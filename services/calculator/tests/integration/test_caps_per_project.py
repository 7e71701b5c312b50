"""A cap counted per project (按该成果……累计最高): each project named by the event has a cap of
its own in the ledger, a project typed two ways is one, and a revocation gives back only its
project's balance."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from calculator.engine.rules import RuleSet
from testkit.claims import Desk, one_document

APPLICANT = "91510500MA62B8XY4F"
MATTER = "achievement.sales"


def rules(*, divided: bool = True) -> RuleSet:
    matters = [{"key": MATTER, "name": MATTER, "beneficiaries": ["enterprise"],
                "attributes": {"project": {"type": "string"}}}]  # fmt: skip
    caps = {"cumulative": "100000", **({"per": "project"} if divided else {})}
    clauses = [
        {"id": "reward", "ref": "一", "matter": MATTER, "beneficiaries": ["enterprise"],
         "quote": "q", "condition": "event.project != ''",
         "amount": {"kind": "fixed", "value": "60000"}, "caps": caps},
    ]  # fmt: skip
    return one_document("per-project" if divided else "whole", matters, clauses)


async def claim(
    desk: Desk, subject: str, project: str | None, *, divided: bool = True
) -> dict[str, Any]:
    company = {"id": APPLICANT, "kind": "enterprise", "name": "甲公司", "region": "510500"}
    event: dict[str, Any] = {"matter": MATTER, "date": "2024-06-01", "subject": subject}
    if project is not None:
        event["attributes"] = {"project": project}
    return await desk.submit(rules(divided=divided), company, event)


def paid(answer: dict[str, Any]) -> tuple[str, str]:
    return answer["status"], answer["amount"]


async def test_each_project_has_its_own_cap(desk: Desk) -> None:
    assert paid(await claim(desk, "A-1", "项目A")) == ("granted", "60000.00")
    assert paid(await claim(desk, "A-2", "项目A")) == ("granted", "40000.00")
    assert paid(await claim(desk, "B-1", "项目B")) == ("granted", "60000.00")
    assert paid(await claim(desk, "A-3", "项目a")) == ("cap_exhausted", "0.00")
    assert paid(await claim(desk, "A-4", "项目Ａ")) == ("cap_exhausted", "0.00")  # full width
    ledger = await desk.ledger(APPLICANT, [(MATTER, "A-1")])
    assert sorted(ledger.by_cap.values()) == [Decimal(60000), Decimal(100000)]


async def test_an_event_without_its_project_is_asked_for_it(desk: Desk) -> None:
    answer = await claim(desk, "X-1", None)
    assert paid(answer) == ("unknown", "0.00"), answer


async def test_a_revocation_gives_back_its_own_projects_balance(desk: Desk) -> None:
    await claim(desk, "A-1", "项目A")
    b = await claim(desk, "B-1", "项目B")
    assert (await desk.revoke(b["id"]))["status"] == "revoked"
    ledger = await desk.ledger(APPLICANT, [(MATTER, "A-1")])
    assert sorted(ledger.by_cap.values()) == [Decimal(0), Decimal(60000)]
    assert paid(await claim(desk, "B-2", "项目B")) == ("granted", "60000.00")
    assert paid(await claim(desk, "A-2", "项目A")) == ("granted", "40000.00")


async def test_one_project_typed_with_separators_or_invisibly_is_one(desk: Desk) -> None:
    assert paid(await claim(desk, "S-1", "XM-2022-001")) == ("granted", "60000.00")
    assert paid(await claim(desk, "S-2", "XM2022001")) == ("granted", "40000.00")
    for n, typed in enumerate(["XM 2022 001", "xm\u200b2022-001", "ＸＭ＿２０２２＿００１"]):
        assert paid(await claim(desk, f"S-{n + 3}", typed)) == ("cap_exhausted", "0.00"), typed


async def test_what_was_paid_before_the_cap_was_divided_counts_against_each_project(
    desk: Desk,
) -> None:
    """A payment made while the cap counted per applicant names no project the ledger kept: it
    may have been for any of them, so each project's cap counts it. Otherwise a project paid up
    to the cap before would be paid up to it again."""
    assert paid(await claim(desk, "A-1", "项目A", divided=False)) == ("granted", "60000.00")
    assert paid(await claim(desk, "A-2", "项目A")) == ("granted", "40000.00")
    assert paid(await claim(desk, "A-3", "项目A")) == ("cap_exhausted", "0.00")
    assert paid(await claim(desk, "B-1", "项目B")) == ("granted", "40000.00")


async def test_an_achievement_named_by_its_patent_is_one_however_written(desk: Desk) -> None:
    """The project is named as a subject is: a patent number with or without its ZL, its
    label or its punctuation, or a contract number with a minus sign or a dash for a hyphen, is
    one."""
    assert paid(await claim(desk, "P-1", "ZL201772262614.3")) == ("granted", "60000.00")
    assert paid(await claim(desk, "P-2", "201772262614.3")) == ("granted", "40000.00")
    for n, typed in enumerate(
        ["专利号ZL201772262614.3", "ZL201772262614·3", "授权CN201772262614.3"]
    ):
        assert paid(await claim(desk, f"P-{n + 3}", typed)) == ("cap_exhausted", "0.00"), typed
    assert paid(await claim(desk, "H-1", "HT-2024-001")) == ("granted", "60000.00")
    assert paid(await claim(desk, "H-2", "HT−2024−001")) == ("granted", "40000.00")
    assert paid(await claim(desk, "H-3", "HT‒2024‒001")) == ("cap_exhausted", "0.00")
