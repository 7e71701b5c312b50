"""The downstream clients as request dependencies."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from gateway.clients.downstream import Downstream
from gateway.clients.regions import RegionDirectory


async def get_registry(request: Request) -> Downstream:
    """The registry client of this app."""
    return cast(Downstream, request.app.state.registry)


async def get_calculator(request: Request) -> Downstream:
    """The calculator client of this app."""
    return cast(Downstream, request.app.state.calculator)


async def get_regions(request: Request) -> RegionDirectory:
    """The cached region tree of this app."""
    return cast(RegionDirectory, request.app.state.regions)


RegistryDep = Annotated[Downstream, Depends(get_registry)]
CalculatorDep = Annotated[Downstream, Depends(get_calculator)]
RegionsDep = Annotated[RegionDirectory, Depends(get_regions)]
