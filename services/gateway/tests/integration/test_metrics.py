"""`/metrics` on all three services: public, out of the OpenAPI document, labelled by route."""

from __future__ import annotations

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


class TestGatewayMetrics:
    async def test_metrics_need_no_key_and_are_not_in_the_openapi_document(
        self, anonymous: httpx.AsyncClient
    ) -> None:
        response = await anonymous.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        document = (await anonymous.get("/openapi.json")).json()
        assert "/metrics" not in document["paths"]

    async def test_requests_are_labelled_by_route_template_not_raw_path(
        self, admin: httpx.AsyncClient, anonymous: httpx.AsyncClient
    ) -> None:
        await admin.get("/v1/policies/no-such-document-3f9a")
        await anonymous.get("/v1/no/such/route/3f9a")
        text = (await anonymous.get("/metrics")).text
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
