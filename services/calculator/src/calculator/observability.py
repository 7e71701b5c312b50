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
        self._series: dict[tuple[Counter, str], Counter] = {}

    def _status(self, counter: Counter, status: str) -> Counter:
        key = (counter, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = counter.labels(status)
        return series

    def decided(self, statuses: Iterable[str]) -> None:
        """Count the events of one calculation, or of a window of a batch."""
        counts: dict[str, int] = {}
        for status in statuses:
            counts[status] = counts.get(status, 0) + 1
        for status, count in counts.items():
            self._status(self.decisions, status).inc(count)

    def claimed(self, status: str, amount: Decimal) -> None:
        """Count one recorded claim and what it granted."""
        self._status(self.claims, status).inc()
        if amount > 0:
            self.granted.inc(float(amount))
