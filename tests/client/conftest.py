"""The live stack for the generated-client round trip: registry, calculator and gateway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fuzz.live_stack import LiveStack, live_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[LiveStack]:
    with live_stack() as running:
        yield running
