"""Faults with real processes on loopback: the database cut mid-load, the calculator killed
during claims, the registry stopped, one of two calculator instances killed during a batch
(reliability.md, "Faults").

Registry, calculator and gateway run as uvicorn subprocesses, as `scripts/run.py` starts them,
on throwaway PostgreSQL databases. The machine's PostgreSQL server is never restarted: the
database "restart" is a TCP proxy between the calculator and PostgreSQL that drops every
connection and refuses new ones for a while. Every test is bounded by `asyncio.timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import aiohttp
import asyncpg
import httpx
import orjson
from faults.tcp_proxy import TcpProxy
from sqlalchemy.engine import make_url
from stdnum.cn import uscc
from testkit import admin_url, create_database, drop_database, dsn, free_ports

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "sk_faults-admin-key-0123456789abcdef0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
PROBLEM_JSON = "application/problem+json"
PAID = ("granted", "topped_up")
MATTER = "patent.invention.granted"
_applicants = itertools.count(1)

# How long a failing request may take to fail: the calculator's pool waits at most 5 s for a
# connection and asyncpg at most 5 s to connect; a refused connect fails at once.
FAIL_FAST_SECONDS = 5.5
RECOVERY_SECONDS = 10.0
RETRY_CONCURRENCY = 12


# --------------------------------------------------------------------------------------------
# Processes


def _log_file(path: Path) -> IO[bytes]:
    return path.open("ab")


@dataclass
class Service:
    """One uvicorn process, restartable on the same port with the same environment."""

    name: str
    factory: str
    port: int
    env: dict[str, str]
    log: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        log = _log_file(self.log)
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "uvicorn", "--factory", self.factory,
                "--host", "127.0.0.1", "--port", str(self.port),
                "--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "2",
                cwd=ROOT, env={**os.environ, **self.env}, stdout=log, stderr=log,
            )  # fmt: skip
        finally:
            log.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no rollback, no goodbye."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.wait_for(process.wait(), timeout=10)

    async def wait_dead(self) -> None:
        assert self.process is not None
        await asyncio.wait_for(self.process.wait(), timeout=10)
        self.process = None

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class System:
    registry: Service
    calculator: Service
    gateway: Service
    calculator_db: str  # the database itself, not through any proxy
    client: httpx.AsyncClient
    more_calculators: list[Service] = field(default_factory=list)  # instances after the first


async def wait_ready(client: httpx.AsyncClient, url: str, within: float = 45) -> dict[str, Any]:
    """Poll a /readyz until it answers 200; return its body."""
    deadline = time.monotonic() + within
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = await client.get(f"{url}/readyz", timeout=2)
            if response.status_code == 200:
                return dict(response.json())
            last = response.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} not ready after {within} s: {last}")


@contextlib.asynccontextmanager
async def system(
    tmp_path: Path,
    *,
    calculator_via: TcpProxy | None = None,
    calculators: int = 1,
    **settings: str,
) -> AsyncIterator[System]:
    """Registry, calculator (`calculators` instances, on one database) and gateway as
    processes; everything is removed afterwards."""
    databases: list[str] = []
    services: list[Service] = []
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(20, connect=2),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
    )
    try:
        for prefix in ("faults_r", "faults_c", "faults_g"):
            databases.append(await create_database(prefix))
        registry_db, calculator_db, gateway_db = databases
        calculator_url = calculator_db
        if calculator_via is not None:
            calculator_url = (
                make_url(calculator_db)
                .set(host=calculator_via.host, port=calculator_via.port)
                .render_as_string(hide_password=False)
            )
        registry_port, calculator_port, gateway_port, *more_ports = free_ports(2 + calculators)
        ports = {"registry": registry_port, "calculator": calculator_port, "gateway": gateway_port}
        calculator_urls = [f"http://127.0.0.1:{p}" for p in (ports["calculator"], *more_ports)]
        registry_url = f"http://127.0.0.1:{ports['registry']}"
        env = {
            "SUBSIDY_DATA_DIR": str(tmp_path / "var"),
            "SUBSIDY_ADMIN_KEY": ADMIN_KEY,
            "REGISTRY_DATABASE_URL": registry_db,
            "CALCULATOR_DATABASE_URL": calculator_url,
            "GATEWAY_DATABASE_URL": gateway_db,
            "CALCULATOR_REGISTRY_URL": registry_url,
            "GATEWAY_REGISTRY_URL": registry_url,
            "GATEWAY_CALCULATOR_URL": ",".join(calculator_urls),
            "GATEWAY_RATE_LIMIT": "1000000/minute",
            "REGISTRY_LOG_LEVEL": "WARNING",
            "CALCULATOR_LOG_LEVEL": "WARNING",
            "GATEWAY_LOG_LEVEL": "WARNING",
            **settings,
        }
        for name, factory in (
            ("registry", "registry.main:create_app"),
            ("calculator", "calculator.main:create_app"),
            ("gateway", "gateway.main:create_app"),
        ):
            service = Service(name, factory, ports[name], env, tmp_path / f"{name}.log")
            services.append(service)
            await service.start()
        for i, port in enumerate(more_ports, 2):
            service = Service(
                f"calculator {i}", "calculator.main:create_app", port, env, tmp_path / f"c{i}.log"
            )
            services.insert(-1, service)  # before the gateway, which is stopped first
            await service.start()
        registry, calculator, *more, gateway = services
        running = System(registry, calculator, gateway, calculator_db, client, more)
        for service in services:  # the gateway's readiness does not count its downstreams
            await wait_ready(client, service.url)
        yield running
    except BaseException:
        for service in services:
            print(f"----- {service.name} log (tail) -----\n{service.tail()}")
        raise
    finally:
        for service in reversed(services):
            with contextlib.suppress(Exception):
                await service.stop()
        await client.aclose()
        for url in databases:
            await drop_database(url)


# --------------------------------------------------------------------------------------------
# Claims and what came back


def new_claim() -> dict[str, Any]:
    """A claim for a new applicant (a valid 统一社会信用代码) and a patent of its own."""
    n = next(_applicants)
    body = f"91510500MA{n:07d}"
    return {
        "applicant": {
            "id": body + uscc.calc_check_digit(body),
            "kind": "enterprise",
            "name": f"泸州故障测试{n}号科技有限公司",
            "region": "510502",
        },
        "event": {"matter": MATTER, "date": "2016-05-10", "subject": f"ZL2016FAULT{n:06d}.1"},
    }


@dataclass
class Answer:
    key: str
    claim: dict[str, Any]
    started: float
    finished: float
    status: int  # 0: the client saw no HTTP answer at all
    sent_at: float = 0.0  # wall clock, to compare with the claim's created_at
    content_type: str = ""
    retry_after: str | None = None
    body: bytes = b""
    error: str = ""

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    def describe(self) -> str:
        text = self.error or self.body[:300].decode(errors="replace")
        return f"{self.key}: {self.status} after {self.seconds:.2f} s: {text}"


@dataclass
class Ledger:
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)
    balances: dict[tuple[str, str, str], Decimal] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)


async def submit(
    client: httpx.AsyncClient, gateway: str, key: str, claim: dict[str, Any]
) -> Answer:
    started, sent_at = time.monotonic(), time.time()
    try:
        response = await client.post(
            f"{gateway}/v1/claims",
            content=orjson.dumps(claim),
            headers={**AUTH, "Content-Type": "application/json", "Idempotency-Key": key},
        )
    except httpx.HTTPError as exc:
        return Answer(key, claim, started, time.monotonic(), 0, sent_at, error=repr(exc))
    return Answer(
        key,
        claim,
        started,
        time.monotonic(),
        response.status_code,
        sent_at,
        response.headers.get("content-type", ""),
        response.headers.get("retry-after"),
        response.content,
    )


def unavailable_problems(answers: list[Answer]) -> list[str]:
    """What is wrong with answers that are meant to be 503 problems with Retry-After."""
    wrong = []
    for answer in answers:
        if answer.status != 503 or not answer.content_type.startswith(PROBLEM_JSON):
            wrong.append(f"not a 503 problem: {answer.describe()}")
            continue
        problem = orjson.loads(answer.body)
        if problem.get("status") != 503:
            wrong.append(f"problem body status: {answer.describe()}")
        if answer.retry_after is None or not answer.retry_after.isdigit():
            wrong.append(f"no Retry-After (got {answer.retry_after!r}): {answer.describe()}")
    return wrong


def gateway_problems(answers: list[Answer]) -> list[str]:
    """What is wrong with answers meant to be the gateway's 503 or 504 problems."""
    timeouts = [a for a in answers if a.status == 504]
    wrong = unavailable_problems([a for a in answers if a.status != 504])
    for answer in timeouts:
        if not answer.content_type.startswith(PROBLEM_JSON):
            wrong.append(f"not a problem: {answer.describe()}")
        elif orjson.loads(answer.body).get("status") != 504:
            wrong.append(f"problem body status: {answer.describe()}")
    return wrong


