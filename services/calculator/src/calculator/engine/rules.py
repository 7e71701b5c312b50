"""Compiling a registry snapshot into a rule set indexed for decisions."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from calculator.engine.amounts import Worth, constant_worth
from calculator.engine.conditions import Condition, compile_condition
from calculator.engine.model import (
    Amount,
    Caps,
    Clause,
    Considered,
    Document,
    Exclusion,
    Fixed,
    NonCash,
    Percentage,
    Periodic,
    PerUnit,
    Range,
    SimpleAmount,
    Strategy,
    Tiered,
    Unspecified,
)

DEFAULT_STRATEGY = Strategy()
_ALWAYS = 0  # before the first ordinal of any date
_NEVER = dt.date.max.toordinal() + 1


@dataclass(frozen=True, slots=True)
class Screening:
    """A clause prepared for screening: windows as day ordinals, clause-only outcomes made once."""

    clause: Clause
    covered: frozenset[str]
    first_day: int  # the narrower of the document's and the clause's windows
    last_day: int
    in_force_from: int  # the document's own window, repeal included
    in_force_to: int
    beneficiaries: frozenset[str]
    condition: Condition | None
    exclusions: tuple[Exclusion, ...]
    capped: bool  # a cumulative or yearly cap, which the ledger and the request count against
    fixed_worth: Worth | None  # what the clause yields whatever the event, when that is known
    out_of_jurisdiction: Considered
    not_in_force: Considered
    clause_not_in_force: Considered
    mismatch: Mapping[str, Considered]


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Every clause in the registry at one version, indexed by matter."""

    version: str
    clauses: Mapping[str, tuple[Clause, ...]]
    exclusions: Mapping[str, tuple[Exclusion, ...]]
    strategies: Mapping[str, Strategy]
    ancestors: Mapping[str, frozenset[str]]
    matters: frozenset[str]
    attributes: Mapping[str, Mapping[str, Mapping[str, Any]]]
    # The supersession links of every document that declares some, those without clauses
    # (a repeal notice, a catalogue) included: a chain of links runs through them too.
    links: Mapping[str, tuple[tuple[str, frozenset[str] | None], ...]] = field(default_factory=dict)
    # Derived from the fields above, so a rule set built with `replace` stays consistent.
    screenings: Mapping[str, tuple[Screening, ...]] = field(init=False, repr=False, compare=False)
    # The keys some clause's cumulative or yearly cap counts under; payments under any other key
    # need no running count.
    cap_keys: frozenset[str] = field(init=False, repr=False, compare=False)
    # Each matter's attributes split by what they describe: the event, or the applicant.
    event_attributes: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(
        init=False, repr=False, compare=False
    )
    applicant_attributes: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(
        init=False, repr=False, compare=False
    )
    # For a (matter, document), the documents that supersede it for that matter, directly or
    # through others (时间从新 by an explicit link, transitively).
    superseded_by: Mapping[tuple[str, str], frozenset[str]] = field(
        init=False, repr=False, compare=False
    )
    # The matters on which one document may overrule another: some supersession, or a priority.
    overruling: frozenset[str] = field(init=False, repr=False, compare=False)
    # Each matter's attributes that divide a cumulative cap (`caps.per`: a project, an
    # achievement), whose values name a thing as a subject does.
    cap_divisions: Mapping[str, frozenset[str]] = field(init=False, repr=False, compare=False)
    # The funds some clause draws on (`funding_source`), which a budget may be set for.
    funds: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        screenings = {
            matter: tuple(_screening(clause, self.exclusions) for clause in clauses)
            for matter, clauses in self.clauses.items()
        }
        object.__setattr__(self, "screenings", screenings)
        cap_keys = frozenset(
            clause.cap_key
            for clauses in self.clauses.values()
            for clause in clauses
            if clause.caps.running
        )
        object.__setattr__(self, "cap_keys", cap_keys)
        on_event = {
            matter: {n: s for n, s in specs.items() if s.get("on", "event") == "event"}
            for matter, specs in self.attributes.items()
        }
        object.__setattr__(self, "event_attributes", on_event)
        on_applicant = {
            matter: {n: s for n, s in specs.items() if s.get("on") == "applicant"}
            for matter, specs in self.attributes.items()
        }
        object.__setattr__(self, "applicant_attributes", on_applicant)
        object.__setattr__(self, "superseded_by", _superseded_by(self.clauses, self.links))
        overruling = {matter for matter, _ in self.superseded_by} | {
            matter for matter, strategy in self.strategies.items() if strategy.kind == "priority"
        }
        object.__setattr__(self, "overruling", frozenset(overruling))
        divisions = {
            matter: frozenset(c.caps.per for c in clauses if c.caps.per is not None)
            for matter, clauses in self.clauses.items()
        }
        object.__setattr__(
            self, "cap_divisions", {matter: d for matter, d in divisions.items() if d}
        )
        funds = {
            c.funding_source
            for clauses in self.clauses.values()
            for c in clauses
            if c.funding_source is not None
        }
        object.__setattr__(self, "funds", frozenset(funds))

    def candidates_for(self, matter: str) -> tuple[Clause, ...]:
        """The clauses that reward a matter."""
        return self.clauses.get(matter, ())

    def strategy(self, matter: str) -> Strategy:
        """How overlapping clauses on a matter are settled."""
        return self.strategies.get(matter, DEFAULT_STRATEGY)

    def within(self, region: str, jurisdiction: tuple[str, ...]) -> bool:
        """Whether a region lies inside any region of a jurisdiction (or is one of them)."""
        chain = self.ancestors.get(region)
        if chain is None:
            return False
        return any(code in chain for code in jurisdiction)


