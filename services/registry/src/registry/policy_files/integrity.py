"""Checks that span files: references between documents, matters, regions and attributes."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from registry.policy_files.conditions import ConditionInvalid, check_condition, judgement_problem
from registry.policy_files.loader import PolicySet, Problem
from registry.policy_files.models import (
    Clause,
    Document,
    FixedAmount,
    PeriodicAmount,
    PerUnitAmount,
    RangeAmount,
    TieredAmount,
    normalise_doc_no,
)
from registry.policy_files.reference import APPLICANT_BUILTINS, EVENT_BUILTINS, Matter

# The ledger keeps a cap's key in 120 characters; a cap divided per project adds "@" and 16
# hexadecimal digits to it (calculator.engine.model.Clause.cap_key_for).
CAP_KEY_LENGTH = 120
PER_SUFFIX = 17
# The attribute types an amount can be reckoned from.
_NUMBERS = frozenset({"integer", "decimal", "money"})


def check_policy_set(policy_set: PolicySet) -> list[Problem]:
    """Every cross-file problem: errors refuse the set, warnings are reported beside it."""
    regions = {region.code for region in policy_set.regions.regions}
    matters = {matter.key: matter for matter in policy_set.matters.matters}
    problems: list[Problem] = []
    by_id: dict[str, str] = {}
    by_doc_no: dict[str, str] = {}
    for name, document in policy_set.documents:
        if document.doc_no is not None:
            doc_no = normalise_doc_no(document.doc_no)
            if doc_no in by_doc_no:  # one document recorded twice would be paid from twice
                problems.append(
                    Problem(name, None, "doc_no", f"文号 already used by {by_doc_no[doc_no]}")
                )
            by_doc_no.setdefault(doc_no, name)
        if document.id in by_id:
            problems.append(
                Problem(
                    name, None, "id", f"id {document.id!r} is already used by {by_id[document.id]}"
                )
            )
        by_id.setdefault(document.id, name)
        if not name.endswith(f"/{document.id}.yaml"):
            problems.append(Problem(name, None, "id", f"file name must be {document.id}.yaml"))
    links = {document.id: supersession_links(document) for _, document in policy_set.documents}
    caps = caps_of({document.id: shared_caps(document) for _, document in policy_set.documents})
    for name, document in policy_set.documents:
        problems.extend(check_document(document, name, regions, matters, set(by_id), links, caps))
    problems.extend(_undeclared_overlaps(policy_set, matters))
    problems.extend(_succession_gaps(policy_set))
    return problems


def shared_caps(document: Document) -> set[str]:
    """The names of the caps the document's clauses share (their `cumulative_key`)."""
    return {c.caps.cumulative_key for c in document.clauses if c.caps.cumulative_key}


