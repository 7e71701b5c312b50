"""One NDJSON batch spread over the calculator's instances, answered in order.

The body is cut at line ends into parts: of about `part_bytes`, or smaller where the client's
data pauses while a part could go out at once. Each part is its own request to the instance
with the fewest in flight, numbered by the header `X-First-Case-Index` from where it starts in
the whole. Up to `in_flight` parts are out at once: the first part's answers go to the client
as they arrive, the later parts' wait in memory until their turn. Memory therefore stays within
`in_flight` parts of cases and answers, however long the batch.

A calculation writes nothing, so a part whose instance fails is asked again elsewhere, without
the answers the client already has. The client sees a failure only when every attempt failed:
before the first answer, as the problem itself; after it, as a stream cut short.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping

import httpx
from starlette.background import BackgroundTask
from starlette.responses import Response
from subsidy_common.problems import DomainError, ServiceUnavailable
from subsidy_common.streaming import NDJSON, DuplexStreamingResponse, complete_lines

from gateway.clients.downstream import Downstream, relay

log = logging.getLogger(__name__)

PATH = "/v1/calculations/batch"
FIRST_CASE = "X-First-Case-Index"
ATTEMPTS = 3


class PartFailed(Exception):
    """A part that no instance answered whole: the calculator's last refusal, if it answered
    one, else the problem of the last failure."""

    def __init__(self, message: str, refusal: Response | None, problem: DomainError) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.problem = problem


class ShortAnswer(Exception):
    """An instance ended a part's answer without an answer for every case."""


class _Part:
    """Consecutive cases, one per line, each line ending in a newline; and their answers as
    they come (then None, or the failure)."""

    __slots__ = ("answers", "body", "count", "first")

    def __init__(self, first: int, body: bytes) -> None:
        self.first = first
        self.body = body
        self.count = body.count(b"\n")
        self.answers: asyncio.Queue[bytes | PartFailed | None] = asyncio.Queue()


# A line of nothing but ASCII white space; searched from its newline, which re finds fast.
_BLANK = re.compile(rb"\n[ \t\r\x0b\x0c]*\n")
_BLANK_FIRST = re.compile(rb"[ \t\r\x0b\x0c]*\n")


def _cases(lines: bytes) -> bytes:
    """Complete lines without the blank ones, which the calculator does not count as cases."""
    if not _BLANK.search(lines) and not _BLANK_FIRST.match(lines):
        return lines
    return b"".join(line + b"\n" for line in lines.split(b"\n")[:-1] if line.strip())


async def cut_parts(
    body: AsyncIterator[bytes], part_bytes: int, idle: Callable[[], bool]
) -> AsyncIterator[_Part]:
    """The body's cases as parts.

    A part ends with the line that takes it to `part_bytes`, or where the client's data ends
    for now if a part could be sent at once (`idle`): a client that sends a few cases and waits
    has them answered.
    """
    first = 0
    held: list[bytes] = []
    size = 0
    async for lines in complete_lines(body):
        cases = _cases(lines)
        while len(cases) >= part_bytes - size:
            cut = cases.find(b"\n", part_bytes - size - 1) + 1
            held.append(cases[:cut])
            cases = cases[cut:]
            part = _Part(first, b"".join(held))
            yield part
            first += part.count
            held, size = [], 0
        if cases:
            held.append(cases)
            size += len(cases)
        if held and idle():
            part = _Part(first, b"".join(held))
            yield part
            first += part.count
            held, size = [], 0
    if held:
        yield _Part(first, b"".join(held))


async def _answer(part: _Part, calculator: Downstream, headers: Mapping[str, str]) -> None:
    """Put the part's answer lines on its queue, asking again elsewhere when an instance fails;
    end with None, or with the failure."""
    sent = 0  # answer lines already on the queue, which another attempt does not repeat
    cases = f"cases {part.first} to {part.first + part.count - 1}"
    refusal: Response | None = None
    failure: Exception | None = None
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with calculator.streamed(
                "POST", PATH, content=part.body, headers={**headers, FIRST_CASE: str(part.first)}
            ) as upstream:
                if upstream.status_code != 200:
                    await upstream.aread()
                    refusal, failure = relay(upstream), None
                    log.warning("batch %s: the calculator answered %d", cases, refusal.status_code)
                    if upstream.status_code < 500:
                        break  # the same request would be refused again
                    continue
                skip = sent
                pending = b""
                async for chunk in upstream.aiter_raw():
                    pending += chunk
                    end = pending.rfind(b"\n") + 1
                    if not end:
                        continue
                    lines, pending = pending[:end], pending[end:]
                    if skip:
                        cut = _after_lines(lines, skip)
                        skip -= lines.count(b"\n", 0, cut)
                        lines = lines[cut:]
                    if lines:
                        sent += lines.count(b"\n")
                        part.answers.put_nowait(lines)
            if sent == part.count and not pending:
                part.answers.put_nowait(None)
                return
            failure = ShortAnswer(f"answers for {sent} of {part.count} cases")
        except (httpx.TransportError, DomainError) as exc:
            failure = exc
        except Exception as exc:  # whatever else went wrong, the part must still end
            log.exception("batch %s, attempt %d of %d failed", cases, attempt, ATTEMPTS)
            failure = exc
        log.warning("batch %s, attempt %d of %d: %r", cases, attempt, ATTEMPTS, failure)
    message = f"{cases}: no calculator answered them"
    log.warning("batch %s", message)
    part.answers.put_nowait(PartFailed(message, refusal, _problem(calculator, failure)))