def _superseded_by(
    clauses: Mapping[str, tuple[Clause, ...]],
    links: Mapping[str, tuple[tuple[str, frozenset[str] | None], ...]],
) -> dict[tuple[str, str], frozenset[str]]:
    """Each document's superseders per matter: the links a document declares (for some matters,
    or all), followed through any document of the rule set, not only those with a clause on the
    matter, nor only those with clauses."""
    declared = {c.document.id: c.document.supersedes for cs in clauses.values() for c in cs}
    declared.update(links)
    linked = {document: targets for document, targets in declared.items() if targets}
    found: dict[tuple[str, str], frozenset[str]] = {}
    if not linked:
        return found
    for matter in clauses:
        older_than: dict[str, set[str]] = {}  # document → the documents it directly supersedes
        for document, targets in linked.items():
            for target, matters in targets:
                if matters is None or matter in matters:
                    older_than.setdefault(document, set()).add(target)
        for newer in older_than:
            seen: set[str] = set()
            frontier = list(older_than[newer])
            while frontier:
                older = frontier.pop()
                if older in seen or older == newer:
                    continue
                seen.add(older)
                frontier.extend(older_than.get(older, ()))
            for older in seen:
                key = (matter, older)
                found[key] = found.get(key, frozenset()) | {newer}
    return found


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


def _optional_money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _simple_amount(data: Mapping[str, Any]) -> SimpleAmount:
    kind = data["kind"]
    if kind == "fixed":
        return Fixed(_money(data["value"]))
    if kind == "per_unit":
        return PerUnit(
            rate=_money(data["rate"]),
            unit=data["unit"],
            units_from=data.get("units_from", "quantity"),
            max_units_per_subject=data.get("max_units_per_subject"),
        )
    if kind == "percentage":
        return Percentage(rate=_money(data["rate"]), base=data["base"])
    if kind == "range":
        return Range(min=_money(data["min"]), max=_money(data["max"]))
    if kind == "periodic":
        return Periodic(
            per_period=_money(data["per_period"]), period=data["period"], periods=data["periods"]
        )
    raise ValueError(f"unknown amount kind {kind!r}")


