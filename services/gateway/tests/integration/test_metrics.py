"""`/metrics` on all three services: out of the OpenAPI document, labelled by route; on the
public gateway for an admin's or an auditor's key only, on the internal services without one."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str, name: str) -> list[dict[str, str]]:
    return [
        sample.labels
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


async def key_of_new(admin: httpx.AsyncClient, role: str) -> str:
    response = await admin.post(
        "/v1/admin/tenants",
        json={"name": f"m-{uuid.uuid4().hex[:8]}", "role": role, "region": "510502"},
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    return key


class TestGatewayMetrics:
    async def test_without_a_key_metrics_are_401_and_not_in_the_openapi_document(
        self, anonymous: httpx.AsyncClient
    ) -> None:
        response = await anonymous.get("/metrics")
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "http_requests" not in response.text
        document = (await anonymous.get("/openapi.json")).json()
        assert "/metrics" not in document["paths"]

    async def test_a_key_nobody_issued_is_401(
        self, as_key: Callable[[str], httpx.AsyncClient]
    ) -> None:
        async with as_key("sk_" + "Zq7" * 15) as client:
            assert (await client.get("/metrics")).status_code == 401

    async def test_an_operator_key_is_403(
        self, admin: httpx.AsyncClient, as_key: Callable[[str], httpx.AsyncClient]
    ) -> None:
        async with as_key(await key_of_new(admin, "operator")) as operator:
            response = await operator.get("/metrics")
        assert response.status_code == 403
        assert "http_requests" not in response.text

    async def test_admin_and_auditor_keys_read_them(
        self, admin: httpx.AsyncClient, as_key: Callable[[str], httpx.AsyncClient]
    ) -> None:
        async with as_key(await key_of_new(admin, "auditor")) as auditor:
            answers = [await auditor.get("/metrics"), await admin.get("/metrics")]
        for response in answers:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            assert samples(response.text, "http_requests_total")

    async def test_requests_are_labelled_by_route_template_not_raw_path(
        self, admin: httpx.AsyncClient, anonymous: httpx.AsyncClient
    ) -> None:
        await admin.get("/v1/policies/no-such-document-3f9a")
        await anonymous.get("/v1/no/such/route/3f9a")
        text = (await admin.get("/metrics")).text
        routes = {labels["route"] for labels in samples(text, "http_requests_total")}
        assert "/v1/policies/{document_id}" in routes
        assert "unmatched" in routes
        assert not any("3f9a" in route for route in routes)
        assert {"method": "GET", "route": "/v1/policies/{document_id}", "status": "404"} in [
            {k: labels[k] for k in ("method", "route", "status")}
            for labels in samples(text, "http_requests_total")
        ]
        assert samples(text, "http_request_duration_seconds_bucket")


@pytest.mark.parametrize("service", ["registry_url", "calculator_url"])
async def test_internal_services_serve_metrics_too(stack: Any, service: str) -> None:
    async with httpx.AsyncClient(base_url=getattr(stack, service)) as client:
        await client.get("/readyz")
        response = await client.get("/metrics")
        document = (await client.get("/openapi.json")).json()
    assert response.status_code == 200
    assert {"method": "GET", "route": "/readyz", "status": "200"} in [
        {k: labels[k] for k in ("method", "route", "status")}
        for labels in samples(response.text, "http_requests_total")
    ]
    assert "/metrics" not in document["paths"]
