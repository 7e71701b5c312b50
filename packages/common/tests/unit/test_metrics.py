"""Prometheus metrics of a service app: counted by route template, kept per app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel
from subsidy_common.app import service_app
from subsidy_common.health import Check
from subsidy_common.problems import NotFound
from subsidy_common.settings import ServiceSettings


class Body(BaseModel):
    name: str


def make_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    def checks() -> Mapping[str, Check]:
        return {}

    app = service_app(
        title="t",
        description="t",
        version="0",
        settings=ServiceSettings(max_body_bytes=2048),
        lifespan=lifespan,
        checks=checks,
    )

    @app.get("/things/{thing_id}")
    async def read(thing_id: int) -> dict[str, int]:
        if thing_id == 0:
            raise NotFound("No thing 0.")
        return {"id": thing_id}

    @app.post("/things/{thing_id}/notes")
    async def note(thing_id: int, body: Body) -> Body:
        return body

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def requests_total(text: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "http_requests_total" and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                total += sample.value
    return total


@pytest.fixture
async def app_client() -> AsyncIterator[httpx.AsyncClient]:
    async with client(make_app()) as c:
        yield c


class TestMetricsEndpoint:
    async def test_served_as_prometheus_text_and_absent_from_openapi(
        self, app_client: httpx.AsyncClient
    ) -> None:
        response = await app_client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        assert "/metrics" not in (await app_client.get("/openapi.json")).json()["paths"]

    async def test_process_metrics_are_included(self, app_client: httpx.AsyncClient) -> None:
        text = (await app_client.get("/metrics")).text
        assert "process_cpu_seconds_total" in text


class TestRequestCounts:
    async def test_labelled_by_route_template_method_and_status(
        self, app_client: httpx.AsyncClient
    ) -> None:
        for thing in (1, 2, 3, 0):
            await app_client.get(f"/things/{thing}")
        text = (await app_client.get("/metrics")).text
        assert requests_total(text, method="GET", route="/things/{thing_id}", status="200") == 3
        assert requests_total(text, method="GET", route="/things/{thing_id}", status="404") == 1
        assert "/things/1" not in text

    async def test_latency_is_a_histogram_with_the_same_labels(
        self, app_client: httpx.AsyncClient
    ) -> None:
        await app_client.get("/things/1")
        text = (await app_client.get("/metrics")).text
        (family,) = [
            f for f in text_string_to_metric_families(text)
            if f.name == "http_request_duration_seconds"
        ]  # fmt: skip
        assert family.type == "histogram"
        count = [
            s for s in family.samples
            if s.name.endswith("_count") and s.labels["route"] == "/things/{thing_id}"
        ]  # fmt: skip
        assert count[0].labels == {"method": "GET", "route": "/things/{thing_id}", "status": "200"}
        assert count[0].value == 1

    async def test_unknown_paths_share_one_label(self, app_client: httpx.AsyncClient) -> None:
        for path in ("/a", "/b/c", "/d?e=f"):
            await app_client.get(path)
        text = (await app_client.get("/metrics")).text
        assert requests_total(text, route="unmatched", status="404") == 3

    async def test_invented_methods_share_one_label(self, app_client: httpx.AsyncClient) -> None:
        await app_client.request("BREW", "/things/1")
        text = (await app_client.get("/metrics")).text
        assert requests_total(text, method="other", route="/things/{thing_id}") == 1
        assert "BREW" not in text

    async def test_a_body_refused_before_routing_keeps_its_route(
        self, app_client: httpx.AsyncClient
    ) -> None:
        response = await app_client.post("/things/9/notes", content=b"x" * 4096)
        assert response.status_code == 413
        text = (await app_client.get("/metrics")).text
        assert (
            requests_total(text, method="POST", route="/things/{thing_id}/notes", status="413") == 1
        )

    async def test_an_unexpected_error_counts_as_500(self, app_client: httpx.AsyncClient) -> None:
        assert (await app_client.get("/boom")).status_code == 500
        text = (await app_client.get("/metrics")).text
        assert requests_total(text, route="/boom", status="500") == 1


class TestRegistryPerApp:
    async def test_two_apps_in_one_process_count_apart(self) -> None:
        first, second = make_app(), make_app()
        async with client(first) as a, client(second) as b:
            await a.get("/things/1")
            await a.get("/things/1")
            await b.get("/things/1")
            text_a = (await a.get("/metrics")).text
            text_b = (await b.get("/metrics")).text
        assert requests_total(text_a, route="/things/{thing_id}") == 2
        assert requests_total(text_b, route="/things/{thing_id}") == 1
