"""The one HTTP client per downstream service: httpx's API on aiohttp's faster transport, and a
relay for the gateway's hot path that sends through the same aiohttp session directly."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions
from multidict import CIMultiDictProxy
from starlette.requests import ClientDisconnect

from subsidy_common.logs import request_id_var
from subsidy_common.middleware import REQUEST_ID_HEADER

_READ = httpx.ByteStream(b"")


def spent(response: httpx.Response) -> None:
    """Mark an answer read to its end or closed, which frees it without the garbage collector
    (see `DownstreamClient`): call it once a streamed answer is closed."""
    response.stream = _READ


class _NoCookies(httpx.Cookies):
    """A cookie store that keeps nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Keep none of the response's cookies."""


@dataclass(frozen=True, slots=True)
class Relayed:
    """A downstream answer read whole: status, headers and body."""

    status_code: int
    headers: CIMultiDictProxy[str]
    content: bytes


class DownstreamClient(httpx.AsyncClient):
    """httpx's client, with answers that reference counting frees, no cookies kept, and each
    path's URL made once; and `relay`, which sends a buffered request through the same pool
    without httpx's layer.

    httpx 0.28 wraps a response's stream in an object that points back at the response
    (encode/httpx#3733): a reference cycle, which only the garbage collector frees. Once a
    non-streamed answer is read, its spent stream is replaced, which breaks the cycle.

    One client serves every tenant's requests, so a cookie one answer set must never ride on
    the next request; httpx keeps them unless told otherwise (encode/httpx#2992), and so would
    aiohttp's session, which gets a jar that keeps nothing.
    """

    def __init__(self, *, limits: httpx.Limits, **kwargs: Any) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._limits = limits
        super().__init__(
            transport=AiohttpTransport(
                client=self._aiohttp_session, limits=limits, verify=_tls_context(), trust_env=False
            ),
            **kwargs,
        )
        self._urls = functools.lru_cache(maxsize=1024)(self._merge_url)
        self._relay_urls = functools.lru_cache(maxsize=1024)(lambda path: str(self._urls(path)))
        timeout = self.timeout
        self._relay_timeout = aiohttp.ClientTimeout(
            sock_connect=timeout.connect, sock_read=timeout.read, connect=timeout.pool
        )

    def _aiohttp_session(self) -> aiohttp.ClientSession:
        """The one aiohttp session (and connection pool) under both APIs, made on first use,
        inside the running loop."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections or 0,
                keepalive_timeout=self._limits.keepalive_expiry,
                ssl=_tls_context(),
            )
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    def build_request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Request:
        """httpx's request, its URL merged with the base once per path: parsing and merging a
        URL took over half of building a request."""
        return super().build_request(method, self._urls(url) if type(url) is str else url, **kwargs)

    async def relay(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Relayed:
        """Send a buffered request and read the whole answer, straight through the aiohttp
        session: httpx's request and response objects doubled the client's CPU per request
        (bench/RESULTS.md, seventh series). Failures raise the httpx exceptions the transport
        maps them to, so callers handle both paths alike."""
        sent = dict(headers or ())
        request_id = request_id_var.get()
        if request_id is not None:
            sent[REQUEST_ID_HEADER] = request_id
        try:
            with map_aiohttp_exceptions():
                async with self._aiohttp_session().request(
                    method,
                    self._relay_urls(path),
                    params=params,
                    data=content,
                    headers=sent,
                    allow_redirects=False,
                    timeout=self._relay_timeout,
                ) as response:
                    return Relayed(response.status, response.headers, await response.read())
        except aiohttp.ClientError as exc:
            raise not_http(exc) from exc

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        if cookies:
            raise ValueError("the downstream clients keep no cookies")

    async def send(
        self, request: httpx.Request, *, stream: bool = False, **options: Any
    ) -> httpx.Response:
        try:
            response = await super().send(request, stream=stream, **options)
        except aiohttp.ClientError as exc:
            raise not_http(exc) from exc
        if not stream:
            spent(response)
        return response

    async def aclose(self) -> None:
        await super().aclose()
        if self._session is not None:
            await self._session.close()


_NO_COOKIES = _NoCookies()


def not_http(exc: aiohttp.ClientError) -> httpx.RemoteProtocolError:
    """An answer that is not HTTP (a bad status line or header), which httpx_aiohttp leaves as
    aiohttp's own exception, as httpx's RemoteProtocolError: callers then treat it as any
    connection that broke, trying another instance or answering 503, never 500."""
    return httpx.RemoteProtocolError(str(exc))


async def _propagate_request_id(request: httpx.Request) -> None:
    request_id = request_id_var.get()
    if request_id is not None:
        request.headers[REQUEST_ID_HEADER] = request_id


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for all of a process's clients (loading the CA bundle takes
    tens of milliseconds, each time)."""
    return httpx.create_ssl_context(trust_env=False)


def downstream_client(
    base_url: str,
    *,
    timeout: float = 5.0,
    connect_timeout: float = 1.0,
    max_connections: int = 200,
) -> DownstreamClient:
    """A pooled client with timeouts that forwards the current request id."""
    return DownstreamClient(
        base_url=base_url,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        event_hooks={"request": [_propagate_request_id]},
    )


def refused(exc: httpx.TransportError) -> bool:
    """Whether a failed call never got an answer from the service (refused, dropped, reset),
    as opposed to a service that was reached and did not answer in time.

    The aiohttp transport reports every connection error as `ConnectTimeout`; its cause tells.
    """
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, aiohttp.ServerTimeoutError | TimeoutError):
        return False
    if isinstance(cause, aiohttp.ClientConnectionError):
        return True
    return isinstance(exc, httpx.ConnectError)


def client_left(exc: BaseException) -> bool:
    """Whether a request relayed as it arrived failed because its own client left mid-body
    (the relayed body raised `ClientDisconnect`), not because the service failed."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ClientDisconnect):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def not_connected(exc: httpx.TransportError) -> bool:
    """Whether the connection was never made, so nothing was sent (narrower than `refused`:
    a connection dropped or reset may have carried the request)."""
    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, aiohttp.ClientConnectorError) or isinstance(exc, httpx.ConnectError)
