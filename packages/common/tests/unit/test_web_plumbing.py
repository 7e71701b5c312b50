"""Problem documents, request ids and body limits, on a small app."""

from __future__ import annotations

import gc
import gzip
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict
from sqlalchemy import exc as sa_exc
from subsidy_common.app import service_app
from subsidy_common.health import Check
from subsidy_common.problems import NotFound, problem_type
from subsidy_common.settings import ServiceSettings
from subsidy_common.streaming import wants_ndjson


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    count: int


def make_app(ready: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    def checks() -> Mapping[str, Check]:
        async def dependency() -> None:
            if not ready:
                raise ConnectionError("down")

        return {"dependency": dependency}

    app = service_app(
        title="t",
        description="t",
        version="0",
        settings=ServiceSettings(max_body_bytes=2048),
        lifespan=lifespan,
        checks=checks,
    )

    @app.post("/things")
    async def create(body: Body) -> Body:
        return body

    @app.get("/things/{thing_id}")
    async def read(thing_id: int) -> dict[str, int]:
        raise NotFound(f"No thing {thing_id}.")

    @app.get("/db-down")
    async def db_down() -> None:
        raise sa_exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))

    @app.get("/db-hangs")
    async def db_hangs() -> None:
        raise TimeoutError  # as asyncpg's connect times out on a server that says nothing

    @app.get("/db-connection-ended")
    async def db_connection_ended() -> None:
        raise asyncpg.exceptions.InternalClientError("cannot switch to state 12")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


