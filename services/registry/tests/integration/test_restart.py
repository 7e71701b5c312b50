"""A restart loads what changed in the policy files, refuses a broken set, and skips the rest."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import registry.main
from registry.config import Settings
from registry.main import create_app
from registry.policy_files.cli import main as policies_tool
from registry.policy_files.loader import PolicyFilesInvalid
from sqlalchemy import text
from subsidy_common.database import create_engine, script_heads
from testkit import running

POLICIES = Path(__file__).resolve().parents[4] / "policies"
DOCUMENT = "documents/luzhou-2023-social-science-award.yaml"


async def query(url: str, sql: str, **params: object) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(sql), params)]
    finally:
        await engine.dispose()


async def start(url: str, root: Path) -> None:
    """One start of the registry, through its lifespan, and stop."""
    async with running(create_app(Settings(database_url=url, policies_dir=root))):
        pass


async def current(url: str, document_id: str) -> tuple[object, ...]:
    rows = await query(
        url,
        "SELECT version, content, origin FROM document_version "
        "WHERE document_id = :id AND superseded_at IS NULL",
        id=document_id,
    )
    assert len(rows) == 1
    return rows[0]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    copy = tmp_path / "policies"
    shutil.copytree(POLICIES, copy)
    return copy


async def test_a_restart_records_only_a_changed_file(
    root: Path, database_factory: Callable[[str], Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await database_factory("restart")
    await start(url, root)
    count = "SELECT count(*) FROM document_version"
    first = (await query(url, count))[0][0]
    assert first == len(list((root / "documents").glob("**/*.yaml")))

    with monkeypatch.context() as patched:  # the same files are neither parsed nor checked again

        def unexpected(_: Path) -> None:
            raise AssertionError("the unchanged documents were read again")

        patched.setattr(registry.main, "read_policy_dir", unexpected)
        await start(url, root)
    assert (await query(url, count))[0][0] == first

    path = root / DOCUMENT
    path.write_text(
        path.read_text(encoding="utf-8").replace("title: ", "title: 修订后的", 1), encoding="utf-8"
    )
    await start(url, root)
    assert (await query(url, count))[0][0] == first + 1
    version, content, origin = await current(url, "luzhou-2023-social-science-award")
    assert version == 2
    assert origin == "file"
    assert isinstance(content, dict)
    assert content["title"].startswith("修订后的")


async def test_a_changed_region_name_is_loaded_on_restart(
    root: Path, database_factory: Callable[[str], Awaitable[str]]
) -> None:
    url = await database_factory("restart_regions")
    await start(url, root)
    regions = root / "regions.yaml"
    regions.write_text(
        regions.read_text(encoding="utf-8").replace("name: 江阳区,", "name: 江阳区（改）,"),
        encoding="utf-8",
    )
    await start(url, root)
    assert await query(url, "SELECT name FROM region WHERE code = '510502'") == [("江阳区（改）",)]


async def test_a_broken_file_refuses_the_restart_with_its_line(
    root: Path, database_factory: Callable[[str], Awaitable[str]]
) -> None:
    url = await database_factory("restart_broken")
    await start(url, root)
    path = root / DOCUMENT
    path.write_text(
        path.read_text(encoding="utf-8").replace("level: city", "level: town", 1),
        encoding="utf-8",
    )
    with pytest.raises(PolicyFilesInvalid) as refused:
        await start(url, root)
    assert [(p.file, p.field) for p in refused.value.problems] == [(DOCUMENT, "level")]
    assert refused.value.problems[0].line is not None
    version, _, _ = await current(url, "luzhou-2023-social-science-award")
    assert version == 1


async def test_an_import_of_other_files_is_undone_by_the_next_start(
    root: Path, tmp_path: Path, database_factory: Callable[[str], Awaitable[str]]
) -> None:
    url = await database_factory("restart_import")
    await start(url, root)
    other = tmp_path / "other"
    shutil.copytree(root, other)
    path = other / DOCUMENT
    path.write_text(
        path.read_text(encoding="utf-8").replace("title: ", "title: 另一份", 1), encoding="utf-8"
    )
    imported = await asyncio.to_thread(policies_tool, ["import", str(other), "--database-url", url])
    assert imported == 0
    _, content, _ = await current(url, "luzhou-2023-social-science-award")
    assert isinstance(content, dict)
    assert content["title"].startswith("另一份")

    await start(url, root)
    version, content, _ = await current(url, "luzhou-2023-social-science-award")
    assert version == 3
    assert isinstance(content, dict)
    assert not content["title"].startswith("另一份")


async def test_a_database_at_the_head_is_recognised_without_alembic(
    database_factory: Callable[[str], Awaitable[str]],
) -> None:
    url = await database_factory("restart_head")
    migrations = Settings().migrations_dir("registry")
    await start(url, POLICIES)
    heads = script_heads(migrations)
    assert heads is not None
    assert {row[0] for row in await query(url, "SELECT version_num FROM alembic_version")} == heads


async def snapshot(url: str, root: Path, as_of: str | None = None) -> dict[str, Any]:
    app = create_app(Settings(database_url=url, policies_dir=root))
    async with (
        running(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client,
    ):
        params = {"as_of": as_of} if as_of else {}
        response = await client.get("/internal/v1/snapshot", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def test_a_past_snapshot_keeps_the_matters_and_regions_of_its_time(
    root: Path, database_factory: Callable[[str], Awaitable[str]]
) -> None:
    url = await database_factory("reference")
    await start(url, root)
    before = dt.datetime.now(dt.UTC).isoformat()
    first = await snapshot(url, root)
    matters = root / "matters.yaml"
    text_ = matters.read_text(encoding="utf-8")
    assert "- key: patent.invention.granted\n" in text_
    matters.write_text(
        text_.replace(
            "- key: patent.invention.granted\n",
            "- key: patent.invention.granted\n  strategy: {kind: priority, priority: [luzhou-2015-33]}\n",
        ),
        encoding="utf-8",
    )
    now = await snapshot(url, root)
    strategy = {m["key"]: m["strategy"] for m in now["matters"]}["patent.invention.granted"]
    assert strategy == {"kind": "priority", "priority": ["luzhou-2015-33"]}
    assert now["version"] != first["version"]
    assert await snapshot(url, root, as_of=before) == first  # as recorded then, matters included
    assert (await query(url, "SELECT count(*) FROM reference_version"))[0][0] == 2


async def test_a_registry_from_before_reference_versions_keeps_its_past(
    root: Path, database_factory: Callable[[str], Awaitable[str]]
) -> None:
    url = await database_factory("reference_upgrade")
    await start(url, root)
    engine = create_engine(url)
    async with engine.begin() as connection:  # as a registry migrated from before kept none
        await connection.execute(text("ALTER TABLE reference_version DISABLE TRIGGER USER"))
        await connection.execute(text("DELETE FROM reference_version"))
        await connection.execute(text("ALTER TABLE reference_version ENABLE TRIGGER USER"))
    await engine.dispose()
    before = dt.datetime.now(dt.UTC).isoformat()
    first = await snapshot(url, root)
    regions = root / "regions.yaml"
    regions.write_text(
        regions.read_text(encoding="utf-8").replace("江阳区", "江阳区（改）", 1), encoding="utf-8"
    )
    await start(url, root)
    assert (await query(url, "SELECT count(*) FROM reference_version"))[0][0] == 2
    assert await snapshot(url, root, as_of=before) == first


async def test_a_changed_file_does_not_undo_a_repeal_made_through_the_api(
    root: Path, database_factory: Callable[[str], Awaitable[str]]
) -> None:
    """An official's repeal stands when the document's file is edited without it; a file of a
    document nobody changed through the API is still loaded."""
    url = await database_factory("restart_after_api")
    app = create_app(Settings(database_url=url, policies_dir=root))
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            repealed = await client.post(
                "/v1/admin/policies/luzhou-2015-33/repeal",
                json={"date": "2020-01-01", "reason": "已废止"},
                headers={"X-Actor": "officer"},
            )
            assert repealed.status_code == 200, repealed.text
    for name in ("luzhou-2015-33", "luzhou-2023-social-science-award"):
        (path,) = (root / "documents").glob(f"**/{name}.yaml")
        path.write_text(path.read_text(encoding="utf-8") + "\n# 注释\n", encoding="utf-8")
        path.write_text(
            path.read_text(encoding="utf-8").replace("title: ", "title: 修订后的", 1),
            encoding="utf-8",
        )
    await start(url, root)
    version, content, origin = await current(url, "luzhou-2015-33")
    assert (version, origin) == (2, "api")
    assert isinstance(content, dict)
    assert content["repealed_date"] == "2020-01-01"
    assert not content["title"].startswith("修订后的")
    version, content, origin = await current(url, "luzhou-2023-social-science-award")
    assert (version, origin) == (2, "file")
    assert isinstance(content, dict)
    assert content["title"].startswith("修订后的")


async def test_a_file_with_the_doc_no_of_a_document_made_through_the_api_is_not_loaded(
    root: Path, database_factory: Callable[[str], Awaitable[str]], capfd: pytest.CaptureFixture[str]
) -> None:
    """One document recorded twice, once through the API and once from a file, would be paid
    from twice: the file is passed over, with an error in the log."""
    url = await database_factory("restart_doc_no")
    app = create_app(Settings(database_url=url, policies_dir=root))
    (path,) = (root / "documents").glob("**/luzhou-2023-social-science-award.yaml")
    text = path.read_text(encoding="utf-8")
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            shown = (await client.get("/v1/policies/luzhou-2023-social-science-award")).json()
            document = {
                **{
                    k: v
                    for k, v in shown.items()
                    if k not in ("clause_count", "recorded_at", "status", "version")
                },
                "clauses": [{**c, "id": c["id"].split(".", 1)[1]} for c in shown["clauses"]],
            }
            made = await client.post(
                "/v1/admin/policies",
                json={
                    "reason": "先行登记",
                    "document": {**document, "id": "api-twin", "doc_no": "测试〔2026〕9号"},
                },
                headers={"X-Actor": "officer"},
            )
            assert made.status_code == 201, made.text
    twin = path.with_name("file-twin.yaml")
    twin.write_text(
        text.replace("id: luzhou-2023-social-science-award", "id: file-twin", 1).replace(
            f"doc_no: {document['doc_no']}", "doc_no: 测试（2026）9号", 1
        ),
        encoding="utf-8",
    )
    await start(url, root)
    ids = await query(url, "SELECT DISTINCT document_id FROM document_version")
    assert ("api-twin",) in ids
    assert ("file-twin",) not in ids
    said = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    assert any(
        line["level"] == "error" and "file-twin.yaml has the 文号 测试（2026）9号" in line["msg"]
        for line in said
    )
