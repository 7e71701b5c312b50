"""统一社会信用代码 and 居民身份证号码: normalised, checked with python-stdnum, gaps closed."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from stdnum.cn import ric, uscc

# GB 32100-2015 characters: digits and capitals without I, O, S, V, Z.
_USCC_ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPQRTUWXY")
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―_]+")


class IdentifierInvalid(ValueError):
    """An identifier that is not well formed or whose check character is wrong."""


def normalise(value: str) -> str:
    """Full-width to half-width (NFKC), separators removed, upper case."""
    if value.isascii() and value.isalnum():  # NFKC leaves it as it is and it has no separators
        return value.upper()
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper()


def validate_uscc(value: str) -> str:
    """A valid 统一社会信用代码 in canonical form.

    stdnum requires the first eight characters to be digits, which refuses codes whose
    registration authority (first character) or organisation type (second) is a letter, as
    GB 32100-2015 allows (e.g. Y for other authorities); its check-character arithmetic is used.
    """
    number = normalise(value)
    if len(number) != 18:
        raise IdentifierInvalid("a 统一社会信用代码 has 18 characters")
    if not _USCC_ALPHABET.issuperset(number):
        raise IdentifierInvalid(
            "a 统一社会信用代码 uses digits and capitals other than I, O, S, V, Z"
        )
    if not number[2:8].isdigit():
        raise IdentifierInvalid("characters 3 to 8 (the division code) must be digits")
    if number[-1] != uscc.calc_check_digit(number[:-1]):
        raise IdentifierInvalid("the check character is wrong")
    return number


def validate_ric(value: str, *, today: dt.date) -> str:
    """A valid 居民身份证号码 in canonical form.

    A birth date in the future is refused (stdnum accepts it); a division code missing from
    stdnum's table is accepted (division codes change; stdnum would refuse).
    """
    number = normalise(value)
    if len(number) != 18:
        raise IdentifierInvalid("a 居民身份证号码 has 18 characters")
    if not number[:-1].isdigit() or not (number[-1].isdigit() or number[-1] == "X"):
        raise IdentifierInvalid("a 居民身份证号码 is 17 digits and a digit or X")
    try:
        born = ric.get_birth_date(number)
    except ric.ValidationError as exc:
        raise IdentifierInvalid("the birth date is not a date") from exc
    if born > today or born.year < 1900:
        raise IdentifierInvalid("the birth date is not possible")
    if number[-1] != ric.calc_check_digit(number):  # it skips the last character itself
        raise IdentifierInvalid("the check digit is wrong")
    return number


def mask_ric(number: str) -> str:
    """A 身份证号码 as shown in responses and logs: division and last four kept."""
    if len(number) != 18:
        return "*" * len(number)
    return number[:6] + "*" * 8 + number[-4:]
