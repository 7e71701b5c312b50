"""Recording documents: loading policy files, and the admin writes (create, amend, repeal)."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from subsidy_common.problems import Conflict, DomainError, InvalidInput, NotFound, problem_type

from registry.documents import repository
from registry.documents.schemas import PolicyDetail, WriteReason
from registry.models import AuditEntry, DocumentVersion
from registry.policy_files.conditions import ConditionInvalid, check_condition
from registry.policy_files.integrity import Link, caps_of, check_document
from registry.policy_files.loader import PolicySet, Problem
from registry.policy_files.models import (
    AFTER_ITS_END,
    REPEALED_BEFORE_START,
    Document,
    ids_used_twice,
    normalise_doc_no,
)
from registry.policy_files.reference import Matter

log = logging.getLogger(__name__)

Action = Literal["load", "create", "amend", "repeal"]
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The time a write records: read once the writer holds the registry's write lock, so
    versions are stamped in the order they commit, and once the write is validated, just before
    it is recorded and committed. A read as of an instant after the stamp waits for the commit
    (`repository.settle_writes`)."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Reference:
    """The reference data a document is checked against."""

    regions: frozenset[str]
    matters: dict[str, Matter]


class DocumentNotFound(NotFound):
    """No document with this id (at this instant)."""


class DocumentExists(Conflict):
    """A document with this id is already recorded."""


class VersionStale(DomainError):
    """The `If-Match` version is not the current one: someone changed the document since."""

    type = problem_type("precondition-failed")
    title = "Precondition Failed"
    status = 412


class DocumentInvalid(InvalidInput):
    """A document refused whole, with every problem found."""


class RepealedAlready(Conflict):
    """A repeal on another date than the one recorded."""


def content_of(document: Document) -> dict[str, Any]:
    """The stored form of a document: JSON, without defaults left implicit."""
    return document.model_dump(mode="json")


def content_hash(content: dict[str, Any]) -> str:
    """A digest of the canonical JSON of a document's content."""
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def etag(version: DocumentVersion) -> str:
    """The strong ETag of a version."""
    return f'"{version.document_id}.v{version.version}.{version.content_hash[:12]}"'


def date_of(text: str) -> dt.date:
    """A stored ISO date."""
    return dt.date.fromisoformat(text)


def document_of(version: DocumentVersion) -> Document:
    """The document a version records."""
    return Document.model_validate(version.content)


def links_of(recorded: Mapping[str, Sequence[dict[str, Any]]]) -> dict[str, list[Link]]:
    """Supersession links as the documents' stored content records them."""
    return {
        document_id: [
            (link["document"], None if link.get("matters") is None else frozenset(link["matters"]))
            for link in links
        ]
        for document_id, links in recorded.items()
    }


@dataclass(frozen=True, slots=True)
class Recorded:
    """The other documents a write is checked against: their supersession links, each shared
    cap's name with the documents that use it, and each 文号 (as `normalise_doc_no` writes it)
    with the document that has it."""

    links: dict[str, list[Link]]
    caps: dict[str, set[str]]
    doc_nos: dict[str, str]


async def _recorded(session: AsyncSession) -> Recorded:
    links, caps, doc_nos = await repository.current_relations(session)
    return Recorded(
        links_of(links),
        caps_of(caps),
        {normalise_doc_no(doc_no): document_id for document_id, doc_no in doc_nos.items()},
    )


def _own_doc_no(document: Document, recorded: Recorded) -> None:
    """Refuse a 文号 another document already has: one document recorded twice, under two ids,
    would be paid from twice."""
    if document.doc_no is None:
        return
    holder = recorded.doc_nos.get(normalise_doc_no(document.doc_no))
    if holder is not None and holder != document.id:
        raise DocumentInvalid(
            f"The 文号 {document.doc_no} is already recorded, as document {holder!r}.",
            errors=[
                {
                    "loc": ["body", "document", "doc_no"],
                    "msg": f"already recorded as document {holder!r}",
                    "type": "value_error",
                }
            ],
        )


# A write sent without a reason.
NO_REASON = object()


