"""A model of the ledger, checked against the real one step by step (Hypothesis state machine).

Two tenants claim for three applicants (two of them perhaps one company), for events of two matters: one uncapped, one under a
cumulative and a yearly cap that a new rule set raises or lowers. Steps: submit under a key
(new, the key's body again, or the key with another body: 422, nothing paid), retry, revoke
(a paid claim, again, or one that paid nothing: 409), swap the rule set. The model says what
every answer must be. After every step, in the database: each subject's balance is the sum of
its paid claims, each cap's balance the sum of the paid claims under it, and both equal the
model's; no subject holds more than the best entitlement claimed for it. Each grant leaves its
caps within what the rule set in force allows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import orjson
import pytest
from calculator.calculations.endpoints import check_scope
from calculator.claims import service
from calculator.claims.ledger import Claims
from calculator.claims.locks import Locks
from calculator.claims.schemas import ClaimIn
from calculator.config import Settings
from calculator.engine.rules import RuleSet, compile_snapshot
from calculator.main import SERVICE, open_claims
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from subsidy_common.database import create_engine, migrate
from testkit import create_database, drop_database

T = TypeVar("T")
ZERO = Decimal(0)
PAID = ("granted", "topped_up")
TENANTS = ("t1", "t2")
KEYS = ("k0", "k1", "k2")  # reused, within a tenant and across tenants
# The third is the first under another identifier, a look-alike name: what either was paid for,
# the other's claim for the same matter and subject waits for review, paying nothing.
NAMES = {
    "91510500MA62B8XY4F": "泸州甲科技有限公司",
    "91510500MA62B8XY5J": "成都乙制造有限公司",
    "91510500MA62B8XY6M": "泸州甲科技股份有限公司",
}
LOOK_ALIKES = {
    "91510500MA62B8XY4F": "91510500MA62B8XY6M",
    "91510500MA62B8XY6M": "91510500MA62B8XY4F",
}
CAPPED, UNCAPPED = "patent.industrialized", "patent.licensed"
CAP_KEY = "sales"
YEAR = {"A": 2020, "B": 2020, "C": 2021}  # each subject's event, by its year
SALES = (10**6, 3 * 10**7, 6 * 10**7)  # below the first tier, worth 100,000, worth 200,000
# Rule sets that differ only in the capped clause's caps: (cumulative, per applicant and year).
CAPS = {
    "a": (Decimal(250_000), Decimal(150_000)),
    "b": (Decimal(120_000), Decimal(100_000)),
    "c": (Decimal(400_000), Decimal(250_000)),
}


def rules(version: str) -> RuleSet:
    cumulative, yearly = CAPS[version]
    tiered = {
        "ref": "（二十）",
        "beneficiaries": ["enterprise"],
        "quote": "q",
        "amount": {
            "kind": "tiered",
            "attribute": "sales_yuan",
            "tiers": [
                {"at_least": 20000000, "amount": {"kind": "fixed", "value": "100000"}},
                {"at_least": 50000000, "amount": {"kind": "fixed", "value": "200000"}},
            ],
        },
    }
    return compile_snapshot(
        {
            "version": f"model-{version}",
            "regions": [
                {"code": "510500", "name": "泸州市", "parent": None, "level": "city"},
                {"code": "510502", "name": "江阳区", "parent": "510500", "level": "county"},
            ],
            "matters": [
                {"key": matter, "name": matter, "beneficiaries": ["enterprise"],
                 "attributes": {"sales_yuan": {"type": "money", "description": "销售收入"}}}
                for matter in (CAPPED, UNCAPPED)
            ],
            "documents": [
                {"id": "doc", "doc_no": "测试", "jurisdiction": ["510500"],
                 "effective_from": "2015-01-01", "effective_to": None, "repealed_date": None,
                 "clauses": [
                    {**tiered, "id": "capped", "matter": CAPPED,
                     "caps": {"cumulative": str(cumulative), "per_applicant_year": str(yearly),
                              "cumulative_key": CAP_KEY}},
                    {**tiered, "id": "uncapped", "matter": UNCAPPED}]},
            ],
        }
    )  # fmt: skip


RULES = {version: rules(version) for version in CAPS}


@dataclass(frozen=True, slots=True)
class Body:
    """What a claim asks for."""

    applicant: str
    matter: str
    subject: str
    sales: int

    def claim(self) -> ClaimIn:
        return ClaimIn.model_validate(
            {
                "applicant": {"id": self.applicant, "kind": "enterprise",
                              "name": NAMES[self.applicant], "region": "510502"},
                "event": {"matter": self.matter, "date": f"{YEAR[self.subject]}-06-01",
                          "subject": self.subject, "attributes": {"sales_yuan": self.sales}},
            }
        )  # fmt: skip

    @property
    def entitlement(self) -> Decimal:
        return Decimal(
            200_000 if self.sales >= 5 * 10**7 else 100_000 if self.sales >= 2 * 10**7 else 0
        )


@dataclass(slots=True)
class Expected:
    """A claim as the model holds it."""

    body: Body
    status: str
    amount: Decimal

    @property
    def paying(self) -> bool:
        return self.status in PAID


class World:
    """One migrated database and its ledger for every example of a run, emptied before each."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.url = self.run(create_database("model"))
        self.run(migrate(Settings().migrations_dir(SERVICE), self.url))
        self.engine: AsyncEngine = create_engine(self.url, pool_size=2)
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )
        self.claims: Claims = self.run(open_claims(self.url, self.sessions, Locks()))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        try:
            self.run(self.claims.close())
            self.run(self.engine.dispose())
        finally:
            self.run(drop_database(self.url))
            self.loop.close()

    def empty(self) -> None:
        self.run(self._execute("TRUNCATE claim, ledger_balance, cap_balance, idempotency_record"))

    async def _execute(self, statement: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(text(statement))

    def submit(self, tenant: str, key: str, body: Body, rules: RuleSet) -> tuple[int, bytes]:
        return self.run(
            service.submit(
                self.claims, caller=service.Caller(tenant_id=tenant), key=key, claim=body.claim(),
                rules=rules, today=dt.date(2026, 1, 1), now=lambda: dt.datetime.now(dt.UTC),
                check_scope=check_scope,
            )
        )  # fmt: skip

    def revoke(self, claim_id: str) -> bytes:
        return self.run(
            service.revoke(
                self.sessions, Locks(), claim_id=claim_id,
                caller=service.Caller(tenant_id="t1", visibility="all", actor="model"),
                reason="追回", now=lambda: dt.datetime.now(dt.UTC),
            )
        )  # fmt: skip

    def held(self) -> tuple[dict[tuple[Any, ...], Decimal], ...]:
        """The subjects' and the caps' balances; the same summed from the paid claims."""
        return self.run(self._held())

    async def _held(self) -> tuple[dict[tuple[Any, ...], Decimal], ...]:
        async with self.engine.connect() as connection:
            subjects = await connection.execute(
                text("SELECT applicant_id, matter, subject, granted FROM ledger_balance")
            )
            caps = await connection.execute(
                text("SELECT applicant_id, cap_key, year, granted FROM cap_balance")
            )
            claims = await connection.execute(
                text(
                    "SELECT applicant_id, matter, subject, amount, cap_key, event_date,"
                    " cumulative_cap_moved, yearly_cap_moved FROM claim"
                    " WHERE status IN ('granted', 'topped_up')"
                )
            )
            paid: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
            under_caps: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
            for c in claims:
                paid[c.applicant_id, c.matter, c.subject] += c.amount
                if c.cap_key is not None and c.cumulative_cap_moved:
                    under_caps[c.applicant_id, c.cap_key, 0] += c.amount
                if c.cap_key is not None and c.yearly_cap_moved:
                    under_caps[c.applicant_id, c.cap_key, c.event_date.year] += c.amount
            return (
                balances((tuple(r[:3]), r.granted) for r in subjects),
                balances((tuple(r[:3]), r.granted) for r in caps),
                balances(paid.items()),
                balances(under_caps.items()),
            )

    def count(self) -> tuple[int, ...]:
        """How many claims and stored responses there are, and what the balances sum to."""

        async def count() -> tuple[int, ...]:
            async with self.engine.connect() as connection:
                row = await connection.execute(
                    text(
                        "SELECT (SELECT count(*) FROM claim), (SELECT count(*) FROM"
                        " idempotency_record), (SELECT coalesce(sum(granted), 0) FROM"
                        " ledger_balance), (SELECT coalesce(sum(granted), 0) FROM cap_balance)"
                    )
                )
                return tuple(row.one())

        return self.run(count())


def balances(rows: Iterable[tuple[tuple[Any, ...], Decimal]]) -> dict[tuple[Any, ...], Decimal]:
    """Balances by key, those at zero left out (a balance taken back to zero keeps its row)."""
    summed: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for key, amount in rows:
        summed[key] += Decimal(amount)
    return {key: amount for key, amount in summed.items() if amount != 0}


BODIES = st.builds(
    Body,
    applicant=st.sampled_from([*NAMES, "91510500MA62B8XY4F"]),  # the first, most: its caps fill
    matter=st.sampled_from((CAPPED, CAPPED, UNCAPPED)),
    subject=st.sampled_from(sorted(YEAR)),
    sales=st.sampled_from([*SALES, SALES[1]]),
)


class LedgerMachine(RuleBasedStateMachine):
    """The real ledger beside a model that says what every answer must be."""

    claimed = Bundle("claimed")

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        world.empty()
        self.version = "a"
        self.expected: dict[str, Expected] = {}  # claim id → what it is
        self.keys: dict[tuple[str, str], tuple[Body, bytes]] = {}  # (tenant, key) → first answer
        self.best: dict[tuple[str, str, str], Decimal] = {}

    def paid(self, applicant: str, matter: str, subject: str) -> Decimal:
        return sum(
            (
                e.amount
                for e in self.expected.values()
                if e.paying
                and (e.body.applicant, e.body.matter, e.body.subject)
                == (applicant, matter, subject)
            ),
            ZERO,
        )

    def under_cap(self, applicant: str, year: int | None) -> Decimal:
        """What an applicant's paid claims hold of the cap, all years or one."""
        return sum(
            (
                e.amount
                for e in self.expected.values()
                if e.paying
                and e.body.applicant == applicant
                and e.body.matter == CAPPED
                and year in (None, YEAR[e.body.subject])
            ),
            ZERO,
        )

    def due(self, body: Body) -> tuple[str, Decimal]:
        """What a new claim must answer: its status and the amount it pays."""
        entitlement = body.entitlement
        if entitlement == 0:
            return "ineligible", ZERO
        before = self.paid(body.applicant, body.matter, body.subject)
        due = max(ZERO, entitlement - before)
        if body.matter == CAPPED:
            cumulative, yearly = CAPS[self.version]
            room = max(
                ZERO,
                min(
                    cumulative - self.under_cap(body.applicant, None),
                    yearly - self.under_cap(body.applicant, YEAR[body.subject]),
                ),
            )
            due = min(due, room)
        look_alike = LOOK_ALIKES.get(body.applicant)
        if due > 0 and look_alike is not None and self.paid(look_alike, body.matter, body.subject):
            return "needs_review", ZERO
        if due > 0:
            return ("topped_up" if before > 0 else "granted"), due
        return ("duplicate" if before > 0 else "cap_exhausted"), ZERO

    @rule(target=claimed, tenant=st.sampled_from(TENANTS), body=BODIES)
    def submit(self, tenant: str, body: Body) -> Any:
        return self._submit(tenant, f"fresh-{len(self.keys)}", body)

    @rule(target=claimed, tenant=st.sampled_from(TENANTS), key=st.sampled_from(KEYS), body=BODIES)
    def submit_under_a_used_key(self, tenant: str, key: str, body: Body) -> Any:
        return self._submit(tenant, key, body)

    def _submit(self, tenant: str, key: str, body: Body) -> Any:
        """A claim under a key: new, the key's first body again, or another body (422)."""
        known = self.keys.get((tenant, key))
        if known is not None and known[0] != body:
            before = self.world.count()
            with pytest.raises(service.IdempotencyKeyReused) as reused:
                self.world.submit(tenant, key, body, RULES[self.version])
            assert reused.value.status == 422
            assert self.world.count() == before, "a reused key wrote nothing"
            event("submit: the key with another body, 422")
            return multiple()
        status, payload = self.world.submit(tenant, key, body, RULES[self.version])
        assert status == 201
        if known is not None:
            assert payload == known[1], "the key's first answer, byte for byte"
            event("submit: the key's body again, replayed")
            return multiple()
        answer = orjson.loads(payload)
        assert (answer["status"], Decimal(answer["amount"])) == self.due(body)
        event(f"submit: {answer['status']}")
        assert answer["registry_version"] == f"model-{self.version}"
        self.keys[tenant, key] = (body, payload)
        self.expected[answer["id"]] = Expected(body, answer["status"], Decimal(answer["amount"]))
        subject = (body.applicant, body.matter, body.subject)
        self.best[subject] = max(self.best.get(subject, ZERO), body.entitlement)
        if body.matter == CAPPED and Decimal(answer["amount"]) > 0:
            cumulative, yearly = CAPS[self.version]
            assert self.under_cap(body.applicant, None) <= cumulative, "above the cumulative cap"
            assert self.under_cap(body.applicant, YEAR[body.subject]) <= yearly, (
                "above the yearly cap"
            )
        return answer["id"]

    @precondition(lambda self: bool(self.keys))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        tenant, key = data.draw(st.sampled_from(sorted(self.keys)))
        body, first = self.keys[tenant, key]
        assert self.world.submit(tenant, key, body, RULES[self.version]) == (201, first)
        event("retry: replayed")

    @rule(claim_id=claimed, twice=st.booleans())
    def revoke(self, claim_id: str, twice: bool) -> None:
        expected = self.expected[claim_id]
        if expected.paying:
            answer = orjson.loads(self.world.revoke(claim_id))
            assert (answer["status"], Decimal(answer["amount"])) == ("revoked", expected.amount)
            expected.status = "revoked"
            if not twice:
                return
        before = self.world.count()
        with pytest.raises(service.ClaimNotRevocable) as refused:
            self.world.revoke(claim_id)
        assert refused.value.status == 409
        event("revoke: again" if expected.status == "revoked" else "revoke: paid nothing, 409")
        assert self.world.count() == before, "a refused revocation moved nothing"

    @rule(version=st.sampled_from(sorted(CAPS)))
    def swap_rule_set(self, version: str) -> None:
        self.version = version

    @invariant()
    def ledger_equals_grants_within_entitlements(self) -> None:
        subjects, caps, paid, under_caps = self.world.held()
        assert subjects == paid, "each subject's balance is the sum of its paid claims"
        assert caps == under_caps, "each cap's balance is the sum of the paid claims under it"
        assert paid == balances(
            ((e.body.applicant, e.body.matter, e.body.subject), e.amount)
            for e in self.expected.values()
            if e.paying
        )
        assert under_caps == balances(
            item
            for e in self.expected.values()
            if e.paying and e.body.matter == CAPPED
            for item in (
                ((e.body.applicant, CAP_KEY, 0), e.amount),
                ((e.body.applicant, CAP_KEY, YEAR[e.body.subject]), e.amount),
            )
        )
        for subject, granted in subjects.items():
            assert granted <= self.best[subject], "never above the entitlement"


def test_ledger_model() -> None:
    world = World()

    class OnTheWorld(LedgerMachine):
        def __init__(self) -> None:
            super().__init__(world)

    try:
        run_state_machine_as_test(
            OnTheWorld,
            settings=settings(
                max_examples=200,
                stateful_step_count=40,
                deadline=None,
            ),
        )
    finally:
        world.close()
