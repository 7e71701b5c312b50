"""The calculator's own measures: decisions by status, claims by status, money granted."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from prometheus_client import Counter
from subsidy_common.metrics import Metrics


class DecisionMetrics:
    """Counters registered in the app's own metrics registry."""

    def __init__(self, metrics: Metrics) -> None:
        self.decisions = Counter(
            "subsidy_decisions_total",
            "Event decisions, by status",
            ["status"],
            registry=metrics.registry,
        )
        self.claims = Counter(
            "subsidy_claims_total",
            "Claims decided, by status",
            ["status"],
            registry=metrics.registry,
        )
        self.granted = Counter(
            "subsidy_granted_yuan_total",
            "Money granted by claims, in yuan",
            registry=metrics.registry,
        )

        # Each status's series, found once: `labels()` takes a lock and builds a key each call.
        self._decisions: dict[str, Counter] = {}
        self._claims: dict[str, Counter] = {}

    def decided(self, statuses: Iterable[str]) -> None:
        """Count the events of one calculation, or of a window of a batch."""
        counts: dict[str, int] = {}
        for status in statuses:
            counts[status] = counts.get(status, 0) + 1
        for status, count in counts.items():
            series = self._decisions.get(status)
            if series is None:
                series = self._decisions[status] = self.decisions.labels(status)
            series.inc(count)

    def claimed(self, status: str, amount: Decimal) -> None:
        """Count one recorded claim and what it granted."""
        series = self._claims.get(status)
        if series is None:
            series = self._claims[status] = self.claims.labels(status)
        series.inc()
        if amount > 0:
            self.granted.inc(float(amount))
