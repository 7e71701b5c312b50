"""The app's downstream clients, looked up from the request.

Plain functions rather than FastAPI dependencies: they need nothing from the request but its
app, and every dependency a route declares is walked again on every request.
"""

from __future__ import annotations

from typing import cast

from starlette.requests import Request

from gateway.clients.downstream import Downstream
from gateway.clients.regions import RegionDirectory


def registry(request: Request) -> Downstream:
    """The registry client of this app."""
    return cast(Downstream, request.app.state.registry)


def calculator(request: Request) -> Downstream:
    """The calculator client of this app."""
    return cast(Downstream, request.app.state.calculator)


def regions(request: Request) -> RegionDirectory:
    """The cached region tree of this app."""
    return cast(RegionDirectory, request.app.state.regions)
