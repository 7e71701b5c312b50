"""Identifier normalisation and checking, including the gaps stdnum leaves."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric, uscc
from subsidy_common.identifiers import (
    IdentifierInvalid,
    is_ric,
    mask_ric,
    names_one_thing,
    normalise,
    patent_kind,
    subject_forms,
    subject_key,
    uscc_check_character,
    validate_ric,
    validate_uscc,
)

TODAY = dt.date(2026, 11, 23)


def with_check(body: str, module: object) -> str:
    if module is ric:  # stdnum's ric takes the number with its check position
        return body + ric.calc_check_digit(body + "0")
    return body + uscc.calc_check_digit(body)


class TestUscc:
    def test_the_contract_example_is_valid(self) -> None:
        assert validate_uscc("91510500MA62B8XY4F") == "91510500MA62B8XY4F"

    def test_written_two_ways_is_one_code(self) -> None:
        assert validate_uscc(" ９１５１０５００-ma62 b8xy4f ") == "91510500MA62B8XY4F"

    def test_wrong_check_character(self) -> None:
        with pytest.raises(IdentifierInvalid, match="check"):
            validate_uscc("91510500MA62B8XY4G")

    def test_letter_registration_authority_is_accepted(self) -> None:
        code = with_check("Y1510500MA62B8XY4", uscc)
        assert not uscc.is_valid(code)  # the gap this wrapper closes
        assert validate_uscc(code) == code

    @given(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=17, max_size=17))
    def test_check_character_is_stdnums(self, body: str) -> None:
        assert uscc_check_character(body + "0") == uscc.calc_check_digit(body)

    @pytest.mark.parametrize(
        "bad", ["9151050", "91510500MA62B8XY4FF", "9151O500MA62B8XY4F", "91AB0500MA62B8XY4F"]
    )
    def test_malformed(self, bad: str) -> None:
        with pytest.raises(IdentifierInvalid):
            validate_uscc(bad)


class TestRic:
    def test_valid_with_x(self) -> None:
        number = with_check("51050219900101123", ric)
        assert validate_ric(number.lower(), today=TODAY) == number

    def test_future_birth_date_is_refused(self) -> None:
        number = with_check("51050220300101123", ric)
        assert ric.is_valid(number)  # stdnum accepts it
        with pytest.raises(IdentifierInvalid, match="birth"):
            validate_ric(number, today=TODAY)

    @given(st.dates(dt.date(1900, 1, 1), TODAY), st.from_regex(r"\A[0-9]{9}\Z"))
    def test_birth_date_is_stdnums(self, born: dt.date, rest: str) -> None:
        number = with_check(rest[:6] + born.strftime("%Y%m%d") + rest[6:], ric)
        assert validate_ric(number, today=TODAY) == number
        assert ric.get_birth_date(number) == born

    def test_impossible_date_is_refused(self) -> None:
        with pytest.raises(IdentifierInvalid, match="birth"):
            validate_ric(with_check("51050219900230123", ric), today=TODAY)

    def test_division_missing_from_stdnum_table_is_accepted(self) -> None:
        number = with_check("99990019900101123", ric)
        assert not ric.is_valid(number)  # stdnum refuses an unknown birthplace
        assert validate_ric(number, today=TODAY) == number

    def test_wrong_check_digit(self) -> None:
        number = with_check("51050219900101123", ric)
        wrong = number[:-1] + ("0" if number[-1] != "0" else "1")
        with pytest.raises(IdentifierInvalid, match="check"):
            validate_ric(wrong, today=TODAY)

    def test_mask_keeps_division_and_last_four(self) -> None:
        assert mask_ric("51050219900101123X") == "510502********123X"


def test_normalise_full_width_and_separators() -> None:
    assert normalise("ＡＢ－１２ ３") == "AB123"


@pytest.mark.parametrize(
    "typed", ["HT−2024−001", "HT﹣2024﹣001", "HT⸺2024⸺001", "HT‒2024‒001", "HT－2024－001"]
)
def test_dashes_and_the_minus_sign_are_separators(typed: str) -> None:
    assert subject_key(typed) == subject_key("HT-2024-001") == "HT2024001"


def test_a_wave_dash_writes_a_range_and_stays() -> None:
    assert subject_key("第1〜3期") != subject_key("第13期")
    assert subject_key("第1〜3期") == subject_key("第1～3期")  # whichever wave dash


@pytest.mark.parametrize(
    "typed",
    ["黄荆村滑坡2024.07.15", "黄荆村滑坡2024.7.15", "黄荆村滑坡2024年7月15日", "黄荆村滑坡2024-07-15",
     "黄荆村滑坡 2024/7/15", "黄荆村滑坡２０２４年７月１５日"],
)  # fmt: skip
def test_a_date_is_one_however_written(typed: str) -> None:
    """A hazard point's event claimed by the county, then by the city, is one event."""
    assert subject_key(typed) == "黄荆村滑坡20240715"


