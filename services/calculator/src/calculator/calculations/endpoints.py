"""`POST /v1/calculations` and `/v1/calculations/batch` (JSON or streamed NDJSON)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Annotated, Any, TypeVar, cast

import orjson
from fastapi import APIRouter, Header, Request
from pydantic import ValidationError
from starlette.responses import Response
from subsidy_common.headers import HandHeader, documented
from subsidy_common.middleware import nul_location
from subsidy_common.problems import (
    ContentTooLarge,
    DomainError,
    Forbidden,
    InvalidInput,
    problem_body,
    problem_type,
    validated_body,
)
from subsidy_common.routing import DirectRoute
from subsidy_common.streaming import (
    BOM,
    MAX_LINE_BYTES,
    NDJSON,
    OVERLONG,
    DuplexStreamingResponse,
    LineTooLong,
    complete_lines,
    request_body,
    wants_ndjson,
)

from calculator.calculations import service
from calculator.calculations.schemas import CalculationIn
from calculator.claims.reads import LedgerReads
from calculator.engine.model import EMPTY_LEDGER, Applicant, Event
from calculator.engine.rules import RuleSet
from calculator.observability import DecisionMetrics
from calculator.registry_client import SnapshotStore

router = APIRouter(tags=["calculations"], route_class=DirectRoute)

MAX_JSON_CASES = 1000  # a JSON answer is built whole; NDJSON streams without a limit
# Cases decided together, with one ledger read for all their applicants. A window is read,
# checked, decided and written in turn: at 1,300 cases (a part's worth) its objects outgrow the
# processor's caches and each case cost a quarter more than at 256.
WINDOW = 256
PAST_FETCHES = 8  # past registries asked for at once by one window
# The longest a batch's answer waits with windows decided before it sends them.
FLUSH_SECONDS = 1.0
_Out = TypeVar("_Out")
Scope = Annotated[str | None, Header(alias="X-Scope-Region", max_length=16)]
# The gateway sends a long batch in parts, each numbered from where it starts in the whole.
FirstCase = Annotated[
    int | None,
    Header(alias="X-First-Case-Index", ge=0, le=10**12, description="case_index of the first case"),
]
# The single calculation reads it by hand (subsidy_common.headers).
SCOPE = HandHeader("X-Scope-Region", max_length=16)


def _store(request: Request) -> SnapshotStore:
    return cast(SnapshotStore, request.app.state.snapshots)


def _reads(request: Request) -> LedgerReads:
    return cast(LedgerReads, request.app.state.ledger_reads)


def _metrics(request: Request) -> DecisionMetrics:
    return cast(DecisionMetrics, request.app.state.decision_metrics)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


async def _rules(store: SnapshotStore, request: CalculationIn) -> RuleSet:
    if request.registry_as_of is None:
        return store.rules
    return await store.as_of(request.registry_as_of)


async def _past_rules(
    store: SnapshotStore, instants: set[dt.datetime]
) -> dict[dt.datetime, RuleSet | DomainError]:
    """The rule sets of the past instants a window asks for, fetched a few at a time: an audit
    recomputing each case as first computed asks for about as many instants as cases."""
    if not instants:
        return {}
    wanted = list(instants)
    fetching = asyncio.Semaphore(PAST_FETCHES)

    async def one(instant: dt.datetime) -> RuleSet | DomainError:
        async with fetching:
            try:
                return await store.as_of(instant)
            except DomainError as exc:
                return exc

    return dict(zip(wanted, await asyncio.gather(*(one(i) for i in wanted)), strict=True))


def check_scope(request: CalculationIn, rules: RuleSet, scope: str | None) -> None:
    """An operator computes only for applicants inside its own region."""
    chain = rules.ancestors.get(request.applicant.region)
    if scope is None or chain is None:  # an unknown region is named by validation
        return
    if scope not in chain:
        raise Forbidden(
            f"The applicant's region {request.applicant.region} is outside this tenant's "
            f"region {scope}."
        )


async def _decide_window(
    store: SnapshotStore,
    reads: LedgerReads,
    window: Sequence[bytes],
    first_index: int,
    scope: str | None,
    metrics: DecisionMetrics,
) -> list[dict[str, Any]]:
    """Decide a window of cases with one ledger read for all their applicants, in order."""
    answers: list[dict[str, Any] | None] = [None] * len(window)
    cases: list[CalculationIn | None] = []
    for offset, raw in enumerate(window):
        try:
            _check_line(raw)
            cases.append(CalculationIn.model_validate_json(raw))
        except (ValidationError, DomainError) as exc:
            answers[offset] = _problem_line(first_index + offset, exc)
            cases.append(None)
    past = await _past_rules(
        store, {c.registry_as_of for c in cases if c is not None and c.registry_as_of is not None}
    )
    valid: list[tuple[int, Applicant, list[Event], RuleSet]] = []
    today = _today()
    for offset, case in enumerate(cases):
        if case is None:
            continue
        try:
            rules = store.rules if case.registry_as_of is None else past[case.registry_as_of]
            if isinstance(rules, DomainError):
                raise rules
            check_scope(case, rules, scope)
            applicant, events = service.validate(case, rules, today)
        except DomainError as exc:
            answers[offset] = _problem_line(first_index + offset, exc)
            continue
        valid.append((offset, applicant, events, rules))
    wanted = [(a.id, e.matter, e.subject) for _, a, events, _ in valid for e in events]
    ledgers = await reads.many(wanted) if wanted else {}
    statuses: list[str] = []
    for offset, applicant, events, rules in valid:
        try:
            decision = service.decided(
                applicant, events, rules, ledgers.get(applicant.id, EMPTY_LEDGER)
            )
        except DomainError as exc:
            answers[offset] = _problem_line(first_index + offset, exc)
            continue
        answer = service.render(decision)
        answer["case_index"] = first_index + offset
        answers[offset] = answer
        statuses += [r.status for r in decision.results]
    metrics.decided(statuses)
    return [a for a in answers if a is not None]


@router.post(
    "/v1/calculations",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "An applicant and its events (the gateway's CalculationRequest).",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **documented(SCOPE),
    },
)
async def calculate(request: Request) -> Response:
    """What each event of an applicant is entitled to, with every clause weighed."""
    scope = SCOPE.read(request)
    body = validated_body(CalculationIn, await request.body())
    store = _store(request)
    rules = await _rules(store, body)
    check_scope(body, rules, scope)
    applicant, events = service.validate(body, rules, _today())
    ledger = await _reads(request).one(applicant.id, [(e.matter, e.subject) for e in events])
    result = service.render(service.decided(applicant, events, rules, ledger))
    _metrics(request).decided(r["status"] for r in result["results"])
    return Response(orjson.dumps(result), media_type="application/json")


async def _windows(
    request: Request, read: asyncio.Event, *, whole: bool
) -> AsyncIterator[list[bytes]]:
    """The request body as lists of complete lines, one list per chunk received; `read` set
    once the body has been read.

    Only one chunk and one partial line are held at a time; a line longer than a case may be
    comes as `OVERLONG`. A part of a batch (not `whole`) keeps a byte order mark it starts with.
    """
    async for lines in complete_lines(request_body(request.receive, read), whole=whole):
        window = [line for line in lines.split(b"\n") if line.strip()]
        if window:
            yield window


def _check_line(line: bytes) -> None:
    """Refuse, as the single calculation's guard does, a line that stood for one longer than a
    case may be, and a NUL character anywhere in a case."""
    if line == OVERLONG:
        raise LineTooLong(f"The line is longer than {MAX_LINE_BYTES} bytes.")
    where = nul_location(line)
    if where is not None:
        raise InvalidInput(
            "Control characters (such as NUL) are not allowed in a case.",
            errors=[
                {
                    "loc": ["body", *where],
                    "msg": "contains a control character",
                    "type": "value_error",
                }
            ],
        )


def _problem_line(index: int, exc: Exception) -> dict[str, Any]:
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False)
        if errors and errors[0]["type"] == "json_invalid":
            body = problem_body(
                400,
                f"Case {index} is not valid JSON.",
                type_=problem_type("malformed-body"),
                errors=[{"loc": ["body"], "msg": errors[0]["msg"], "type": "json_invalid"}],
            )
        else:
            body = problem_body(
                422,
                f"Case {index} is invalid.",
                type_=problem_type("validation-error"),
                errors=[
                    {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in errors
                ],
            )
    elif isinstance(exc, DomainError):
        body = exc.body()
    else:
        raise exc
    return {**body, "case_index": index}


async def _decide_all(
    store: SnapshotStore,
    reads: LedgerReads,
    received: AsyncIterator[Sequence[bytes]],
    scope: str | None,
    metrics: DecisionMetrics,
    first: int,
    finish: Callable[[list[dict[str, Any]]], _Out],
) -> AsyncIterator[list[_Out]]:
    """The cases as received, decided WINDOW at a time and each window `finish`ed: what one
    receipt of cases gave, together, or what it gave so far every FLUSH_SECONDS, so that a
    receipt slow to decide (a past registry fetched for each case) keeps the answer moving
    within the reader's timeout."""
    index = first
    async for cases in received:
        done = []
        flushed = time.monotonic()
        for start in range(0, len(cases), WINDOW):
            window = cases[start : start + WINDOW]
            done.append(finish(await _decide_window(store, reads, window, index, scope, metrics)))
            index += len(window)
            if time.monotonic() - flushed >= FLUSH_SECONDS and start + WINDOW < len(cases):
                yield done
                done, flushed = [], time.monotonic()
        yield done