class TestProblems:
    async def test_validation_error_names_each_field(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/things", json={"name": "x", "count": "many", "extra": 1})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "count"), ("body", "extra")}
        assert body["status"] == 422
        assert body["title"]
        assert body["type"].endswith("validation-error")

    async def test_unparseable_body_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/things", content=b'{"name": ', headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["type"].endswith("malformed-body")

    async def test_a_body_not_in_utf8_is_400_naming_the_byte(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            "/things", content=b'{"name": "\xff"}', headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        body = response.json()
        assert body["type"].endswith("malformed-body")
        assert body["errors"] == [
            {
                "loc": ["body"],
                "msg": "not UTF-8: invalid start byte at byte 10",
                "type": "json_invalid",
            }
        ]

    async def test_domain_error_carries_its_status(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/things/7")
        assert response.status_code == 404
        assert response.json()["detail"] == "No thing 7."

    async def test_unknown_route_is_a_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/nowhere")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    async def test_database_down_is_503_with_retry_after(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/db-down")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize("path", ["/db-hangs", "/db-connection-ended"])
    async def test_a_database_that_hangs_or_ended_a_connection_is_503(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        """A server that accepts and never answers, or a connection its backend ended: an
        outage to retry, as a refused connection is, not an internal error."""
        response = await client.get(path)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"] == "application/problem+json"

    async def test_unexpected_error_hides_internals(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/boom")
        assert response.status_code == 500
        assert "secret" not in response.text
        assert response.headers["content-type"] == "application/problem+json"


class TestRequestId:
    async def test_minted_when_absent(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert len(response.headers["x-request-id"]) == 32

    async def test_adopted_when_sent(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        assert response.headers["x-request-id"] == "abc-123"

    async def test_unsafe_id_is_replaced(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "a b\tc"})
        assert response.headers["x-request-id"] != "a b\tc"

    async def test_present_on_errors(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/boom")
        assert "x-request-id" in response.headers


class TestHead:
    @pytest.mark.parametrize("path", ["/healthz", "/readyz", "/things/7", "/openapi.json"])
    async def test_head_is_the_get_without_its_body(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        got = await client.get(path)
        head = await client.head(path)
        assert head.status_code == got.status_code
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-length"] == str(len(got.content))

    async def test_head_of_a_post_only_route_is_405(self, client: httpx.AsyncClient) -> None:
        response = await client.head("/things")
        assert response.status_code == 405
        assert response.content == b""


class TestBodyLimit:
    async def test_declared_length_over_limit_is_413(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/things", content=b"x" * 4096)
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == problem_type("content-too-large")  # as every 413's

    async def test_streamed_body_over_limit_is_413(self, client: httpx.AsyncClient) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"x" * 512

        response = await client.post("/things", content=chunks())
        assert response.status_code == 413

    async def test_body_under_limit_passes(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/things", json={"name": "x" * 100, "count": 1})
        assert response.status_code == 200


class TestHealth:
    async def test_ready_when_checks_pass(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["dependency"]["status"] == "ok"

    async def test_not_ready_names_the_failing_dependency(self) -> None:
        transport = httpx.ASGITransport(app=make_app(ready=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            response = await c.get("/readyz")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert json.loads(response.text)["checks"]["dependency"]["status"] == "unavailable"


class TestMediaType:
    @pytest.mark.parametrize(
        ("content_type", "status"),
        [
            ("application/json", 200),
            ("application/json; charset=utf-8", 200),
            ("application/merge-patch+json", 200),
            ("text/plain", 415),
            ("application/x-www-form-urlencoded", 415),
        ],
    )
    async def test_a_body_declared_as_other_than_json_is_415(
        self, client: httpx.AsyncClient, content_type: str, status: int
    ) -> None:
        response = await client.post(
            "/things", content=b'{"name": "a", "count": 1}', headers={"Content-Type": content_type}
        )
        assert response.status_code == status, response.text
        if status == 415:
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"] == problem_type("unsupported-media-type")


class TestContentEncoding:
    @pytest.mark.parametrize(
        ("encoding", "status"), [("identity", 200), ("gzip", 415), ("br", 415), ("GZIP ", 415)]
    )
    async def test_a_compressed_body_is_415_naming_identity(
        self, client: httpx.AsyncClient, encoding: str, status: int
    ) -> None:
        body = b'{"name": "a", "count": 1}'
        if encoding.strip().lower() == "gzip":
            body = gzip.compress(body)
        response = await client.post(
            "/things",
            content=body,
            headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
        )
        assert response.status_code == status, response.text
        if status == 415:
            assert response.headers["accept-encoding"] == "identity"
            assert response.json()["type"] == problem_type("unsupported-media-type")
            assert "Content-Encoding" in response.json()["detail"]


class TestControlCharacters:
    async def test_nul_in_body_is_422_naming_the_field(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/things", json={"name": "a\x00b", "count": 1})
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "name"]

    @pytest.mark.parametrize("depth", [1, 990, 1020])
    async def test_nul_deep_in_the_body_is_422_naming_where(
        self, client: httpx.AsyncClient, depth: int
    ) -> None:
        """As deep as the JSON parser reads: the search for it had recursed past Python's limit
        (a 500, without a key)."""
        body = "[" * depth + '"\\u0000"' + "]" * depth
        response = await client.post(
            "/things", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", *[0] * depth]

    async def test_nul_in_a_key_or_a_later_value_is_found(self, client: httpx.AsyncClient) -> None:
        for sent, loc in (
            ({"a": {"b": "x", "c\x00": 1}}, ["body", "a", "c\x00"]),
            ({"a": ["x", {"b": "y\x00"}]}, ["body", "a", 1, "b"]),
        ):
            response = await client.post("/things", json=sent)
            assert response.status_code == 422
            assert response.json()["errors"][0]["loc"] == loc

    async def test_nul_in_query_is_422_naming_the_parameter(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/things/1", params={"cursor": "\x00"})
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["query", "cursor"]

    async def test_control_character_in_path_is_422(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/things/%0A")
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["path"]

    async def test_ordinary_chinese_text_passes(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/things", json={"name": "江阳区\\u4e00", "count": 1})
        assert response.status_code == 200


async def test_a_started_service_keeps_its_heap_out_of_the_collectors_walk() -> None:
    gc.unfreeze()
    app = make_app()
    async with app.router.lifespan_context(app):
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # the modules, the app: everything alive once started
        garbage: list[object] = []
        garbage.append(garbage)  # a cycle made after the start is still collected
        del garbage
        assert gc.collect() >= 1
        assert gc.get_freeze_count() == frozen


@pytest.mark.parametrize(
    ("accept", "ndjson"),
    [
        ("application/x-ndjson", True),
        ("Application/X-NDJSON", True),
        ("application/json, application/x-ndjson", True),
        ("application/x-ndjson;q=0", False),
        ("application/json, application/x-ndjson;q=0.1", False),
        ("application/json;q=0.5, application/x-ndjson", True),
        ("*/*", False),
        ("application/json", False),
        ("application/x-ndjson;q=bad", False),
        ("", False),
    ],
)
def test_a_batch_is_streamed_back_when_accept_prefers_ndjson(accept: str, ndjson: bool) -> None:
    assert wants_ndjson(accept) is ndjson
