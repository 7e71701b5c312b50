"""Calculations through the gateway: the calculator decides on the registry's snapshot."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import gc
import gzip
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from subsidy_common.streaming import BOM


async def film_in_region(
    admin: httpx.AsyncClient, film: dict[str, Any], region: str
) -> Callable[[int], Awaitable[None]]:
    """The film document again, alone in a region of its own; what amends its amount."""
    document = copy.deepcopy(film["document"])
    serial = uuid.uuid4().hex[:10]
    document["id"], document["doc_no"] = f"calc-{serial}", f"测试〔1990〕{serial}号"
    document["jurisdiction"] = [region]
    created = await admin.post("/v1/admin/policies", json={"reason": "测试", "document": document})
    assert created.status_code == 201, created.text

    async def amend(value: int) -> None:
        document["clauses"][0]["amount"]["value"] = value
        amended = await admin.put(
            f"/v1/admin/policies/{document['id']}",
            json={"reason": "调整", "document": document},
            headers={"If-Match": created.headers["etag"]},
        )
        assert amended.status_code == 200, amended.text

    return amend


class TestCalculate:
    async def test_eligible_with_the_clause_and_quote(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient, film: dict[str, Any]
    ) -> None:
        response = await admin.post("/v1/calculations", json=case())
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == "123456.00"
        result = body["results"][0]
        assert result["status"] == "eligible"
        assert result["granted"]["policy_id"] == film["document"]["id"]
        assert result["granted"]["quote"] == "给予 123456 元奖励"
        assert body["registry_version"]

    async def test_outside_the_window_is_ineligible_with_reasons(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient, film: dict[str, Any]
    ) -> None:
        result = (await admin.post("/v1/calculations", json=case(day="1991-01-01"))).json()
        considered = [
            c
            for c in result["results"][0]["considered"]
            if c["policy_id"] == film["document"]["id"]
        ]
        assert considered[0]["outcome"] == "not_in_force"
        assert result["results"][0]["status"] == "ineligible"

    async def test_wrong_check_character_is_422_naming_the_field(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient
    ) -> None:
        body = case()
        body["applicant"]["id"] = "91510500MA62B8XY4G"
        response = await admin.post("/v1/calculations", json=body)
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "applicant", "id"]

    async def test_a_patent_of_another_kind_than_the_matter_is_422_naming_the_subject(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient
    ) -> None:
        """One number had been paid as an invention (3000), a utility model (800) and a design
        (400): its type digit says which it is."""
        body = case()
        body["events"] = [
            {"matter": "patent.invention.granted", "date": "2016-05-10", "subject": subject}
            for subject in ("ZL201530000001.X", "ZL201520000001.5", "ZL201510000001.1", "9831234.5")
        ]
        body["applicant"]["region"] = "510502"
        response = await admin.post("/v1/calculations", json=body)
        assert response.status_code == 422, response.text
        errors = response.json()["errors"]
        assert [e["loc"] for e in errors] == [
            ["body", "events", 0, "subject"],
            ["body", "events", 1, "subject"],
        ]
        assert "外观设计" in errors[0]["msg"]
        assert "实用新型" in errors[1]["msg"]
        body["events"] = body["events"][2:]
        assert (await admin.post("/v1/calculations", json=body)).status_code == 200
        # A number among other words is read for its kind too.
        for subject in (
            "专利号ZL201530000001.1第1件",
            "ZL201530000001.1/1",
            "ZL201530000001.1 外观",
        ):
            body["events"] = [
                {"matter": "patent.invention.granted", "date": "2016-05-10", "subject": subject}
            ]
            refused = await admin.post("/v1/calculations", json=body)
            assert refused.status_code == 422, (subject, refused.text)

    async def test_unknown_matter_and_region_are_named(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient
    ) -> None:
        body = case(region="519999")
        body["events"][0]["matter"] = "no.such.matter"
        response = await admin.post("/v1/calculations", json=body)
        assert response.status_code == 422
        locs = [e["loc"] for e in response.json()["errors"]]
        assert ["body", "applicant", "region"] in locs
        assert ["body", "events", 0, "matter"] in locs

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("date", "2023-02-30"),
            ("date", "0001-01-01"),
            ("date", "9999-06-01"),
            ("quantity", -1),
            ("quantity", 10**30),
            ("subject", ""),
        ],
    )
    async def test_malformed_event_fields(
        self, case: Callable[..., dict[str, Any]], field: str, value: Any, admin: httpx.AsyncClient
    ) -> None:
        body = case()
        body["events"][0][field] = value
        response = await admin.post("/v1/calculations", json=body)
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"][:4] == ["body", "events", 0, field]

    async def test_wrong_attribute_type_is_named(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient
    ) -> None:
        body = case()
        body["events"][0]["matter"] = "enterprise.innovative.recognized"
        body["events"][0]["attributes"] = {"level": "galactic"}
        response = await admin.post("/v1/calculations", json=body)
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "events", 0, "attributes", "level"]

    @pytest.mark.parametrize("wage", [5000, "5000", "5000.00", 5000.0])
    async def test_money_is_read_as_a_number_however_sent(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient, wage: Any
    ) -> None:
        body = case()
        body["events"][0] |= {"matter": "jobs.created", "date": "2016-05-10"}
        body["events"][0]["attributes"] = {"monthly_wage_yuan": wage, "social_insurance": True}
        response = await admin.post("/v1/calculations", json=body)
        assert response.status_code == 200, response.text
        number = body | {"events": [body["events"][0] | {"attributes": {
            "monthly_wage_yuan": 5000, "social_insurance": True}}]}  # fmt: skip
        assert response.json() == (await admin.post("/v1/calculations", json=number)).json()

    async def test_a_region_typed_in_full_width_is_the_region(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient, film: dict[str, Any]
    ) -> None:
        answers = []
        for region in ("５１０５００－ＣＪ", "510500-CJ"):
            body = case(region=region)
            body["events"][0]["subject"] = "FILM-typed"
            response = await admin.post("/v1/calculations", json=body)
            assert response.status_code == 200, response.text
            answers.append(response.json())
        assert answers[0] == answers[1]
        assert answers[0]["total"] == "123456.00"

    async def test_an_enum_written_as_a_number_is_its_text(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient
    ) -> None:
        """matters.md writes the grades of social_science.award as 1, 2, 3."""
        body = case(region="510504")
        body["applicant"] = {"id": "510504198801010057", "kind": "individual", "region": "510504"}
        answers = []
        for grade in (1, "1"):
            body["events"] = [{"matter": "social_science.award", "date": "2023-06-22",
                               "subject": "社科成果-2023-乙", "attributes": {"grade": grade}}]  # fmt: skip
            response = await admin.post("/v1/calculations", json=body)
            assert response.status_code == 200, response.text
            answers.append(response.json())
        assert answers[0] == answers[1]
        assert answers[0]["total"] == "15000.00"

    @pytest.mark.parametrize(
        ("matter", "name", "value"),
        [
            ("startup.online_shop", "graduated_on", "20160701"),
            ("startup.online_shop", "graduated_on", "2016-W27-5"),
            ("jobs.created", "monthly_wage_yuan", 10**12),
            ("jobs.created", "monthly_wage_yuan", "1e12"),
            ("enterprise.innovative.recognized", "level", ["city"]),
        ],
    )
    async def test_attribute_values_of_the_wrong_form_are_named(
        self,
        case: Callable[..., dict[str, Any]],
        admin: httpx.AsyncClient,
        matter: str,
        name: str,
        value: Any,
    ) -> None:
        body = case()
        body["events"][0] |= {"matter": matter, "attributes": {name: value}}
        response = await admin.post("/v1/calculations", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["body", "events", 0, "attributes", name]

    @pytest.mark.parametrize(
        ("value", "reason"),
        [(9007199254740992, "must be an integer below 10^12"), (2.5, "must be an integer")],
    )
    async def test_an_integer_attribute_out_of_range_is_told_apart_from_a_fraction(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient, value: Any, reason: str
    ) -> None:
        body = case()
        body["events"][0] |= {
            "matter": "patent.foreign.granted",
            "attributes": {"countries": value},
        }
        response = await admin.post("/v1/calculations", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["msg"] == reason

    async def test_past_registry_reproduces_a_past_result(
        self,
        case: Callable[..., dict[str, Any]],
        admin: httpx.AsyncClient,
        stack: Any,
        film: dict[str, Any],
    ) -> None:
        amend = await film_in_region(admin, film, "510500-BJ")
        before = dt.datetime.now(dt.UTC).isoformat()
        await amend(654321)
        await stack.refresh_snapshot()
        now = (await admin.post("/v1/calculations", json=case(region="510500-BJ"))).json()
        then = (
            await admin.post(
                "/v1/calculations", json=case(region="510500-BJ", registry_as_of=before)
            )
        ).json()
        assert now["total"] == "654321.00"
        assert then["total"] == "123456.00"
        assert now["registry_version"] != then["registry_version"]
        # In a batch, each case with the registry of its own instant.
        later = dt.datetime.now(dt.UTC).isoformat()
        cases = [
            case(region="510500-BJ", registry_as_of=before),
            case(region="510500-BJ"),
            case(region="510500-BJ", registry_as_of=later),
            case(region="510500-BJ", registry_as_of=before),
        ]
        batch = await admin.post(
            "/v1/calculations/batch",
            content=b"\n".join(orjson.dumps(c) for c in cases),
            headers={"Content-Type": "application/x-ndjson", "Accept": "application/x-ndjson"},
        )
        totals = [orjson.loads(line)["total"] for line in batch.content.splitlines()]
        assert totals == ["123456.00", "654321.00", "654321.00", "123456.00"]

    async def test_a_policy_write_is_weighed_by_the_very_next_calculation(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient, film: dict[str, Any]
    ) -> None:
        """A write is answered once the calculators have read it. The calculator revalidates
        every 2 s: a claim just after a repeal had been paid under the repealed document."""
        amend = await film_in_region(admin, film, "510503")
        created = (await admin.post("/v1/calculations", json=case(region="510503"))).json()
        assert created["total"] == "123456.00", created
        await amend(777777)
        amended = (await admin.post("/v1/calculations", json=case(region="510503"))).json()
        assert amended["total"] == "777777.00", amended

    async def test_calculators_found_by_a_name_are_told_of_a_write(
        self,
        case: Callable[..., dict[str, Any]],
        stack: Any,
        film: dict[str, Any],
        another_gateway: Any,
        client_for: Callable[..., httpx.AsyncClient],
    ) -> None:
        """Behind one balanced URL, the instances a DNS name resolves to are each told (a
        Kubernetes headless Service): one request to the balanced URL reaches one replica."""
        port = stack.calculator_url.rsplit(":", 1)[1]
        settings = {"calculator_instances_dns": f"127.0.0.1:{port}"}
        async with another_gateway(**settings) as gateway, client_for(gateway) as admin:
            amend = await film_in_region(admin, film, "510522")
            await amend(888888)
            amended = (await admin.post("/v1/calculations", json=case(region="510522"))).json()
        assert amended["total"] == "888888.00", amended

    async def test_an_instant_a_little_ahead_is_answered_once_it_has_passed(
        self,
        case: Callable[..., dict[str, Any]],
        admin: httpx.AsyncClient,
        stack: Any,
        film: dict[str, Any],
    ) -> None:
        """A client's clock a little fast: the instant it asks for is waited for, so a change
        recorded before it counts, and the answer is the one the same request gets later. An
        instant further ahead is refused: what will be recorded then is not known."""
        amend = await film_in_region(admin, film, "510500-ZM")
        await stack.refresh_snapshot()
        soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)).isoformat()
        early = asyncio.create_task(
            admin.post("/v1/calculations", json=case("510500-ZM", registry_as_of=soon))
        )
        await asyncio.sleep(0.3)
        await amend(111111)  # recorded before the instant
        assert (await early).json()["total"] == "111111.00", (await early).text
        settled = await admin.post("/v1/calculations", json=case("510500-ZM", registry_as_of=soon))
        assert settled.json()["total"] == "111111.00"
        ahead = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).isoformat()
        refused = await admin.post("/v1/calculations", json=case(registry_as_of=ahead))
        assert refused.status_code == 422
        assert [e["loc"] for e in refused.json()["errors"]] == [["body", "registry_as_of"]]
        policies = await admin.get("/v1/policies", params={"as_of": ahead})
        assert policies.status_code == 422
        assert [e["loc"] for e in policies.json()["errors"]] == [["query", "as_of"]]

    async def test_an_instant_before_the_registrys_first_record_is_422(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient, film: dict[str, Any]
    ) -> None:
        """It had answered that nothing was due: no policy was recorded then, not none applied."""
        refused = await admin.post(
            "/v1/calculations", json=case(registry_as_of="2000-01-01T00:00:00+08:00")
        )
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["errors"]
        assert error["loc"] == ["body", "registry_as_of"]
        assert error["msg"].startswith("is before the registry's first record, at ")
        batch = await admin.post(
            "/v1/calculations/batch",
            json={"cases": [case(), case(registry_as_of="2000-01-01T00:00:00+08:00")]},
        )
        items = batch.json()["items"]
        assert items[0]["total"] == "123456.00"
        assert items[1]["status"] == 422
        assert items[1]["errors"][0]["loc"] == ["body", "registry_as_of"]


class TestRelay:
    async def test_relayed_answers_are_freed_without_the_garbage_collector(
        self,
        case: Callable[..., dict[str, Any]],
        admin: httpx.AsyncClient,
        film: dict[str, Any],
        stack: Any,
    ) -> None:
        """Under load, answers left in reference cycles cost the gateway a tenth of its CPU in
        collections; each relayed answer must be freed as soon as it is sent on."""
        assert (await admin.post("/v1/calculations", json=case())).status_code == 200
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(5):
                assert (await admin.post("/v1/calculations", json=case())).status_code == 200
            gc.collect()
            relayed = [
                o
                for o in gc.garbage
                if isinstance(o, httpx.Response)
                and str(o.request.url).startswith(stack.calculator_url)
            ]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        assert relayed == []


class TestRegionScope:
    async def tenant(self, admin: httpx.AsyncClient, role: str, region: str) -> str:
        response = await admin.post(
            "/v1/admin/tenants",
            json={"name": f"s-{uuid.uuid4().hex[:8]}", "role": role, "region": region},
        )
        key: str = response.json()["api_key"]
        return key

    async def test_operator_inside_its_region(
        self,
        case: Callable[..., dict[str, Any]],
        admin: httpx.AsyncClient,
        as_key: Callable[[str], httpx.AsyncClient],
        film: dict[str, Any],
    ) -> None:
        async with as_key(await self.tenant(admin, "operator", "510500-CJ")) as park:
            assert (await park.post("/v1/calculations", json=case())).status_code == 200

    async def test_operator_outside_its_region_is_403(
        self,
        case: Callable[..., dict[str, Any]],
        admin: httpx.AsyncClient,
        as_key: Callable[[str], httpx.AsyncClient],
    ) -> None:
        async with as_key(await self.tenant(admin, "operator", "510502")) as county:
            response = await county.post("/v1/calculations", json=case(region="510521"))
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"

    async def test_city_operator_covers_its_counties(
        self,
        case: Callable[..., dict[str, Any]],
        admin: httpx.AsyncClient,
        as_key: Callable[[str], httpx.AsyncClient],
    ) -> None:
        async with as_key(await self.tenant(admin, "operator", "510500")) as city:
            assert (
                await city.post("/v1/calculations", json=case(region="510521"))
            ).status_code == 200


class TestBatch:
    async def test_json_batch_answers_in_order_with_a_problem_for_a_bad_case(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient, film: dict[str, Any]
    ) -> None:
        bad = case()
        bad["applicant"]["id"] = "not-an-id"
        response = await admin.post("/v1/calculations/batch", json={"cases": [case(), bad, case()]})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [i["case_index"] for i in items] == [0, 1, 2]
        assert items[0]["total"] == "123456.00"
        assert items[1]["status"] == 422
        assert items[1]["errors"][0]["loc"] == ["body", "applicant", "id"]
        assert items[2]["total"] == "123456.00"

    @pytest.mark.parametrize("bad", ["notanobject", 7, None, [1, 2]])
    async def test_a_case_that_is_not_an_object_is_its_problem_alone(
        self,
        case: Callable[..., dict[str, Any]],
        admin: httpx.AsyncClient,
        film: dict[str, Any],
        bad: object,
    ) -> None:
        """It had refused the whole batch, where a bad NDJSON line is answered on its own."""
        response = await admin.post("/v1/calculations/batch", json={"cases": [case(), bad, case()]})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [i["case_index"] for i in items] == [0, 1, 2]
        assert items[1]["status"] == 422
        assert items[1]["errors"][0]["loc"] == ["body"]
        assert items[0]["total"] == items[2]["total"] == "123456.00"
        # An NDJSON line says the same of it.
        streamed = await admin.post(
            "/v1/calculations/batch",
            content=orjson.dumps(bad) + b"\n",
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert streamed.json()["items"][0]["errors"] == items[1]["errors"]

    async def test_ndjson_in_and_out(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient, film: dict[str, Any]
    ) -> None:
        lines = [orjson.dumps(case()) for _ in range(5)] + [b"{broken json"]
        response = await admin.post(
            "/v1/calculations/batch",
            content=b"\n".join(lines) + b"\n",
            headers={"Content-Type": "application/x-ndjson", "Accept": "application/x-ndjson"},
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        answers = [orjson.loads(line) for line in response.content.splitlines()]
        assert len(answers) == 6
        assert all(a["total"] == "123456.00" for a in answers[:5])
        assert answers[5]["status"] == 400
        # the reason, as a single calculation gives it
        assert answers[5]["errors"][0]["loc"] == ["body"]
        assert answers[5]["errors"][0]["msg"].startswith("Invalid JSON: ")

    async def test_a_compressed_batch_is_415(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient
    ) -> None:
        """Read as it came, each line of a gzipped file was a problem of control bytes."""
        response = await admin.post(
            "/v1/calculations/batch",
            content=gzip.compress(orjson.dumps(case()) + b"\n"),
            headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
        )
        assert response.status_code == 415
        assert response.headers["accept-encoding"] == "identity"

    async def test_a_file_that_starts_with_a_byte_order_mark(
        self, case: Callable[..., dict[str, Any]], admin: httpx.AsyncClient, film: dict[str, Any]
    ) -> None:
        async def saved_by_a_windows_tool() -> AsyncIterator[bytes]:
            yield BOM[:2]  # the mark split across chunks
            yield BOM[2:] + orjson.dumps(case()) + b"\n"
            yield orjson.dumps(case()) + b"\n"

        response = await admin.post(
            "/v1/calculations/batch",
            content=saved_by_a_windows_tool(),
            headers={"Content-Type": "application/x-ndjson", "Accept": "application/x-ndjson"},
        )
        answers = [orjson.loads(line) for line in response.content.splitlines()]
        assert [(a["case_index"], a["total"]) for a in answers] == [
            (0, "123456.00"),
            (1, "123456.00"),
        ]

    async def test_operator_scope_applies_per_case(
        self,
        case: Callable[..., dict[str, Any]],
        admin: httpx.AsyncClient,
        as_key: Callable[[str], httpx.AsyncClient],
        film: dict[str, Any],
    ) -> None:
        key = (
            await admin.post(
                "/v1/admin/tenants",
                json={
                    "name": f"b-{uuid.uuid4().hex[:8]}",
                    "role": "operator",
                    "region": "510500-CJ",
                },
            )
        ).json()["api_key"]
        async with as_key(key) as park:
            response = await park.post(
                "/v1/calculations/batch", json={"cases": [case(), case(region="510502")]}
            )
        items = response.json()["items"]
        assert items[0]["total"] == "123456.00"
        assert items[1]["status"] == 403


class TestStrictInput:
    @pytest.mark.parametrize(
        ("path", "value"),
        [
            (("registry_as_of",), 0),
            (("registry_as_of",), "2024-01-01T00:00:00"),
            (("events", 0, "date"), 0),
            (("events", 0, "date"), "2016/05/10"),
            (("events", 0, "quantity"), 2.0),
            (("events", 0, "quantity"), True),
        ],
    )
    async def test_loose_values_are_refused(
        self,
        path: tuple[Any, ...],
        value: Any,
        admin: httpx.AsyncClient,
        case: Callable[..., dict[str, Any]],
    ) -> None:
        body = case()
        target: Any = body
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        response = await admin.post("/v1/calculations", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"][: len(path) + 1] == ["body", *path]

    async def test_json_batch_above_its_cap_is_413(
        self, admin: httpx.AsyncClient, case: Callable[..., dict[str, Any]]
    ) -> None:
        response = await admin.post("/v1/calculations/batch", json={"cases": [case()] * 1001})
        assert response.status_code == 413
        assert "NDJSON" in response.json()["detail"]

    async def test_a_batch_sent_as_text_is_415(
        self, admin: httpx.AsyncClient, case: Callable[..., dict[str, Any]]
    ) -> None:
        response = await admin.post(
            "/v1/calculations/batch",
            content=orjson.dumps({"cases": [case()]}),
            headers={"Content-Type": "text/plain"},
        )
        assert response.status_code == 415
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize("streamed", [False, True])
    async def test_a_nul_in_one_case_is_its_problem_alone(
        self,
        admin: httpx.AsyncClient,
        case: Callable[..., dict[str, Any]],
        film: dict[str, Any],
        streamed: bool,
    ) -> None:
        bad = case()
        bad["events"][0]["subject"] = "ZL\u00001"
        cases = [case(), bad, case()]
        if streamed:
            response = await admin.post(
                "/v1/calculations/batch",
                content=b"".join(orjson.dumps(c) + b"\n" for c in cases),
                headers={"Content-Type": "application/x-ndjson", "Accept": "application/x-ndjson"},
            )
            items = [orjson.loads(line) for line in response.content.splitlines()]
        else:
            response = await admin.post("/v1/calculations/batch", json={"cases": cases})
            items = response.json()["items"]
        assert response.status_code == 200, response.text
        assert [i.get("total") for i in items] == ["123456.00", None, "123456.00"]
        assert items[1]["status"] == 422
        assert items[1]["errors"][0]["loc"] == ["body", "events", 0, "subject"]


async def test_an_instant_out_of_range_is_422(
    admin: httpx.AsyncClient, case: Callable[..., dict[str, Any]]
) -> None:
    body = case(registry_as_of="0001-01-01T00:02:00.0+03:00")
    response = await admin.post("/v1/calculations", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][:2] == ["body", "registry_as_of"]