def _amount(data: Mapping[str, Any]) -> Amount:
    kind = data["kind"]
    if kind == "tiered":
        tiers = tuple((_money(t["at_least"]), _simple_amount(t["amount"])) for t in data["tiers"])
        return Tiered(attribute=data["attribute"], tiers=tiers)
    if kind == "unspecified":
        return Unspecified()
    if kind == "non_cash":
        return NonCash(
            description=data["description"],
            rate=_optional_money(data.get("rate")),
            value=_optional_money(data.get("value")),
        )
    return _simple_amount(data)


def _condition(source: str | None, cache: dict[str, Condition]) -> Condition | None:
    if source is None:
        return None
    if source not in cache:
        cache[source] = compile_condition(source)
    return cache[source]


_KIND_NAMES = {"enterprise": "企业", "individual": "个人", "institution": "机构"}


def _window(start: dt.date | None, end: dt.date | None) -> str:
    return f"{start or '…'} 至 {end or '今'}"


def _verdicts(clause: Clause, names: Mapping[str, str] | None = None) -> dict[str, Considered]:
    """The outcomes a clause can have whatever the event's amounts: prepared once. Regions are
    named by `names` (code → name) where it knows them."""
    document = clause.document
    covered = "、".join((names or {}).get(code, code) for code in document.jurisdiction)
    end = document.effective_to
    if document.repealed_date is not None:
        end = min(filter(None, (end, document.repealed_date - dt.timedelta(days=1))))
    prepared = {
        "out_of_jurisdiction": Considered(
            clause,
            "out_of_jurisdiction",
            f"申请主体所在地不在适用范围（{covered}）内",
        ),
        "not_in_force": Considered(
            clause,
            "not_in_force",
            f"事件日期不在文件有效期（{_window(document.effective_from, end)}）内",
        ),
        "clause_not_in_force": Considered(
            clause,
            "not_in_force",
            f"事件日期不在条款适用期（{_window(clause.effective_from, clause.effective_to)}）内",
        ),
        "unspecified": Considered(clause, "unspecified", "原文未载明金额，不计算"),
    }
    if clause.condition is not None:
        prepared["condition_not_met"] = Considered(
            clause, "condition_not_met", f"不满足条件：{clause.condition.source}"
        )
    if isinstance(clause.amount, NonCash):
        prepared["non_cash"] = Considered(
            clause, "non_cash", f"非现金优惠：{clause.amount.description}"
        )
    for kind, name in _KIND_NAMES.items():
        prepared[f"beneficiary_mismatch:{kind}"] = Considered(
            clause, "beneficiary_mismatch", f"本条款不适用于{name}"
        )
    return prepared


def _screening(clause: Clause, exclusions: Mapping[str, tuple[Exclusion, ...]]) -> Screening:
    if not clause.verdicts:
        clause.verdicts.update(_verdicts(clause))
    document = clause.document
    in_force_from = document.effective_from.toordinal()
    in_force_to = document.effective_to.toordinal() if document.effective_to else _NEVER
    if document.repealed_date is not None:
        in_force_to = min(in_force_to, document.repealed_date.toordinal() - 1)
    first_day = clause.effective_from.toordinal() if clause.effective_from else _ALWAYS
    last_day = clause.effective_to.toordinal() if clause.effective_to else _NEVER
    return Screening(
        clause=clause,
        covered=document.covered,
        first_day=max(first_day, in_force_from),
        last_day=min(last_day, in_force_to),
        in_force_from=in_force_from,
        in_force_to=in_force_to,
        beneficiaries=clause.beneficiaries,
        condition=clause.condition,
        exclusions=tuple(
            rule
            for rule in exclusions.get(document.id, ())
            if rule.matters is None or clause.matter in rule.matters
        ),
        capped=clause.caps.running,
        fixed_worth=constant_worth(clause.amount),
        out_of_jurisdiction=clause.verdict("out_of_jurisdiction"),
        not_in_force=clause.verdict("not_in_force"),
        clause_not_in_force=clause.verdict("clause_not_in_force"),
        mismatch={kind: clause.verdict(f"beneficiary_mismatch:{kind}") for kind in _KIND_NAMES},
    )


