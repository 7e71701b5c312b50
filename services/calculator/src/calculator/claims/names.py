"""Company names compared the way a clerk would: suffixes, width and spacing ignored."""

from __future__ import annotations

import re
import unicodedata

from rapidfuzz import fuzz

_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "集团公司", "公司")
_NOISE = re.compile(r"[\s·\.,，。（）()【】\[\]\-]+")
SIMILAR = 90.0


# What the ledger keeps of a name's key. A name is at most 200 characters as sent, and NFKC
# can write one character as 18 (ﷺ): past this, a name tells companies apart no better.
NAME_KEY_LENGTH = 200


def name_key(name: str) -> str:
    """A name reduced to what tells companies apart."""
    text = _NOISE.sub("", unicodedata.normalize("NFKC", name)).upper()
    for suffix in _SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    return text[:NAME_KEY_LENGTH]


def similar(a: str, b: str) -> bool:
    """Whether two name keys are near enough to be the same company written two ways."""
    if not a or not b:
        return False
    return a == b or fuzz.ratio(a, b) >= SIMILAR


def may_be_one(a: str, b: str) -> bool:
    """Whether two applicants may be one company as far as their name keys tell: similar, or
    either name missing, when nothing tells them apart."""
    return not a or not b or similar(a, b)