async def read_ledger(url: str) -> Ledger:
    """The calculator's tables, read from the database directly (never through the proxy)."""
    connection = await asyncpg.connect(dsn(url), timeout=5)
    try:
        ledger = Ledger()
        for row in await connection.fetch(
            "SELECT id, tenant_id, applicant_id, matter, subject, status, amount FROM claim"
        ):
            ledger.claims[row["id"]] = dict(row)
        for row in await connection.fetch(
            "SELECT applicant_id, matter, subject, granted FROM ledger_balance"
        ):
            ledger.balances[(row["applicant_id"], row["matter"], row["subject"])] = row["granted"]
        for row in await connection.fetch(
            "SELECT tenant_id, key, claim_id, status_code, body FROM idempotency_record"
        ):
            ledger.records[row["key"]] = dict(row)
        return ledger
    finally:
        await connection.close()


def check_ledger(ledger: Ledger, final: dict[str, Answer]) -> None:
    """Nothing half written, nothing paid twice, the ledger equal to the grants.

    `final` is the last 201 answer for every key the test ever sent.
    """
    answered = {key: orjson.loads(a.body) for key, a in final.items()}
    claim_ids = {body["id"] for body in answered.values()}
    assert len(claim_ids) == len(answered), "two keys were answered with one claim"
    # Every claim in the database was answered to someone, and every answer is in the database:
    # no claim committed without its key, no 201 for a claim that was rolled back.
    assert set(ledger.claims) == claim_ids, (
        f"claims never answered: {sorted(set(ledger.claims) - claim_ids)}; "
        f"answered but missing: {sorted(claim_ids - set(ledger.claims))}"
    )
    # One idempotency record per claim, in the same transaction, with the body the client got.
    assert set(ledger.records) == set(final), (
        f"keys without record: {sorted(set(final) - set(ledger.records))}; "
        f"records without a 201: {sorted(set(ledger.records) - set(final))}"
    )
    for key, record in ledger.records.items():
        assert record["claim_id"] == answered[key]["id"], key
        assert record["status_code"] == 201, key
        assert bytes(record["body"]) == final[key].body, f"stored body differs for {key}"
    # Each (applicant, matter, subject) paid exactly once, and its balance is that one payment.
    paid: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in ledger.claims.values():
        if row["status"] in PAID:
            paid.setdefault((row["applicant_id"], row["matter"], row["subject"]), []).append(row)
    for key, answer in final.items():
        claim = answer.claim
        unit = (answered[key]["applicant"]["id"], claim["event"]["matter"],
                answered[key]["subject"])  # fmt: skip
        rows = paid.get(unit, [])
        assert len(rows) == 1, f"{unit} paid {len(rows)} times: {rows}"
        assert answered[key]["status"] == "granted", answered[key]
        assert rows[0]["amount"] > 0
        assert ledger.balances.get(unit) == rows[0]["amount"], (unit, ledger.balances.get(unit))
    assert set(ledger.balances) == set(paid), "a balance moved without a paid claim"
    granted = sum((row["amount"] for rows in paid.values() for row in rows), Decimal(0))
    assert granted == sum(ledger.balances.values(), Decimal(0))


