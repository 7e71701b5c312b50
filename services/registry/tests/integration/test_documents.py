"""Documents: read, created, amended and repealed as new versions, with an audit trail."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import registry.documents.endpoints
from fastapi import FastAPI
from registry.config import Settings
from registry.documents import repository as document_repository
from registry.documents import service as document_service
from registry.main import create_app
from sqlalchemy.ext.asyncio import AsyncSession
from testkit import running

ACTOR = {"X-Actor": "test-admin"}


def a_document(doc_id: str | None = None, **changes: Any) -> dict[str, Any]:
    serial = uuid.uuid4().hex[:10]
    document: dict[str, Any] = {
        "id": doc_id or f"test-{serial}",
        "doc_no": f"测试〔2020〕{serial}号",
        "title": "测试用政策文件",
        "issuer": "泸州市人民政府",
        "level": "city",
        "jurisdiction": ["510500"],
        "effective_from": "2020-01-01",
        "effective_to": "2022-12-31",
        "source": {"title": "测试"},
        "clauses": [
            {
                "id": "invention",
                "ref": "（一）",
                "matter": "patent.invention.granted",
                "beneficiaries": ["enterprise"],
                "amount": {"kind": "per_unit", "rate": "3000", "unit": "件"},
                "quote": "对新授权的发明专利每件资助 3000 元",
            }
        ],
    }
    document.update(changes)
    return document


async def create(client: httpx.AsyncClient, document: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/v1/admin/policies", json={"reason": "登记测试文件", "document": document}, headers=ACTOR
    )


class TestCatalogue:
    async def test_all_129_catalogue_rows_and_the_notice_are_documents(
        self, client: httpx.AsyncClient
    ) -> None:
        items = (await client.get("/v1/policies", params={"limit": 500})).json()["items"]
        by_status: dict[str | None, int] = {}
        for item in items:
            by_status[item["catalogue_status"]] = by_status.get(item["catalogue_status"], 0) + 1
        assert by_status.get("continued") == 52
        assert (by_status.get("expired", 0) + by_status.get("repealed", 0)) == 73
        assert by_status.get("to_be_amended") == 4

    async def test_what_was_in_force_in_jiangyang_on_a_date(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get(
            "/v1/policies", params={"region": "510502", "in_force_on": "2020-06-01", "limit": 500}
        )
        items = response.json()["items"]
        assert items
        for item in items:
            assert item["status"] == "in_force"
            assert item["effective_from"] <= "2020-06-01"
            assert item["effective_to"] is None or item["effective_to"] >= "2020-06-01"

    async def test_repealed_documents_are_repealed_after_the_notice(
        self, client: httpx.AsyncClient
    ) -> None:
        items = (
            await client.get(
                "/v1/policies",
                params={"status": "repealed", "in_force_on": "2023-06-01", "limit": 500},
            )
        ).json()["items"]
        assert len([i for i in items if i["catalogue_status"] == "repealed"]) == 9

    async def test_yuxi_documents_are_not_listed_for_luzhou(
        self, client: httpx.AsyncClient
    ) -> None:
        items = (await client.get("/v1/policies", params={"region": "530402", "limit": 500})).json()
        assert all(
            "530400" in i["jurisdiction"] or "530000" in i["jurisdiction"] for i in items["items"]
        )

    @pytest.mark.parametrize("region", ["999999", ""])
    async def test_an_unknown_region_is_422(self, client: httpx.AsyncClient, region: str) -> None:
        """It had answered an empty list, as for a region no document covers."""
        response = await client.get("/v1/policies", params={"region": region})
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["query", "region"]

    async def test_pages_do_not_overlap(self, client: httpx.AsyncClient) -> None:
        first = (await client.get("/v1/policies", params={"limit": 20})).json()
        second = (
            await client.get("/v1/policies", params={"limit": 20, "cursor": first["next_cursor"]})
        ).json()
        assert first["next_cursor"]
        assert {i["id"] for i in first["items"]}.isdisjoint({i["id"] for i in second["items"]})


class TestCreate:
    async def test_created_document_is_served_with_an_etag(self, client: httpx.AsyncClient) -> None:
        document = a_document()
        created = await create(client, document)
        assert created.status_code == 201, created.text
        read = await client.get(f"/v1/policies/{document['id']}")
        assert read.headers["etag"] == created.headers["etag"]
        body = read.json()
        assert body["clauses"][0]["id"] == f"{document['id']}.invention"
        assert body["clauses"][0]["quote"] == "对新授权的发明专利每件资助 3000 元"
        assert body["status"] == "expired"

    async def test_status_is_judged_on_the_given_date(self, client: httpx.AsyncClient) -> None:
        document = a_document()
        await create(client, document)
        for day, status in [
            ("2019-12-31", "not_yet_in_force"),
            ("2020-01-01", "in_force"),
            ("2022-12-31", "in_force"),
            ("2023-01-01", "expired"),
        ]:
            body = (
                await client.get(f"/v1/policies/{document['id']}", params={"in_force_on": day})
            ).json()
            assert body["status"] == status, day

    async def test_every_problem_is_listed_and_nothing_is_stored(
        self, client: httpx.AsyncClient
    ) -> None:
        document = a_document(jurisdiction=["999999"], level="town", effective_to="2019-01-01")
        document["clauses"][0]["amount"] = {"kind": "range", "min": "500", "max": "100"}
        response = await create(client, document)
        assert response.status_code == 422
        locs = [e["loc"] for e in response.json()["errors"]]
        assert ["body", "document", "level"] in locs
        assert any(loc[:5] == ["body", "document", "clauses", 0, "amount"] for loc in locs)
        assert (await client.get(f"/v1/policies/{document['id']}")).status_code == 404
        audit = (await client.get("/v1/admin/audit", params={"document_id": document["id"]})).json()
        assert audit["items"] == []

    async def test_the_whole_documents_problems_are_listed_beside_its_fields(
        self, client: httpx.AsyncClient
    ) -> None:
        """Its dates out of order and a clause id used twice had been told only once the
        fields were right, on a second attempt."""
        document = a_document(effective_to="2019-01-01")
        document["clauses"].append({**document["clauses"][0], "ref": "（二）"})
        document["clauses"][0]["amount"]["rate"] = "-3000"
        response = await create(client, document)
        assert response.status_code == 422
        messages = {(tuple(e["loc"]), e["msg"]) for e in response.json()["errors"]}
        assert (("body", "document", "effective_to"), "effective_from is after effective_to") in (
            messages
        )
        assert (
            ("body", "document", "clauses"),
            "clause or exclusion ids used twice: invention",
        ) in messages
        assert any(loc[:4] == ("body", "document", "clauses", 0) for loc, _ in messages)
        document["clauses"][0]["amount"]["rate"] = "3000"  # the whole's problems alone
        response = await create(client, document)
        assert sorted(e["loc"] for e in response.json()["errors"]) == [
            ["body", "document", "clauses"],
            ["body", "document", "effective_to"],
        ]

    @pytest.mark.parametrize(
        "amount",
        [
            {"kind": "fixed", "value": "0"},
            {"kind": "per_unit", "rate": "0.00", "unit": "件"},
            {"kind": "range", "min": "0", "max": "0"},
            {"kind": "periodic", "per_period": "0", "period": "month", "periods": 12},
        ],
    )
    async def test_an_amount_of_0_is_422(
        self, client: httpx.AsyncClient, amount: dict[str, Any]
    ) -> None:
        """It would be judged eligible and pay nothing, as a cap of 0 would."""
        document = a_document()
        document["clauses"][0]["amount"] = amount
        response = await create(client, document)
        assert response.status_code == 422, response.text
        assert [e["loc"] for e in response.json()["errors"]] == [
            ["body", "document", "clauses", 0, "amount"]
        ]

    async def test_a_yearly_cap_on_a_periodic_amount_is_422(
        self, client: httpx.AsyncClient
    ) -> None:
        """Paid over three years, it would all count in the event's year, and the rest of what
        is due never be paid."""
        document = a_document()
        document["clauses"][0]["amount"] = {
            "kind": "periodic", "per_period": "2000", "period": "month", "periods": 36,
        }  # fmt: skip
        document["clauses"][0]["caps"] = {"per_applicant_year": "30000"}
        response = await create(client, document)
        assert response.status_code == 422, response.text
        assert [e["loc"] for e in response.json()["errors"]] == [
            ["body", "document", "clauses", 0, "caps", "per_applicant_year"]
        ]

    async def test_a_sum_with_an_exponent_is_stored_written_out(
        self, client: httpx.AsyncClient
    ) -> None:
        """`1e3` had been stored and hashed as 1E+3: the same sum as 1000, a version apart."""
        document = a_document()
        document["clauses"][0]["amount"]["rate"] = "3e3"
        created = await create(client, document)
        assert created.status_code == 201, created.text
        assert created.json()["clauses"][0]["amount"]["rate"] == "3000.00"
        document["clauses"][0]["amount"]["rate"] = "3000"
        same = await client.put(
            f"/v1/admin/policies/{document['id']}",
            json={"reason": "同额", "document": document},
            headers={**ACTOR, "If-Match": created.headers["etag"]},
        )
        assert same.headers["etag"] == created.headers["etag"]

    async def test_integrity_problems_are_listed(self, client: httpx.AsyncClient) -> None:
        document = a_document(jurisdiction=["999999"])
        document["clauses"][0]["matter"] = "patent.unheard.of"
        response = await create(client, document)
        assert response.status_code == 422
        messages = {(tuple(e["loc"]), e["msg"]) for e in response.json()["errors"]}
        assert (("body", "document", "jurisdiction", 0), "unknown region '999999'") in messages
        assert (
            ("body", "document", "clauses", 0, "matter"),
            "unknown matter 'patent.unheard.of'",
        ) in messages

    async def test_a_taken_id_is_409(self, client: httpx.AsyncClient) -> None:
        document = a_document()
        assert (await create(client, document)).status_code == 201
        assert (await create(client, document)).status_code == 409

    async def test_a_write_without_reason_is_422(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/admin/policies", json={"document": a_document()}, headers=ACTOR
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "reason"]

    async def test_a_supersession_cycle_is_refused(self, client: httpx.AsyncClient) -> None:
        """Two documents that each set the other aside would leave neither to pay."""
        older = a_document()
        etag = (await create(client, older)).headers["etag"]
        newer = a_document(supersedes=[{"document": older["id"]}])
        assert (await create(client, newer)).status_code == 201
        looped = {**older, "supersedes": [{"document": newer["id"]}]}
        response = await client.put(
            f"/v1/admin/policies/{older['id']}",
            json={"reason": "循环", "document": looped},
            headers={**ACTOR, "If-Match": etag},
        )
        assert response.status_code == 422
        (error,) = response.json()["errors"]
        assert error["loc"] == ["body", "document", "supersedes", 0, "document"]
        assert "cycle" in error["msg"]
        itself = await create(
            client, a_document("self-loop", supersedes=[{"document": "self-loop"}])
        )
        assert itself.status_code == 422
        # A link for no matter at all would hide the cycle from this check.
        response = await client.put(
            f"/v1/admin/policies/{older['id']}",
            json={"reason": "循环", "document": {**looped, "supersedes": [
                {"document": newer["id"], "matters": []}]}},
            headers={**ACTOR, "If-Match": etag},
        )  # fmt: skip
        assert response.status_code == 422
        (error,) = response.json()["errors"]
        assert error["loc"] == ["body", "document", "supersedes", 0, "matters"]

    async def test_links_for_different_matters_are_no_cycle(
        self, client: httpx.AsyncClient
    ) -> None:
        older = a_document()
        etag = (await create(client, older)).headers["etag"]
        newer = a_document(
            supersedes=[{"document": older["id"], "matters": ["patent.invention.granted"]}]
        )
        assert (await create(client, newer)).status_code == 201
        back = {
            **older,
            "supersedes": [{"document": newer["id"], "matters": ["patent.utility_model.granted"]}],
        }
        response = await client.put(
            f"/v1/admin/policies/{older['id']}",
            json={"reason": "另一事项", "document": back},
            headers={**ACTOR, "If-Match": etag},
        )
        assert response.status_code == 200, response.text

    @pytest.mark.parametrize(
        ("changes", "loc"),
        [
            ({"effective_from": "0001-01-01"}, ["effective_from"]),
            ({"effective_to": "9999-12-31"}, ["effective_to"]),
            ({"source": {"title": "测试", "catalogue_row": 10**40}}, ["source", "catalogue_row"]),
        ],
    )
    async def test_values_beyond_what_a_policy_holds_are_422(
        self, client: httpx.AsyncClient, changes: dict[str, Any], loc: list[str]
    ) -> None:
        response = await create(client, a_document(**changes))
        assert response.status_code == 422
        assert ["body", "document", *loc] in [e["loc"] for e in response.json()["errors"]]

    async def test_a_clause_outside_its_document_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        document = a_document()
        document["clauses"][0]["effective_from"] = "2030-01-01"
        response = await create(client, document)
        assert response.status_code == 422
        errors = {tuple(e["loc"]): e["msg"] for e in response.json()["errors"]}
        assert "never apply" in errors[("body", "document", "clauses", 0, "effective_from")]

    async def test_an_unknown_document_is_listed_beside_the_models_problems(
        self, client: httpx.AsyncClient
    ) -> None:
        document = a_document(supersedes=[{"document": "no-such-document"}])
        document["clauses"][0]["amount"]["rate"] = "-1"
        response = await create(client, document)
        assert response.status_code == 422
        locs = [e["loc"] for e in response.json()["errors"]]
        assert ["body", "document", "supersedes", 0, "document"] in locs
        assert any(loc[:5] == ["body", "document", "clauses", 0, "amount"] for loc in locs)

    @pytest.mark.parametrize("reason", ["   ", "\t\n", " x "])
    async def test_a_blank_reason_is_422(self, client: httpx.AsyncClient, reason: str) -> None:
        response = await client.post(
            "/v1/admin/policies", json={"reason": reason, "document": a_document()}, headers=ACTOR
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "reason"]


class TestDocNo:
    async def test_a_doc_no_recorded_already_is_422_however_bracketed(
        self, client: httpx.AsyncClient
    ) -> None:
        """One document recorded under two ids would be paid from twice."""
        first = a_document(doc_no="测试〔2020〕77号")
        assert (await create(client, first)).status_code == 201
        for typed in (
            "测试〔2020〕77号",
            "测试[2020]77号",
            "测试 ［2020］ 77号",
            "测试﹝2020﹞77号",
            "测试(2020)77号",
            "测试（2020）77号",
            "测试【2020】第77号",
            "测试〔２０２０〕７７号",
        ):
            twin = await create(client, a_document(doc_no=typed))
            assert twin.status_code == 422, typed
            assert twin.json()["errors"] == [
                {
                    "loc": ["body", "document", "doc_no"],
                    "msg": f"already recorded as document {first['id']!r}",
                    "type": "value_error",
                }
            ]
        other = a_document()
        created = await create(client, other)
        amended = await client.put(
            f"/v1/admin/policies/{other['id']}",
            json={"reason": "改文号", "document": {**other, "doc_no": "测试[2020]77号"}},
            headers={**ACTOR, "If-Match": created.headers["etag"]},
        )
        assert amended.status_code == 422, amended.text
        kept = await client.put(
            f"/v1/admin/policies/{first['id']}",
            json={"reason": "改标题", "document": {**first, "title": "新标题"}},
            headers={**ACTOR, "If-Match": "*"},
        )
        assert kept.status_code == 200, kept.text

    async def test_a_doc_no_is_found_however_bracketed(self, client: httpx.AsyncClient) -> None:
        document = a_document(doc_no="测试〔2020〕78号")
        await create(client, document)
        for typed in (
            "测试〔2020〕78号",
            "测试[2020]78号",
            "〔2020〕78",
            "第78号",
            "（2020）第78号",
        ):
            found = await client.get("/v1/policies", params={"q": typed, "limit": 200})
            assert document["id"] in [item["id"] for item in found.json()["items"]], typed

    async def test_a_number_searched_for_is_whole(self, client: httpx.AsyncClient) -> None:
        """`33号` found 〔2017〕333号 as well as 〔2015〕33号."""
        wanted = a_document(doc_no="测试〔2021〕44号")
        longer = a_document(doc_no="测试〔2021〕344号")
        await create(client, wanted)
        await create(client, longer)
        for typed in ("44号", "第44号", "〔2021〕44", "2021"):
            found = await client.get("/v1/policies", params={"q": typed, "limit": 500})
            ids = [item["id"] for item in found.json()["items"]]
            assert wanted["id"] in ids, typed
            assert (longer["id"] in ids) is (typed == "2021"), typed


class TestAmend:
    async def test_amendment_is_a_new_version_and_the_old_one_stays(
        self, client: httpx.AsyncClient
    ) -> None:
        document = a_document()
        etag = (await create(client, document)).headers["etag"]
        changed = copy.deepcopy(document)
        changed["clauses"][0]["amount"]["rate"] = "5000"
        response = await client.put(
            f"/v1/admin/policies/{document['id']}",
            json={"reason": "提高资助标准", "document": changed},
            headers={**ACTOR, "If-Match": etag},
        )
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 2
        assert response.headers["etag"] != etag
        versions = (await client.get(f"/v1/policies/{document['id']}/versions")).json()["items"]
        assert [(v["version"], v["reason"], v["author"]) for v in versions] == [
            (1, "登记测试文件", "test-admin"),
            (2, "提高资助标准", "test-admin"),
        ]
        assert versions[0]["superseded_at"] == versions[1]["recorded_at"]

    async def test_a_document_read_changed_and_sent_back_is_amended(
        self, client: httpx.AsyncClient
    ) -> None:
        """The detail holds what the registry derives (status, version, …) and shows clause
        ids after the document's and money with two fraction digits: sent back as it is, it
        had been refused with five problems."""
        document = a_document()
        document["clauses"][0]["caps"] = {"per_applicant_year": "20000"}
        created = await create(client, document)
        assert created.status_code == 201, created.text
        read = await client.get(f"/v1/policies/{document['id']}")
        unchanged = await client.put(
            f"/v1/admin/policies/{document['id']}",
            json={"reason": "原样提交", "document": read.json()},
            headers={**ACTOR, "If-Match": read.headers["etag"]},
        )
        assert unchanged.status_code == 200, unchanged.text
        assert unchanged.headers["etag"] == created.headers["etag"], "no new version"
        edited = read.json() | {"title": "修订后的标题"}
        amended = await client.put(
            f"/v1/admin/policies/{document['id']}",
            json={"reason": "改标题", "document": edited},
            headers={**ACTOR, "If-Match": read.headers["etag"]},
        )
        assert amended.status_code == 200, amended.text
        audit = await client.get("/v1/admin/audit", params={"document_id": document["id"]})
        (amendment,) = [e for e in audit.json()["items"] if e["action"] == "amend"]
        assert amendment["after"] == {**amendment["before"], "title": "修订后的标题"}

    async def test_stale_etag_is_412_and_changes_nothing(self, client: httpx.AsyncClient) -> None:
        document = a_document()
        etag = (await create(client, document)).headers["etag"]
        first = copy.deepcopy(document)
        first["title"] = "第一次修订"
        second = copy.deepcopy(document)
        second["title"] = "第二次修订"
        ok = await client.put(
            f"/v1/admin/policies/{document['id']}",
            json={"reason": "修订", "document": first},
            headers={**ACTOR, "If-Match": etag},
        )
        stale = await client.put(
            f"/v1/admin/policies/{document['id']}",
            json={"reason": "修订", "document": second},
            headers={**ACTOR, "If-Match": etag},
        )
        assert ok.status_code == 200
        assert stale.status_code == 412
        assert (await client.get(f"/v1/policies/{document['id']}")).json()["title"] == "第一次修订"

    async def test_if_match_may_list_several_etags(self, client: httpx.AsyncClient) -> None:
        document = a_document()
        etag = (await create(client, document)).headers["etag"]
        response = await client.put(
            f"/v1/admin/policies/{document['id']}",
            json={"reason": "修订", "document": {**document, "title": "列表中的版本"}},
            headers={**ACTOR, "If-Match": f'"{document["id"]}.v9.000000000000", {etag}'},
        )
        assert response.status_code == 200, response.text

    async def test_amendments_racing_on_sqlite_are_one_200_and_412s(self, tmp_path: Path) -> None:
        app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/registry.db"))
        async with running(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://r") as sqlite:
                document = a_document()
                etag = (await create(sqlite, document)).headers["etag"]
                answers = await asyncio.gather(
                    *(
                        sqlite.put(
                            f"/v1/admin/policies/{document['id']}",
                            json={
                                "reason": "并发修订",
                                "document": {**document, "title": f"修订{i}"},
                            },
                            headers={**ACTOR, "If-Match": etag},
                        )
                        for i in range(12)
                    )
                )
                versions = (await sqlite.get(f"/v1/policies/{document['id']}/versions")).json()
        assert sorted(a.status_code for a in answers) == [200] + [412] * 11
        assert [v["version"] for v in versions["items"]] == [1, 2]

    async def test_missing_if_match_is_428(self, client: httpx.AsyncClient) -> None:
        document = a_document()
        await create(client, document)
        response = await client.put(
            f"/v1/admin/policies/{document['id']}",
            json={"reason": "修订", "document": document},
            headers=ACTOR,
        )
        assert response.status_code == 428

    async def test_invalid_amendment_leaves_the_document_untouched(
        self, client: httpx.AsyncClient
    ) -> None:
        document = a_document()
        etag = (await create(client, document)).headers["etag"]
        broken = copy.deepcopy(document)
        broken["clauses"][0]["quote"] = ""
        response = await client.put(
            f"/v1/admin/policies/{document['id']}",
            json={"reason": "修订", "document": broken},
            headers={**ACTOR, "If-Match": etag},
        )
        assert response.status_code == 422
        after = await client.get(f"/v1/policies/{document['id']}")
        assert after.headers["etag"] == etag

    async def test_the_registry_answers_as_it_was_recorded(self, client: httpx.AsyncClient) -> None:
        document = a_document()
        etag = (await create(client, document)).headers["etag"]
        between = dt.datetime.now(dt.UTC).isoformat()
        changed = copy.deepcopy(document)
        changed["title"] = "修订后的标题"
        await client.put(
            f"/v1/admin/policies/{document['id']}",
            json={"reason": "修订", "document": changed},
            headers={**ACTOR, "If-Match": etag},
        )
        then = await client.get(f"/v1/policies/{document['id']}", params={"as_of": between})
        assert then.json()["title"] == "测试用政策文件"
        assert then.headers["etag"] == etag
        before_creation = await client.get(
            f"/v1/policies/{document['id']}", params={"as_of": "2000-01-01T00:00:00Z"}
        )
        assert before_creation.status_code == 404

    async def test_an_offset_typed_into_the_url_unencoded_is_the_offset(
        self, client: httpx.AsyncClient
    ) -> None:
        document = a_document()
        etag = (await create(client, document)).headers["etag"]
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).astimezone(
            dt.timezone(dt.timedelta(hours=8))
        )  # after the document was created, in whole seconds
        typed = later.replace(microsecond=0).isoformat()
        assert "+08:00" in typed
        # As curl sends it: the `+` unencoded, which a query string reads as a space.
        response = await client.get(f"/v1/policies/{document['id']}?as_of={typed}")
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == etag
        earlier = f"2000-01-01T08:00:00{typed[-6:]}"
        assert (
            await client.get(f"/v1/policies/{document['id']}?as_of={earlier}")
        ).status_code == 404
        for garbled in (
            "2024-01-01T00:00:00 8:00",
            "2024-01-01 08:00",
            "2024-01-01T00:00:00  08:00",
        ):
            refused = await client.get(f"/v1/policies/{document['id']}", params={"as_of": garbled})
            assert refused.status_code == 422, garbled
            assert refused.json()["errors"][0]["loc"] == ["query", "as_of"]


class TestRepeal:
    async def test_repeal_is_a_version_with_its_date(self, client: httpx.AsyncClient) -> None:
        document = a_document(effective_to=None)
        await create(client, document)
        response = await client.post(
            f"/v1/admin/policies/{document['id']}/repeal",
            json={"date": "2021-07-01", "reason": "被新文件替代"},
            headers=ACTOR,
        )
        assert response.status_code == 200
        body = response.json()
        assert body["repealed_date"] == "2021-07-01"
        assert body["status"] == "repealed"
        on_eve = await client.get(
            f"/v1/policies/{document['id']}", params={"in_force_on": "2021-06-30"}
        )
        assert on_eve.json()["status"] == "in_force"

    async def test_repeal_before_the_start_is_422(self, client: httpx.AsyncClient) -> None:
        document = a_document()
        await create(client, document)
        response = await client.post(
            f"/v1/admin/policies/{document['id']}/repeal",
            json={"date": "2019-01-01", "reason": "错误"},
            headers=ACTOR,
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "date"]

    async def test_a_repeal_on_another_date_is_409_and_after_the_end_422(
        self, client: httpx.AsyncClient
    ) -> None:
        """A second repeal on a later date had brought the document back into force between the
        two dates, as a repeal, without If-Match; one after the end changed nothing."""
        document = a_document()  # in force 2020-01-01 to 2022-12-31
        await create(client, document)
        path = f"/v1/admin/policies/{document['id']}/repeal"
        first = await client.post(
            path, json={"date": "2021-03-01", "reason": "废止"}, headers=ACTOR
        )
        assert first.status_code == 200
        again = await client.post(
            path, json={"date": "2021-03-01", "reason": "废止"}, headers=ACTOR
        )
        assert (again.status_code, again.headers["etag"]) == (200, first.headers["etag"])
        moved = await client.post(
            path, json={"date": "2021-09-01", "reason": "推迟废止"}, headers=ACTOR
        )
        assert moved.status_code == 409, moved.text
        assert "2021-03-01" in moved.json()["detail"]
        other = a_document()
        await create(client, other)
        late = await client.post(
            f"/v1/admin/policies/{other['id']}/repeal",
            json={"date": "2030-01-01", "reason": "废止"},
            headers=ACTOR,
        )
        assert late.status_code == 422, late.text
        assert late.json()["errors"][0]["loc"] == ["body", "date"]
        versions = await client.get(f"/v1/policies/{document['id']}/versions")
        assert len(versions.json()["items"]) == 2

    async def test_unknown_document_is_404(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/admin/policies/no-such-doc/repeal",
            json={"date": "2021-07-01", "reason": "x" * 3},
            headers=ACTOR,
        )
        assert response.status_code == 404


class TestAudit:
    async def test_every_write_is_in_the_audit_log(self, client: httpx.AsyncClient) -> None:
        document = a_document(effective_to=None)
        await create(client, document)
        await client.post(
            f"/v1/admin/policies/{document['id']}/repeal",
            json={"date": "2021-07-01", "reason": "被替代"},
            headers=ACTOR,
        )
        entries = (
            await client.get("/v1/admin/audit", params={"document_id": document["id"]})
        ).json()["items"]
        assert [(e["action"], e["version"], e["actor"]) for e in entries] == [
            ("repeal", 2, "test-admin"),
            ("create", 1, "test-admin"),
        ]
        assert entries[0]["before"]["repealed_date"] is None
        assert entries[0]["after"]["repealed_date"] == "2021-07-01"

    async def test_a_page_of_large_entries_holds_fewer_and_leads_on(
        self, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A document may be megabytes and an entry holds it twice: 500 of them in one page
        would be gigabytes."""
        document = a_document(effective_to=None)
        await create(client, document)
        await client.post(
            f"/v1/admin/policies/{document['id']}/repeal",
            json={"date": "2021-07-01", "reason": "被替代"},
            headers=ACTOR,
        )
        params = {"document_id": document["id"], "limit": 500}
        whole = (await client.get("/v1/admin/audit", params=params)).json()
        assert (len(whole["items"]), whole["next_cursor"]) == (2, None)
        monkeypatch.setattr(registry.documents.endpoints, "AUDIT_PAGE_SIZE", 1)
        first = (await client.get("/v1/admin/audit", params=params)).json()
        assert [e["action"] for e in first["items"]] == ["repeal"]
        second = (
            await client.get("/v1/admin/audit", params={**params, "cursor": first["next_cursor"]})
        ).json()
        assert [e["action"] for e in second["items"]] == ["create"]
        assert second["next_cursor"] is None

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_entry SET reason = 'x'",
            "DELETE FROM audit_entry",
            "UPDATE reference_version SET digest = 'x'",
            "DELETE FROM reference_version",
        ],
    )
    async def test_the_database_refuses_to_rewrite_history(
        self, statement: str, client: httpx.AsyncClient, registry_app: Any
    ) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        await create(client, a_document())
        async with registry_app.state.engine.connect() as connection:
            with pytest.raises(DBAPIError, match="append-only"):
                await connection.execute(text(statement))

    @pytest.mark.parametrize(
        "change",
        [
            "reason = 'rewritten'",
            "author = 'someone'",
            "content_hash = 'x'",
            "origin = 'api'",
            "file_hash = NULL",
            "recorded_at = recorded_at - INTERVAL '1 day'",
        ],
    )
    async def test_versions_cannot_be_edited_in_place(self, registry_app: Any, change: str) -> None:
        await self.refused(registry_app, change)

    @pytest.mark.parametrize(
        "change",
        ["reason = 'rewritten'", "author = 'someone'", "content_hash = 'x'", "file_hash = NULL"],
    )
    async def test_versions_cannot_be_edited_in_place_on_sqlite(
        self, tmp_path: Path, change: str
    ) -> None:
        app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/registry.db"))
        async with running(app):
            await self.refused(app, change)

    @staticmethod
    async def refused(app: Any, change: str) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        async with app.state.engine.connect() as connection:
            with pytest.raises(DBAPIError, match="immutable"):
                await connection.execute(
                    text(f"UPDATE document_version SET {change} WHERE version = 1")
                )


