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

    def decided(self, statuses: Iterable[str]) -> None:
        """Count the events of one calculation."""
        for status in statuses:
            self.decisions.labels(status).inc()

    def claimed(self, status: str, amount: Decimal) -> None:
        """Count one recorded claim and what it granted."""
        self.claims.labels(status).inc()
        if amount > 0:
            self.granted.inc(float(amount))
