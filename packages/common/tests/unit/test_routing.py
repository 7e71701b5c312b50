"""A direct route answers as FastAPI's own route does, and is direct only for plain endpoints."""

from __future__ import annotations

from typing import Annotated, Any

import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.responses import JSONResponse, Response
from subsidy_common.problems import Unauthorized, install_problem_handlers
from subsidy_common.routing import DirectRoute, _direct_handler


class Caller(HTTPBearer):
    async def __call__(self, request: Request) -> str:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None or credentials.credentials != "good":
            raise Unauthorized("A good key is required.")
        request.state.order.append("caller")
        return "tenant-1"


caller = Caller(auto_error=False)
CallerDep = Annotated[str, Depends(caller)]


async def audited(request: Request) -> None:
    request.state.order = ["audited"]


async def region(*, request: Request) -> str:
    return request.headers.get("X-Region", "510500")


def routes(route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(route_class=route_class, dependencies=[Depends(audited)])

    @router.post("/plain", status_code=201)
    async def plain(
        request: Request, who: CallerDep, where: Annotated[str, Depends(region)]
    ) -> Response:
        body = await request.body()
        return JSONResponse(
            {"who": who, "where": where, "order": request.state.order, "size": len(body)},
            status_code=201,
        )

    @router.get("/with-query")
    async def with_query(who: CallerDep, n: Annotated[int, Query(ge=1)]) -> Response:
        return JSONResponse({"who": who, "n": n})

    @router.get("/model")
    async def model(who: CallerDep) -> dict[str, str]:
        return {"who": who}

    return router


def app(route_class: type[APIRoute]) -> FastAPI:
    built = FastAPI()
    install_problem_handlers(built)
    built.include_router(routes(route_class))
    return built


CASES: list[tuple[str, str, dict[str, str]]] = [
    ("POST", "/plain", {"Authorization": "Bearer good", "X-Region": "510521"}),
    ("POST", "/plain", {"Authorization": "Bearer good"}),
    ("POST", "/plain", {"Authorization": "Bearer bad"}),
    ("POST", "/plain", {}),
    ("GET", "/with-query?n=2", {"Authorization": "Bearer good"}),
    ("GET", "/with-query?n=0", {"Authorization": "Bearer good"}),
    ("GET", "/model", {"Authorization": "Bearer good"}),
    ("GET", "/model", {}),
]


async def answer(built: FastAPI, method: str, url: str, headers: dict[str, str]) -> Any:
    transport = httpx.ASGITransport(app=built)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.request(method, url, headers=headers, content=b"{}")
    return response.status_code, response.headers.get("www-authenticate"), response.json()


@pytest.mark.parametrize(("method", "url", "headers"), CASES)
async def test_the_same_answer_as_fastapis_route(
    method: str, url: str, headers: dict[str, str]
) -> None:
    expected = await answer(app(APIRoute), method, url, headers)
    assert await answer(app(DirectRoute), method, url, headers) == expected


def test_the_same_document() -> None:
    assert app(DirectRoute).openapi() == app(APIRoute).openapi()


def test_only_plain_endpoints_are_called_directly() -> None:
    by_path = {r.path: r for r in routes(DirectRoute).routes if isinstance(r, DirectRoute)}

    async def standard(request: Request) -> Response:
        raise AssertionError

    def direct(path: str) -> bool:
        route = by_path[path]
        return _direct_handler(route.dependant, route.endpoint, standard) is not None

    assert direct("/plain")
    assert not direct("/with-query")  # a query parameter to validate
    assert not direct("/model")  # a return value to serialise


async def test_a_plain_endpoint_is_not_solved(monkeypatch: pytest.MonkeyPatch) -> None:
    solved: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def counted(**kwargs: Any) -> Any:
        solved.append(kwargs["dependant"].path)
        return await solve(**kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    built = app(DirectRoute)
    await answer(built, "POST", "/plain", {"Authorization": "Bearer good"})
    assert solved == []
    await answer(built, "GET", "/model", {"Authorization": "Bearer good"})
    assert solved == ["/model"]


async def test_dependency_overrides_are_honoured() -> None:
    built = app(DirectRoute)

    async def someone_else() -> str:
        return "tenant-2"

    built.dependency_overrides[caller] = someone_else
    status, _, body = await answer(built, "POST", "/plain", {})
    assert (status, body["who"]) == (201, "tenant-2")
