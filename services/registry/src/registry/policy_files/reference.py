"""Reference data files: the regions (GB/T 2260 and parks) and the matter catalogue."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from registry.policy_files.models import (
    AttributeName,
    BeneficiaryKind,
    MatterKey,
    Money,
    RegionCode,
    Slug,
    _Strict,
)

# Attributes every event and applicant has without the client sending them.
EVENT_BUILTINS: frozenset[str] = frozenset({"quantity", "year", "date", "subject", "matter"})
APPLICANT_BUILTINS: frozenset[str] = frozenset({"kind", "region", "id", "name"})


class Region(_Strict):
    """One administrative division or park."""

    code: RegionCode
    name: str = Field(min_length=2, max_length=60)
    parent: RegionCode | None = None
    level: Literal["province", "city", "county", "park"]


class RegionFile(_Strict):
    """`policies/regions.yaml`."""

    regions: list[Region] = Field(min_length=1)

    @model_validator(mode="after")
    def _tree(self) -> RegionFile:
        codes = [region.code for region in self.regions]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"region codes listed twice: {', '.join(twice)}")
        known = set(codes)
        orphans = [r.code for r in self.regions if r.parent is not None and r.parent not in known]
        if orphans:
            raise ValueError(f"regions whose parent is unknown: {', '.join(orphans)}")
        return self


class Attribute(_Strict):
    """An attribute a matter's conditions and amounts may read."""

    type: Literal[
        "string", "enum", "integer", "decimal", "boolean", "date", "money", "integer_list"
    ]
    description: str = Field(min_length=2)
    values: list[str] | None = Field(default=None, description="enum 的取值")
    on: Literal["event", "applicant"] = "event"

    @model_validator(mode="after")
    def _enum_values(self) -> Attribute:
        if (self.type == "enum") != bool(self.values):
            raise ValueError("an enum attribute lists its values, and only an enum does")
        return self


class Strategy(_Strict):
    """How candidates from several documents on one matter are settled."""

    kind: Literal["newest_then_highest", "priority", "cumulative"] = "newest_then_highest"
    priority: list[Slug] | None = Field(default=None, description="priority：先列者优先")
    total_cap: Money | None = Field(default=None, description="cumulative：合计上限")
    basis: str | None = Field(default=None, description="采用该策略的依据（原文）")

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Strategy:
        if (self.kind == "priority") != bool(self.priority):
            raise ValueError("a priority strategy names its documents, and only it does")
        if self.total_cap is not None and self.kind != "cumulative":
            raise ValueError("total_cap belongs to the cumulative strategy")
        return self


class Matter(_Strict):
    """A kind of thing rewarded (事项)."""

    key: MatterKey
    name: str = Field(min_length=2, max_length=80)
    beneficiaries: list[BeneficiaryKind] = Field(min_length=1)
    attributes: dict[AttributeName, Attribute] = Field(default_factory=dict)
    strategy: Strategy | None = Field(
        default=None,
        description="多个文件奖励同一事项时的处理方式；缺省为 时间从新、标准从高、不重复",
    )
    subject: str | None = Field(default=None, description="标的是什么，如 专利号")


class MatterFile(_Strict):
    """`policies/matters.yaml`."""

    matters: list[Matter] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> MatterFile:
        keys = [m.key for m in self.matters]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"matter keys listed twice: {', '.join(twice)}")
        return self
