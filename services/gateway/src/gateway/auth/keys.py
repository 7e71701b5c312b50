"""API keys: minted with enough entropy that a fast digest is a safe way to store them."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

KEY_PREFIX = "sk_"
# A key the gateway mints has 43 characters after the prefix; the first admin key, chosen by
# whoever deploys, needs at least 32 (192 bits when random) and may be longer.
MIN_SECRET_CHARS = 32
MAX_KEY_CHARS = 128
MIN_KEY_CHARS = len(KEY_PREFIX) + MIN_SECRET_CHARS
_WELL_FORMED = re.compile(
    rf"{KEY_PREFIX}[A-Za-z0-9_-]{{{MIN_SECRET_CHARS},{MAX_KEY_CHARS - len(KEY_PREFIX)}}}"
)
# Fewer distinct characters than this is a typed pattern, not a random key (a random one of 32
# URL-safe characters has about 25).
MIN_DISTINCT_CHARS = 10
PLACEHOLDER = "REPLACE_ME"


def new_key() -> str:
    """A fresh API key: `sk_` and 43 URL-safe characters (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def well_formed(key: str) -> bool:
    """Whether a string has the form of a key of ours: `sk_` and 32 to 125 URL-safe characters.

    Anything else cannot be on record, so it is refused without asking the database.
    """
    return _WELL_FORMED.fullmatch(key) is not None


def weakness(key: str) -> str | None:
    """Why a key chosen by hand (SUBSIDY_ADMIN_KEY) is not fit to be one, or None when it is."""
    if PLACEHOLDER.casefold() in key.casefold():
        return f"it is still the placeholder {PLACEHOLDER} of deploy/k8s/secret.template.yaml"
    if not well_formed(key):
        return (
            f"it must be {KEY_PREFIX} followed by {MIN_SECRET_CHARS} to"
            f" {MAX_KEY_CHARS - len(KEY_PREFIX)} URL-safe characters (A-Z a-z 0-9 - _);"
            f" it has {len(key)} characters in all"
        )
    if len(set(key.removeprefix(KEY_PREFIX))) < MIN_DISTINCT_CHARS:
        return "it repeats a few characters; a key must be random"
    return None


def digest(key: str) -> str:
    """The stored form of a key. Keys are random, so SHA-256 needs no salt or stretching."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def display_prefix(key: str) -> str:
    """The first characters of a key, enough for a person to tell keys apart."""
    return key[: len(KEY_PREFIX) + 6]


def same_digest(a: str, b: str) -> bool:
    """Compare digests in constant time."""
    return hmac.compare_digest(a, b)
