"""Calculations: computed by the calculator, scoped by the tenant's region."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response
from subsidy_common.middleware import json_media
from subsidy_common.problems import ContentTooLarge, UnsupportedMediaType, validated_body
from subsidy_common.routing import DirectRoute
from subsidy_common.streaming import BOM, NDJSON, request_body, wants_ndjson

from gateway.auth.principal import Principal, PrincipalDep
from gateway.clients import batches, lookup
from gateway.contract.calculations import (
    BatchRequest,
    BatchResponse,
    CalculationRequest,
    CalculationResponse,
)
from gateway.openapi import PROBLEM_RESPONSES, json_body

router = APIRouter(tags=["calculations"], responses=PROBLEM_RESPONSES, route_class=DirectRoute)


def scope_headers(principal: Principal) -> dict[str, str]:
    """Operators compute only inside their region; the calculator enforces it per case."""
    return {"X-Scope-Region": principal.region} if principal.role == "operator" else {}


@router.post(
    "/v1/calculations",
    response_model=CalculationResponse,
    summary="计算补贴",
    openapi_extra=json_body("CalculationRequest"),
)
async def calculate(request: Request, principal: PrincipalDep) -> Response:
    """What each event of an applicant is entitled to under 时间从新、标准从高、不重复,
    with every clause considered and the reason for its outcome. Nothing is written."""
    body = await request.body()  # bounded by the input guard
    validated_body(CalculationRequest, body)
    return await lookup.calculator(request).forward(
        "POST",
        "/v1/calculations",
        content=body,
        headers={"Content-Type": "application/json", **scope_headers(principal)},
    )


@router.post(
    "/v1/calculations/batch",
    response_model=BatchResponse,
    summary="批量计算",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/BatchRequest"}},
                NDJSON: {"schema": {"$ref": "#/components/schemas/CalculationRequest"}},
            },
        },
        "responses": {"200": {"content": {NDJSON: {"schema": {"type": "string"}}}}},
    },
)
async def calculate_batch(request: Request, principal: PrincipalDep) -> Response:
    """One calculation per case, in order. Send `{"cases": [...]}` or NDJSON lines; ask for
    `Accept: application/x-ndjson` to receive the answers streamed as they are computed. A bad
    case yields a problem object on its own line and the others go on. Answered as one JSON
    document, a batch holds at most 1,000 cases (413 beyond); streamed, it has no limit. A UTF-8
    byte order mark before the first line, as some Windows tools write one, is ignored."""
    calculator = lookup.calculator(request)
    content_type = request.headers.get("content-type", "application/json")
    accept = request.headers.get("accept", "application/json")
    headers = {"Content-Type": content_type, "Accept": accept, **scope_headers(principal)}
    if content_type.split(";")[0].strip().lower() != NDJSON:
        if not json_media(content_type):
            raise UnsupportedMediaType(
                f"A batch is sent as JSON (application/json) or as NDJSON ({NDJSON})."
            )
        # A JSON batch is bounded (1,000 cases) and checked whole here; NDJSON streams through.
        body = await _bounded_body(request, request.app.state.settings.max_body_bytes)
        body = body.removeprefix(BOM)
        try:
            validated_body(BatchRequest, body)
        except RequestValidationError as exc:
            if any(e["type"] == "too_long" and e["loc"] == ("body", "cases") for e in exc.errors()):
                raise ContentTooLarge(
                    f"A JSON batch holds at most 1,000 cases; send more as NDJSON ({NDJSON})."
                ) from exc
            raise
        return await calculator.forward(
            "POST", "/v1/calculations/batch", content=body, headers=headers
        )
    if not wants_ndjson(accept):
        # One JSON answer for the whole stream: one instance builds it.
        return await calculator.stream("POST", "/v1/calculations/batch", request.stream(), headers)
    settings = request.app.state.settings
    read = asyncio.Event()
    return await batches.spread(
        request_body(request.receive, read),
        calculator,
        {"Content-Type": NDJSON, "Accept": NDJSON, **scope_headers(principal)},
        part_bytes=settings.batch_part_bytes,
        in_flight=settings.batch_parts_in_flight
        or batches.in_flight_default(len(calculator.instances)),
        body_read=read,
    )


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes the limit."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ContentTooLarge(f"The request body is larger than {limit} bytes; use NDJSON.")
        chunks.append(chunk)
    return b"".join(chunks)