def replays(answers: Iterable[Answer]) -> int:
    """How many 201s replay a claim created before its request was sent (an answer lost)."""
    count = 0
    for answer in answers:
        created = dt.datetime.fromisoformat(orjson.loads(answer.body)["created_at"])
        count += created.timestamp() < answer.sent_at
    return count


async def retry_until_answered(system_: System, answers: list[Answer]) -> dict[str, Answer]:
    """Send every request again with its own key; each must now be 201, on the first try.

    As a client would: a few at a time, not hundreds at once (that measures overload).
    """
    gate = asyncio.Semaphore(RETRY_CONCURRENCY)

    async def again(answer: Answer) -> Answer:
        async with gate:
            return await submit(system_.client, system_.gateway.url, answer.key, answer.claim)

    retried = await asyncio.gather(*(again(a) for a in answers))
    wrong = [a.describe() for a in retried if a.status != 201]
    assert not wrong, f"{len(wrong)} retries with the same key failed: {wrong[:5]}"
    return {a.key: a for a in retried}


# --------------------------------------------------------------------------------------------
# 1. PostgreSQL restarted mid-load


async def test_postgresql_restarted_mid_load(tmp_path: Path) -> None:
    target = make_url(admin_url())
    proxy = await TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
    try:
        async with asyncio.timeout(60), system(tmp_path, calculator_via=proxy) as running:
            await _postgresql_restarted(running, proxy)
    finally:
        await proxy.close()


