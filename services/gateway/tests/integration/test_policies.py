"""Policies through the gateway: every tenant reads, only the admin writes, the actor is kept."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest


def a_document() -> dict[str, Any]:
    return {
        "id": f"gw-{uuid.uuid4().hex[:10]}",
        "title": "网关测试文件",
        "issuer": "泸州市人民政府",
        "level": "city",
        "jurisdiction": ["510500"],
        "effective_from": "2020-01-01",
        "source": {"title": "测试"},
    }


async def tenant_key(admin: httpx.AsyncClient, role: str) -> str:
    response = await admin.post(
        "/v1/admin/tenants",
        json={"name": f"p-{uuid.uuid4().hex[:8]}", "role": role, "region": "510502"},
    )
    key: str = response.json()["api_key"]
    return key


class TestReadPolicies:
    @pytest.mark.parametrize("role", ["operator", "auditor"])
    async def test_every_role_reads(
        self, role: str, admin: httpx.AsyncClient, as_key: Callable[[str], httpx.AsyncClient]
    ) -> None:
        async with as_key(await tenant_key(admin, role)) as client:
            listed = await client.get("/v1/policies", params={"region": "510502", "limit": 5})
            assert listed.status_code == 200
            first = listed.json()["items"][0]["id"]
            detail = await client.get(f"/v1/policies/{first}")
        assert detail.status_code == 200
        assert detail.headers["etag"]

    async def test_unknown_policy_is_404_problem(self, admin: httpx.AsyncClient) -> None:
        response = await admin.get("/v1/policies/no-such-document")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    async def test_as_of_with_its_offset_unencoded_as_the_readme_types_it(
        self, admin: httpx.AsyncClient
    ) -> None:
        created = await admin.post(
            "/v1/admin/policies", json={"reason": "新增", "document": a_document()}
        )
        assert created.status_code == 201, created.text
        path = f"/v1/policies/{created.json()['id']}"
        typed = (
            (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
            .astimezone(dt.timezone(dt.timedelta(hours=8)))
            .replace(microsecond=0)
            .isoformat()
        )  # after the document was created, in whole seconds
        assert typed.endswith("+08:00")
        now = await admin.get(f"{path}?as_of={typed}")
        assert now.status_code == 200, now.text
        assert now.headers["etag"] == created.headers["etag"]
        assert (await admin.get(f"{path}?as_of=2000-01-01T08:00:00+08:00")).status_code == 404

    async def test_bad_query_is_422(self, admin: httpx.AsyncClient) -> None:
        response = await admin.get("/v1/policies", params={"in_force_on": "2023-02-30"})
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["query", "in_force_on"]


class TestWritePolicies:
    async def test_admin_creates_and_the_actor_is_recorded(self, admin: httpx.AsyncClient) -> None:
        document = a_document()
        created = await admin.post(
            "/v1/admin/policies", json={"reason": "网关登记", "document": document}
        )
        assert created.status_code == 201, created.text
        assert created.headers["location"] == f"/v1/policies/{document['id']}"
        versions = (await admin.get(f"/v1/policies/{document['id']}/versions")).json()["items"]
        assert versions[0]["author"].startswith("admin [")
        assert versions[0]["reason"] == "网关登记"

    async def test_a_write_stands_when_a_calculator_cannot_be_told_of_it(
        self,
        another_gateway: Any,
        client_for: Callable[..., httpx.AsyncClient],
    ) -> None:
        """The calculators are asked to read a write before it is answered; one that cannot
        be reached reads it at its next revalidation, and the write is answered as recorded."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            nobody = f"http://127.0.0.1:{probe.getsockname()[1]}"
        warned: list[logging.LogRecord] = []
        told = logging.getLogger("gateway.routes.policies")
        handler = logging.Handler()
        handler.emit = warned.append  # type: ignore[method-assign]
        told.addHandler(handler)
        try:
            async with (
                another_gateway(calculator_url=nobody) as gateway,
                client_for(gateway) as admin,
            ):
                created = await admin.post(
                    "/v1/admin/policies", json={"reason": "测试", "document": a_document()}
                )
        finally:
            told.removeHandler(handler)
        assert created.status_code == 201, created.text
        assert [r.getMessage()[:40] for r in warned] == ["a calculator did not read a policy write"]

    async def test_an_admin_with_a_long_chinese_name_writes_and_is_recorded_whole(
        self, admin: httpx.AsyncClient, as_key: Callable[[str], httpx.AsyncClient]
    ) -> None:
        """Percent-encoded, a name of 45 Chinese characters outgrew the header between the
        services, and every write was refused; the audit kept half of the tenant's id."""
        name = "泸州市经济和信息化局政策法规科" * 6 + "审核组一"
        tenant = await admin.post(
            "/v1/admin/tenants", json={"name": name, "role": "admin", "region": "510500"}
        )
        assert tenant.status_code == 201, tenant.text
        document = a_document()
        async with as_key(tenant.json()["api_key"]) as client:
            created = await client.post(
                "/v1/admin/policies", json={"reason": "网关登记", "document": document}
            )
        assert created.status_code == 201, created.text
        assert created.headers["location"] == f"/v1/policies/{document['id']}"
        versions = (await admin.get(f"/v1/policies/{document['id']}/versions")).json()["items"]
        author = versions[0]["author"]
        assert author.startswith(name[:20])
        assert author.endswith(f"… [{tenant.json()['id']}]")

    async def test_amend_passes_if_match_through(self, admin: httpx.AsyncClient) -> None:
        document = a_document()
        etag = (
            await admin.post("/v1/admin/policies", json={"reason": "登记", "document": document})
        ).headers["etag"]
        document["title"] = "修订"
        ok = await admin.put(
            f"/v1/admin/policies/{document['id']}",
            json={"reason": "修订", "document": document},
            headers={"If-Match": etag},
        )
        stale = await admin.put(
            f"/v1/admin/policies/{document['id']}",
            json={"reason": "修订", "document": document},
            headers={"If-Match": etag},
        )
        assert ok.status_code == 200
        assert stale.status_code == 412
        assert stale.headers["content-type"] == "application/problem+json"

    async def test_a_bad_reason_and_the_documents_problems_come_in_one_answer(
        self, admin: httpx.AsyncClient
    ) -> None:
        document = {**a_document(), "level": "bogus"}
        del document["title"]
        response = await admin.post(
            "/v1/admin/policies", json={"reason": "x", "document": document}
        )
        assert response.status_code == 422
        locs = [e["loc"] for e in response.json()["errors"]]
        assert locs[0] == ["body", "reason"]
        assert {("body", "document", "title"), ("body", "document", "level")} <= {
            tuple(loc) for loc in locs
        }

    @pytest.mark.parametrize("role", ["operator", "auditor"])
    async def test_other_roles_cannot_write(
        self, role: str, admin: httpx.AsyncClient, as_key: Callable[[str], httpx.AsyncClient]
    ) -> None:
        document = a_document()
        async with as_key(await tenant_key(admin, role)) as client:
            created = await client.post(
                "/v1/admin/policies", json={"reason": "越权", "document": document}
            )
            repealed = await client.post(
                "/v1/admin/policies/luzhou-2023-catalogue-notice/repeal",
                json={"date": "2024-01-01", "reason": "越权"},
            )
        assert created.status_code == 403
        assert repealed.status_code == 403
        assert (await admin.get(f"/v1/policies/{document['id']}")).status_code == 404

    async def test_auditor_reads_the_audit_log_and_operator_does_not(
        self, admin: httpx.AsyncClient, as_key: Callable[[str], httpx.AsyncClient]
    ) -> None:
        async with as_key(await tenant_key(admin, "auditor")) as auditor:
            assert (await auditor.get("/v1/admin/audit")).status_code == 200
        async with as_key(await tenant_key(admin, "operator")) as operator:
            assert (await operator.get("/v1/admin/audit")).status_code == 403


class TestPathIds:
    @pytest.mark.parametrize(
        "path",
        [
            "/v1/policies/%2E",
            "/v1/policies/x%3Fas_of%3D1",
            "/v1/policies/%23",
            "/v1/claims/%2E",
            "/v1/claims/not-a-uuid",
        ],
    )
    async def test_ids_that_are_not_ids_are_422(self, path: str, admin: httpx.AsyncClient) -> None:
        response = await admin.get(path)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize(
        "path", ["/v1/policies/%00", "/v1/claims/%0A", "/v1/admin/tenants?cursor=%00"]
    )
    async def test_control_characters_are_422(self, path: str, admin: httpx.AsyncClient) -> None:
        response = await admin.get(path)
        assert response.status_code == 422