async def _at_once(cases: list[bytes]) -> AsyncIterator[list[bytes]]:
    yield cases


def _ndjson(answers: list[dict[str, Any]]) -> bytes:
    return b"".join([orjson.dumps(item, option=orjson.OPT_APPEND_NEWLINE) for item in answers])


def _as_they_are(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return answers


@router.post("/v1/calculations/batch")
async def calculate_batch(
    request: Request,
    scope: Scope = None,
    first_case: FirstCase = None,
    accept: Annotated[str, Header()] = "application/json",
    content_type: Annotated[str, Header()] = "application/json",
) -> Response:
    """One calculation per case, in order; a bad case yields a problem and the rest go on.

    A request numbered by X-First-Case-Index is a part of a batch the gateway has cut."""
    store = _store(request)
    accept = accept.lower()  # media types are case-insensitive (RFC 9110, 8.3.1)
    read = asyncio.Event()
    if content_type.split(";")[0].strip().lower() == NDJSON:
        windows: AsyncIterator[Any] = _windows(request, read, whole=first_case is None)
    else:
        raw = (await request.body()).removeprefix(BOM)
        read.set()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return Response(
                orjson.dumps(problem_body(400, "The request body is not valid JSON.")),
                status_code=400,
                media_type="application/problem+json",
            )
        if isinstance(body, dict) and len(body.get("cases") or ()) > MAX_JSON_CASES:
            raise ContentTooLarge(
                f"A JSON batch holds at most {MAX_JSON_CASES} cases; send more as NDJSON lines."
            )
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("cases"), list)
            or not body["cases"]
        ):
            problem = problem_body(
                422,
                f'The body must be {{"cases": [...]}} with 1 to {MAX_JSON_CASES} cases.',
                type_=problem_type("validation-error"),
                errors=[
                    {"loc": ["body", "cases"], "msg": "a list of calculation requests is required"}
                ],
            )
            return Response(
                orjson.dumps(problem), status_code=422, media_type="application/problem+json"
            )
        # Each case is read as an NDJSON line is, so that both say the same of a bad one (and
        # find a NUL in it): a thousand cases at most, a few microseconds each.
        windows = _at_once([orjson.dumps(case) for case in body["cases"]])
    decide_all = partial(
        _decide_all, store, _reads(request), windows, scope, _metrics(request), first_case or 0
    )
    if wants_ndjson(accept):

        async def stream() -> AsyncIterator[bytes]:
            async for lines in decide_all(_ndjson):
                yield b"".join(lines)

        return DuplexStreamingResponse(stream(), media_type=NDJSON, body_read=read)
    items: list[dict[str, Any]] = []
    async for decided in decide_all(_as_they_are):
        for answers in decided:
            items += answers
        if len(items) > MAX_JSON_CASES:
            raise ContentTooLarge(
                f"An answer as one JSON document holds at most {MAX_JSON_CASES} cases; ask for"
                f" Accept: {NDJSON} to have more streamed."
            )
    return Response(orjson.dumps({"items": items}), media_type="application/json")