async def _postgresql_restarted(running: System, proxy: TcpProxy) -> None:
    client, gateway = running.client, running.gateway.url
    first = await submit(client, gateway, f"warm-{uuid.uuid4()}", new_claim())
    assert first.status == 201, first.describe()

    answers: list[Answer] = []
    stop = asyncio.Event()
    cut_at = restored_at = float("inf")

    async def worker() -> None:
        while not stop.is_set():
            answer = await submit(client, gateway, f"load-{uuid.uuid4()}", new_claim())
            answers.append(answer)
            if answer.status != 201:
                await asyncio.sleep(0.05)  # do not spin; the same keys are retried later

    workers = [asyncio.create_task(worker()) for _ in range(12)]
    try:
        await asyncio.sleep(1.5)
        cut_at = time.monotonic()
        dropped = await proxy.cut()
        await asyncio.sleep(2.0)
        await proxy.restore()
        restored_at = time.monotonic()
        # Serve on, untouched, until claims started after the restore are paid again.
        while time.monotonic() - restored_at < RECOVERY_SECONDS + FAIL_FAST_SECONDS:
            recovered = [a for a in answers if a.started > restored_at and a.status == 201]
            if len(recovered) >= 12:
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), timeout=30)

    before = [a for a in answers if a.finished < cut_at]
    during = [a for a in answers if cut_at <= a.started and a.finished <= restored_at]
    after = [a for a in answers if a.started > restored_at]
    failed = [a for a in answers if a.status != 201]
    summary = (
        f"{len(answers)} claims: {len(before)} done before the cut, {len(during)} within it, "
        f"{len(after)} after; {len(failed)} failed (slowest "
        f"{max((a.seconds for a in failed), default=0):.2f} s); {dropped} connections dropped"
    )
    print(summary)
    assert dropped > 0, "the cut dropped no database connection"
    assert any(a.status == 201 for a in before), summary
    assert during, f"no claim was sent while the database was away: {summary}"

    # During the cut: no 201 can be written, and each answer is a quick 503 with Retry-After.
    assert not [a.describe() for a in during if a.status == 201], "paid without a database"
    assert not unavailable_problems(failed), unavailable_problems(failed)[:5]
    slow = [a.describe() for a in failed if a.seconds > FAIL_FAST_SECONDS]
    assert not slow, f"failures that were not fast: {slow[:5]}"

    # After the restore: the calculator reconnects by itself.
    paid_after = sorted(a.finished for a in after if a.status == 201)
    assert paid_after, f"no claim paid after the restore: {[a.describe() for a in after[-5:]]}"
    assert paid_after[0] - restored_at < RECOVERY_SECONDS
    print(f"first claim paid {paid_after[0] - restored_at:.2f} s after the restore")

    # Every failed request, retried with its own key once recovered, is paid once.
    final = {a.key: a for a in [first, *answers] if a.status == 201}
    retried = await retry_until_answered(running, failed)
    final.update(retried)
    print(f"{replays(retried.values())} of the failed claims had been committed all the same")
    # A second retry of everything replays the stored answer byte for byte.
    replayed = await retry_until_answered(running, list(final.values()))
    differ = [k for k, a in replayed.items() if a.body != final[k].body]
    assert not differ, f"replays differ from the first 201: {differ[:5]}"

    ledger = await read_ledger(running.calculator_db)
    check_ledger(ledger, final)
    print(f"ledger: {len(ledger.claims)} claims, {sum(ledger.balances.values())} granted")


