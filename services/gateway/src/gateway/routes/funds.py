"""Fund budgets: set by the city policy office, read by it and by auditors."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from starlette.responses import Response
from subsidy_common.problems import Forbidden
from subsidy_common.routing import DirectRoute

from gateway.auth.principal import AdminDep, PrincipalDep
from gateway.bodies import checked
from gateway.clients import lookup
from gateway.contract.funds import BudgetRequest, Fund, FundList
from gateway.openapi import PROBLEM_RESPONSES, json_body
from gateway.routes.claims import tenant_headers

router = APIRouter(tags=["admin"], responses=PROBLEM_RESPONSES, route_class=DirectRoute)

FundName = Annotated[str, Path(min_length=2, max_length=200, description="资金来源名称")]


@router.get("/v1/admin/funds", response_model=FundList, summary="资金预算")
async def list_funds(request: Request, principal: PrincipalDep) -> Response:
    """Every fund with a budget: what it may grant, has granted and has left."""
    if principal.role not in ("admin", "auditor"):
        raise Forbidden("Fund budgets are read by the admin and auditor roles only.")
    return await lookup.calculator(request).forward(
        "GET", "/v1/admin/funds", headers=tenant_headers(principal)
    )


@router.put(
    "/v1/admin/funds/{fund}",
    response_model=Fund,
    summary="设定资金预算",
    openapi_extra=json_body("BudgetRequest"),
)
async def set_budget(fund: FundName, request: Request, principal: AdminDep) -> Response:
    """Set a fund's budget. A claim drawing on the fund pays at most what is left of it; when
    nothing is left it is recorded as `budget_exhausted` and a later claim tops it up."""
    return await lookup.calculator(request).forward(
        "PUT",
        f"/v1/admin/funds/{quote(fund, safe='')}",
        content=(await checked(request, BudgetRequest))[0],
        headers={"Content-Type": "application/json", **tenant_headers(principal)},
    )
