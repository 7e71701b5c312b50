"""A database at the head revision is recognised with one query; anything else goes to Alembic."""

from __future__ import annotations

from pathlib import Path

from subsidy_common.database import at_head, migrate, script_heads

MIGRATIONS = Path(__file__).resolve().parents[4] / "migrations"


def test_the_heads_are_read_from_the_version_files() -> None:
    assert script_heads(MIGRATIONS / "gateway") == {"g0003"}
    assert script_heads(MIGRATIONS / "calculator") == {"c0015"}


def test_a_version_file_without_a_plain_revision_is_left_to_alembic(tmp_path: Path) -> None:
    (tmp_path / "versions").mkdir()
    (tmp_path / "versions" / "x.py").write_text("revision = compute()\n", encoding="utf-8")
    assert script_heads(tmp_path) is None


async def test_a_missing_database_is_not_at_head_and_not_created(tmp_path: Path) -> None:
    database = tmp_path / "gateway.db"
    assert not await at_head(MIGRATIONS / "gateway", f"sqlite+aiosqlite:///{database}")
    assert not database.exists()


async def test_a_migrated_database_is_at_head(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    await migrate(MIGRATIONS / "gateway", url)
    assert await at_head(MIGRATIONS / "gateway", url)
    assert not await at_head(MIGRATIONS / "calculator", url)
