"""The policy file format: one YAML file per document, checked line by line against its source.

These models are the single definition of the format; `policies/schema.json` is generated
from them so that editors can complete and check the files.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from subsidy_common.types import PolicyDate as IsoDate

SLUG = r"^[a-z0-9][a-z0-9-]*[a-z0-9]$"
MATTER_KEY = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
REGION_CODE = r"^[0-9]{6}(-[A-Z]{2})?$"
ATTRIBUTE_NAME = r"^[a-z][a-z0-9_]*$"

Slug = Annotated[str, Field(pattern=SLUG, max_length=80)]
MatterKey = Annotated[str, Field(pattern=MATTER_KEY, max_length=80)]
RegionCode = Annotated[str, Field(pattern=REGION_CODE)]
AttributeName = Annotated[str, Field(pattern=ATTRIBUTE_NAME, max_length=60)]
Quote = Annotated[str, Field(min_length=4, description="原文摘录：与来源文件逐字一致的句子")]
Note = Annotated[str, Field(min_length=4, description="解读说明：原文含糊时所作的选择及理由")]


def _decimal(value: object) -> object:
    """Read YAML numbers through their text so 0.3 stays 0.3, never a binary float."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    return value


def _written_out(value: Decimal) -> Decimal:
    """A sum in one form, without an exponent or zeros ending its fraction: `1e3`, `1000.00`
    and `1000` are stored and hashed as 1000, so the same sum written another way, or sent
    back as the API shows it, is no new version."""
    text = format(value, "f")
    return Decimal(text.rstrip("0").rstrip(".") if "." in text else text)


Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=14, decimal_places=2, description="金额（元）"),
    AfterValidator(_written_out),
]
Rate = Annotated[
    Decimal,
    Field(gt=0, le=1, max_digits=8, decimal_places=6, description="比例，0.3 表示 30%"),
]
Count = Annotated[int, Field(ge=1, le=1_000_000)]