def caps_of(by_document: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """Each shared cap's name, with the documents that use it."""
    found: dict[str, set[str]] = defaultdict(set)
    for document_id, keys in by_document.items():
        for key in keys:
            found[key].add(document_id)
    return found


def check_document(
    document: Document,
    name: str,
    regions: set[str],
    matters: dict[str, Matter],
    document_ids: set[str],
    links: Mapping[str, Sequence[Link]],
    caps: Mapping[str, set[str]] | None = None,
) -> list[Problem]:
    """Problems of one document against the reference data and the other documents, whose
    supersession links are `links` and whose shared caps' names are `caps` (each with the
    documents that use it)."""
    found: list[Problem] = []

    def add(field: str, message: str) -> None:
        found.append(Problem(name, None, field, message))

    for i, code in enumerate(document.jurisdiction):
        if code not in regions:
            add(f"jurisdiction[{i}]", f"unknown region {code!r}")
    others = {**links, document.id: supersession_links(document)}
    for i, link in enumerate(document.supersedes):
        if link.document not in document_ids:
            add(f"supersedes[{i}].document", f"unknown document {link.document!r}")
            continue
        loop = _back_to(document.id, others[document.id][i], others)
        if loop is not None:
            add(
                f"supersedes[{i}].document",
                f"a cycle: {' → '.join([document.id, *loop])} (each would set aside the other)",
            )
        for j, key in enumerate(link.matters or []):
            if key not in matters:
                add(f"supersedes[{i}].matters[{j}]", f"unknown matter {key!r}")
    doc_matters = [matters[c.matter] for c in document.clauses if c.matter in matters]
    for i, rule in enumerate(document.exclusions):
        scope = [matters[k] for k in rule.matters or [] if k in matters] or doc_matters
        for j, key in enumerate(rule.matters or []):
            if key not in matters:
                add(f"exclusions[{i}].matters[{j}]", f"unknown matter {key!r}")
        for message in _condition_problems(rule.when, scope):
            add(f"exclusions[{i}].when", message)
    for i, clause in enumerate(document.clauses):
        for field, message in _clause_problems(clause, document, matters.get(clause.matter)):
            add(f"clauses[{i}].{field}", message)
    divided: dict[str, str | None] = {}
    for i, clause in enumerate(document.clauses):
        shared = clause.caps.cumulative_key
        if shared is None:
            continue
        elsewhere = sorted((caps or {}).get(shared, set()) - {document.id})
        if elsewhere:
            add(
                f"clauses[{i}].caps.cumulative_key",
                f"{shared!r} is already a cap of {', '.join(elsewhere)}: a cap is shared by"
                " clauses of one document; name this one differently",
            )
        first = divided.setdefault(shared, clause.caps.per)
        if first != clause.caps.per:
            add(
                f"clauses[{i}].caps.per",
                f"clauses sharing the cap {shared!r} must divide it alike: one divides it by"
                f" {first!r}, this one by {clause.caps.per!r}",
            )
    return found


# A document's supersession link: the document it sets aside, and for which matters (None: all).
Link = tuple[str, frozenset[str] | None]


def supersession_links(document: Document) -> list[Link]:
    """The documents this one sets aside, each with the matters it sets them aside for."""
    return [
        (link.document, None if link.matters is None else frozenset(link.matters))
        for link in document.supersedes
    ]


def _back_to(start: str, first: Link, links: Mapping[str, Sequence[Link]]) -> list[str] | None:
    """The documents a path of links takes from `first` back to `start`, for at least one
    matter all its links share; None when there is no such path."""
    seen: set[tuple[str, frozenset[str] | None]] = set()
    stack: list[tuple[str, frozenset[str] | None, list[str]]] = [(first[0], first[1], [first[0]])]
    while stack:
        here, matters, path = stack.pop()
        if here == start:
            return path
        if (here, matters) in seen:
            continue
        seen.add((here, matters))
        for target, scope in links.get(here, ()):
            shared = scope if matters is None else matters if scope is None else matters & scope
            if shared is None or shared:
                stack.append((target, shared, [*path, target]))
    return None


def _clause_problems(
    clause: Clause, document: Document, matter: Matter | None
) -> Iterable[tuple[str, str]]:
    if matter is None:
        yield "matter", f"unknown matter {clause.matter!r}"
        if clause.condition is not None:  # its syntax, at least, is checked without the matter
            try:
                check_condition(clause.condition)
            except ConditionInvalid as exc:
                yield "condition", f"not a valid condition: {exc}"
        return
    strange = sorted(set(clause.beneficiaries) - set(matter.beneficiaries))
    if strange:
        yield "beneficiaries", f"{', '.join(strange)} not among the matter's beneficiaries"
    if clause.condition is not None:
        for message in _condition_problems(clause.condition, [matter]):
            yield "condition", message
    for field, attribute in _amount_attributes(clause):
        if attribute == "quantity":
            continue
        declared = matter.attributes.get(attribute)
        if declared is None:
            yield f"amount.{field}", f"matter {matter.key} has no attribute {attribute!r}"
        elif declared.type not in _NUMBERS:
            yield (
                f"amount.{field}",
                f"{attribute!r} is of type {declared.type}: an amount is reckoned from a number",
            )
    if _pays_nothing(clause.amount):
        yield (
            "amount",
            "an amount of 0 pays nothing: leave the clause out, or record its amount as"
            " unspecified where the text names no sum",
        )
    caps = clause.caps
    if caps.per_applicant_year is not None and _periodic(clause.amount):
        yield (
            "caps.per_applicant_year",
            "a periodic amount is paid over several years, and a yearly cap would count all of it"
            " in the event's year: cap it with cumulative or per_event",
        )
    if caps.running:
        key = caps.cumulative_key or f"{document.id}.{clause.id}"
        longest = len(key) + (PER_SUFFIX if caps.per is not None else 0)
        if longest > CAP_KEY_LENGTH:
            yield (
                "caps",
                f"the cap's key {key!r} is too long for the ledger ({longest} characters of"
                f" {CAP_KEY_LENGTH}): shorten the document's or the clause's id, or name the cap"
                " with cumulative_key",
            )
    per = caps.per
    if per is not None:
        declared = matter.attributes.get(per)
        if declared is None or declared.on != "event":
            yield "caps.per", f"matter {matter.key} has no event attribute {per!r}"
        elif declared.type not in ("string", "enum", "integer"):
            yield "caps.per", f"{per!r} is a {declared.type}: caps are divided by a name or number"
        elif ("event", per) not in _read_by(clause.condition):
            yield (
                "caps.per",
                f"the condition must read event.{per}: an event without it is then asked for it,"
                " where it would count under the applicant's whole cap",
            )
    if clause.effective_from and clause.effective_from < document.effective_from:
        yield "effective_from", "the clause starts before its document"
    if (
        clause.effective_to
        and document.effective_to
        and clause.effective_to > document.effective_to
    ):
        yield "effective_to", "the clause ends after its document"
    if (
        clause.effective_from
        and document.effective_to
        and clause.effective_from > document.effective_to
    ):
        yield "effective_from", "the clause starts after its document ends: it would never apply"
    if clause.effective_to and clause.effective_to < document.effective_from:
        yield "effective_to", "the clause ends before its document starts: it would never apply"
    if matter.strategy is not None and matter.strategy.kind == "cumulative" and caps.running:
        yield (
            "caps",
            (
                f"matter {matter.key} is settled cumulatively, paying several clauses at once, and "
                "their yearly and cumulative caps are not counted then: cap the sum with the "
                "strategy's total_cap, or settle the matter otherwise"
            ),
        )
    bounds = [
        c for c in (caps.per_event, caps.per_applicant_year, caps.cumulative) if c is not None
    ]
    if any(c == 0 for c in bounds):
        yield "caps", "a cap of 0 pays nothing: leave it out or record the clause as unspecified"


def _periodic(amount: object) -> bool:
    """Whether an amount is paid in instalments, itself or in one of its tiers."""
    if isinstance(amount, TieredAmount):
        return any(isinstance(tier.amount, PeriodicAmount) for tier in amount.tiers)
    return isinstance(amount, PeriodicAmount)


def _pays_nothing(amount: object) -> bool:
    """Whether an amount is a sum of 0 whatever the event: a fixed sum, a rate per unit or per
    period, or a range's top."""
    if isinstance(amount, FixedAmount):
        return amount.value == 0
    if isinstance(amount, PerUnitAmount):
        return amount.rate == 0
    if isinstance(amount, PeriodicAmount):
        return amount.per_period == 0
    return isinstance(amount, RangeAmount) and amount.max == 0


def _read_by(condition: str | None) -> set[tuple[str, str]]:
    """The attributes a condition reads; none for no condition or one that does not parse."""
    if condition is None:
        return set()
    try:
        return set(check_condition(condition))
    except ConditionInvalid:
        return set()


def _amount_attributes(clause: Clause) -> Iterable[tuple[str, str]]:
    amount = clause.amount
    if amount.kind == "per_unit":
        yield "units_from", amount.units_from
    elif amount.kind == "percentage":
        yield "base", amount.base
    elif isinstance(amount, TieredAmount):
        yield "attribute", amount.attribute
        for i, tier in enumerate(amount.tiers):
            inner = tier.amount
            if inner.kind == "per_unit":
                yield f"tiers[{i}].amount.units_from", inner.units_from
            elif inner.kind == "percentage":
                yield f"tiers[{i}].amount.base", inner.base


def _condition_problems(expression: str, matters: list[Matter]) -> Iterable[str]:
    try:
        read = check_condition(expression)
    except ConditionInvalid as exc:
        yield f"not a valid condition: {exc}"
        return
    undeclared = False
    for variable, attribute in sorted(read):
        builtins = EVENT_BUILTINS if variable == "event" else APPLICANT_BUILTINS
        if attribute in builtins:
            continue
        declared = any(
            attribute in m.attributes and m.attributes[attribute].on == variable for m in matters
        )
        if not declared:
            undeclared = True
            yield f"{variable}.{attribute} is not an attribute of the matter"
    if undeclared or not matters:
        return
    declared_types: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
        (spec.on, name): (spec.type, tuple(spec.values or ()))
        for m in reversed(matters)
        for name, spec in m.attributes.items()
    }
    problem = judgement_problem(expression, matters[0].key, declared_types)
    if problem is not None:
        yield problem


