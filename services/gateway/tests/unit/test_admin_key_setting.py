"""SUBSIDY_ADMIN_KEY: a weak or placeholder key stops the gateway before it starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from gateway.auth.keys import new_key, well_formed
from gateway.config import Settings
from pydantic import ValidationError
from testkit import script

RUN_SCRIPT = Path(__file__).resolve().parents[4] / "scripts" / "run.py"


def refusal(key: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SUBSIDY_ADMIN_KEY", key)
    with pytest.raises(ValidationError) as raised:
        Settings()
    return str(raised.value)


class TestWeakKeysAreRefused:
    @pytest.mark.parametrize(
        "key",
        [
            "REPLACE_ME",
            "sk_REPLACE_ME-0123456789abcdef0123456789abcdef",
            "",
            "correct horse battery staple, a long passphrase",
            "sk_short-0123456789",  # 19 characters after the prefix
            "0123456789abcdef0123456789abcdef0123456789abcdef",  # no sk_ prefix
            "sk_" + "ab" * 20,  # long enough, but two characters over and over
            "sk_" + "x" * 126,  # over 128 characters in all
        ],
    )
    def test_refused_at_start(self, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
        message = refusal(key, monkeypatch)
        assert "SUBSIDY_ADMIN_KEY is refused" in message
        assert "secrets.token_urlsafe(32)" in message  # says how to make a good one

    def test_the_placeholder_is_named(self, monkeypatch: pytest.MonkeyPatch) -> None:
        assert "placeholder REPLACE_ME" in refusal("REPLACE_ME", monkeypatch)

    def test_the_refusal_does_not_repeat_the_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        secret = "sk_my-real-but-short-secret"
        assert secret not in refusal(secret, monkeypatch)


class TestGoodKeysAreTaken:
    def test_a_minted_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        key = new_key()
        monkeypatch.setenv("SUBSIDY_ADMIN_KEY", key)
        settings = Settings()
        assert settings.admin_key is not None
        assert settings.admin_key.get_secret_value() == key

    def test_no_key_at_all(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("SUBSIDY_ADMIN_KEY", raising=False)
        monkeypatch.delenv("GATEWAY_ADMIN_KEY", raising=False)
        assert Settings().admin_key is None

    def test_the_key_make_run_generates(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        run = script(RUN_SCRIPT, "subsidy_run_script")
        monkeypatch.delenv("SUBSIDY_ADMIN_KEY", raising=False)
        key = run.admin_key(tmp_path)
        assert (tmp_path / "admin_key").read_text().strip() == key
        monkeypatch.setenv("SUBSIDY_ADMIN_KEY", key)
        assert Settings().admin_key is not None


def test_every_minted_key_is_well_formed() -> None:
    assert all(well_formed(new_key()) for _ in range(1000))
