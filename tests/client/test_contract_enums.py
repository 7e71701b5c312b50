"""The values the public document lists are the values the engine gives: a generated client
refuses an answer with a value its enum lacks."""

from __future__ import annotations

from typing import get_args

from calculator.engine import model
from gateway.contract.calculations import Considered, EventResult


def listed(annotation: object) -> set[str]:
    return set(get_args(annotation))


def test_outcomes_statuses_and_strategies_are_the_engines() -> None:
    assert listed(Considered.model_fields["outcome"].annotation) == listed(model.Outcome)
    assert listed(EventResult.model_fields["status"].annotation) == listed(model.Status)
    assert listed(EventResult.model_fields["strategy"].annotation) == listed(model.StrategyKind)