class TestSnapshot:
    async def test_snapshot_revalidates_by_etag(self, client: httpx.AsyncClient) -> None:
        first = await client.get("/internal/v1/snapshot")
        assert first.status_code == 200
        etag = first.headers["etag"]
        assert first.json()["version"] == etag.strip('"')
        again = await client.get("/internal/v1/snapshot", headers={"If-None-Match": etag})
        assert again.status_code == 304

    async def test_a_write_changes_the_snapshot_version(self, client: httpx.AsyncClient) -> None:
        before = (await client.get("/internal/v1/snapshot")).headers["etag"]
        await create(client, a_document())
        after = await client.get("/internal/v1/snapshot", headers={"If-None-Match": before})
        assert after.status_code == 200
        assert after.headers["etag"] != before

    async def test_instants_with_no_change_between_them_see_one_snapshot(
        self, client: httpx.AsyncClient
    ) -> None:
        await past_snapshots_follow_the_changes(client)

    @pytest.mark.parametrize(
        "path", ["/internal/v1/snapshot", "/v1/policies", "/v1/policies/luzhou-2015-33"]
    )
    async def test_an_instant_still_to_come_is_refused(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        """What will be recorded at it is not known: an answer now could change by then."""
        ahead = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).isoformat()
        refused = await client.get(path, params={"as_of": ahead})
        assert refused.status_code == 422, refused.text
        assert [e["loc"] for e in refused.json()["errors"]] == [["query", "as_of"]]

    async def test_past_snapshots_on_sqlite(self, tmp_path: Path) -> None:
        app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/registry.db"))
        async with running(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://r") as sqlite:
                await past_snapshots_follow_the_changes(sqlite)

    async def test_documents_created_at_once_are_all_in_the_next_snapshot(
        self, client: httpx.AsyncClient
    ) -> None:
        before = (await client.get("/internal/v1/snapshot")).headers["etag"]
        documents = [a_document() for _ in range(6)]
        created = await asyncio.gather(*(create(client, d) for d in documents))
        assert [r.status_code for r in created] == [201] * 6
        after = await client.get("/internal/v1/snapshot", headers={"If-None-Match": before})
        assert after.status_code == 200
        ids = {d["id"] for d in after.json()["documents"]}
        assert {d["id"] for d in documents} <= ids

    async def test_a_version_committed_after_a_newer_one_still_changes_the_snapshot(
        self, client: httpx.AsyncClient, registry_app: FastAPI
    ) -> None:
        """The snapshot's generation does not rest on the newest id alone: a version whose id
        was taken before another's committed, and which commits after it, is seen."""
        sessions = registry_app.state.sessions
        reference = registry_app.state.reference

        async def record(session: AsyncSession) -> None:
            document = document_service.validate_document(
                a_document(), reference, {}, prefix=["document"]
            )
            await document_service.record(
                session, document=document, action="create", actor="test", reason="次序",
                now=dt.datetime.now(dt.UTC), previous=None, origin="api",
            )  # fmt: skip

        async with sessions() as earlier, sessions() as later:
            await record(earlier)  # its id is taken first
            await record(later)
            await later.commit()
            seen = (await client.get("/internal/v1/snapshot")).headers["etag"]
            await earlier.commit()
        now = await client.get("/internal/v1/snapshot", headers={"If-None-Match": seen})
        assert now.status_code == 200
        assert now.headers["etag"] != seen

    async def test_past_snapshot_is_reproducible(self, client: httpx.AsyncClient) -> None:
        instant = dt.datetime.now(dt.UTC).isoformat()
        first = await client.get("/internal/v1/snapshot", params={"as_of": instant})
        await create(client, a_document())
        second = await client.get("/internal/v1/snapshot", params={"as_of": instant})
        assert first.content == second.content

    async def test_a_read_as_of_a_write_still_to_commit_waits_for_it(
        self, client: httpx.AsyncClient, registry_app: FastAPI
    ) -> None:
        """A write stamps its versions, then commits. A read as of an instant between the two
        once answered without the version, and the same read after the commit with it: a past
        decision did not reproduce. Such a read now waits for the write; a read as of an
        instant long past does not."""
        document = a_document()
        stamped = dt.datetime.now(dt.UTC)
        between = {"as_of": (stamped + dt.timedelta(milliseconds=1)).isoformat()}
        async with registry_app.state.sessions() as writing:
            await document_repository.serialise_writers(writing)
            await document_service.record(
                writing, now=stamped, previous=None, origin="api", action="create",
                document=document_service.validate_document(
                    document, registry_app.state.reference, {}, prefix=["document"]
                ),
                actor="test", reason="未提交",
            )  # fmt: skip
            reads = [
                asyncio.create_task(client.get("/internal/v1/snapshot", params=between)),
                asyncio.create_task(client.get(f"/v1/policies/{document['id']}", params=between)),
            ]
            old = await client.get(
                "/internal/v1/snapshot", params={"as_of": "2001-01-01T00:00:00Z"}
            )
            assert old.status_code == 422  # answered at once: nothing was recorded then
            await asyncio.sleep(0.3)
            assert not any(read.done() for read in reads), "the reads wait for the write"
            await writing.commit()
        snapshot, policy = await asyncio.gather(*reads)
        assert policy.status_code == 200
        assert document["id"] in {d["id"] for d in snapshot.json()["documents"]}
        again = await client.get("/internal/v1/snapshot", params=between)
        assert again.content == snapshot.content


async def past_snapshots_follow_the_changes(client: httpx.AsyncClient) -> None:
    """Instants between the same two changes get one snapshot; a change between them, two."""

    async def etag_at(instant: dt.datetime) -> str:
        response = await client.get("/internal/v1/snapshot", params={"as_of": instant.isoformat()})
        assert response.status_code == 200, response.text
        assert response.json()["version"] == response.headers["etag"].strip('"')
        return response.headers["etag"]

    before = dt.datetime.now(dt.UTC)
    assert await etag_at(before - dt.timedelta(microseconds=1)) == await etag_at(before)
    await create(client, a_document())
    after = dt.datetime.now(dt.UTC)
    now = (await client.get("/internal/v1/snapshot")).headers["etag"]
    assert await etag_at(after) == now
    assert await etag_at(after + dt.timedelta(seconds=1)) == now
    assert await etag_at(before) != now
    # Before the first record there is no registry to read: a calculation would find nothing due.
    empty = await client.get("/internal/v1/snapshot", params={"as_of": "2001-01-01T00:00:00Z"})
    assert empty.status_code == 422
    (error,) = empty.json()["errors"]
    assert error["loc"] == ["query", "as_of"]
    assert error["msg"].startswith("is before the registry's first record, at ")


async def test_the_same_document_created_at_once_is_recorded_once(
    client: httpx.AsyncClient,
) -> None:
    document = a_document()
    responses = await asyncio.gather(*(create(client, document) for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    assert all(r.json()["status"] == 409 for r in responses if r.status_code != 201)
    versions = await client.get(f"/v1/policies/{document['id']}/versions")
    assert len(versions.json()["items"]) == 1


async def test_changes_made_at_once_from_one_version_take_effect_once(
    client: httpx.AsyncClient,
) -> None:
    """Amends sent with the same ETag: one is recorded, the others are told the document
    changed (412, not 404); repeals from the same date record one version."""
    document = a_document()
    etag = (await create(client, document)).headers["etag"]

    async def amend(i: int) -> httpx.Response:
        changed = copy.deepcopy(document)
        changed["title"] = f"修订{i}"
        return await client.put(
            f"/v1/admin/policies/{document['id']}",
            json={"reason": "并发修订", "document": changed},
            headers={**ACTOR, "If-Match": etag},
        )

    amended = await asyncio.gather(*(amend(i) for i in range(8)))
    assert sorted(r.status_code for r in amended) == [200] + [412] * 7

    async def repeal() -> httpx.Response:
        return await client.post(
            f"/v1/admin/policies/{document['id']}/repeal",
            json={"reason": "并发废止", "date": "2021-06-01"},
            headers=ACTOR,
        )

    repealed = await asyncio.gather(*(repeal() for _ in range(8)))
    assert [r.status_code for r in repealed] == [200] * 8
    versions = (await client.get(f"/v1/policies/{document['id']}/versions")).json()["items"]
    assert len(versions) == 3  # created, amended once, repealed once


async def test_money_in_a_document_is_written_in_yuan_with_two_fraction_digits(
    client: httpx.AsyncClient,
) -> None:
    award = (await client.get("/v1/policies/luzhou-2023-social-science-award")).json()
    assert [c["amount"]["value"] for c in award["clauses"]][:3] == [
        "15000.00",
        "10000.00",
        "5000.00",
    ]
    reform = (await client.get("/v1/policies/luzhou-2023-tech-achievement-reform")).json()
    transfer = {c["id"]: c for c in reform["clauses"]}[
        "luzhou-2023-tech-achievement-reform.tech-transfer-institution"
    ]
    assert transfer["amount"]["rate"] == "0.001"  # a rate, not money
    assert transfer["caps"]["per_event"] == "500000.00"
    assert transfer["caps"]["per_applicant_year"] == "500000.00"


async def test_a_write_lists_every_problem_in_one_answer(client: httpx.AsyncClient) -> None:
    document = a_document(effective_from="2020-13-01", jurisdiction=["999999"])
    document["clauses"][0]["amount"]["rate"] = "-1"
    document["clauses"].append(
        {**document["clauses"][0], "id": "other", "matter": "no.such.matter",
         "condition": "event.x ==", "amount": {"kind": "fixed", "value": "1"}}
    )  # fmt: skip
    response = await create(client, document)
    assert response.status_code == 422
    fields = {".".join(str(part) for part in e["loc"][2:]) for e in response.json()["errors"]}
    assert {"effective_from", "jurisdiction.0", "clauses.1.matter", "clauses.1.condition"} <= fields
    assert any(f.startswith("clauses.0.amount") for f in fields)


@pytest.mark.parametrize("reason", [None, "x", 7, "missing"])
async def test_a_bad_reason_is_listed_with_the_documents_problems(
    client: httpx.AsyncClient, reason: object
) -> None:
    """The reason had been checked first, alone: the document's problems came on a second try."""
    document = a_document(effective_from="2020-13-01", jurisdiction=["999999"])
    body = (
        {"document": document} if reason == "missing" else {"reason": reason, "document": document}
    )
    response = await client.post("/v1/admin/policies", json=body, headers=ACTOR)
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["errors"]]
    assert locs[0] == ["body", "reason"]
    assert ["body", "document", "effective_from"] in locs
    assert ["body", "document", "jurisdiction", 0] in locs
    assert (await client.get(f"/v1/policies/{document['id']}")).status_code == 404


async def test_an_amendment_tells_a_bad_reason_and_a_changed_id_with_the_rest(
    client: httpx.AsyncClient,
) -> None:
    document = a_document()
    etag = (await create(client, document)).headers["etag"]
    changed = {**document, "id": "another-id", "effective_from": "2020-13-01"}
    response = await client.put(
        f"/v1/admin/policies/{document['id']}",
        json={"reason": " ", "document": changed},
        headers={**ACTOR, "If-Match": etag},
    )
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["errors"]]
    assert locs[:2] == [["body", "reason"], ["body", "document", "id"]]
    assert ["body", "document", "effective_from"] in locs


class TestSharedCaps:
    async def test_a_cap_name_another_document_uses_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        """Clauses share a cap by naming it alike; a second document naming a cap as the first
        did would have shared the first's cap, which no text says."""
        name = f"cap-{uuid.uuid4().hex[:8]}"

        def capped() -> dict[str, Any]:
            document = a_document()
            document["clauses"][0]["caps"] = {"cumulative": "100000", "cumulative_key": name}
            return document

        first = capped()
        assert (await create(client, first)).status_code == 201
        second = await create(client, capped())
        assert second.status_code == 422, second.text
        (error,) = second.json()["errors"]
        assert error["loc"] == ["body", "document", "clauses", 0, "caps", "cumulative_key"]
        assert first["id"] in error["msg"]
        amended = {**first, "title": "修订后的标题"}  # the first keeps its own cap
        current = await client.get(f"/v1/policies/{first['id']}")
        response = await client.put(
            f"/v1/admin/policies/{first['id']}",
            json={"reason": "修订", "document": amended},
            headers={**ACTOR, "If-Match": current.headers["etag"]},
        )
        assert response.status_code == 200, response.text
