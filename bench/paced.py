"""Load at a fixed rate (open loop), for latency at a given throughput.

wrk sends as fast as answers come back, so its percentiles describe a saturated server. Here
requests leave on a fixed schedule whatever the server does, and each latency is counted from
the moment its request was due, not from when it was sent (no coordinated omission).

The client runs on uvloop, as the services do: on asyncio's own loop its own work added about
1 ms to the median and 3 ms to the 99th percentile it reported (bench/RESULTS.md, ninth
series). A first second at the same rate opens the client's connections and is not counted,
as wrk2 leaves out its calibration period. The client's garbage collector is off from the
first request to the last.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import statistics
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import uvloop

WARM_UP_SECONDS = 1.0


async def _paced(
    url: str, headers: dict[str, str], body: bytes, rate: int, seconds: float, limit: int
) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=limit)
    async with aiohttp.ClientSession(connector=connector) as session:
        with _no_collector():
            await _schedule(session, url, headers, body, rate, WARM_UP_SECONDS)
            return await _schedule(session, url, headers, body, rate, seconds)


@contextlib.contextmanager
def _no_collector() -> Iterator[None]:
    """The client's own garbage collector kept out of the measurement.

    A full collection in the process that sends walks everything it holds (in
    `bench/calculations.py`, every earlier round's results too) while no request leaves and no
    answer is read: the requests due meanwhile count its pause as the server's latency.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


async def _schedule(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    body: bytes,
    rate: int,
    seconds: float,
) -> dict[str, float]:
    latencies: list[float] = []
    failures = 0
    pending: set[asyncio.Task[None]] = set()

    async def one(due: float) -> None:
        nonlocal failures
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status >= 300:
                    failures += 1
        except aiohttp.ClientError:
            failures += 1
        latencies.append(time.perf_counter() - due)

    started = time.perf_counter()
    total = int(rate * seconds)
    for n in range(total):
        due = started + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    return {
        "rps": len(latencies) / elapsed,
        "p50": percentile(50),
        "p99": percentile(99),
        "p99.9": percentile(99.9),
        "max": ordered[-1] * 1000,
        "mean": statistics.fmean(ordered) * 1000,
        "non_2xx": float(failures),
    }


def paced(
    url: str, key: str, body: dict[str, Any], rate: int, seconds: float, limit: int = 256
) -> dict[str, float]:
    """POST `body` at `rate` requests per second for `seconds`; latency percentiles in ms."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    payload = json.dumps(body, ensure_ascii=False).encode()
    return uvloop.run(_paced(url, headers, payload, rate, seconds, limit))
