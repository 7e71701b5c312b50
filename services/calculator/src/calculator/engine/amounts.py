"""What one candidate clause is worth for one event, before settlement between documents."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from calculator.engine.model import (
    Amount,
    Event,
    Fixed,
    NonCash,
    Payment,
    Percentage,
    Periodic,
    PerUnit,
    Range,
    SimpleAmount,
    Tiered,
    Unspecified,
    made_per_case,
)

FEN = Decimal("0.01")
ZERO = Decimal(0)
ASSESSED = "assessed_amount"
_MONTHS = {"month": 1, "quarter": 3, "year": 12}
_ANY_EVENT = Event(matter="", date=dt.date.min, subject="")


# Amounts enter texts as `{amount!s}`: a Decimal's str is what its format gives without a spec,
# at a third of the cost.


_ZERO_FEN = ZERO.quantize(FEN)


def to_fen(value: Decimal) -> Decimal:
    """Round half-up to the fen, once, at the end (nothing to round in a zero, the commonest)."""
    return value.quantize(FEN, ROUND_HALF_UP) if value else _ZERO_FEN


@made_per_case
class Worth:
    """What a clause yields for an event."""

    kind: Literal["amount", "range", "unknown", "below_threshold", "unspecified", "non_cash"]
    amount: Decimal = ZERO
    range: tuple[Decimal, Decimal] | None = None
    missing: tuple[str, ...] = ()
    basis: str = ""
    schedule: tuple[Payment, ...] = ()


def number(attributes: Mapping[str, Any], name: str) -> Decimal | None:
    """An attribute as a decimal, or None when it is absent or not a number."""
    value = attributes.get(name)
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def constant_worth(amount: Amount) -> Worth | None:
    """What an amount yields whatever the event, or None when the event decides it."""
    if isinstance(amount, Fixed | Unspecified | NonCash):
        return worth(amount, _ANY_EVENT)
    return None


def worth(amount: Amount, event: Event) -> Worth:
    """Evaluate an amount on an event's quantity and attributes."""
    if isinstance(amount, Tiered):
        level = number(event.attributes, amount.attribute)
        if level is None:
            return Worth("unknown", missing=(amount.attribute,))
        reached = [tier for threshold, tier in amount.tiers if level >= threshold]
        if not reached:
            first = amount.tiers[0][0]
            return Worth("below_threshold", basis=f"{amount.attribute} {level!s} 未达到 {first!s}")
        return _simple(reached[-1], event)
    if isinstance(amount, Unspecified):
        return Worth("unspecified", basis="原文未载明金额")
    if isinstance(amount, NonCash):
        return Worth("non_cash", basis=amount.description)
    return _simple(amount, event)


def _simple(amount: SimpleAmount, event: Event) -> Worth:
    if isinstance(amount, Fixed):
        return Worth("amount", amount.value, basis=f"定额 {to_fen(amount.value)!s} 元")
    if isinstance(amount, PerUnit):
        if amount.units_from == "quantity":
            units = Decimal(event.quantity)
        else:
            read = number(event.attributes, amount.units_from)
            if read is None:
                return Worth("unknown", missing=(amount.units_from,))
            units = read
        counted = units
        if amount.max_units_per_subject is not None:
            counted = min(units, Decimal(amount.max_units_per_subject))
        note = f"（最多 {amount.max_units_per_subject}）" if counted != units else ""
        basis = f"{counted!s} {amount.unit}{note} × {to_fen(amount.rate)!s} 元"
        return Worth("amount", counted * amount.rate, basis=basis)
    if isinstance(amount, Percentage):
        base = number(event.attributes, amount.base)
        if base is None:
            return Worth("unknown", missing=(amount.base,))
        basis = f"{to_fen(base)!s} 元 × {amount.rate * 100:g}%"
        return Worth("amount", base * amount.rate, basis=basis)
    if isinstance(amount, Range):
        assessed = number(event.attributes, ASSESSED)
        if assessed is not None and amount.min <= assessed <= amount.max:
            return Worth("amount", assessed, basis=f"评定金额 {to_fen(assessed)!s} 元")
        basis = "需评定" if assessed is None else f"需评定（评定金额 {assessed!s} 元不在区间内）"
        return Worth("range", range=(amount.min, amount.max), basis=basis)
    return _periodic(amount, event.date)


def _periodic(amount: Periodic, start: dt.date) -> Worth:
    """Its worth, with every instalment at its nominal amount (`instalments` makes the schedule
    of what is due)."""
    step = _MONTHS[amount.period]
    schedule = tuple(
        Payment(period=i + 1, due=_add_months(start, i * step), amount=amount.per_period)
        for i in range(amount.periods)
    )
    total = amount.per_period * amount.periods
    basis = f"{amount.periods} 期 × {to_fen(amount.per_period)!s} 元"
    return Worth("amount", total, basis=basis, schedule=schedule)


def instalments(
    schedule: tuple[Payment, ...], before: Decimal, due: Decimal
) -> tuple[Payment, ...]:
    """The instalments that pay `due` after `before` was paid, in order: what was paid covers
    the first ones, a cap or a top-up may leave one paid in part. Each is rounded where its part
    of the running total is, so that together they are exactly the rounded amount due."""
    if not due:
        return ()
    start, end = before, before + due
    paid: list[Payment] = []
    reached = ZERO
    for payment in schedule:
        low, reached = reached, reached + payment.amount
        if reached <= start:
            continue
        part = to_fen(min(reached, end)) - to_fen(max(low, start))
        if part:
            paid.append(Payment(payment.period, payment.due, part))
        if reached >= end:
            break
    return tuple(paid)


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
