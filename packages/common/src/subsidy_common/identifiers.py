"""统一社会信用代码 and 居民身份证号码: normalised, checked as python-stdnum checks, gaps closed."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from stdnum.cn import ric

# GB 32100-2015 characters: digits and capitals without I, O, S, V, Z, each worth its position.
_USCC_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_ALPHABET = frozenset(_USCC_CHARACTERS)
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # 3^i mod 31
# For each of the 17 positions, every character's value already times the position's weight.
_USCC_WEIGHTED = tuple({c: v * w for v, c in enumerate(_USCC_CHARACTERS)} for w in _USCC_WEIGHTS)
# Spaces, hyphens, dashes and the minus sign: what a number is typed with, never part of it.
# Not the wave dash (〜, ～), which writes a range (第1〜3期 is not 第13期).
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―_−﹘⸺⸻]+")
# What an identifier drops besides: control characters (Cc) and invisible format characters
# (Cf), none of which is part of a number however it was typed or pasted.
_DROPPED = frozenset(("Cc", "Cf"))
# The ASCII characters dropped, for `str.translate`: NFKC leaves ASCII text as it is.
_ASCII_DROPPED = {
    c: None for c in range(128) if _SEPARATORS.fullmatch(chr(c)) or c < 0x20 or c == 0x7F
}
# Punctuation (dots, ·, 。, slashes, brackets), which a patent number is typed with in many ways.
_PUNCTUATION = frozenset(("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"))


class IdentifierInvalid(ValueError):
    """An identifier that is not well formed or whose check character is wrong."""


def normalise(value: str) -> str:
    """Full-width to half-width (NFKC), separators (spaces, hyphens and dashes, the minus sign),
    control characters and invisible format characters (zero-width spaces and joiners, byte
    order marks) removed, upper case: one identifier, however typed."""
    return _stripped(_nfkc(value))


def _nfkc(value: str) -> str:
    """Full width to half width, and the wave dash written as NFKC writes ～."""
    if value.isascii():  # NFKC leaves it as it is
        return value
    return unicodedata.normalize("NFKC", value).replace("〜", "~")


def _stripped(text: str) -> str:
    """Text already in NFKC without its separators and invisible characters, upper case."""
    if text.isascii():  # it has no format characters
        return (text if text.isalnum() else text.translate(_ASCII_DROPPED)).upper()
    text = "".join(c for c in text if unicodedata.category(c) not in _DROPPED)
    return _SEPARATORS.sub("", text).upper()


def subject_forms(value: str) -> tuple[str, str]:
    """A subject's key (`subject_key`) and how answers show it: as sent, so that a client finds
    its own subject in the answer; empty where the two are the same."""
    if value.isascii() and value.isalnum() and len(value) not in _NUMBER_LENGTHS:
        key = value.upper()
    else:
        normalised = _stripped(_dates_one_way(_nfkc(value)))
        key = _number(normalised) or normalised
    return key, "" if value == key else value


def _dates_one_way(text: str) -> str:
    """Dates in a subject written as one: `2024.7.15`, `2024-07-15`, `2024/7/15` and
    `2024年7月15日` are `20240715` (a hazard point's event, claimed by the county and then the
    city, is one event); `2024年`, `2024年度` are `2024`. `2024-1-12` stays 12 January and
    `2024-11-2` 2 November, which dropping the dashes alone would have made one."""
    if not any(c.isdigit() for c in text):
        return text
    return _YEAR.sub(r"\1", _DATE.sub(_one_way, text))


def _one_way(found: re.Match[str]) -> str:
    year, month, day = (int(part) for part in found.groups())
    try:
        dt.date(year, month, day)
    except ValueError:
        return found.group()  # not a date after all
    return f"{year:04d}{month:02d}{day:02d}"


# A date with its parts apart; a year with 年 or 年度 and no month after it.
_DATE = re.compile(
    r"(?<!\d)((?:19|20)\d{2})\s*[./\-年]\s*(\d{1,2})\s*[./\-月]\s*(\d{1,2})(?:\s*[日号])?(?!\d)"
)
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*年度?(?!\s*\d)")


def subject_key(value: str) -> str:
    """An event's subject as one, however typed (`normalise`). A Chinese patent number or a
    居民身份证号码 is also one whatever punctuation it is written with, a patent number with or
    without the ZL (专利号) or CN before it and the words a clerk labels it with (`专利号：`,
    `号`, `（发明）`, `（已授权）`): `ZL201623189465.2`, `CN 2016 2318 9465·2`,
    `201623189465.2` and `授权专利号ZL201623189465.2号` are one patent. A 居民身份证号码 or a
    统一社会信用代码 is one whatever words in Chinese surround it (`身份证号：…（本人）`,
    `泸州示例科技有限公司9151…`): its check characters make it the person or the organisation
    whatever else is written, and 不重复 counts them once. A patent number's shape is too common
    for that (a date and a serial, `滑坡20240715.1`): other words keep it a subject of its own
    (`合同201623189465.2`, `ZL201623189465.2（第1年）`). A number labelled as an identity is
    never taken for a patent (`身份证号2016231894652`). Other subjects keep their punctuation and
    words: `项目1.1` is not `项目11`, nor `滑坡2023.1.11` `滑坡2023.11.1`."""
    return subject_forms(value)[0]


def names_one_thing(key: str, *, patent: bool) -> bool:
    """Whether a subject's key is a number that names one thing in the whole country: for a
    patent matter, a patent application number; for any matter, a 居民身份证号码 (its birth
    date a date) or a 统一社会信用代码 (its organisation code's check character right too).
    Applicants paid for one such subject were paid for one patent, one person or one
    organisation, whatever names they gave. A contract or project number of a patent number's
    shape names no patent outside a patent matter, and one of 18 characters is seldom both."""
    if len(key) in (9, 13):
        return patent and _PATENT_KEY.fullmatch(key) is not None
    return len(key) == 18 and _national(key, checked_twice=True) == key


# A patent application number's key: 12 digits and a check character since 2004, 8 and one
# before (its ZL or CN and punctuation gone).
_PATENT_KEY = re.compile(r"\d{12}[\dX]|\d{8}[\dX]")
# The kind of patent a number's type digit (after the year) names: 8 and 9 are PCT
# applications entering China as an invention or a utility model.
_PATENT_KINDS = {"1": "invention", "8": "invention", "2": "utility_model", "9": "utility_model",
                 "3": "design"}  # fmt: skip


def patent_kind(key: str) -> str | None:
    """The kind of patent (`invention`, `utility_model`, `design`) a subject's key numbers, by
    its type digit (the fifth of 12, the third of 8 before 2004); None when the key is not a
    patent application number or its type digit names no kind."""
    if _PATENT_KEY.fullmatch(key) is None:
        return None
    return _PATENT_KINDS.get(key[4] if len(key) == 13 else key[2])


def patent_kinds_within(key: str) -> frozenset[str]:
    """The kinds of the patent numbers since 2004 written inside a subject's key among other
    words (`专利号ZL201530000001.1第1件`): 12 digits, then a check character after a dot or
    nothing."""
    return frozenset(
        kind
        for digits in _PATENT_WITHIN.findall(key)
        if (kind := _PATENT_KINDS.get(digits[4])) is not None
    )


_PATENT_WITHIN = re.compile(r"(?<!\d)(\d{12})[.·。]?[\dX](?!\d)")


_ORGANISATION_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# Without a clock here: a 身份证号码 is a person's born by the end of this century.
_LAST_BIRTH_DAY = dt.date(2099, 12, 31)


def _organisation_check(code: str) -> str:
    """GB 11714's check character of an organisation code's first 8 characters (characters 9
    to 16 of a 统一社会信用代码, the 17th being this)."""
    weighted = zip(code, _ORGANISATION_WEIGHTS, strict=True)
    remainder = 11 - sum(int(c, 36) * w for c, w in weighted) % 11
    return "X" if remainder == 10 else "0" if remainder == 11 else str(remainder)


def is_ric(number: str) -> bool:
    """Whether a subject's key is a 居民身份证号码: 17 digits and their check character."""
    return (
        len(number) == 18
        and number[:17].isdigit()
        and number[17] in "0123456789X"
        and number[17] == ric.calc_check_digit(number)
    )


def _number(text: str) -> str | None:
    """The patent application number or identity number a normalised subject is written as, if
    it is one: letters and digits, punctuation between them, nothing else; or a patent number, a
    居民身份证号码 or a 统一社会信用代码 with nothing else but the words it is labelled with."""
    if len(text) > _LONGEST_NUMBERED:
        return None
    labelled = not text.isascii() and _IDENTITY_LABELS.search(text) is not None
    identity = _identity(text, labelled=labelled)
    if identity is not None or labelled:
        return identity
    if not text.isascii():
        unlabelled = _PATENT_LABELS.sub("", text)
        if unlabelled != text:
            number = _number(unlabelled) or _old_patent_labelled(unlabelled)
            return number if number is not None and not is_ric(number) else None
    core = _trimmed(text)  # brackets, or the colon a label leaves, around the number
    if _OLD_PATENT_ALONE.fullmatch(core):
        return core[:8] + core[-1]
    if text.isascii() and text.isalnum():
        bare = text
    elif all(
        (c.isascii() and c.isalnum()) or unicodedata.category(c) in _PUNCTUATION for c in text
    ):
        bare = "".join(c for c in text if c.isascii() and c.isalnum())
    else:
        return None
    if len(bare) not in _NUMBER_LENGTHS:
        return None
    if _PATENT.fullmatch(bare):
        return bare[2:] if bare[:2] in ("ZL", "CN") else bare
    return bare if is_ric(bare) else None


def _identity(text: str, *, labelled: bool) -> str | None:
    """The one 居民身份证号码 or 统一社会信用代码 written in a text among other words: a run of
    letters and digits (dots between them allowed, as in 110105.19491231.002X) that is one. Not
    digits gathered from all over the text: a date and a telephone number together may pass an
    identity number's check (1 in 11). Without its label a 统一社会信用代码 must pass its
    organisation code's check too (1 random string in 341 passes both)."""
    found = {
        code
        for run in _NUMBER_RUN.findall(text)
        if len(bare := _NOT_ALNUM.sub("", run)) == 18
        and (code := _national(bare, checked_twice=not labelled)) is not None
    }
    return found.pop() if len(found) == 1 else None


def _national(number: str, *, checked_twice: bool) -> str | None:
    """An 18-character number, if it is a 居民身份证号码 (its birth date a date) or a
    统一社会信用代码 (with `checked_twice`, its organisation code's check right too). A credit
    code of digits only may pass an identity number's check and not its date."""
    if is_ric(number):
        try:
            return validate_ric(number, today=_LAST_BIRTH_DAY)
        except IdentifierInvalid:
            pass
    try:
        code = validate_uscc(number)
    except IdentifierInvalid:
        return None
    if checked_twice and code[16] != _organisation_check(code[8:16]):
        return None
    return code


def _old_patent_labelled(text: str) -> str | None:
    """A patent number before 2004 after its label, its check character with or without the
    dot (`专利号98123456X`): the label says what eight digits and one are."""
    core = _trimmed(text)
    return core if _OLD_PATENT_KEY.fullmatch(core) else None


def _trimmed(text: str) -> str:
    """The text without the punctuation at its ends."""
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start]) in _PUNCTUATION:
        start += 1
    while end > start and unicodedata.category(text[end - 1]) in _PUNCTUATION:
        end -= 1
    return text[start:end]