def _undeclared_overlaps(policy_set: PolicySet, matters: dict[str, Matter]) -> list[Problem]:
    """Matters rewarded by several documents with no strategy written down are reported."""
    documents_of: dict[str, set[str]] = defaultdict(set)
    for _, document in policy_set.documents:
        for clause in document.clauses:
            if clause.amount.kind not in ("non_cash", "unspecified"):
                documents_of[clause.matter].add(document.id)
    return [
        Problem(
            "matters.yaml",
            None,
            f"{key}.strategy",
            f"rewarded by {', '.join(sorted(ids))} and no strategy is declared; "
            "时间从新、标准从高、不重复 applies by default",
            severity="warning",
        )
        for key, ids in sorted(documents_of.items())
        if len(ids) > 1 and key in matters and matters[key].strategy is None
    ]


def _last_day(document: Document) -> dt.date | None:
    ends = [d for d in (document.effective_to, document.repealed_date) if d is not None]
    if document.repealed_date is not None:
        ends = [min(*ends, document.repealed_date - dt.timedelta(days=1))]
    return min(ends) if ends else None


def _succession_gaps(policy_set: PolicySet) -> list[Problem]:
    """A document that supersedes another should start the day after the other stops."""
    by_id = {document.id: document for _, document in policy_set.documents}
    found = []
    for name, document in policy_set.documents:
        for i, link in enumerate(document.supersedes):
            older = by_id.get(link.document)
            if older is None:
                continue
            last = _last_day(older)
            if last is None or document.effective_from <= last:
                until = last.isoformat() if last else "open-ended"
                message = f"overlaps {older.id} (in force until {until}): both apply for a while"
            elif document.effective_from > last + dt.timedelta(days=1):
                message = (
                    f"leaves a gap after {older.id} ended on {last}: no rule applies meanwhile"
                )
            else:
                continue
            found.append(Problem(name, None, f"supersedes[{i}]", message, severity="warning"))
    return found
