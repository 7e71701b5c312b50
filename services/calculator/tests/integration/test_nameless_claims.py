"""A claim whose applicant gives no name cannot be told apart from another applicant already paid
for the same matter and subject: it goes to review, as a look-alike name does, and so does a
named claim after a nameless one was paid. A name stays optional otherwise."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from calculator.claims import service
from calculator.engine.rules import RuleSet, compile_snapshot
from testkit.claims import Desk

LISTING = "listing.completed"
PATENT = "patent.invention.granted"
A, B, C = "91510500MA62B8XY4F", "91510500MA62B8XY5J", "91510500MA62B8XY6M"
NAMED = "泸州示例科技有限公司"


def rules() -> RuleSet:
    regions = [
        {"code": "510000", "name": "四川省", "parent": None, "level": "province"},
        {"code": "510500", "name": "泸州市", "parent": "510000", "level": "city"},
    ]
    matters = [
        {"key": key, "name": key, "beneficiaries": ["enterprise"], "attributes": {}}
        for key in (LISTING, PATENT)
    ]
    clauses = [
        {"id": key, "ref": "一", "matter": key, "beneficiaries": ["enterprise"],
         "amount": {"kind": "range", "min": "250000", "max": "2500000"}, "quote": "q"}
        for key in (LISTING, PATENT)
    ]  # fmt: skip
    document = {"id": "doc", "doc_no": "doc", "jurisdiction": ["510500"],
                "effective_from": "2015-01-01", "effective_to": None, "repealed_date": None,
                "clauses": clauses}  # fmt: skip
    return compile_snapshot(
        {"version": "names", "regions": regions, "matters": matters, "documents": [document]}
    )


RULES = rules()


async def claimed(
    desk: Desk, applicant_id: str, subject: str, matter: str = LISTING, **name: str
) -> dict[str, Any]:
    """A listing (or another matter) claimed: the claim as answered."""
    applicant = {"id": applicant_id, "kind": "enterprise", "region": "510500", **name}
    event: dict[str, Any] = {"matter": matter, "date": "2024-06-01", "subject": subject,
                             "attributes": {"assessed_amount": "300000"}}  # fmt: skip
    return await desk.submit(RULES, applicant, event)


async def listed(desk: Desk, applicant_id: str, subject: str, **name: str) -> tuple[str, str]:
    claim = await claimed(desk, applicant_id, subject, **name)
    return claim["status"], claim["amount"]


async def held_claim(desk: Desk, subject: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A paid for the subject under NAMED, then B, another identifier of that name, held: the
    two claims."""
    paid = await claimed(desk, A, subject, name=NAMED)
    assert paid["status"] == "granted"
    held = await claimed(desk, B, subject, name=NAMED)
    assert held["status"] == "needs_review"
    return paid, held


@pytest.mark.parametrize(
    "name", [{"name": ""}, {}, {"name": "  "}], ids=["empty", "absent", "blank"]
)
async def test_a_nameless_claim_for_what_another_was_paid_goes_to_review(
    desk: Desk, name: dict[str, str]
) -> None:
    assert await listed(desk, A, "NEEQ-1", name=NAMED) == ("granted", "300000.00")
    assert await listed(desk, B, "NEEQ-1", name="泸州示例科技股份有限公司") == (
        "needs_review", "0.00",
    )  # fmt: skip
    assert await listed(desk, B, "NEEQ-1", **name) == ("needs_review", "0.00")


async def test_a_named_claim_after_a_nameless_one_was_paid_goes_to_review(desk: Desk) -> None:
    assert await listed(desk, B, "NEEQ-1") == ("granted", "300000.00")
    assert await listed(desk, A, "NEEQ-1", name=NAMED) == ("needs_review", "0.00")


async def test_a_name_is_needed_only_where_another_was_paid(desk: Desk) -> None:
    assert await listed(desk, B, "NEEQ-2") == ("granted", "300000.00")
    assert await listed(desk, B, "NEEQ-3", name="") == ("granted", "300000.00")
    assert await listed(desk, A, "NEEQ-4", name=NAMED) == ("granted", "300000.00")
    assert await listed(desk, B, "NEEQ-4", name="江阳精密机械有限公司") == ("granted", "300000.00")