def checked_reason(reason: object) -> tuple[str, list[dict[str, Any]]]:
    """A write's reason, and its problems (at `body.reason`) to tell beside its document's."""
    if reason is NO_REASON:
        return "", [{"loc": ["body", "reason"], "msg": "Field required", "type": "missing"}]
    try:
        return WriteReason.validate_python(reason), []
    except ValidationError as exc:
        problems = [
            {"loc": ["body", "reason", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False)
        ]
        return "", problems


def validate_document(
    data: dict[str, Any],
    reference: Reference,
    others: Mapping[str, Sequence[Link]],
    *,
    caps: Mapping[str, set[str]] | None = None,
    prefix: Sequence[str | int],
    also: Sequence[dict[str, Any]] = (),
) -> Document:
    """Parse and check a document as an admin write does, against the other documents of the
    registry and their supersession links; raise with every problem at once, the write's own
    (`also`) first."""
    try:
        document = Document.model_validate(data)
    except ValidationError as exc:
        errors = [*also] + [
            {"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False)
        ]
        raw = [_problem_item(p, prefix) for p in _raw_problems(data, reference, set(others))]
        told = {item["msg"] for item in raw}
        # The model's own check of the whole, told again at its fields below where each is.
        errors = [e for e in errors if e["loc"] != list(prefix) or not _told(str(e["msg"]), told)]
        shown = {tuple(e["loc"]) for e in errors}
        errors += [item for item in raw if tuple(item["loc"]) not in shown]
        raise DocumentInvalid(
            f"The document has {len(errors)} problem(s); nothing was stored.", errors=errors
        ) from exc
    problems = check_document(
        document,
        "document",
        set(reference.regions),
        reference.matters,
        {*others, document.id},
        {k: v for k, v in others.items() if k != document.id},
        caps,
    )
    errors = [*also, *(_problem_item(p, prefix) for p in problems if p.severity == "error")]
    if errors:
        raise DocumentInvalid(
            f"The document has {len(errors)} problem(s); nothing was stored.", errors=errors
        )
    return document


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _told(message: str, told: set[str]) -> bool:
    """Whether every problem of a model error's message ("Value error, a; b") is told."""
    return all(part in told for part in message.removeprefix("Value error, ").split("; "))


def _raw_problems(
    data: dict[str, Any], reference: Reference, document_ids: set[str]
) -> list[Problem]:
    """The checks that can be made on a document the model refused, so that one answer lists
    them beside the model's: its dates in order, its clause ids each used once, unknown regions,
    matters and documents, conditions that do not parse."""
    found: list[Problem] = []

    def add(field: str, message: str) -> None:
        found.append(Problem("document", None, field, message))

    start, end, repealed = (
        value if isinstance(value, str) and _ISO_DATE.fullmatch(value) else None
        for value in (data.get(k) for k in ("effective_from", "effective_to", "repealed_date"))
    )
    if start and end and start > end:
        add("effective_to", AFTER_ITS_END)
    if start and repealed and repealed < start:
        add("repealed_date", REPEALED_BEFORE_START)
    rules = [
        rule
        for key in ("clauses", "exclusions")
        if isinstance(data.get(key), list)
        for rule in data[key]
    ]
    if twice := ids_used_twice([r.get("id") for r in rules if isinstance(r, dict)]):
        add("clauses", twice)

    jurisdiction = data.get("jurisdiction")
    for i, code in enumerate(jurisdiction if isinstance(jurisdiction, list) else []):
        if isinstance(code, str) and code not in reference.regions:
            add(f"jurisdiction[{i}]", f"unknown region {code!r}")
    supersedes = data.get("supersedes")
    for i, link in enumerate(supersedes if isinstance(supersedes, list) else []):
        target = link.get("document") if isinstance(link, dict) else None
        if isinstance(target, str) and target not in document_ids | {data.get("id")}:
            add(f"supersedes[{i}].document", f"unknown document {target!r}")
    clauses = data.get("clauses")
    for i, clause in enumerate(clauses if isinstance(clauses, list) else []):
        if not isinstance(clause, dict):
            continue
        matter = clause.get("matter")
        if isinstance(matter, str) and matter not in reference.matters:
            add(f"clauses[{i}].matter", f"unknown matter {matter!r}")
        condition = clause.get("condition")
        if isinstance(condition, str):
            try:
                check_condition(condition)
            except ConditionInvalid as exc:
                add(f"clauses[{i}].condition", f"not a valid condition: {exc}")
    return found


def _problem_item(problem: Problem, prefix: Sequence[str | int]) -> dict[str, Any]:
    loc: list[str | int] = [*prefix]
    for part in problem.field.replace("]", "").replace("[", ".").split("."):
        if part:
            loc.append(int(part) if part.isdigit() else part)
    return {"loc": loc, "msg": problem.message, "type": "integrity"}


async def record(
    session: AsyncSession,
    *,
    document: Document,
    action: Action,
    actor: str,
    reason: str,
    now: dt.datetime,
    previous: DocumentVersion | None,
    origin: Literal["file", "api"],
    file_hash: str | None = None,
) -> DocumentVersion:
    """Close the previous version, write the new one and its audit entry, in one transaction."""
    if previous is not None:
        await repository.close(session, previous, now)
    values, entry = _version_and_entry(
        document,
        content_of(document),
        action=action,
        actor=actor,
        reason=reason,
        now=now,
        previous=previous,
        origin=origin,
        file_hash=file_hash,
    )
    version = DocumentVersion(**values)
    await session.flush()  # the closing update lands before the new open version
    repository.add(session, version, AuditEntry(**entry))
    await session.flush()
    return version


def _version_and_entry(
    document: Document,
    content: dict[str, Any],
    *,
    action: Action,
    actor: str,
    reason: str,
    now: dt.datetime,
    previous: DocumentVersion | None,
    origin: Literal["file", "api"],
    file_hash: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rows that record a new version of a document: the version and its audit entry."""
    number = (previous.version + 1) if previous is not None else 1
    version = {
        "document_id": document.id,
        "version": number,
        "content": content,
        "content_hash": content_hash(content),
        "origin": origin,
        "file_hash": file_hash,
        "recorded_at": now,
        "author": actor,
        "reason": reason,
    }
    entry = {
        "at": now,
        "actor": actor,
        "action": action,
        "document_id": document.id,
        "version": number,
        "reason": reason,
        "before": previous.content if previous is not None else None,
        "after": content,
    }
    return version, entry


async def load_file_documents(
    session: AsyncSession, policy_set: PolicySet, now: dt.datetime
) -> int:
    """Record every policy file whose text changed since it was last loaded; return how many.

    A changed file becomes the current version of its document, unless the document has been
    amended or repealed through the admin API since: an official's change is never undone by
    a file written without it. That file is passed over with a warning; its change is made
    through the API, where the current version is seen first.
    One query finds the changed files; their current versions are read (and locked) together
    and the new versions written together, so a restart with unchanged files costs one query
    and a first load a handful of statements.
    """
    await repository.serialise_writers(session)
    loaded = await repository.last_file_hashes(session)
    changed = [
        (name, document)
        for name, document in policy_set.documents
        if loaded.get(document.id) != policy_set.file_hashes[name]
    ]
    if not changed:
        return 0
    current = await repository.current_versions_of(
        session, [document.id for _, document in changed], lock=True
    )
    doc_nos = (await _recorded(session)).doc_nos
    versions: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for name, document in changed:
        previous = current.get(document.id)
        content = content_of(document)
        if previous is not None and previous.content_hash == content_hash(content):
            continue
        holder = doc_nos.get(normalise_doc_no(document.doc_no or ""))
        if holder is not None and holder != document.id:
            log.error(
                "policies/%s has the 文号 %s of document %s, recorded through the admin API: "
                "the file is not loaded, since one document recorded twice would be paid from "
                "twice",
                name,
                document.doc_no,
                holder,
                extra={"document_id": document.id},
            )
            continue
        if previous is not None and previous.origin == "api":
            log.warning(
                "policies/%s changed, but %s was changed through the admin API since the file "
                "was last loaded (version %d, %s): the file is not loaded over it",
                name,
                document.id,
                previous.version,
                previous.author,
                extra={"document_id": document.id},
            )
            continue
        at = now if previous is None else max(now, previous.recorded_at)
        if previous is not None:
            await repository.close(session, previous, at)
        version, entry = _version_and_entry(
            document,
            content,
            action="load",
            actor="policy-files",
            reason=f"loaded from policies/{name}",
            now=at,
            previous=previous,
            origin="file",
            file_hash=policy_set.file_hashes[name],
        )
        versions.append(version)
        entries.append(entry)
    # After the closing updates: the new open versions, and their audit entries, in bulk.
    await repository.insert_many(session, DocumentVersion, versions)
    await repository.insert_many(session, AuditEntry, entries)
    return len(versions)


async def _current_for_update(session: AsyncSession, document_id: str) -> DocumentVersion:
    """The document's current version, locked until the transaction ends; 404 if it has none.

    Called after `serialise_writers`: no other write can close it meanwhile.
    """
    current = await repository.current_version(session, document_id, lock=True)
    if current is None:
        raise DocumentNotFound(f"No document {document_id!r}.")
    return current


async def create(
    session: AsyncSession,
    *,
    data: dict[str, Any],
    reference: Reference,
    actor: str,
    reason: object,
    clock: Clock = utc_now,
) -> DocumentVersion:
    """Record a new document; 409 when its id is taken."""
    await repository.serialise_writers(session)
    recorded = await _recorded(session)
    said, reason_problems = checked_reason(reason)
    document = validate_document(
        data,
        reference,
        recorded.links,
        caps=recorded.caps,
        prefix=["body", "document"],
        also=reason_problems,
    )
    if document.id in recorded.links or await repository.versions(session, document.id):
        raise DocumentExists(f"A document with id {document.id!r} is already recorded.")
    _own_doc_no(document, recorded)
    return await record(
        session,
        document=document,
        action="create",
        actor=actor,
        reason=said,
        now=clock(),
        previous=None,
        origin="api",
    )


async def amend(
    session: AsyncSession,
    *,
    document_id: str,
    data: dict[str, Any],
    if_match: str,
    reference: Reference,
    actor: str,
    reason: object,
    clock: Clock = utc_now,
) -> DocumentVersion:
    """Record a new version of a document, if the client saw the current one."""
    await repository.serialise_writers(session)
    current = await _current_for_update(session, document_id)
    if not {tag.strip() for tag in if_match.split(",")} & {etag(current), "*"}:
        raise VersionStale(
            f"The document changed since that version; the current ETag is {etag(current)}.",
            current_etag=etag(current),
        )
    recorded = await _recorded(session)
    said, problems = checked_reason(reason)
    if isinstance(sent_id := data.get("id"), str) and sent_id != document_id:
        # A document's id cannot change.
        problems.append({"loc": ["body", "document", "id"], "msg": f"must be {document_id!r}"})
    document = validate_document(
        _as_written(data, document_id),
        reference,
        recorded.links,
        caps=recorded.caps,
        prefix=["body", "document"],
        also=problems,
    )
    _own_doc_no(document, recorded)
    if content_hash(content_of(document)) == current.content_hash:
        return current
    return await record(
        session,
        document=document,
        action="amend",
        actor=actor,
        reason=said,
        now=max(clock(), current.recorded_at),
        previous=current,
        origin="api",
    )


# What `GET /v1/policies/{id}` shows beside the document itself (status, version, …).
_SHOWN_ONLY = frozenset(PolicyDetail.model_fields) - frozenset(Document.model_fields)


def _as_written(data: dict[str, Any], document_id: str) -> dict[str, Any]:
    """A document as `GET /v1/policies/{id}` shows it, written again: without what the
    registry derives (its status, version, clause count and recording time), its clauses'
    ids without the document's id before them. A client may read, change and send it back."""
    written = {k: v for k, v in data.items() if k not in _SHOWN_ONLY}
    clauses = written.get("clauses")
    if isinstance(clauses, list):
        prefix = f"{document_id}."
        written["clauses"] = [
            {**c, "id": c["id"].removeprefix(prefix)}
            if isinstance(c, dict) and isinstance(c.get("id"), str)
            else c
            for c in clauses
        ]
    return written


async def repeal(
    session: AsyncSession,
    *,
    document_id: str,
    day: dt.date,
    reference: Reference,
    actor: str,
    reason: str,
    clock: Clock = utc_now,
) -> DocumentVersion:
    """Record that a document is repealed from a date on."""
    await repository.serialise_writers(session)
    current = await _current_for_update(session, document_id)
    if day < date_of(current.content["effective_from"]):
        raise DocumentInvalid(
            "A document cannot be repealed before it takes effect.",
            errors=[{"loc": ["body", "date"], "msg": "is before the document's effective_from"}],
        )
    ends = current.content.get("effective_to")
    if ends is not None and day > date_of(ends):
        raise DocumentInvalid(
            f"The document ends on {ends} by itself: a repeal after that changes nothing.",
            errors=[{"loc": ["body", "date"], "msg": "is after the document's effective_to"}],
        )
    repealed = current.content.get("repealed_date")
    if repealed is not None and repealed != day.isoformat():
        raise RepealedAlready(
            f"The document is repealed from {repealed} already. Another date changes what was in"
            " force between the two: amend the document (PUT with If-Match) to change it."
        )
    data = dict(current.content)
    data["repealed_date"] = day.isoformat()
    document = validate_document(data, reference, (await _recorded(session)).links, prefix=["body"])
    if content_hash(content_of(document)) == current.content_hash:
        return current  # repealed from that date already
    return await record(
        session,
        document=document,
        action="repeal",
        actor=actor,
        reason=reason,
        now=max(clock(), current.recorded_at),
        previous=current,
        origin="api",
    )
