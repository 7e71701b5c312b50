"""Calling an internal service: timeouts become 504, an unreachable service 503."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, NoReturn

import httpx
import orjson
from starlette.background import BackgroundTask
from starlette.responses import Response
from subsidy_common.downstream import Relayed, downstream_client, refused
from subsidy_common.problems import DomainError, ServiceUnavailable, problem_type
from subsidy_common.streaming import DuplexStreamingResponse

log = logging.getLogger(__name__)

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


class Downstream:
    """One internal service behind one pooled client."""

    def __init__(self, name: str, base_url: str, *, timeout: float, connect_timeout: float) -> None:
        self.name = name
        self.client = downstream_client(base_url, timeout=timeout, connect_timeout=connect_timeout)

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
        try:
            return await self.client.request(
                method, path, params=params, content=content, headers=headers
            )
        except httpx.TransportError as exc:
            self.request_failed(exc)

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
        try:
            upstream = await self.client.relay(
                method, path, params=params, content=content, headers=headers
            )
        except httpx.TransportError as exc:
            self.request_failed(exc)
        return relay(upstream)

    async def stream(
        self,
        method: str,
        path: str,
        body: AsyncIterator[bytes],
        headers: Mapping[str, str],
    ) -> Response:
        """Relay a streamed request and stream the answer back as it arrives."""
        request = self.client.build_request(method, path, content=body, headers=headers)
        try:
            upstream = await self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            self.request_failed(exc)
        kept = {k: v for k in _PASSED_HEADERS if (v := upstream.headers.get(k)) is not None}
        media_type = kept.pop("content-type", None)
        return DuplexStreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=kept,
            media_type=media_type,
            background=BackgroundTask(upstream.aclose),
        )

    def request_failed(self, exc: httpx.TransportError) -> NoReturn:
        """Turn a transport failure into the problem the client sees."""
        if isinstance(exc, httpx.TimeoutException) and not refused(exc):
            log.warning("%s timed out", self.name, extra={"downstream": self.name})
            raise DownstreamTimeout(f"The {self.name} service did not answer in time.") from exc
        log.warning("%s unreachable: %s", self.name, exc, extra={"downstream": self.name})
        raise ServiceUnavailable(f"The {self.name} service is unavailable.", retry_after=2) from exc

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self.client.aclose()


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