@pytest.mark.parametrize(
    ("matter", "subject"),
    [
        (PATENT, "ZL201510000123.1"),
        (PATENT, "ZL97123456.5"),  # before 2004
        (LISTING, "91510521MA62D8KXX0"),
        (LISTING, "510521197506204125"),
    ],
    ids=["patent", "old-patent", "credit-code", "identity-number"],
)
async def test_a_subject_that_names_one_thing_paid_to_another_goes_to_review_whatever_the_names(
    desk: Desk, matter: str, subject: str
) -> None:
    """A patent's co-owners, a founder and the enterprise it founded, an employer and its
    talent: names unlike each other, one patent, organisation or person paid for twice."""
    first = await claimed(desk, A, subject, matter, name=NAMED)
    assert (first["status"], first["amount"]) == ("granted", "300000.00")
    held = await claimed(desk, B, subject.removeprefix("ZL"), matter, name="江阳精密机械有限公司")
    assert (held["status"], held["amount"]) == ("needs_review", "0.00")
    assert held["review"]["reason"] == (
        "同一事项与标的（专利号、身份证号码或统一社会信用代码）已由其他主体获得"
    )


async def test_a_number_of_a_patents_shape_outside_a_patent_matter_holds_only_look_alikes(
    desk: Desk,
) -> None:
    """Two banks' loan contracts may share a number: a 13-digit one is no patent there."""
    assert await listed(desk, A, "2022000100015", name=NAMED) == ("granted", "300000.00")
    assert await listed(desk, B, "2022000100015", name="江阳精密机械有限公司") == (
        "granted", "300000.00",
    )  # fmt: skip


async def test_look_alikes_claiming_at_once_are_paid_once(desk: Desk) -> None:
    """Each read the others' claims before any was written: all were granted on PostgreSQL."""
    ids = [A, B, "91510500MA62B8XY6M", "91510500MA62B8XY7Q", "91510500MA62B8XY8U"]
    for round_ in range(5):
        answers = await asyncio.gather(
            *(listed(desk, i, f"NEEQ-{round_}", name=NAMED) for i in ids)
        )
        assert sorted(answers) == [("granted", "300000.00")] + [("needs_review", "0.00")] * 4


async def test_a_name_given_on_a_held_claim_holds_the_applicants_next_claims(
    desk: Desk,
) -> None:
    """Held for its look-alike name, the applicant claims the same subject again under another
    name: held again, not paid. Another subject is not held; nor is the same subject once the
    look-alike's grant is taken back."""
    paid, _ = await held_claim(desk, "NEEQ-5")
    for other in ("江阳精密机械有限公司", ""):
        assert await listed(desk, B, "NEEQ-5", name=other) == ("needs_review", "0.00")
    assert await listed(desk, B, "NEEQ-6", name="江阳精密机械有限公司") == (
        "granted", "300000.00",
    )  # fmt: skip
    await desk.revoke(paid["id"])
    assert await listed(desk, B, "NEEQ-5", name="江阳精密机械有限公司") == (
        "granted", "300000.00",
    )  # fmt: skip


async def test_a_look_alike_and_a_new_name_claiming_at_once_are_both_held(desk: Desk) -> None:
    """The same applicant, at once, under the look-alike name and under another. The other
    name decided first is paid, as any applicant of another name is, and the look-alike is then
    its duplicate; the look-alike decided first is held, and the other name with it, though it
    may have read before the hold was written."""
    assert await listed(desk, A, "NEEQ-7", name=NAMED) == ("granted", "300000.00")
    for round_ in range(5):
        subject = f"NEEQ-7{round_}"
        assert await listed(desk, A, subject, name=NAMED) == ("granted", "300000.00")
        answers = await asyncio.gather(
            listed(desk, B, subject, name=NAMED),
            listed(desk, B, subject, name="江阳精密机械有限公司"),
        )
        assert answers in (
            [("needs_review", "0.00"), ("needs_review", "0.00")],
            [("duplicate", "0.00"), ("granted", "300000.00")],
        ), answers