def _problem(calculator: Downstream, failure: Exception | None) -> DomainError:
    if isinstance(failure, DomainError):
        return failure
    if isinstance(failure, httpx.TransportError):
        try:
            calculator.request_failed(failure)
        except DomainError as problem:
            return problem
    return ServiceUnavailable("The calculator service did not answer the batch.", retry_after=2)


def _after_lines(data: bytes, count: int) -> int:
    """Where the data continues after its first `count` lines (its end if it has fewer)."""
    at = 0
    for _ in range(count):
        at = data.find(b"\n", at) + 1
        if not at:
            return len(data)
    return at


class _Batch:
    """The parts under way: read from the client, asked of the calculator, in order."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        calculator: Downstream,
        headers: Mapping[str, str],
        part_bytes: int,
        in_flight: int,
    ) -> None:
        self._calculator = calculator
        self._headers = headers
        self._slots = asyncio.Semaphore(in_flight)
        self._started: asyncio.Queue[_Part | Exception | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader = asyncio.ensure_future(self._read(cut_parts(body, part_bytes, self._idle)))

    def _idle(self) -> bool:
        """Whether a part would be sent at once."""
        return not self._slots.locked()

    async def _read(self, parts: AsyncIterator[_Part]) -> None:
        """Start each part as a slot frees; end with None, or with what stopped the reading."""
        try:
            async for part in parts:
                await self._slots.acquire()
                task = asyncio.ensure_future(_answer(part, self._calculator, self._headers))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                self._started.put_nowait(part)
        except Exception as exc:  # a client gone mid-body: told after the answers so far
            self._started.put_nowait(exc)
            return
        self._started.put_nowait(None)

    async def next_part(self) -> _Part | None:
        """The next part in order, or None after the last."""
        item = await self._started.get()
        if isinstance(item, Exception):
            raise item
        return item

    def part_done(self) -> None:
        """The current part's answers are all out: its slot goes to the next."""
        self._slots.release()

    async def close(self) -> None:
        """Stop reading and asking, however the batch ended."""
        tasks = [self._reader, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def spread(
    body: AsyncIterator[bytes],
    calculator: Downstream,
    headers: Mapping[str, str],
    *,
    part_bytes: int,
    in_flight: int,
    body_read: asyncio.Event | None = None,
) -> Response:
    """The batch's answers, streamed in order once the first has come.

    Nothing is sent to the client until the first part has its first answer, so a batch that
    cannot start (a first line too long, no calculator, a refusal) is answered with its problem.
    `body_read` is set once the client's body has been read: a client that leaves after that
    stops the batch (see DuplexStreamingResponse).
    """
    batch = _Batch(body, calculator, headers, part_bytes, in_flight)
    try:
        part = await batch.next_part()
        first = None if part is None else await part.answers.get()
    except BaseException:
        await batch.close()
        raise
    if isinstance(first, PartFailed):
        await batch.close()
        if first.refusal is not None:
            return first.refusal
        raise first.problem

    async def answers() -> AsyncIterator[bytes]:
        current = part
        item: bytes | PartFailed | None = first
        while current is not None:
            while item is not None:
                if isinstance(item, PartFailed):
                    raise item
                yield item
                item = await current.answers.get()
            batch.part_done()
            current = await batch.next_part()
            if current is not None:
                item = await current.answers.get()

    return DuplexStreamingResponse(
        answers(), media_type=NDJSON, background=BackgroundTask(batch.close), body_read=body_read
    )


def in_flight_default(instances: int) -> int:
    """Parts of one batch out at once when not set: two per instance, so that each has the
    next part while it answers one."""
    return max(2, 2 * instances)
