"""Calling an internal service: timeouts become 504, an unreachable service 503."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, NoReturn, TypeVar

import httpx
import orjson
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from subsidy_common.downstream import (
    DownstreamClient,
    Relayed,
    client_left,
    downstream_client,
    not_connected,
    refused,
    spent,
)
from subsidy_common.problems import DomainError, ServiceUnavailable, problem_type
from subsidy_common.streaming import DuplexStreamingResponse

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# How long an instance that failed (refused, cut, too slow) is tried only after the others.
FAILED_SECONDS = 5.0

_PASSED_HEADERS = ("content-type", "etag", "retry-after", "location", "cache-control")


class DownstreamTimeout(DomainError):
    """An internal service did not answer in time."""

    type = problem_type("downstream-timeout")
    title = "Gateway Timeout"
    status = 504


class DownstreamInvalid(DomainError):
    """An internal service answered with something that is not what it promised."""

    type = problem_type("downstream-invalid")
    title = "Bad Gateway"
    status = 502


class _Instance:
    """One instance of a service: its pooled client and the requests it has in flight."""

    __slots__ = ("client", "failed_at", "in_flight", "url")

    def __init__(self, url: str, client: DownstreamClient) -> None:
        self.url = url
        self.client = client
        self.in_flight = 0
        self.failed_at = -math.inf


class Downstream:
    """One internal service, at one URL or at several (instances of it), behind pooled clients.

    With several, each request goes to the instance with the fewest requests in flight, ties
    taken in turn. Long requests (a batch streams for minutes) therefore spread over the
    instances instead of following whichever connection the pool had idle. An instance that
    refuses the connection is passed over for the next (nothing was sent to it). One that failed
    in any way (refused, cut, too slow) is tried last for the next few seconds: the others get
    the requests that would meet its dead pooled connections.
    """

    def __init__(
        self,
        name: str,
        base_url: str | Sequence[str],
        *,
        timeout: float,
        connect_timeout: float,
    ) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError(f"the {name} service needs at least one URL")
        self.name = name
        self.instances = tuple(
            _Instance(url, downstream_client(url, timeout=timeout, connect_timeout=connect_timeout))
            for url in urls
        )
        self._turn = 0

    def _candidates(self) -> Sequence[_Instance]:
        """The instances in the order to try them: fewest requests in flight first."""
        instances = self.instances
        if len(instances) == 1:
            return instances
        turn = self._turn
        self._turn = (turn + 1) % len(instances)
        since = time.monotonic() - FAILED_SECONDS
        # A stable sort: among equals, the rotation decides.
        return sorted(
            instances[turn:] + instances[:turn], key=lambda i: (i.failed_at > since, i.in_flight)
        )

    async def _reach(
        self, call: Callable[[DownstreamClient], Awaitable[_T]]
    ) -> tuple[_Instance, _T]:
        """`call` on the instances in turn until one is reached; that one is left counting the
        request in flight, for the caller to give back. An instance that refused the connection
        is passed over; any other failure, or the last instance's, is the answer. Either way the
        instance that failed is tried last for a while."""
        candidates = self._candidates()
        for attempt, instance in enumerate(candidates, 1):
            instance.in_flight += 1
            try:
                return instance, await call(instance.client)
            except httpx.TransportError as exc:
                instance.in_flight -= 1
                if client_left(exc):
                    raise ClientDisconnect from exc
                instance.failed_at = time.monotonic()
                if not not_connected(exc) or attempt == len(candidates):
                    self.request_failed(exc)
            except BaseException:
                instance.in_flight -= 1
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request; failures to reach the service become problems, not exceptions."""
        instance, response = await self._reach(
            lambda client: client.request(
                method, path, params=params, content=content, headers=headers
            )
        )
        instance.in_flight -= 1
        return response

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return its JSON body, passing any problem through."""
        response = await self.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise PassedThrough(response)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise DownstreamInvalid(
                f"The {self.name} service sent a body that is not JSON."
            ) from exc

    async def forward(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Relay a request and hand its response back unchanged (problems included)."""
        instance, upstream = await self._reach(
            lambda client: client.relay(
                method, path, params=params, content=content, headers=headers
            )
        )
        instance.in_flight -= 1
        return relay(upstream)

    async def stream(
        self,
        method: str,
        path: str,
        body: AsyncIterator[bytes],
        headers: Mapping[str, str],
    ) -> Response:
        """Relay a streamed request and stream the answer back as it arrives.

        The instance counts the request in flight until the answer is read to its end or
        abandoned (the response closes it either way).
        """
        instance, upstream = await self._reach(
            lambda client: client.send(
                client.build_request(method, path, content=body, headers=headers), stream=True
            )
        )
        kept = {k: v for k in _PASSED_HEADERS if (v := upstream.headers.get(k)) is not None}
        media_type = kept.pop("content-type", None)
        return DuplexStreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=kept,
            media_type=media_type,
            background=BackgroundTask(_Done(instance, upstream).close),
        )

    @asynccontextmanager
    async def streamed(
        self, method: str, path: str, *, content: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[httpx.Response]:
        """A request whose answer is read as it arrives, inside the block.

        The instance counts the request in flight until the block ends. One that fails while
        its answer is read is tried after the others for the next few seconds, as one that
        refused the connection is.
        """
        instance, upstream = await self._reach(
            lambda client: client.send(
                client.build_request(method, path, content=content, headers=headers), stream=True
            )
        )
        try:
            yield upstream
        except httpx.TransportError:
            instance.failed_at = time.monotonic()
            raise
        finally:
            instance.in_flight -= 1
            await upstream.aclose()
            spent(upstream)  # its body and the request's go now, not at the next full collection

    def request_failed(self, exc: httpx.TransportError) -> NoReturn:
        """Turn a transport failure into the problem the client sees."""
        if isinstance(exc, httpx.TimeoutException) and not refused(exc):
            log.warning("%s timed out", self.name, extra={"downstream": self.name})
            raise DownstreamTimeout(f"The {self.name} service did not answer in time.") from exc
        log.warning("%s unreachable: %s", self.name, exc, extra={"downstream": self.name})
        raise ServiceUnavailable(f"The {self.name} service is unavailable.", retry_after=2) from exc

    async def aclose(self) -> None:
        """Close the pooled connections."""
        for instance in self.instances:
            await instance.client.aclose()


class _Done:
    """A streamed answer's end: its instance's count given back once, the answer closed."""

    __slots__ = ("_instance", "_upstream")

    def __init__(self, instance: _Instance, upstream: httpx.Response) -> None:
        self._instance: _Instance | None = instance
        self._upstream = upstream

    async def close(self) -> None:
        if self._instance is not None:
            self._instance.in_flight -= 1
            self._instance = None
        await self._upstream.aclose()
        spent(self._upstream)


class PassedThrough(Exception):
    """A downstream answer that is an error, to be relayed to the client as it is."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def relay(upstream: httpx.Response | Relayed) -> Response:
    """A Starlette response with the downstream status, body and the headers that matter."""
    headers = {k: v for k in _PASSED_HEADERS if (v := upstream.headers.get(k)) is not None}
    media_type = headers.pop("content-type", None)
    return Response(
        upstream.content, status_code=upstream.status_code, headers=headers, media_type=media_type
    )
