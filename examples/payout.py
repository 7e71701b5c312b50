"""免申即享: compute what a list of enterprises is owed, and write the payout list.

    python examples/payout.py events.csv payout.csv --api http://127.0.0.1:8000 --key "$KEY"
        [--streams 2]

`events.csv` has one event per row, with the columns
    applicant_id, kind, region, matter, date, subject[, name][, quantity][, attributes]
(`attributes` a JSON object, e.g. {"level": "national"}), in UTF-8 or in GBK as Excel saves it
on a Chinese Windows; a file without one of the required columns is refused before anything is
sent. An applicant is known by its id as the service reads it (upper or lower case, full-width
digits and spaces are one id) and its rows are calculated together, so they must follow each
other: a file in which an applicant's rows come apart (sorted by date, say) is refused before
anything is sent, since a calculation records nothing and each run of rows would be paid in
full, and so is one whose rows give an applicant two kinds or two regions. Dates may be written
as Excel writes them (2016/5/10, 2016年5月10日, 2016/5/10 0:00); empty rows are passed
over.

The file is streamed to POST /v1/calculations/batch as NDJSON, one applicant per line, and the
answers stream back; a progress bar counts them. `payout.csv` gets one row per event: its row in
the events file (the header is row 1, as a spreadsheet numbers it), what is due, under which
document and clause, or why nothing is: the range of a sum still to be assessed, the reasons
the clauses weighed give, the attributes missing. A cell a spreadsheet would read as a formula
(=, +, -, @ first) is written with a ' before it.

`--streams N` sends every N-th applicant in a stream of its own, N at once; the rows are then
written in the order the answers arrive. One stream is enough to keep every calculator worker
busy (the gateway spreads a stream over them in parts); more read the file in parallel.

Memory stays flat however long the file: it is read as it is sent, and only the lines sent and
not yet answered are held (the service reads no faster than it decides); checking that no
applicant comes back holds its id, a few dozen bytes an applicant. A row the service
cannot accept (a quantity that is not a number, attributes that are not a JSON object) is sent
as it is, and its applicant's row in the payout list says why it was refused, naming the rows
and cells at fault; the summary counts such applicants. A service that answers what this script
cannot read (not JSON, an answer for no applicant sent, results that do not match the events)
leaves no list, as one that stops short does.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import sys
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import groupby
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from tqdm import tqdm

CHUNK_BYTES = 64 * 1024  # what one write to the batch stream carries
FIELDS = [
    "row", "applicant_id", "name", "region", "matter", "subject", "date", "status", "amount",
    "entitlement", "previously_granted", "policy_id", "doc_no", "clause_id", "ref", "basis",
    "missing", "range_min", "range_max", "reason", "problem",
]  # fmt: skip
# Cells a spreadsheet would take for a formula, in text that came from the events file or the
# service: written with a ' before them, which shows the text as it is.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


REQUIRED = ("applicant_id", "kind", "region", "matter", "date", "subject")
# Excel on a Chinese Windows saves CSV in GBK, which GB 18030 contains; UTF-8 is tried first.
ENCODINGS = ("utf-8-sig", "gb18030")


class BadFile(Exception):
    """An events file this script cannot read."""


@dataclass(frozen=True)
class Source:
    """The events file, as `survey` found it."""

    path: Path
    encoding: str
    applicants: int


Row = tuple[int, dict[str, str]]  # a row's number in the file, and its cells


def _rows(handle: TextIO) -> Iterator[Row]:
    """The rows with a cell in any required column (Excel leaves rows of commas at the end),
    numbered as a spreadsheet numbers them: the header is row 1, a blank line counts."""
    reader = csv.DictReader(handle)
    reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
    for row in reader:
        if any(_cell(row, column) for column in REQUIRED):
            yield reader.line_num, row


def _applicants(rows: Iterator[Row]) -> Iterator[tuple[str, list[Row]]]:
    return ((a, list(group)) for a, group in groupby(rows, key=lambda r: _applicant_id(r[1])))


_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―_]+")


def _applicant_id(row: dict[str, str]) -> str:
    """The applicant's id as the service reads it (full-width to half-width, separators and
    invisible characters dropped, upper case): `91510500ma62b8xy4f` and `９１５１…Ｆ` typed on
    two rows are one applicant, and must be calculated together."""
    text = unicodedata.normalize("NFKC", _cell(row, "applicant_id"))
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf"))
    return _SEPARATORS.sub("", text).upper()


def _cell(row: dict[str, str], column: str) -> str:
    return (row.get(column) or "").strip()  # a short row has None for its missing cells


def survey(path: Path) -> tuple[str, int]:
    """The file's encoding and how many requests `read_cases` makes of it (for the progress
    bar); BadFile naming what is wrong, before anything is sent."""
    for encoding in ENCODINGS:
        try:
            with path.open(newline="", encoding=encoding) as handle:
                header = next(csv.reader(handle), [])
                missing = [c for c in REQUIRED if c not in {name.strip() for name in header}]
                if missing:
                    raise BadFile(f"{path} has no column {', '.join(missing)}")
                handle.seek(0)
                return encoding, _count_applicants(path, _rows(handle))
        except UnicodeDecodeError:
            continue
        except OSError as exc:
            raise BadFile(f"{path}: {exc.strerror}") from exc
    raise BadFile(f"{path} is neither UTF-8 nor GB 18030 (GBK) text")


def _count_applicants(path: Path, rows: Iterator[Row]) -> int:
    """How many applicants there are; BadFile when one's rows come apart, or disagree on what
    the applicant is or where it is (only its first row's would be sent)."""
    seen: set[str] = set()
    for applicant_id, events in _applicants(rows):
        if applicant_id in seen:
            raise BadFile(
                f"{path}: the rows of applicant {applicant_id} are not all next to each other. An"
                " applicant's events are calculated together and a calculation records nothing,"
                " so each run of its rows would be paid in full: sort the file by applicant_id."
            )
        seen.add(applicant_id)
        for column in ("kind", "region"):
            values = {unicodedata.normalize("NFKC", _cell(row, column)) for _, row in events}
            if len(values) > 1:
                raise BadFile(
                    f"{path}: the rows of applicant {applicant_id} give different {column}s"
                    f" ({', '.join(sorted(values))}). Its events are judged by one {column}:"
                    " correct the rows that are wrong."
                )
    return len(seen)


def read_cases(
    path: Path, encoding: str = ENCODINGS[0], part: int = 0, parts: int = 1
) -> Iterator[dict[str, Any]]:
    """One calculation request per applicant, its events in file order, read as needed: every
    `parts`-th applicant from the `part`-th (a stream's share)."""
    return (case for _, case in read_applicants(path, encoding, part, parts))


def read_applicants(
    path: Path, encoding: str = ENCODINGS[0], part: int = 0, parts: int = 1
) -> Iterator[tuple[list[int], dict[str, Any]]]:
    """`read_cases`, each case with the file's rows its events come from."""
    with path.open(newline="", encoding=encoding) as handle:
        for n, (applicant_id, events) in enumerate(_applicants(_rows(handle))):
            if n % parts != part:
                continue
            first = events[0][1]
            case = {
                "applicant": {
                    "id": applicant_id,
                    "kind": _cell(first, "kind"),
                    "name": _cell(first, "name"),
                    "region": _cell(first, "region"),
                },
                "events": [
                    {
                        "matter": _cell(row, "matter"),
                        "date": _date(_cell(row, "date")),
                        "subject": _cell(row, "subject"),
                        "quantity": _quantity(row.get("quantity")),
                        "attributes": _attributes(row.get("attributes")),
                    }
                    for _, row in events
                ],
            }
            yield [number for number, _ in events], case


# A date cell, or a date-time cell at midnight as Excel writes one (2016/5/10 0:00).
_EXCEL_DATE = re.compile(
    r"^(\d{4})\s*[/.年-]\s*(\d{1,2})\s*[/.月-]\s*(\d{1,2})\s*日?(?:\s+0{1,2}:00(?::00)?)?$"
)


def _date(text: str) -> str:
    """A date as the API writes it (YYYY-MM-DD), from the forms Excel writes; anything else is
    sent as it is, and the service says why it is refused."""
    found = _EXCEL_DATE.match(unicodedata.normalize("NFKC", text))
    if found is None:
        return text
    year, month, day = found.groups()
    return f"{year}-{int(month):02d}-{int(day):02d}"


def _quantity(text: str | None) -> int | str:
    text = (text or "").strip()
    return int(text) if text.isdecimal() else text or 1  # not a number: the service says why


def _attributes(text: str | None) -> Any:
    try:
        return json.loads(text or "{}")
    except json.JSONDecodeError:
        return text  # not JSON: the service says why


def ndjson(case: dict[str, Any]) -> bytes:
    """A case as a line of the request body."""
    return json.dumps(case, ensure_ascii=False).encode() + b"\n"


def payout_rows(
    case: dict[str, Any], answer: dict[str, Any], rows: Sequence[int] | None = None
) -> Iterator[dict[str, Any]]:
    """The payout list's rows for one applicant: one per event, or one problem row; `rows` are
    the events' rows in the file. ValueError when the answer's results are not one per event."""
    applicant = case["applicant"]
    base = {
        "applicant_id": applicant["id"],
        "name": applicant["name"],
        "region": applicant["region"],
    }
    if "results" not in answer:  # a problem object: this applicant's request was refused
        span = "" if not rows else f"{rows[0]}-{rows[-1]}" if len(rows) > 1 else str(rows[0])
        yield {**base, "row": span, "status": "refused", "problem": _refusal(answer, rows)}
        return
    numbers: Sequence[int | str] = rows or [""] * len(case["events"])
    for number, event, result in zip(numbers, case["events"], answer["results"], strict=True):
        granted = result.get("granted") or {}
        span = result.get("range") or {}
        yield {
            **base,
            "row": number,
            "matter": event["matter"], "subject": event["subject"], "date": event["date"],
            "status": result["status"], "amount": result["amount"],
            "entitlement": result.get("entitlement", ""),
            "previously_granted": result.get("previously_granted", ""),
            "policy_id": granted.get("policy_id", ""), "doc_no": granted.get("doc_no", ""),
            "clause_id": granted.get("clause_id", ""), "ref": granted.get("ref", ""),
            "basis": granted.get("basis", ""), "missing": " ".join(result.get("missing", [])),
            "range_min": span.get("min", ""), "range_max": span.get("max", ""),
            "reason": _why(result),
        }  # fmt: skip


def _why(result: dict[str, Any]) -> str:
    """Why an event is not simply paid, as the clauses weighed say: for one ineligible, each
    clause's reason; for one to be assessed, the clauses to assess it under; for one the ledger
    has paid already, in part or whole, what it paid. Empty when paid in full."""
    status = result["status"]
    if status == "eligible":
        before = Decimal(result.get("previously_granted") or 0)
        if before <= 0:
            return ""
        if Decimal(result.get("amount") or 0) <= 0:
            return f"台账已发放 {before:,.2f} 元，已发足，本次不再发放"
        return f"台账已发放 {before:,.2f} 元，本次为差额"
    considered = result.get("considered") or []
    if status == "needs_assessment":
        wanted = [c for c in considered if c.get("outcome") == "needs_assessment"] or considered
    else:
        wanted = considered
    reasons = [
        f"{c.get('doc_no') or c.get('policy_id')} {c.get('ref') or ''}".strip()
        + f"：{c.get('reason')}"
        for c in wanted
        if c.get("reason")
    ]
    if not reasons and status == "ineligible":
        return "无适用于该事项和地区的条款"
    return "；".join(dict.fromkeys(reasons))


def _as_text(value: Any) -> Any:
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def _refusal(problem: dict[str, Any], rows: Sequence[int] | None) -> str:
    """Why the service refused an applicant, each error at its row and cell: `row 7 quantity:
    Input should be a valid integer`. The problem's own detail counts the applicant's place in
    its stream ("Case 3 is invalid."), which is no place in the file, so it stands only where
    there are no errors."""
    errors = problem.get("errors") or []
    if not errors:
        return str(problem.get("detail") or problem.get("title") or "refused")
    return "; ".join(f"{_where(e.get('loc') or [], rows)}: {e.get('msg')}" for e in errors)


def _where(loc: list[Any], rows: Sequence[int] | None) -> str:
    path = [str(p) for p in loc[1:]] if loc[:1] == ["body"] else [str(p) for p in loc]
    if rows and len(path) >= 2 and path[0] == "events" and path[1].isdecimal():
        index = int(path[1])
        if index < len(rows):
            return " ".join([f"row {rows[index]}", *path[2:]])
    return ".".join(path) or "body"


def main(argv: list[str] | None = None) -> int:
    """Read the events, stream them through the batch endpoint, write the payout list."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("events", type=Path)
    parser.add_argument("payout", type=Path)
    parser.add_argument("--api", default=os.environ.get("API", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("KEY"), help="API key (default: $KEY)")
    parser.add_argument(
        "--streams", type=int, default=1, help="batch streams sent at once (default: 1)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.streams <= 64:
        parser.error("--streams must be 1 to 64")
    if not args.key:
        parser.error("an API key is needed: --key or $KEY")
    try:
        encoding, applicants = survey(args.events)
    except BadFile as exc:
        parser.error(str(exc))
    headers = {
        "Authorization": f"Bearer {args.key}",
        "Content-Type": "application/x-ndjson",
        "Accept": "application/x-ndjson",
    }
    source = Source(args.events, encoding, applicants)
    return asyncio.run(_pay(args.api, headers, source, args.payout, args.streams))


async def _lines(body: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The non-empty lines of a streamed body, however long each is."""
    pending = b""
    async for chunk in body.iter_any():
        *complete, pending = (pending + chunk).split(b"\n")
        for line in complete:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


class Refused(Exception):
    """The service refused a whole batch stream."""


class Incomplete(Exception):
    """Fewer answers came back than applicants were sent."""


class Unreadable(Exception):
    """The service answered what this script cannot read as the answer to an applicant sent."""


async def _pay(api: str, headers: dict[str, str], source: Source, path: Path, streams: int) -> int:
    """Send the streams, write each answer's rows as it arrives, and report the total.

    The list is written beside its place and moved there only once every applicant has its
    answer: a payout list is whole or absent, never cut short by a failure halfway.
    """
    due = Decimal(0)
    answered = refused = 0
    partial = path.with_name(path.name + ".partial")
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60)
    try:
        with (
            partial.open("w", newline="", encoding="utf-8-sig") as out,
            tqdm(total=source.applicants, unit="applicant", file=sys.stderr) as progress,
        ):
            writer = csv.DictWriter(out, fieldnames=FIELDS)
            writer.writeheader()

            def write(rows: list[int], case: dict[str, Any], answer: dict[str, Any]) -> None:
                nonlocal due, answered, refused
                for row in payout_rows(case, answer, rows):
                    writer.writerow({k: _as_text(v) for k, v in row.items()})
                    due += Decimal(row.get("amount") or 0)
                    refused += row["status"] == "refused"
                answered += 1
                progress.update(1)

            async with aiohttp.ClientSession(api, timeout=timeout) as session:
                await asyncio.gather(
                    *(
                        _stream(session, headers, source, part, streams, write)
                        for part in range(streams)
                    )
                )
        if answered != source.applicants:
            raise Incomplete(f"answers came back for {answered} of {source.applicants} applicants")
        os.replace(partial, path)
    except (Refused, Incomplete, Unreadable, aiohttp.ClientError, OSError) as exc:
        if isinstance(exc, Refused):
            reason = f"the batch was refused: {exc}"
        elif type(exc) is not TimeoutError and isinstance(exc, OSError) and exc.filename:
            reason = f"cannot write {exc.filename}: {exc.strerror}"
        else:
            reason = str(exc)
        print(f"no payout list written; {reason or type(exc).__name__}", file=sys.stderr)
        return 1
    finally:
        partial.unlink(missing_ok=True)  # after a failure, or an interruption
    print(
        f"{source.applicants} applicants, {refused} refused (the problem column says why);"
        f" total due {due:,.2f} yuan; written to {path}",
        file=sys.stderr,
    )
    return 0


