"""Telling every calculator instance that the registry changed, so that the next calculation
or claim weighs a policy write whichever instance answers it."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from starlette.requests import Request
from subsidy_common.downstream import downstream_client

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
        return await lookup.calculator(request).on_each("POST", REFRESH_PATH, seconds=seconds)
    try:
        async with asyncio.timeout(seconds):
            urls = await _instances(dns)
    except (OSError, TimeoutError) as exc:
        return [f"{dns}: {type(exc).__name__}"]
    errors = await asyncio.gather(*(_refresh(url, seconds) for url in urls))
    return [f"{url}: {error}" for url, error in zip(urls, errors, strict=True) if error]


async def _instances(dns: str) -> list[str]:
    """The URL of each address a name resolves to."""
    host, _, port = dns.rpartition(":")
    found = await asyncio.get_running_loop().getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    addresses = sorted({str(info[4][0]) for info in found})
    return [f"http://{_in_url(address)}:{port}" for address in addresses]


def _in_url(address: str) -> str:
    return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address


async def _refresh(url: str, seconds: float) -> str | None:
    async with downstream_client(url, timeout=seconds) as client:
        try:
            response = await client.post(REFRESH_PATH)
        except Exception as exc:  # any failure is reported, none is raised
            return type(exc).__name__
    return None if response.status_code < 300 else f"HTTP {response.status_code}"