BeneficiaryKind = Literal["enterprise", "individual", "institution"]
IssuerLevel = Literal["national", "provincial", "city", "county", "park"]
PayerLevel = Literal["province", "city", "county", "park", "employer", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class _Amount(_Strict):
    @model_validator(mode="before")
    @classmethod
    def _numbers_as_text(cls, data: object) -> object:
        if isinstance(data, dict):
            return {key: _decimal(value) for key, value in data.items()}
        return data


class FixedAmount(_Amount):
    """A set sum: 国家高新技术企业奖励 10 万元."""

    kind: Literal["fixed"]
    value: Money


class PerUnitAmount(_Amount):
    """A rate per unit: 发明专利每件 3000 元; units come from the quantity or an attribute."""

    kind: Literal["per_unit"]
    rate: Money
    unit: str = Field(min_length=1, max_length=10, description="计量单位，如 件、人、个")
    units_from: Literal["quantity"] | AttributeName = Field(
        default="quantity", description="单位数取自事件数量（quantity）或事件的某一属性"
    )
    max_units_per_subject: Count | None = Field(
        default=None, description="同一标的最多计算的单位数，如涉外专利最多两个国家和地区"
    )


class PercentageAmount(_Amount):
    """A share of a base the event carries: 检测费用的 30%."""

    kind: Literal["percentage"]
    rate: Rate
    base: AttributeName = Field(description="计算基数所在的事件属性，如 fee_yuan")


class RangeAmount(_Amount):
    """A sum decided case by case within bounds: 25 万元—250 万元 / 最高 50 万元."""

    kind: Literal["range"]
    min: Money
    max: Money

    @model_validator(mode="after")
    def _ordered(self) -> RangeAmount:
        if self.min > self.max:
            raise ValueError(f"range min {self.min} is above max {self.max}")
        return self


class PeriodicAmount(_Amount):
    """A sum per period over a number of periods: 每月 2000 元，3 年."""

    kind: Literal["periodic"]
    per_period: Money
    period: Literal["month", "quarter", "year"]
    periods: Count


class UnspecifiedAmount(_Amount):
    """Money promised without a number (给予一定补助): recorded, visible, computing nothing."""

    kind: Literal["unspecified"]


class NonCashAmount(_Amount):
    """A benefit the government does not pay out: a tax or price deduction, an employer share."""

    kind: Literal["non_cash"]
    rate: Rate | None = None
    value: Money | None = None
    description: str = Field(min_length=2, description="优惠内容，如 加计扣除、价格扣除")


SimpleAmount = Annotated[
    FixedAmount | PerUnitAmount | PercentageAmount | RangeAmount | PeriodicAmount,
    Field(discriminator="kind"),
]


class Tier(_Amount):
    """One step of a tiered amount: the amount paid once the attribute reaches `at_least`."""

    at_least: Decimal = Field(ge=0, description="门槛（含）")
    amount: SimpleAmount


class TieredAmount(_Amount):
    """The highest tier whose threshold the attribute reaches: 销售收入 2000 万以上 10 万."""

    kind: Literal["tiered"]
    attribute: AttributeName
    tiers: list[Tier] = Field(min_length=1)

    @model_validator(mode="after")
    def _ascending(self) -> TieredAmount:
        thresholds = [tier.at_least for tier in self.tiers]
        if thresholds != sorted(set(thresholds)):
            raise ValueError("tiers must have strictly ascending at_least thresholds")
        return self


Amount = Annotated[
    FixedAmount
    | PerUnitAmount
    | PercentageAmount
    | TieredAmount
    | RangeAmount
    | PeriodicAmount
    | UnspecifiedAmount
    | NonCashAmount,
    Field(discriminator="kind"),
]


class Caps(_Amount):
    """Upper bounds on what a clause pays; the running ones (cumulative and yearly) may be
    shared by several clauses, which then count what each pays under one key."""

    per_event: Money | None = Field(default=None, description="单次（单个事件）最高")
    per_applicant_year: Money | None = Field(default=None, description="同一主体每年最高")
    cumulative: Money | None = Field(default=None, description="同一主体累计最高")
    cumulative_key: Slug | None = Field(
        default=None,
        description="共用累计上限或每年上限的条款写同一个键，各条款所付合并计入；缺省时仅本条款",
    )
    per: AttributeName | None = Field(
        default=None,
        description=(
            "累计上限或每年上限按事件的这一属性（如成果、项目编号）分别计算，而不是按申请主体合计，"
            "如“按该成果……累计最高2000万元”；条款的条件须读取该属性，事件未给出时要求补充"
        ),
    )

    @property
    def running(self) -> bool:
        """Whether payments count against a cumulative or a yearly cap."""
        return self.cumulative is not None or self.per_applicant_year is not None

    @model_validator(mode="after")
    def _key_needs_cap(self) -> Caps:
        running = self.running
        if self.cumulative_key is not None and not running:
            raise ValueError(
                "cumulative_key is set but there is no cumulative or yearly cap to share"
            )
        if self.per is not None and not running:
            raise ValueError("per is set but there is no cumulative or yearly cap to divide")
        return self


class Clause(_Strict):
    """One entitlement inside a document."""

    id: Slug = Field(description="文件内唯一的条款标识")
    ref: str = Field(min_length=1, max_length=40, description="条款编号，如 （二十）、第五条")
    matter: MatterKey
    beneficiaries: list[BeneficiaryKind] = Field(min_length=1)
    condition: str | None = Field(
        default=None,
        max_length=2000,
        description="CEL 表达式，读 event.<属性>、event.quantity、applicant.<属性>、applicant.kind",
    )
    amount: Amount
    caps: Caps = Field(default_factory=Caps)
    funding_source: str | None = Field(default=None, description="资金来源，如 市级专利资助资金")
    payer_level: PayerLevel = Field(default="city", description="出资层级")
    effective_from: IsoDate | None = Field(default=None, description="条款自身较窄的生效日")
    effective_to: IsoDate | None = None
    quote: Quote
    interpretation: Note | None = None

    @field_validator("beneficiaries")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("beneficiaries are listed twice")
        return value

    @model_validator(mode="after")
    def _window(self) -> Clause:
        if self.effective_from and self.effective_to and self.effective_from > self.effective_to:
            raise ValueError("effective_from is after effective_to")
        return self


class Exclusion(_Strict):
    """A rule of the document that takes eligibility away (e.g. a major incident that year)."""

    id: Slug
    ref: str = Field(min_length=1, max_length=40)
    when: str = Field(min_length=1, max_length=2000, description="CEL 表达式，为真时排除")
    matters: list[MatterKey] | None = Field(
        default=None, description="适用的事项；缺省为本文件全部条款"
    )
    quote: Quote
    interpretation: Note | None = None


class Supersession(_Strict):
    """This document replaces another one, wholly or for some matters (时间从新)."""

    document: Slug
    matters: list[MatterKey] | None = Field(
        default=None, min_length=1, description="缺省为全部事项；列出时至少一项"
    )
    quote: Quote | None = None
    interpretation: Note | None = None


class Source(_Strict):
    """Where the text of the document comes from."""

    title: str = Field(min_length=2, description="来源，如 泸州市人民政府公报 2023 年第 5 期")
    file: str | None = Field(default=None, description="仓库 seeds 中的来源文本")
    url: str | None = None
    catalogue_row: int | None = Field(
        default=None, ge=1, le=100_000, description="在清理目录中的序号"
    )


class Document(_Strict):
    """One normative document: 文号, issuer, jurisdiction, validity and its clauses."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        str_strip_whitespace=True,
        json_schema_extra={"$comment": "Generated from registry.policy_files.models"},
    )

    id: Slug = Field(description="稳定的 ASCII 标识")
    doc_no: str | None = Field(default=None, max_length=80, description="文号，照原文")
    title: str = Field(min_length=2, max_length=300)
    issuer: str = Field(min_length=2, max_length=200, description="发文机关")
    level: IssuerLevel
    jurisdiction: list[RegionCode] = Field(min_length=1, description="适用地域（区划代码）")
    issued_date: IsoDate | None = Field(default=None, description="印发（成文）日期")
    effective_from: IsoDate
    effective_to: IsoDate | None = Field(default=None, description="原文未载明截止日期时为空")
    repealed_date: IsoDate | None = Field(default=None, description="废止（失效）日期")
    repealed_by: str | None = Field(default=None, description="宣布废止或失效的文件")
    catalogue_status: Literal["continued", "expired", "repealed", "to_be_amended"] | None = Field(
        default=None, description="清理目录中的结论：继续有效、失效、废止、拟修改"
    )
    supersedes: list[Supersession] = Field(default_factory=list)
    exclusions: list[Exclusion] = Field(default_factory=list)
    clauses: list[Clause] = Field(default_factory=list)
    source: Source
    notes: list[Note] = Field(default_factory=list, description="文件层面的解读说明")

    @field_validator("jurisdiction")
    @classmethod
    def _distinct_regions(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a region is listed twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Document:
        problems: list[str] = []
        if self.effective_to and self.effective_from > self.effective_to:
            problems.append(AFTER_ITS_END)
        if self.repealed_date and self.repealed_date < self.effective_from:
            problems.append(REPEALED_BEFORE_START)
        ids = [clause.id for clause in self.clauses] + [rule.id for rule in self.exclusions]
        if twice := ids_used_twice(ids):
            problems.append(twice)
        if any(s.document == self.id for s in self.supersedes):
            problems.append("a document cannot supersede itself")
        if problems:
            raise ValueError("; ".join(problems))
        return self


AFTER_ITS_END = "effective_from is after effective_to"
REPEALED_BEFORE_START = "repealed_date is before effective_from"


def ids_used_twice(ids: Sequence[object]) -> str | None:
    """The problem of clause and exclusion ids that are used twice, if any are."""
    twice = sorted({i for i in ids if isinstance(i, str) and ids.count(i) > 1})
    return f"clause or exclusion ids used twice: {', '.join(twice)}" if twice else None


_DOC_NO_SPACES = re.compile(r"\s+")
# The brackets a 文号's year is typed in (after NFKC, which makes full-width ones and ﹝﹞ these).
_DOC_NO_BRACKETS = str.maketrans("[(【〖〘", "〔〔〔〔〔") | str.maketrans("])】〗〙", "〕〕〕〕〕")


_DOC_NO_ORDINAL = re.compile(r"第(?=\d)")  # 第33号 is 33号, in a 文号 and in a search for one


def normalise_doc_no(doc_no: str) -> str:
    """Compare 文号 however typed: width, spaces, the brackets around the year, and 第 before
    the number (泸市府发﹝2015﹞第33号 is 泸市府发〔2015〕33号)."""
    text = _DOC_NO_SPACES.sub("", unicodedata.normalize("NFKC", doc_no))
    return _DOC_NO_ORDINAL.sub("", text.translate(_DOC_NO_BRACKETS))
