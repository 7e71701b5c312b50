"""`POST /v1/calculations` and `/v1/calculations/batch` (JSON or streamed NDJSON)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated, Any, cast

import orjson
from fastapi import APIRouter, Header, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import Response
from subsidy_common.problems import DomainError, Forbidden, problem_body, problem_type
from subsidy_common.streaming import DuplexStreamingResponse

from calculator.calculations import service
from calculator.calculations.schemas import CalculationIn
from calculator.claims import repository as claims_repository
from calculator.engine.decide import decide
from calculator.engine.rules import RuleSet
from calculator.registry_client import SnapshotStore

router = APIRouter(tags=["calculations"])

NDJSON = "application/x-ndjson"
MAX_LINE_BYTES = 1024 * 1024
MAX_JSON_CASES = 1000  # a JSON answer is built whole; NDJSON streams without a limit
Scope = Annotated[str | None, Header(alias="X-Scope-Region", max_length=16)]


class LineTooLong(DomainError):
    """A batch line above the size a single case may have."""

    type = problem_type("line-too-long")
    title = "Content Too Large"
    status = 413


def _store(request: Request) -> SnapshotStore:
    return cast(SnapshotStore, request.app.state.snapshots)


def _sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return cast(async_sessionmaker[AsyncSession], request.app.state.sessions)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


async def _rules(store: SnapshotStore, request: CalculationIn) -> RuleSet:
    if request.registry_as_of is None:
        return store.rules
    return await store.as_of(request.registry_as_of)


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


async def _one(
    store: SnapshotStore,
    sessions: async_sessionmaker[AsyncSession],
    body: CalculationIn,
    scope: str | None,
) -> dict[str, Any]:
    rules = await _rules(store, body)
    check_scope(body, rules, scope)
    applicant, events = service.validate(body, rules, _today())
    async with sessions() as session:
        ledger = await claims_repository.ledger_for(session, applicant.id)
    return service.render(decide(applicant, events, rules, ledger))


@router.post("/v1/calculations")
async def calculate(body: CalculationIn, request: Request, scope: Scope = None) -> Response:
    """What each event of an applicant is entitled to, with every clause weighed."""
    result = await _one(_store(request), _sessions(request), body, scope)
    request.app.state.decision_metrics.decided(r["status"] for r in result["results"])
    return Response(orjson.dumps(result), media_type="application/json")


async def _lines(request: Request) -> AsyncIterator[bytes]:
    """The request body split into lines, without holding more than one line at a time."""
    pending = b""
    async for chunk in request.stream():
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line
        if len(pending) > MAX_LINE_BYTES:
            raise LineTooLong(f"A batch line is longer than {MAX_LINE_BYTES} bytes.")
    if pending:
        yield pending


def _problem_line(index: int, exc: Exception) -> dict[str, Any]:
    if isinstance(exc, ValidationError):
        errors = [
            {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False)
        ]
        body = problem_body(
            422, f"Case {index} is invalid.", type_=problem_type("validation-error"), errors=errors
        )
    elif isinstance(exc, DomainError):
        body = exc.body()
    else:
        body = problem_body(
            400, f"Case {index} is not valid JSON.", type_=problem_type("malformed-body")
        )
    return {**body, "case_index": index}


async def _decide_all(
    store: SnapshotStore,
    sessions: async_sessionmaker[AsyncSession],
    cases: AsyncIterator[bytes | dict[str, Any]],
    scope: str | None,
) -> AsyncIterator[dict[str, Any]]:
    index = 0
    async for raw in cases:
        if isinstance(raw, bytes):
            if not raw.strip():
                continue
            try:
                raw = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                yield _problem_line(index, exc)
                index += 1
                continue
        try:
            case = CalculationIn.model_validate(raw)
            yield {**await _one(store, sessions, case, scope), "case_index": index}
        except (ValidationError, DomainError) as exc:
            yield _problem_line(index, exc)
        index += 1


async def _from_list(cases: list[Any]) -> AsyncIterator[dict[str, Any]]:
    for case in cases:
        yield case


@router.post("/v1/calculations/batch")
async def calculate_batch(
    request: Request,
    scope: Scope = None,
    accept: Annotated[str, Header()] = "application/json",
    content_type: Annotated[str, Header()] = "application/json",
) -> Response:
    """One calculation per case, in order; a bad case yields a problem and the rest go on."""
    store = _store(request)
    if content_type.split(";")[0].strip() == NDJSON:
        source: AsyncIterator[Any] = _lines(request)
    else:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return Response(
                orjson.dumps(problem_body(400, "The request body is not valid JSON.")),
                status_code=400,
                media_type="application/problem+json",
            )
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("cases"), list)
            or not 1 <= len(body["cases"]) <= MAX_JSON_CASES
        ):
            problem = problem_body(
                422,
                f'The body must be {{"cases": [...]}} with 1 to {MAX_JSON_CASES} cases;'
                " send more as NDJSON lines.",
                type_=problem_type("validation-error"),
                errors=[
                    {"loc": ["body", "cases"], "msg": "a list of calculation requests is required"}
                ],
            )
            return Response(
                orjson.dumps(problem), status_code=422, media_type="application/problem+json"
            )
        source = _from_list(body["cases"])
    results = _decide_all(store, _sessions(request), source, scope)
    if NDJSON in accept:

        async def stream() -> AsyncIterator[bytes]:
            async for item in results:
                yield orjson.dumps(item) + b"\n"

        return DuplexStreamingResponse(stream(), media_type=NDJSON)
    items = [item async for item in results]
    return Response(orjson.dumps({"items": items}), media_type="application/json")