# --------------------------------------------------------------------------------------------
# 2. The calculator killed during a claim


async def test_calculator_killed_during_claims_and_retried_with_the_same_keys(
    tmp_path: Path,
) -> None:
    async with asyncio.timeout(60), system(tmp_path) as running:
        await _calculator_killed(running)


async def _calculator_killed(running: System) -> None:
    client, gateway, calculator = running.client, running.gateway.url, running.calculator
    first = await submit(client, gateway, f"warm-{uuid.uuid4()}", new_claim())
    assert first.status == 201, first.describe()

    claims = [(f"kill-{uuid.uuid4()}", new_claim()) for _ in range(50)]
    some_paid = asyncio.Event()
    paid = 0

    async def one(key: str, claim: dict[str, Any]) -> Answer:
        nonlocal paid
        answer = await submit(client, gateway, key, claim)
        if answer.status == 201:
            paid += 1
            if paid >= 3:
                some_paid.set()
        return answer

    tasks = [asyncio.create_task(one(k, c)) for k, c in claims]
    # Kill the calculator once the first claims are paid, with the rest in flight.
    await asyncio.wait_for(some_paid.wait(), timeout=15)
    calculator.kill()
    killed_at = time.monotonic()
    answers = await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    await calculator.wait_dead()

    failed = [a for a in answers if a.status != 201]
    statuses = sorted(Counter(a.status for a in failed).items())
    print(f"50 claims: {50 - len(failed)} paid, then the kill: {statuses}")
    assert failed, "every claim finished before the kill: no claim was in flight"
    # In flight when the calculator died: the gateway says so at once, as a problem; 503 with
    # Retry-After, or 504 (the outcome is unknown to it). Nothing else, and never a hang.
    assert not gateway_problems(failed), gateway_problems(failed)[:5]
    slow = [a.describe() for a in failed if a.finished - max(a.started, killed_at) > 2]
    assert not slow, f"the gateway did not answer promptly: {slow[:5]}"

    # While it is down, the gateway answers at once (connection refused is a 503).
    down = await asyncio.gather(
        *(submit(client, gateway, k, c) for k, c in claims[:5]), return_exceptions=False
    )
    assert not unavailable_problems(down), unavailable_problems(down)
    assert max(a.seconds for a in down) < 2, [a.describe() for a in down]

    # The same process again, on the same port and database.
    await calculator.start()
    await wait_ready(client, calculator.url)
    paid_before = {a.key: a for a in answers if a.status == 201}
    retried = await retry_until_answered(running, answers)
    lost = replays(retried[a.key] for a in failed)
    print(f"{lost} of the failed claims had been committed all the same")
    differ = [k for k, a in paid_before.items() if retried[k].body != a.body]
    assert not differ, f"a retry answered differently from the first 201: {differ[:5]}"
    again = await retry_until_answered(running, list(retried.values()))
    differ = [k for k, a in again.items() if a.body != retried[k].body]
    assert not differ, f"retries differ from one another: {differ[:5]}"

    final = {first.key: first, **retried}
    ledger = await read_ledger(running.calculator_db)
    check_ledger(ledger, final)
    assert len(ledger.claims) == 51


# --------------------------------------------------------------------------------------------
# 3. The registry stopped


