"""A person's 身份证号码 never reaches a log line, whatever the request does: calculations, claims,
a replay, a reused key, refusals (422, 403) and a calculator that cannot be reached.

The three services run in this process (see conftest), so their records all pass through the
root logger; they are rendered with the services' own JSON formatter, extra fields and
tracebacks included, at DEBUG so that no level hides a line.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
from stdnum.cn import ric
from subsidy_common.logs import JsonFormatter
from testkit import free_port

Case = Callable[..., dict[str, Any]]


class Lines(logging.Handler):
    """Every record, as the services write it: one JSON line each."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("captured"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def captured_logs() -> Iterator[Lines]:
    root = logging.getLogger()
    handler, level = Lines(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        assert handler in root.handlers, "an app reconfigured logging: the capture went blind"
        root.removeHandler(handler)
        root.setLevel(level)


def personal_number() -> str:
    """A valid 居民身份证号码 of someone born in 江阳区, new on each run."""
    rng = random.Random()
    body = f"510502{rng.randrange(1960, 2000)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
    body += f"{rng.randrange(1000):03d}"
    return body + ric.calc_check_digit(body + "0")


async def test_a_personal_number_never_reaches_a_log_line(
    admin: httpx.AsyncClient,
    as_key: Callable[[str], httpx.AsyncClient],
    another_gateway: Callable[..., Any],
    client_for: Callable[..., httpx.AsyncClient],
    stack: Any,
    case: Case,
    film: Any,
) -> None:
    number = personal_number()
    wrong = number[:17] + ("0" if number[17] != "0" else "1")  # its check digit wrong
    calculation = case()
    applicant = {**calculation["applicant"], "kind": "individual", "id": number, "name": "张三"}
    event = calculation["events"][0]
    claim = {"applicant": applicant, "event": event}
    county = (
        await admin.post(
            "/v1/admin/tenants",
            json={"name": f"江阳区-{uuid.uuid4().hex[:6]}", "role": "operator", "region": "510502"},
        )
    ).json()["api_key"]
    dead = f"http://127.0.0.1:{free_port()}"
    database = stack.gateway.state.settings.database_url
    async with (
        another_gateway(database_url=database, calculator_url=dead) as cut_off_app,
        client_for(cut_off_app) as cut_off,
        as_key(county) as operator,
    ):
        with captured_logs() as logs:
            answers: dict[str, httpx.Response] = {}
            body = {"applicant": applicant, "events": [event]}
            answers["calculation"] = await admin.post("/v1/calculations", json=body)
            answers["batch"] = await admin.post("/v1/calculations/batch", json={"cases": [body]})
            answers["ndjson batch"] = await admin.post(
                "/v1/calculations/batch",
                content=orjson.dumps(body) + b"\n" + orjson.dumps(body | {"events": []}),
                headers={"Content-Type": "application/x-ndjson", "Accept": "application/x-ndjson"},
            )
            key = {"Idempotency-Key": uuid.uuid4().hex}
            answers["claim"] = await admin.post("/v1/claims", json=claim, headers=key)
            answers["retried claim"] = await admin.post("/v1/claims", json=claim, headers=key)
            other_event = event | {"subject": f"FILM-{uuid.uuid4().hex[:6]}"}
            answers["key reused"] = await admin.post(
                "/v1/claims", json={"applicant": applicant, "event": other_event}, headers=key
            )
            # One event claimed at once under many keys: the ledger's lock and its retries.
            burst = await asyncio.gather(
                *(
                    admin.post(
                        "/v1/claims",
                        json={"applicant": applicant, "event": other_event},
                        headers={"Idempotency-Key": uuid.uuid4().hex},
                    )
                    for _ in range(8)
                )
            )
            bad_date = {"applicant": applicant, "event": event | {"date": "1990-02-30"}}
            answers["bad date"] = await admin.post(
                "/v1/claims", json=bad_date, headers={"Idempotency-Key": uuid.uuid4().hex}
            )
            bad_id = {"applicant": applicant | {"id": wrong}, "event": event}
            answers["bad check digit"] = await admin.post(
                "/v1/claims", json=bad_id, headers={"Idempotency-Key": uuid.uuid4().hex}
            )
            answers["bad calculation"] = await admin.post(
                "/v1/calculations", json={"applicant": applicant | {"id": wrong}, "events": [event]}
            )
            answers["outside the operator's region"] = await operator.post(
                "/v1/claims", json=claim, headers={"Idempotency-Key": uuid.uuid4().hex}
            )
            claim_id = answers["claim"].json()["id"]
            answers["read"] = await admin.get(f"/v1/claims/{claim_id}")
            answers["listed"] = await admin.get("/v1/claims", params={"applicant_id": number})
            answers["calculator down"] = await cut_off.post(
                "/v1/claims", json=claim, headers={"Idempotency-Key": uuid.uuid4().hex}
            )
            answers["listed, calculator down"] = await cut_off.get(
                "/v1/claims", params={"applicant_id": number}
            )

    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {
        "calculation": 200, "batch": 200, "ndjson batch": 200, "claim": 201,
        "retried claim": 201, "key reused": 422, "bad date": 422, "bad check digit": 422,
        "bad calculation": 422, "outside the operator's region": 403, "read": 200,
        "listed": 200, "calculator down": 503, "listed, calculator down": 503,
    }, {name: r.text[:200] for name, r in answers.items()}  # fmt: skip
    assert answers["retried claim"].content == answers["claim"].content
    assert sorted(r.json()["status"] for r in burst) == ["duplicate"] * 7 + ["granted"]
    assert answers["claim"].json()["applicant"]["id"] == f"510502********{number[-4:]}"

    # The capture saw the requests, in both the gateway and the calculator.
    access = [orjson.loads(line) for line in logs.lines if '"subsidy.access"' in line]
    claims = [a for a in access if (a["method"], a["path"]) == ("POST", "/v1/claims")]
    assert len([a for a in claims if a["status"] == 201]) >= 2 * (2 + len(burst))
    assert len([a for a in claims if a["status"] == 422]) >= 3
    assert any("calculator unreachable" in line for line in logs.lines)

    # The number whole, in either case of its X, or its first 17 characters (which fix the
    # last): none may be in any line. The masked form may be.
    needles = {number, number.lower(), number[:17], wrong}
    leaks = [line for line in logs.lines if any(n in line for n in needles)]
    assert leaks == [], f"{len(leaks)} log lines hold {number}:\n" + "\n".join(leaks[:5])