def test_a_year_is_one_with_or_without_its_word() -> None:
    assert subject_key("2024") == subject_key("2024年") == subject_key("2024年度") == "2024"
    assert subject_key("平台A-2022年度") == subject_key("平台A-2022")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("滑坡2024-1-12", "滑坡2024-11-2"),  # 12 January, 2 November: dashes alone made one
        ("XM2023-1-12-第1年", "XM2023-11-2-第1年"),
        # Digits from all over a text together passed an identity number's check.
        ("黄荆村滑坡2024.7.15（监测员13883000004）", "石桥村崩塌2024.7.15（监测员13883000004）"),
        ("51052110103号点滑坡2023.1.11", "51052110103号点滑坡2023.11.1"),
        ("项目20235105000000006-第1年", "项目20235105000000006-第1期"),
    ],
)
def test_digits_apart_are_no_identity_number(one: str, other: str) -> None:
    assert subject_key(one) != subject_key(other)


@pytest.mark.parametrize(
    "typed",
    [
        "ZL201510000001.1",
        "zl201510000001.1",
        "ＺＬ２０１５１００００００１．１",
        "ZL 2015 1000 0001.1",
        "ZL-201510000001.1",
        "ZL201510000001.1\u200b",
        "\ufeffZL2015\u200d10000001.1",
        "ZL_201510000001.1\t",
        "ZL201510000001.1\x01",
        "\x7fZL201510000001.1",
        "\x9fZL201510000001.1",
    ],
)
def test_one_identifier_however_typed(typed: str) -> None:
    assert normalise(typed) == "ZL201510000001.1"


@pytest.mark.parametrize(
    "typed",
    [
        "ZL201510000001.1",
        "ZL201510000001·1",
        "ZL201510000001。1",
        "ZL2015.10000001.1",
        "ZL2015/1000/0001/1",
        "201510000001.1",
        "CN201510000001.1",
        "ＺＬ２０１５１００００００１．１",
    ],
)
def test_one_patent_however_typed(typed: str) -> None:
    assert subject_key(typed) == "2015100000011"


@pytest.mark.parametrize(
    ("one", "other"),
    [("项目1.1", "项目11"), ("滑坡2023.1.11", "滑坡2023.11.1"), ("V1.10", "V11.0"), ("A/B", "AB")],
)
def test_other_subjects_keep_their_punctuation(one: str, other: str) -> None:
    assert subject_key(one) != subject_key(other)


def test_an_identity_number_is_one_however_typed() -> None:
    forms = {subject_key(t) for t in ("110105·19491231002X", "(110105)19491231002x",
                                      "11010519491231002X", "110105.19491231.002X")}  # fmt: skip
    assert forms == {"11010519491231002X"}
    assert is_ric("510504199001011232")  # stdnum's division table aside
    assert not is_ric("510504199001011233")


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("ZL201623189465.2", "2016231894652"),
        ("CN 2016 2318 9465.2", "2016231894652"),
        ("201623189465.2", "2016231894652"),
        ("ZL98123456.X", "98123456X"),
        ("98123456.X", "98123456X"),
        ("98123456X", "98123456X"),
        ("专利号：98123456.X", "98123456X"),
        ("(98123456.X)", "98123456X"),
        ("（98123456.X）", "98123456X"),
        ("专利号ZL201623189465.2", "2016231894652"),
        ("专利号：ZL201623189465.2", "2016231894652"),
        ("ZL201623189465.2号", "2016231894652"),
        ("ZL201623189465.2（发明）", "2016231894652"),
        ("发明专利 第201623189465.2号", "2016231894652"),
        ("专利申请号 2016 2318 9465.2", "2016231894652"),
        ("授权公告号：CN201623189465.2", "2016231894652"),
        ("ZL201623189465.2（已授权）", "2016231894652"),
        ("授权ZL201623189465.2", "2016231894652"),
        ("合同201623189465.2", "合同201623189465.2"),  # a word that labels no patent
        ("ZL201623189465.2（第1年）", "ZL201623189465.2(第1年)"),  # nor a year
        ("黄荆村滑坡20240715.1", "黄荆村滑坡20240715.1"),  # a date and a serial
        ("泸州2023100000011", "泸州2023100000011"),
        ("身份证号：510502199001013112（本人）", "510502199001013112"),
        ("510502199001013112（本人）", "510502199001013112"),
        ("510502199001013112（第一套住房）", "510502199001013112"),
        ("510502199001013112号", "510502199001013112"),
        ("发明人：510502199001013112", "510502199001013112"),
        ("张发明510502199001013112", "510502199001013112"),
        ("91510521MA62D8KXX0（本公司）", "91510521MA62D8KXX0"),
        ("泸州示例科技有限公司91510521MA62D8KXX0", "91510521MA62D8KXX0"),
        (
            "泸州示例科技有限公司91510500MA62B8XY4F",
            "泸州示例科技有限公司91510500MA62B8XY4F",
        ),  # its organisation check wrong
        ("项目91510521MA62D8KX3F", "项目91510521MA62D8KX3F"),  # its organisation check wrong
        ("（91510100MA6C00009H）", "91510100MA6C00009H"),
        ("91510100MA6C00009H，", "91510100MA6C00009H"),
        ("：91510100MA6C00009H", "91510100MA6C00009H"),
        ("泸州ABC科技有限公司91510100MA6C00009H", "91510100MA6C00009H"),
        ("泸州3D打印科技有限公司91510100MA6C00009H", "91510100MA6C00009H"),
        ("张三（2024年引进）110101199003071233", "110101199003071233"),
        ("身份证号码：110101199003071233（2024年引进）", "110101199003071233"),
        ("专利号码：ZL201510000001.1", "2015100000011"),
        ("ZL201510000001.1（已获授权）", "2015100000011"),
        ("专利号为ZL201510000001.1", "2015100000011"),
        ("专利号98123456X", "98123456X"),
        ("12345678〜9", "12345678~9"),  # a range, not a patent before 2004
        ("12345678+9", "12345678+9"),
        ("身份证号11010519491231002X", "11010519491231002X"),
        ("公民身份号码：110105 19491231 002x", "11010519491231002X"),
        ("（身份证号码11010519491231002X）", "11010519491231002X"),
        ("身份证号11010519491231002Y", "身份证号11010519491231002Y"),  # no 身份证号码
        ("张三身份证号11010519491231002X", "11010519491231002X"),  # the number is the person
        ("统一社会信用代码：91510500MA62B8XY4F", "91510500MA62B8XY4F"),
        ("信用代码 91510500-MA62B8XY4F", "91510500MA62B8XY4F"),
        ("统一社会信用代码：91510500MA62B8XY4G", "统一社会信用代码:91510500MA62B8XY4G"),
        ("身份证号2016231894652", "身份证号2016231894652"),
        ("1234567.89", "1234567.89"),  # eight digits and one, without the dot before the last
        ("专利号", "专利号"),
        ("ZL2016231894652A", "ZL2016231894652A"),  # not a patent number's shape
        ("CNY-2016", "CNY2016"),
        ("ZL 项目-1", "ZL项目1"),
    ],
)
def test_a_number_is_one_with_or_without_its_prefix_or_label(typed: str, key: str) -> None:
    assert subject_key(typed) == key


