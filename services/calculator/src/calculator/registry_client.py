"""The registry snapshot, fetched once, revalidated by ETag, and kept when the registry is down."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import OrderedDict
from typing import Any

import httpx
import orjson
from subsidy_common.app import settle_heap
from subsidy_common.problems import InvalidInput, ServiceUnavailable

from calculator.engine.rules import RuleSet, compile_snapshot

log = logging.getLogger(__name__)

SNAPSHOT_PATH = "/internal/v1/snapshot"
# Until a first snapshot arrives the calculator is not ready: ask often (a registry that is
# still starting refuses the connection at once), so readiness follows the registry's closely.
FIRST_SNAPSHOT_RETRY_SECONDS = 0.05
# Services started together: a registry that has not answered for this long after the
# calculator started is a warning; before, waiting for it is what starting looks like.
FIRST_SNAPSHOT_GRACE_SECONDS = 10.0
PAST_INSTANTS = 16  # instants remembered; many may share one rule set
# An instant not yet past on the registry's clock, which may differ from this one by seconds,
# may still gain a write stamped before it: it is asked again rather than remembered.
SETTLED_SECONDS = 10.0


class SnapshotStore:
    """Holds the compiled rule set of the current registry and of recent past instants."""

    def __init__(self, client: httpx.AsyncClient, *, refresh_seconds: float) -> None:
        self._client = client
        self._refresh_seconds = refresh_seconds
        self._rules: RuleSet | None = None
        self._etag: str | None = None
        self._checked: float | None = None
        self._last_error: str | None = None
        self._past: OrderedDict[str, RuleSet] = OrderedDict()
        self._created = time.monotonic()
        self._said_while_waiting: set[tuple[int, str]] = set()
        # One revalidation at a time: one asked for after a write waits for any under way, whose
        # answer may predate the write, and then asks again; never the other way round.
        self._revalidating = asyncio.Lock()

    @property
    def rules(self) -> RuleSet:
        """The current rule set; 503 until a first snapshot has arrived."""
        if self._rules is None:
            raise ServiceUnavailable("No registry snapshot has been loaded yet.", retry_after=2)
        return self._rules

    async def refresh(self) -> bool:
        """Revalidate the snapshot; return whether the registry answered."""
        async with self._revalidating:
            return await self._revalidate()

    async def _revalidate(self) -> bool:
        headers = {"If-None-Match": self._etag} if self._etag else {}
        try:
            response = await self._client.get(SNAPSHOT_PATH, headers=headers)
            if response.status_code == 304:
                self._checked = time.monotonic()
                self._last_error = None
                return True
            response.raise_for_status()
            rules = await asyncio.to_thread(compile_snapshot, orjson.loads(response.content))
        except Exception as exc:  # whatever it was, the last good snapshot serves on
            error = f"{type(exc).__name__}: {exc}"
            self._last_error = error
            if self._rules is not None:
                log.warning("registry snapshot not refreshed: %s", error)
                return False
            # Waiting for a first snapshot, which is asked for every 50 ms: each failure is
            # said once, as news while starting, as a warning once it has lasted.
            starting = time.monotonic() - self._created < FIRST_SNAPSHOT_GRACE_SECONDS
            level = logging.INFO if starting else logging.WARNING
            if (level, error) in self._said_while_waiting:
                level = logging.DEBUG
            else:
                self._said_while_waiting.add((level, error))
            log.log(level, "waiting for a first registry snapshot: %s", error)
            return False
        if self._rules is None or rules.version != self._rules.version:
            log.info("registry snapshot loaded", extra={"registry_version": rules.version})
        self._rules = rules
        settle_heap()  # the new rules are kept for long; the old ones' cycles go
        self._etag = response.headers.get("etag")
        self._checked = time.monotonic()
        self._last_error = None
        return True

    async def keep_fresh(self) -> None:
        """Revalidate forever; a failure keeps the last good snapshot."""
        while True:
            await self.refresh()
            await asyncio.sleep(
                self._refresh_seconds if self._rules else FIRST_SNAPSHOT_RETRY_SECONDS
            )

    async def as_of(self, instant: dt.datetime) -> RuleSet:
        """The rule set as the registry had recorded it at an instant (kept for reuse).

        The registry is asked with the ETags of the rule sets already held: an instant between
        the same two changes as one asked before, or after the last change, gets 304 and the
        rule set held, not one compiled again.
        """
        now = dt.datetime.now(dt.UTC)
        key = instant.astimezone(dt.UTC).isoformat()
        if key in self._past:
            self._past.move_to_end(key)
            return self._past[key]
        held = {f'"{r.version}"': r for r in (*self._past.values(), self._rules) if r is not None}
        try:
            response = await self._client.get(
                SNAPSHOT_PATH,
                params={"as_of": key},
                headers={"If-None-Match": ", ".join(held)} if held else {},
            )
            if response.status_code == 422:  # ahead of its clock, or before its first record
                raise InvalidInput(
                    f"The registry as recorded at {key} cannot be read.",
                    errors=[{"loc": ["body", "registry_as_of"], "msg": _refused(response)}],
                )
            if response.status_code != 304:
                response.raise_for_status()
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                "The registry is needed to compute with a past registry and is unavailable.",
                retry_after=2,
            ) from exc
        if response.status_code == 304:
            rules = held.get(response.headers.get("etag", ""))
            if rules is None:
                raise ServiceUnavailable(
                    "The registry named no rule set held for a past registry.", retry_after=2
                )
        else:
            try:
                rules = await asyncio.to_thread(compile_snapshot, orjson.loads(response.content))
            except Exception as exc:
                log.exception("a past registry snapshot could not be compiled")
                raise ServiceUnavailable(
                    "The registry as recorded at that instant could not be read.", retry_after=2
                ) from exc
        if instant > now - dt.timedelta(seconds=SETTLED_SECONDS):
            return rules
        self._past[key] = rules
        if len(self._past) > PAST_INSTANTS:
            self._past.popitem(last=False)
        return rules

    def health(self) -> dict[str, Any]:
        """What readiness reports: which version is served and how stale it is."""
        if self._rules is None:
            raise ServiceUnavailable(f"no snapshot yet ({self._last_error or 'loading'})")
        age = None if self._checked is None else round(time.monotonic() - self._checked, 1)
        return {
            "registry_version": self._rules.version,
            "checked_seconds_ago": age,
            "registry_reachable": self._last_error is None,
            **({"last_error": self._last_error} if self._last_error else {}),
        }


def _refused(response: httpx.Response) -> str:
    """Why the registry refused an instant, as its problem says."""
    try:
        return str(response.json()["errors"][0]["msg"])
    except (ValueError, KeyError, IndexError, TypeError):
        return "the registry refused this instant"
