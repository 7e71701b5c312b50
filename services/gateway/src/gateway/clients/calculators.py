"""Telling every calculator instance that the registry changed, so that the next calculation
or claim weighs a policy write whichever instance answers it."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from starlette.requests import Request
from subsidy_common.downstream import DownstreamClient, downstream_client

from gateway.clients import lookup

REFRESH_PATH = "/internal/v1/snapshot/refresh"


async def read_registry_again(request: Request, *, seconds: float) -> list[str]:
    """Ask every calculator instance to revalidate its registry snapshot now, each given
    `seconds`; what went wrong with those that did not, each named.

    The instances are those `GATEWAY_CALCULATOR_URL` lists, or, behind one URL that balances
    over replicas, those `GATEWAY_CALCULATOR_INSTANCES_DNS` resolves to: one request to the
    balanced URL would reach one replica of several.
    """
    dns = request.app.state.settings.calculator_instances_dns
    if dns is None:
        instances = lookup.calculator(request).instances
        # Named by place: an instance's URL is the deployment's business.
        names = [f"instance {place} of {len(instances)}" for place in range(1, len(instances) + 1)]
        errors = await asyncio.gather(*(_refresh(i.client, seconds) for i in instances))
    else:
        try:
            async with asyncio.timeout(seconds):
                names = await _instances(dns)
        except (OSError, TimeoutError) as exc:
            return [f"{dns}: {type(exc).__name__}"]
        errors = await asyncio.gather(*(_refresh_at(url, seconds) for url in names))
    return [f"{name}: {error}" for name, error in zip(names, errors, strict=True) if error]


async def _instances(dns: str) -> list[str]:
    """The URL of each address a name resolves to."""
    host, _, port = dns.rpartition(":")
    found = await asyncio.get_running_loop().getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    addresses = sorted({str(info[4][0]) for info in found})
    return [f"http://{_in_url(address)}:{port}" for address in addresses]


def _in_url(address: str) -> str:
    return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address


async def _refresh(client: DownstreamClient, seconds: float) -> str | None:
    """What went wrong asking one instance to revalidate, or None."""
    try:
        async with asyncio.timeout(seconds):
            response = await client.post(REFRESH_PATH)
    except Exception as exc:  # any failure is reported, none is raised
        return type(exc).__name__
    return None if response.status_code < 300 else f"HTTP {response.status_code}"


async def _refresh_at(url: str, seconds: float) -> str | None:
    """The same, of an instance found by name, through a client of its own."""
    async with downstream_client(url, timeout=seconds) as client:
        return await _refresh(client, seconds)