async def test_a_claim_approved_on_review_lets_its_applicant_be_paid(desk: Desk) -> None:
    """Approval pays nothing itself: the applicant's next claim is paid as any claim is."""
    _, held = await held_claim(desk, "NEEQ-8")
    approved = await desk.review(held["id"], approve=True)
    assert (approved["status"], approved["amount"]) == ("review_approved", "0.00")
    assert [h["status"] for h in approved["history"]] == ["needs_review", "review_approved"]
    assert approved["history"][-1]["by"] == "admin"
    assert await listed(desk, B, "NEEQ-8", name=NAMED) == ("granted", "300000.00")
    assert await listed(desk, B, "NEEQ-8", name=NAMED) == ("duplicate", "0.00")
    with pytest.raises(service.ClaimNotReviewable):
        await desk.review(held["id"], approve=False)


async def test_a_claim_rejected_on_review_keeps_holding_its_names(desk: Desk) -> None:
    _, held = await held_claim(desk, "NEEQ-9")
    rejected = await desk.review(held["id"], approve=False)
    assert rejected["status"] == "review_rejected"
    assert await listed(desk, B, "NEEQ-9", name="江阳精密机械有限公司") == ("needs_review", "0.00")
    paid = await claimed(desk, A, "NEEQ-9", name=NAMED)
    with pytest.raises(service.ClaimNotReviewable):
        await desk.review(paid["id"], approve=True)


async def test_an_approval_lets_through_once(desk: Desk) -> None:
    """Once its grant is revoked (冒领追回), the applicant is held again, not paid again."""
    _, held = await held_claim(desk, "NEEQ-10")
    await desk.review(held["id"], approve=True)
    paid = await claimed(desk, B, "NEEQ-10", name=NAMED)
    assert paid["status"] == "granted"
    await desk.revoke(paid["id"])
    assert await listed(desk, B, "NEEQ-10", name=NAMED) == ("needs_review", "0.00")


async def test_a_rejection_after_an_approval_stands(desk: Desk) -> None:
    _, first = await held_claim(desk, "NEEQ-11")
    second = await claimed(desk, B, "NEEQ-11", name=NAMED)
    assert second["status"] == "needs_review"
    await desk.review(first["id"], approve=True)
    await desk.review(second["id"], approve=False)
    assert await listed(desk, B, "NEEQ-11", name=NAMED) == ("needs_review", "0.00")


async def test_an_approval_excuses_only_the_look_alikes_its_reviewer_saw(desk: Desk) -> None:
    """A third identifier of the name, paid after the approval, holds the applicant again."""
    paid, held = await held_claim(desk, "NEEQ-12")
    await desk.review(held["id"], approve=True)
    await desk.revoke(paid["id"])
    assert await listed(desk, C, "NEEQ-12", name=NAMED) == ("granted", "300000.00")
    assert await listed(desk, B, "NEEQ-12", name=NAMED) == ("needs_review", "0.00")


async def test_an_approval_decided_before_a_revocation_ends_with_it(desk: Desk) -> None:
    """Two claims held; the first approved, then paid; the second approved after that payment
    and before its revocation (冒领追回). The approval had stood, since the revoked claim was
    made before it: the applicant was paid again without review."""
    _, first = await held_claim(desk, "NEEQ-13")
    second = await claimed(desk, B, "NEEQ-13", name=NAMED)
    assert second["status"] == "needs_review"
    await desk.review(first["id"], approve=True)
    paid = await claimed(desk, B, "NEEQ-13", name=NAMED)
    assert paid["status"] == "granted"
    await desk.review(second["id"], approve=True)
    await desk.revoke(paid["id"])
    assert await listed(desk, B, "NEEQ-13", name=NAMED) == ("needs_review", "0.00")
