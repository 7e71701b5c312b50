"""Calculations: computed by the calculator, scoped by the tenant's region."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.auth.principal import Principal, PrincipalDep
from gateway.clients.dependencies import CalculatorDep
from gateway.contract.calculations import (
    BatchResponse,
    CalculationRequest,
    CalculationResponse,
)
from gateway.openapi import PROBLEM_RESPONSES

router = APIRouter(tags=["calculations"], responses=PROBLEM_RESPONSES)

NDJSON = "application/x-ndjson"


def scope_headers(principal: Principal) -> dict[str, str]:
    """Operators compute only inside their region; the calculator enforces it per case."""
    return {"X-Scope-Region": principal.region} if principal.role == "operator" else {}


@router.post("/v1/calculations", response_model=CalculationResponse, summary="计算补贴")
async def calculate(
    body: CalculationRequest, request: Request, calculator: CalculatorDep, principal: PrincipalDep
) -> Response:
    """What each event of an applicant is entitled to under 时间从新、标准从高、不重复,
    with every clause considered and the reason for its outcome. Nothing is written."""
    return await calculator.forward(
        "POST",
        "/v1/calculations",
        content=await request.body(),
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
async def calculate_batch(
    request: Request, calculator: CalculatorDep, principal: PrincipalDep
) -> Response:
    """One calculation per case, in order. Send `{"cases": [...]}` or NDJSON lines; ask for
    `Accept: application/x-ndjson` to receive the answers streamed as they are computed. A bad
    case yields a problem object on its own line and the others go on."""
    headers = {
        "Content-Type": request.headers.get("content-type", "application/json"),
        "Accept": request.headers.get("accept", "application/json"),
        **scope_headers(principal),
    }
    return await calculator.stream("POST", "/v1/calculations/batch", request.stream(), headers)