@given(st.text(max_size=20) | st.from_regex(r"(ZL|CN|zl)?[0-9]{8,12}[0-9X]", fullmatch=True))
def test_a_subjects_two_forms_are_its_key_and_how_it_is_shown(value: str) -> None:
    key, shown = subject_forms(value)
    assert key == subject_key(value)
    assert (shown or key) == value


@given(st.text(st.characters(max_codepoint=127)))
def test_ascii_takes_the_short_way_to_the_same_result(value: str) -> None:
    text = unicodedata.normalize("NFKC", value)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf"))
    slow = re.sub(r"[\s\-‐‑‒–—―_]+", "", text).upper()
    assert normalise(value) == slow


@pytest.mark.parametrize(
    ("typed", "patent", "one"),
    [
        ("ZL201510000001.1", True, True),
        ("CN 2016 2318 9465·2", True, True),
        ("专利号：98123456.X", True, True),  # before 2004, labelled
        ("2022000100015", False, False),  # a loan contract's number, of a patent's shape
        ("2022000100015", True, True),
        ("510521197506204125", False, True),
        ("510521197506204126", False, False),  # its check character wrong
        ("身份证号：510521197506204125", False, True),
        ("统一社会信用代码：91110000802100433B", False, True),
        ("51052130750620412X", False, False),  # its check character right, born in 3075
        ("91110000802100433B", False, True),  # 中国银行
        ("91440300708461136T", False, True),
        ("91510521MA62D8KXX0", False, True),
        ("91510521MA62D8KX3F", False, False),  # its organisation code's check character wrong
        ("91510502MA62D8KX3F", False, False),  # its own check character wrong
        ("合同201623189465.2", True, False),
        ("915101001099069572", False, True),  # a credit code of digits only, no person's
        ("泸县某滑坡点-2024-06-20", False, False),
    ],
)
def test_a_subject_names_one_thing_when_it_is_a_national_number(
    typed: str, patent: bool, one: bool
) -> None:
    assert names_one_thing(subject_key(typed), patent=patent) is one


@pytest.mark.parametrize(
    ("typed", "kind"),
    [
        ("ZL201510000001.1", "invention"),
        ("ZL201580000001.1", "invention"),  # a PCT application entering China
        ("ZL201520000001.5", "utility_model"),
        ("ZL201590000001.5", "utility_model"),
        ("ZL201530000001.X", "design"),
        ("98123456.X", "invention"),  # before 2004: the third digit
        ("98323456.X", "design"),
        ("ZL201550000001.1", None),
        ("HT-2024-001", None),
        ("510502199001013112", None),
    ],
)
def test_a_patent_numbers_type_digit_names_its_kind(typed: str, kind: str | None) -> None:
    assert patent_kind(subject_key(typed)) == kind
