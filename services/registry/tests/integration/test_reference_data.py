"""Regions and matters, loaded from the reference files into PostgreSQL on start."""

from __future__ import annotations

import httpx
import pytest

LUZHOU_COUNTIES = {"510502", "510503", "510504", "510521", "510522", "510524", "510525"}
LUZHOU_PARKS = {"510500-GX", "510500-CJ", "510500-BJ", "510500-ZM"}


class TestListRegions:
    async def test_luzhou_has_seven_counties_and_four_parks(
        self, client: httpx.AsyncClient
    ) -> None:
        items = (await client.get("/v1/regions")).json()["items"]
        children = {r["code"]: r["level"] for r in items if r["parent"] == "510500"}
        assert {c for c, level in children.items() if level == "county"} == LUZHOU_COUNTIES
        assert {c for c, level in children.items() if level == "park"} == LUZHOU_PARKS

    async def test_provinces_and_other_cities(self, client: httpx.AsyncClient) -> None:
        items = {r["code"]: r for r in (await client.get("/v1/regions")).json()["items"]}
        assert items["510000"] == {
            "code": "510000",
            "name": "四川省",
            "parent": None,
            "level": "province",
        }
        assert items["530402"]["parent"] == "530400"
        assert items["530400"]["parent"] == "530000"
        assert items["620000"]["name"] == "甘肃省"

    async def test_parents_come_before_children(self, client: httpx.AsyncClient) -> None:
        seen: set[str] = set()
        for region in (await client.get("/v1/regions")).json()["items"]:
            assert region["parent"] is None or region["parent"] in seen
            seen.add(region["code"])


class TestListMatters:
    async def test_every_matter_of_the_catalogue_is_served(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/matters", params={"limit": 500})
        items = {m["key"]: m for m in response.json()["items"]}
        assert "patent.invention.granted" in items
        assert items["enterprise.innovative.recognized"]["attributes"]["level"]["values"] == [
            "national",
            "provincial",
        ]


async def test_lists_come_a_page_at_a_time(client: httpx.AsyncClient) -> None:
    everything = (await client.get("/v1/matters", params={"limit": 500})).json()
    assert everything["next_cursor"] is None
    keys: list[str] = []
    cursor = None
    while True:
        params = {"limit": 40, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/v1/matters", params=params)).json()
        assert len(body["items"]) <= 40
        keys += [m["key"] for m in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert keys == [m["key"] for m in everything["items"]]
    first = (await client.get("/v1/regions", params={"limit": 3})).json()
    assert (len(first["items"]), first["next_cursor"]) == (3, first["items"][-1]["code"])


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/v1/matters", "zzz"),
        ("/v1/policies", "zzz"),
        ("/v1/admin/audit", "zzz"),
        ("/v1/admin/audit", "²"),  # a digit to str.isdigit, not to int()
        ("/v1/admin/audit", "9" * 40),
        ("/v1/admin/audit", "2147483648"),  # past an INTEGER column on PostgreSQL
    ],
)
async def test_a_cursor_no_page_gave_is_422(
    client: httpx.AsyncClient, path: str, cursor: str
) -> None:
    response = await client.get(path, params={"cursor": cursor}, headers={"X-Actor": "test"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "cursor"]
