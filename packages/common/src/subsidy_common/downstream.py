"""The one HTTP client per downstream service: httpx's API on aiohttp's faster transport."""

from __future__ import annotations

import functools
import ssl
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from subsidy_common.logs import request_id_var
from subsidy_common.middleware import REQUEST_ID_HEADER

_READ = httpx.ByteStream(b"")


class _NoCookies(httpx.Cookies):
    """A cookie store that keeps nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Keep none of the response's cookies."""


class _Client(httpx.AsyncClient):
    """httpx's client, with answers that reference counting frees, no cookies kept, and each
    path's URL made once.

    httpx 0.28 wraps a response's stream in an object that points back at the response
    (encode/httpx#3733): a reference cycle, which only the garbage collector frees. Once a
    non-streamed answer is read, its spent stream is replaced, which breaks the cycle.

    One client serves every tenant's requests, so a cookie one answer set must never ride on
    the next request; httpx keeps them unless told otherwise (encode/httpx#2992). Not reading
    them also spares building urllib's request and response objects for every answer.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._urls = functools.lru_cache(maxsize=1024)(self._merge_url)

    def build_request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Request:
        """httpx's request, its URL merged with the base once per path: parsing and merging a
        URL took over half of building a request."""
        return super().build_request(method, self._urls(url) if type(url) is str else url, **kwargs)

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
        response = await super().send(request, stream=stream, **options)
        if not stream:
            response.stream = _READ
        return response


_NO_COOKIES = _NoCookies()


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
) -> httpx.AsyncClient:
    """A pooled client with timeouts that forwards the current request id."""
    return _Client(
        base_url=base_url,
        transport=AiohttpTransport(
            verify=_tls_context(),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            trust_env=False,
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