async def _stream(
    session: aiohttp.ClientSession,
    headers: dict[str, str],
    source: Source,
    part: int,
    parts: int,
    write: Callable[[list[int], dict[str, Any], dict[str, Any]], None],
) -> None:
    """Send every `parts`-th case from `part` as one stream while its answers come back: a
    client that sent everything first and read only then would stall once the answers waiting
    for it filled the connection's buffers."""
    # The lines sent and not yet answered, by their index in this stream, with their rows in
    # the file; as bytes, a tenth of the memory the parsed cases take. Between the client and
    # the calculator, the sockets' buffers hold tens of megabytes, tens of thousands of lines.
    sent: dict[int, tuple[list[int], bytes]] = {}
    mine = read_applicants(source.path, source.encoding, part, parts)

    async def body() -> AsyncIterator[bytes]:
        # Lines gathered into writes of about 64 KB. One write per line makes one small packet
        # per line; while the service holds the stream back, the kernel may drop such packets
        # for want of buffer memory and resend them only after backoffs of up to a minute.
        chunk: list[bytes] = []
        size = 0
        for index, (rows, case) in enumerate(mine):
            line = ndjson(case)
            sent[index] = rows, line
            chunk.append(line)
            size += len(line)
            if size >= CHUNK_BYTES:
                yield b"".join(chunk)
                chunk, size = [], 0
        if chunk:
            yield b"".join(chunk)

    async with session.post("/v1/calculations/batch", data=body(), headers=headers) as response:
        if response.status != 200:
            raise Refused(f"{response.status} {await response.text()}")
        async for line in _lines(response.content):
            try:
                answer = json.loads(line)
                rows, case = sent.pop(answer["case_index"])
                write(rows, json.loads(case), answer)
            except (ValueError, KeyError, TypeError) as exc:
                raise Unreadable(
                    f"the service answered a line this script cannot read ({exc!r}):"
                    f" {line[:200].decode(errors='replace')}"
                ) from exc


if __name__ == "__main__":
    sys.exit(main())
