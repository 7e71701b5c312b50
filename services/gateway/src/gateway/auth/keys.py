"""API keys: minted with enough entropy that a fast digest is a safe way to store them."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "sk_"


def new_key() -> str:
    """A fresh API key: `sk_` and 43 URL-safe characters (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    """The stored form of a key. Keys are random, so SHA-256 needs no salt or stretching."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def display_prefix(key: str) -> str:
    """The first characters of a key, enough for a person to tell keys apart."""
    return key[: len(KEY_PREFIX) + 6]


def same_digest(a: str, b: str) -> bool:
    """Compare digests in constant time."""
    return hmac.compare_digest(a, b)