# A patent application number: 12 digits and a check character (digit or X) since 2004, after
# ZL or CN or alone; 8 and one before, after ZL or CN, or alone with a dot (or a middle dot)
# before its check character, as it was printed (`98123456.X`): eight digits and one without it,
# or with a range's or a sum's sign (`12345678〜9`), are too common a shape to be taken for a
# patent. A 居民身份证号码 has 18.
_PATENT = re.compile(r"(?:(?:ZL|CN)(?:\d{12}|\d{8})|\d{12})[\dX]")
_OLD_PATENT_ALONE = re.compile(r"\d{8}[.·•。][\dX]")
# A number as written among other words: letters and digits, dots between them allowed.
_NUMBER_RUN = re.compile(r"[0-9A-Z]+(?:[.·•。][0-9A-Z]+)*")
_NOT_ALNUM = re.compile(r"[^0-9A-Z]")
_OLD_PATENT_KEY = re.compile(r"\d{8}[\dX]")
# What `_number` reads at most: a sentence a clerk pasted with the number in it.
_LONGEST_NUMBERED = 120
# The words a patent number is labelled with in a clerk's sheet, longest first.
_PATENT_LABELS = re.compile(
    "|".join(("专利申请号码", "专利申请号", "授权公告号", "专利证书号", "专利号码", "申请号码",
              "专利号", "申请号", "授权号", "公告号", "证书号", "授权公告", "已获授权", "已授权",
              "已下证", "发明专利", "实用新型", "外观设计", "专利", "发明", "外观", "授权", "有效",
              "号码", "号", "第", "为"))
)  # fmt: skip
# The words a 身份证号码 or a 统一社会信用代码 is labelled with, longest first.
_IDENTITY_LABELS = re.compile(
    "|".join(("公民身份号码", "居民身份证号码", "居民身份证号", "身份证号码", "身份证号", "身份证",
              "统一社会信用代码", "社会信用代码", "信用代码"))
)  # fmt: skip
_NUMBER_LENGTHS = frozenset((11, 13, 15, 18))


def validate_uscc(value: str) -> str:
    """A valid 统一社会信用代码 in canonical form.

    stdnum requires the first eight characters to be digits, which refuses codes whose
    registration authority (first character) or organisation type (second) is a letter, as
    GB 32100-2015 allows (e.g. Y for other authorities). The check character is stdnum's
    arithmetic (`uscc_check_character`, tested equal to it) without its `clean`, which cost
    7 of its 10 µs on a number already normalised here: a batch checks one per case.
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
    if number[-1] != uscc_check_character(number):
        raise IdentifierInvalid("the check character is wrong")
    return number


def uscc_check_character(number: str) -> str:
    """GB 32100-2015's check character of a normalised code's first 17 characters."""
    total = sum(map(dict.__getitem__, _USCC_WEIGHTED, number))  # stops after the 17th
    return _USCC_CHARACTERS[-total % 31]


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
    try:  # stdnum's get_birth_date reads these digits after a `clean` costing 7 µs
        born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as exc:
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