async def test_registry_stopped_calculations_go_on_with_the_last_snapshot(
    tmp_path: Path,
) -> None:
    async with (
        asyncio.timeout(45),
        system(tmp_path, CALCULATOR_SNAPSHOT_REFRESH_SECONDS="0.3") as running,
    ):
        await _registry_stopped(running)


async def _registry_stopped(running: System) -> None:
    client, gateway, calculator = running.client, running.gateway.url, running.calculator
    snapshot = (await wait_ready(client, calculator.url))["checks"]["registry_snapshot"]
    assert snapshot["registry_reachable"] is True
    version = snapshot["registry_version"]
    claim = new_claim()
    calculation = {"applicant": claim["applicant"], "events": [claim["event"]]}
    before = await client.post(f"{gateway}/v1/calculations", json=calculation, headers=AUTH)
    assert before.status_code == 200, before.text
    assert before.json()["registry_version"] == version

    await running.registry.stop()
    await asyncio.sleep(1.0)

    ready = await client.get(f"{calculator.url}/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    first = ready.json()["checks"]["registry_snapshot"]
    assert first["registry_reachable"] is False, first
    assert first["registry_version"] == version
    assert first["checked_seconds_ago"] >= 0.5, first

    during = await client.post(f"{gateway}/v1/calculations", json=calculation, headers=AUTH)
    assert during.status_code == 200, during.text
    assert during.json()["registry_version"] == version
    assert during.json()["results"] == before.json()["results"]
    paid = await submit(client, gateway, f"reg-{uuid.uuid4()}", claim)
    assert paid.status == 201, paid.describe()
    assert orjson.loads(paid.body)["registry_version"] == version

    await asyncio.sleep(1.0)
    later = (await client.get(f"{calculator.url}/readyz")).json()["checks"]["registry_snapshot"]
    assert later["registry_reachable"] is False
    assert later["checked_seconds_ago"] >= first["checked_seconds_ago"] + 0.9, (first, later)

    # The registry back: the next revalidation says so, with nothing restarted.
    await running.registry.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        health = (await client.get(f"{calculator.url}/readyz")).json()
        if health["checks"]["registry_snapshot"]["registry_reachable"]:
            break
        await asyncio.sleep(0.2)
    assert health["checks"]["registry_snapshot"]["registry_reachable"] is True, health
    assert health["checks"]["registry_snapshot"]["checked_seconds_ago"] < 1


# --------------------------------------------------------------------------------------------
# 4. A calculator instance killed during a batch


async def test_calculator_instance_killed_during_a_batch_the_other_answers_it_whole(
    tmp_path: Path,
) -> None:
    async with (
        asyncio.timeout(60),
        system(tmp_path, calculators=2, GATEWAY_BATCH_PART_BYTES="16384") as running,
    ):
        await _instance_killed_during_a_batch(running)


async def _instance_killed_during_a_batch(running: System) -> None:
    cases = 20_000
    victim = running.calculator
    lines = []
    for i in range(cases):
        claim = new_claim()
        event = {**claim["event"], "subject": f"S{i}"}
        lines.append(orjson.dumps({"applicant": claim["applicant"], "events": [event]}) + b"\n")
    answered = 0
    halfway = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, cases, 200):
            yield b"".join(lines[start : start + 200])

    answers: list[dict[str, Any]] = []
    headers = {**AUTH, "Content-Type": "application/x-ndjson", "Accept": "application/x-ndjson"}
    # aiohttp reads the answers while it still sends (httpx would only read once all is sent).
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{running.gateway.url}/v1/calculations/batch", data=body(), headers=headers
        ) as response,
    ):
        assert response.status == 200, await response.text()

        async def kill_halfway() -> None:
            await halfway.wait()
            victim.kill()

        killer = asyncio.create_task(kill_halfway())
        pending = b""
        async for chunk in response.content.iter_any():
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                answers.append(orjson.loads(line))
                answered += 1
                if answered == cases // 3:
                    halfway.set()
        await killer
    await victim.wait_dead()
    assert [a["case_index"] for a in answers] == list(range(cases))
    problems = [a for a in answers if "results" not in a]
    assert not problems, problems[:3]
    assert [a["results"][0]["subject"] for a in answers] == [f"S{i}" for i in range(cases)]
