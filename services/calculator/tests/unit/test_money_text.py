"""Amounts in answers: yuan with two decimals, rounded half-up to the fen."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from calculator.calculations.service import money_text
from hypothesis import given
from hypothesis import strategies as st


def test_a_half_fen_rounds_up() -> None:
    assert [money_text(Decimal(v)) for v in ("1.245", "1.235", "0.005", "2")] == [
        "1.25", "1.24", "0.01", "2.00",
    ]  # fmt: skip
    assert money_text(None) is None


@given(st.decimals(min_value=0, max_value=10**12, places=6))
def test_any_amount_is_written_as_rounded_half_up(value: Decimal) -> None:
    assert money_text(value) == str(value.quantize(Decimal("0.01"), ROUND_HALF_UP))