def compile_snapshot(snapshot: Mapping[str, Any]) -> RuleSet:
    """Compile a registry snapshot: conditions parsed, clauses indexed by matter."""
    parents: dict[str, str | None] = {r["code"]: r["parent"] for r in snapshot["regions"]}
    ancestors: dict[str, frozenset[str]] = {}
    for code in parents:
        chain: list[str] = []
        seen: str | None = code
        while seen is not None and seen not in chain:
            chain.append(seen)
            seen = parents.get(seen)
        ancestors[code] = frozenset(chain)
    conditions: dict[str, Condition] = {}
    clauses: dict[str, list[Clause]] = defaultdict(list)
    exclusions: dict[str, list[Exclusion]] = defaultdict(list)
    links: dict[str, tuple[tuple[str, frozenset[str] | None], ...]] = {}
    for data in snapshot["documents"]:
        jurisdiction = frozenset(data["jurisdiction"])
        document = Document(
            id=data["id"],
            doc_no=data.get("doc_no"),
            effective_from=dt.date.fromisoformat(data["effective_from"]),
            effective_to=_date(data.get("effective_to")),
            repealed_date=_date(data.get("repealed_date")),
            jurisdiction=tuple(data["jurisdiction"]),
            supersedes=tuple(
                # An empty list supersedes for no matter, as the registry reads it for cycles.
                (
                    link["document"],
                    None if link.get("matters") is None else frozenset(link["matters"]),
                )
                for link in data.get("supersedes", ())
            ),
            covered=frozenset(code for code, chain in ancestors.items() if chain & jurisdiction),
        )
        if document.supersedes:
            links[document.id] = document.supersedes
        for rule in data.get("exclusions", ()):
            when = _condition(rule["when"], conditions)
            assert when is not None
            exclusions[document.id].append(
                Exclusion(
                    id=f"{document.id}.{rule['id']}",
                    document_id=document.id,
                    ref=rule["ref"],
                    when=when,
                    matters=frozenset(rule["matters"]) if rule.get("matters") else None,
                    quote=rule["quote"],
                )
            )
        for item in data["clauses"]:
            caps = item.get("caps") or {}
            clauses[item["matter"]].append(
                Clause(
                    id=f"{document.id}.{item['id']}",
                    local_id=item["id"],
                    document=document,
                    ref=item["ref"],
                    matter=item["matter"],
                    beneficiaries=frozenset(item["beneficiaries"]),
                    condition=_condition(item.get("condition"), conditions),
                    amount=_amount(item["amount"]),
                    caps=Caps(
                        per_event=_optional_money(caps.get("per_event")),
                        per_applicant_year=_optional_money(caps.get("per_applicant_year")),
                        cumulative=_optional_money(caps.get("cumulative")),
                        cumulative_key=caps.get("cumulative_key"),
                        per=caps.get("per"),
                    ),
                    effective_from=_date(item.get("effective_from")),
                    effective_to=_date(item.get("effective_to")),
                    quote=item["quote"],
                    funding_source=item.get("funding_source"),
                )
            )
    names = {r["code"]: r["name"] for r in snapshot["regions"] if r.get("name")}
    for matter_clauses in clauses.values():
        for clause in matter_clauses:
            clause.verdicts.update(_verdicts(clause, names))
    strategies = {}
    for matter in snapshot["matters"]:
        strategy = matter.get("strategy")
        if strategy:
            strategies[matter["key"]] = Strategy(
                kind=strategy.get("kind", "newest_then_highest"),
                priority=tuple(strategy.get("priority") or ()),
                total_cap=_optional_money(strategy.get("total_cap")),
            )
    return RuleSet(
        version=snapshot["version"],
        clauses={k: tuple(v) for k, v in clauses.items()},
        exclusions={k: tuple(v) for k, v in exclusions.items()},
        strategies=strategies,
        ancestors=ancestors,
        matters=frozenset(m["key"] for m in snapshot["matters"]),
        attributes={m["key"]: m.get("attributes") or {} for m in snapshot["matters"]},
        links=links,
    )
