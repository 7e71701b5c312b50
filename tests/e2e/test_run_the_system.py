"""`make run`'s launcher starts the three services as real processes; the gateway answers."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from stdnum.cn import uscc
from testkit import free_port, free_ports, free_ports_in_a_row, script

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def get(url: str, key: str | None = None) -> tuple[int, dict[str, object], dict[str, str]]:
    request = urllib.request.Request(url)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


@contextmanager
def system(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    """Start scripts/run.py and wait for its ready line; stop it with SIGTERM afterwards."""
    with tempfile.TemporaryFile(mode="w+") as log:  # what the services said, shown on failure
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "run.py")],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        lines: list[str] = []
        assert process.stdout is not None
        deadline = time.monotonic() + 90
        gateway = ""
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if line.startswith("Ready. Gateway: "):
                gateway = line.split()[2]
                break
        try:
            if not gateway:
                log.seek(0)
                said = log.read().splitlines()[-20:]
                pytest.fail(f"the system did not become ready: {lines}; it said: {said}")
            yield process, gateway, lines
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                raise


def ports() -> dict[str, str]:
    gateway, registry, calculator = free_ports(3)
    return {
        "SUBSIDY_GATEWAY_PORT": str(gateway),
        "SUBSIDY_REGISTRY_PORT": str(registry),
        "SUBSIDY_CALCULATOR_PORT": str(calculator),
    }


def test_local_run_with_sqlite_and_a_generated_admin_key(tmp_path: Path) -> None:
    env = {"SUBSIDY_DATA_DIR": str(tmp_path / "var"), **ports()}
    env.pop("SUBSIDY_ADMIN_KEY", None)
    os.environ.pop("SUBSIDY_ADMIN_KEY", None)
    with system(env) as (process, gateway, lines):
        key_file = tmp_path / "var" / "admin_key"
        key = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert any(key in line for line in lines), "the generated key is printed once"
        assert {"registry.db", "calculator.db", "gateway.db"} <= {
            p.name for p in (tmp_path / "var").iterdir()
        }

        status, body, headers = get(f"{gateway}/v1/regions", key)
        assert status == 200
        codes = {r["code"] for r in body["items"]}  # type: ignore[attr-defined]
        assert {"510502", "510500-GX", "530402", "620000"} <= codes
        assert "X-Request-ID" in headers or "x-request-id" in headers

        status, body, _ = get(f"{gateway}/v1/regions")
        assert status == 401
        assert body["status"] == 401

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0

    with system(env) as (_, _, lines):
        assert not any(key in line for line in lines), "a kept key is never printed again"


async def test_run_against_postgresql(
    tmp_path: Path, database_factory: Callable[[str], Awaitable[str]]
) -> None:
    env = {
        "SUBSIDY_DATA_DIR": str(tmp_path / "var"),
        "SUBSIDY_ADMIN_KEY": "sk_e2e-admin-key-0123456789abcdef0123456789",
        "REGISTRY_DATABASE_URL": await database_factory("e2e_registry"),
        "CALCULATOR_DATABASE_URL": await database_factory("e2e_calculator"),
        "GATEWAY_DATABASE_URL": await database_factory("e2e_gateway"),
        **ports(),
    }
    with system(env) as (process, gateway, _):
        status, body, _ = get(f"{gateway}/readyz")
        assert status == 200, body
        status, body, _ = get(f"{gateway}/v1/regions?limit=500", env["SUBSIDY_ADMIN_KEY"])
        assert status == 200
        listed = {region["code"] for region in body["items"]}
        assert listed == set(
            re.findall(r'code: "([^"]+)"', (ROOT / "policies/regions.yaml").read_text())
        )
        assert not (tmp_path / "var" / "registry.db").exists()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0


def decisions(text: str) -> float:
    """The sum of a calculator's `subsidy_decisions_total` series."""
    return sum(
        float(m.group(1))
        for m in re.finditer(r"^subsidy_decisions_total\{[^}]*\} (\S+)$", text, re.MULTILINE)
    )


async def test_calculator_workers_on_their_own_ports_each_take_a_batch(
    tmp_path: Path, database_factory: Callable[[str], Awaitable[str]]
) -> None:
    """A batch in progress on one calculator worker sends the next to the other."""
    first = free_ports_in_a_row(2)[0]
    key = "sk_e2e-admin-key-0123456789abcdef0123456789"
    env = {
        "SUBSIDY_DATA_DIR": str(tmp_path / "var"),
        "SUBSIDY_ADMIN_KEY": key,
        "SUBSIDY_CALCULATOR_WORKERS": "2",
        "REGISTRY_DATABASE_URL": await database_factory("e2e_registry"),
        "CALCULATOR_DATABASE_URL": await database_factory("e2e_calculator"),
        "GATEWAY_DATABASE_URL": await database_factory("e2e_gateway"),
        **ports(),
        "SUBSIDY_CALCULATOR_PORT": str(first),
    }
    workers = [f"http://127.0.0.1:{port}" for port in (first, first + 1)]

    def case(i: int) -> bytes:
        body = f"91510500MA{i:07d}"
        return (
            orjson.dumps(
                {
                    "applicant": {
                        "id": body + uscc.calc_check_digit(body),
                        "kind": "enterprise",
                        "region": "510502",
                    },
                    "events": [
                        {
                            "matter": "patent.invention.granted",
                            "date": "2016-05-10",
                            "subject": f"ZL{i}",
                        }
                    ],
                }
            )
            + b"\n"
        )

    with system(env) as (_, gateway, _):
        status, body, _ = get(f"{gateway}/readyz")
        assert status == 200, body
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson",
                   "Accept": "application/x-ndjson"}  # fmt: skip
        held = asyncio.Event()

        async def open_batch() -> AsyncIterator[bytes]:
            yield b"".join(case(i) for i in range(10))
            await held.wait()

        async with httpx.AsyncClient(timeout=30) as client:

            async def counts() -> list[float]:
                return [decisions((await client.get(f"{w}/metrics")).text) for w in workers]

            before = await counts()
            first_batch = asyncio.create_task(
                client.post(
                    f"{gateway}/v1/calculations/batch", content=open_batch(), headers=headers
                )
            )
            deadline = time.monotonic() + 30
            while (await counts()) == before and time.monotonic() < deadline:  # noqa: ASYNC110  # polling another process
                await asyncio.sleep(0.05)
            busy = [now > then for now, then in zip(await counts(), before, strict=True)]
            assert busy.count(True) == 1, busy
            second = await client.post(
                f"{gateway}/v1/calculations/batch",
                content=b"".join(case(i) for i in range(100, 150)),
                headers=headers,
            )
            assert second.status_code == 200, second.text
            assert len(second.text.splitlines()) == 50
            held.set()
            assert (await first_batch).status_code == 200
            after = await counts()
        idle = busy.index(False)
        assert after[idle] - before[idle] == 50
        assert after[1 - idle] - before[1 - idle] == 10


def test_ports_that_overlap_are_refused_before_anything_starts(tmp_path: Path) -> None:
    """The calculator's second worker would take the gateway's port."""
    port = free_port()
    env = {
        **os.environ,
        "SUBSIDY_DATA_DIR": str(tmp_path),
        "SUBSIDY_CALCULATOR_WORKERS": "2",
        "CALCULATOR_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
        "SUBSIDY_CALCULATOR_PORT": str(port),
        "SUBSIDY_GATEWAY_PORT": str(port + 1),
    }
    completed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run.py")],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert completed.returncode == 1
    assert "ports overlap" in completed.stderr
    assert not (tmp_path / "admin_key").exists()


def test_a_weak_admin_key_is_refused_before_anything_starts(tmp_path: Path) -> None:
    env = {**os.environ, "SUBSIDY_DATA_DIR": str(tmp_path), "SUBSIDY_ADMIN_KEY": "sk_short"}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run.py")],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert completed.returncode == 1
    assert "SUBSIDY_ADMIN_KEY is refused" in completed.stderr
    assert "registry" not in completed.stdout.lower()  # nothing started, nothing blamed
    assert not (tmp_path / "admin_key").exists()


def test_the_kept_key_is_the_key_the_gateway_starts_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start with SUBSIDY_ADMIN_KEY replaces (and the gateway revokes) the key kept in the data
    dir: the file then holds the configured key, so a later start without it still works."""
    run = run_module()
    monkeypatch.delenv("SUBSIDY_ADMIN_KEY", raising=False)
    generated = run.admin_key(tmp_path)
    configured = "sk_" + "0123456789abcdefghijklmnopqrstuvwxyzAB"
    monkeypatch.setenv("SUBSIDY_ADMIN_KEY", configured)
    assert run.admin_key(tmp_path) == configured != generated
    monkeypatch.delenv("SUBSIDY_ADMIN_KEY")
    assert run.admin_key(tmp_path) == configured
    kept = tmp_path / "admin_key"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def run_module() -> Any:
    """scripts/run.py as a module."""
    return script(ROOT / "scripts" / "run.py", "run")


def readme_walkthrough() -> str:
    """The shell blocks of the README's "First hour", in order, as one script."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## First hour", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("\n", 1)[1] for block in section.split("```sh")[1:]]
    return "set -euo pipefail\n" + "\n".join(block.split("```", 1)[0] for block in blocks)


def test_the_readme_first_hour_works(tmp_path: Path) -> None:
    env = {"SUBSIDY_DATA_DIR": str(tmp_path / "var"), **ports()}
    os.environ.pop("SUBSIDY_ADMIN_KEY", None)
    with system(env) as (_, gateway, _):
        script = readme_walkthrough().replace("http://127.0.0.1:8000", gateway)
        done = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert '"total":"3000.00"' in out
    assert '"status":"granted"' in out
    assert re.search(r"(^|[}\n])200\n", out), "the amendment answered 200"
    assert "补充解读说明" in out


def test_the_payout_example_writes_a_payout_list(tmp_path: Path) -> None:
    env = {"SUBSIDY_DATA_DIR": str(tmp_path / "var"), **ports()}
    os.environ.pop("SUBSIDY_ADMIN_KEY", None)
    lists: dict[int, list[dict[str, str]]] = {}
    with system(env) as (_, gateway, _):
        key = (tmp_path / "var" / "admin_key").read_text().strip()

        def pay(events: Path, payout: Path, streams: int = 1) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, str(ROOT / "examples" / "payout.py"), str(events), str(payout),
                 "--api", gateway, "--key", key, "--streams", str(streams)],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip

        for streams in (1, 2):
            payout = tmp_path / f"payout-{streams}.csv"
            done = pay(ROOT / "examples" / "events.csv", payout, streams)
            assert done.returncode == 0, done.stderr
            assert "applicant" in done.stderr  # the progress bar
            with payout.open(encoding="utf-8-sig") as handle:
                lists[streams] = list(csv.DictReader(handle))
        # A row the service cannot accept refuses its applicant only.
        events = tmp_path / "events.csv"
        events.write_text(
            (ROOT / "examples" / "events.csv").read_text(encoding="utf-8")
            + "91510502MA62C3K7QD,enterprise,江阳示例有限公司,510502,"
            "patent.invention.granted,2016-06-01,ZL-bad,many,{}\n",
            encoding="utf-8",
        )
        payout = tmp_path / "payout-bad.csv"
        done = pay(events, payout)
        assert done.returncode == 0, done.stderr
        with payout.open(encoding="utf-8-sig") as handle:
            with_bad = list(csv.DictReader(handle))
    rows = lists[1]
    by_subject = {row["subject"]: row for row in rows}
    assert by_subject["ZL201510000001.1"]["amount"] == "3000.00"
    assert by_subject["ZL201510000001.1"]["doc_no"] == "泸市府发〔2015〕33号"
    assert sorted(int(row["row"]) for row in rows) == list(range(2, 2 + len(rows)))
    assert by_subject["GR201651000123"]["amount"] == "100000.00"
    # Two 实用新型 at 800 in 泸县, one row each.
    assert by_subject["ZL201620000002.3"]["amount"] == by_subject["ZL201620000003.1"]["amount"]
    assert by_subject["ZL201620000003.1"]["amount"] == "800.00"
    assert len(rows) == 5
    # Two streams: the same rows, in the order the answers came.
    assert sorted(lists[2], key=lambda r: r["subject"]) == sorted(rows, key=lambda r: r["subject"])
    refused = [row for row in with_bad if row["status"] == "refused"]
    assert len(refused) == 1
    last_row = str(len((ROOT / "examples" / "events.csv").read_text("utf-8").splitlines()) + 1)
    assert refused[0]["row"] == last_row
    assert refused[0]["problem"].startswith(f"row {last_row} quantity: ")
    assert [row for row in with_bad if row["status"] != "refused"] == rows
    assert "1 refused" in done.stderr
    assert "total due 604,600.00 yuan" in done.stderr


@pytest.mark.parametrize(
    ("setting", "message"),
    [("2", "needs PostgreSQL"), ("0", "must be 1 to 64"), ("two", "must be 1 to 64")],
)
def test_workers_are_refused_before_anything_starts(
    tmp_path: Path, setting: str, message: str
) -> None:
    """Two calculator processes on SQLite would each hold their own ledger locks."""
    env = {**os.environ, "SUBSIDY_DATA_DIR": str(tmp_path), "SUBSIDY_CALCULATOR_WORKERS": setting}
    env.pop("CALCULATOR_DATABASE_URL", None)
    completed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run.py")],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert completed.returncode == 1
    assert message in completed.stderr
    assert not (tmp_path / "calculator.db").exists()


def test_gateway_workers_without_redis_are_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    """Each gateway worker would count a tenant's requests on its own: N times its rate limit."""
    completed = launch(
        {
            "SUBSIDY_DATA_DIR": str(tmp_path),
            "SUBSIDY_GATEWAY_WORKERS": "2",
            "GATEWAY_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
            "GATEWAY_REDIS_URL": "",
        },
        timeout=30,
    )
    assert completed.returncode == 1
    assert "needs Redis (GATEWAY_REDIS_URL)" in completed.stderr
    assert not (tmp_path / "calculator.db").exists()


def launch(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """scripts/run.py run to its end, with the environment changed as given."""
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run.py")],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def test_a_port_in_use_is_named_before_anything_starts(tmp_path: Path) -> None:
    """A second `make run` beside a first had said "Ready" for the first one's services."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        taken = listening.getsockname()[1]
        completed = launch(
            {"SUBSIDY_DATA_DIR": str(tmp_path), **ports(), "SUBSIDY_REGISTRY_PORT": str(taken)}
        )
    assert completed.returncode == 1
    assert f"Port {taken} (registry) on 127.0.0.1 is in use" in completed.stderr
    assert "Ready" not in completed.stdout
    assert not (tmp_path / "registry.db").exists()


@pytest.mark.parametrize("port", ["70000", "abc", "0", "８０００"])
def test_a_port_that_is_no_port_is_refused(tmp_path: Path, port: str) -> None:
    completed = launch({"SUBSIDY_DATA_DIR": str(tmp_path), "SUBSIDY_GATEWAY_PORT": port})
    assert completed.returncode == 1
    assert "SUBSIDY_GATEWAY_PORT must be a port, 1 to 65535" in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize("kept", ["garbage", ""])
def test_a_kept_key_that_is_no_key_is_refused_naming_the_file(tmp_path: Path, kept: str) -> None:
    (tmp_path / "admin_key").write_text(kept)
    env = {"SUBSIDY_DATA_DIR": str(tmp_path), **ports()}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run.py")],
        env={k: v for k, v in {**os.environ, **env}.items() if k != "SUBSIDY_ADMIN_KEY"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert completed.returncode == 1
    assert f"{tmp_path / 'admin_key'} does not hold a usable admin key" in completed.stderr
    assert not (tmp_path / "registry.db").exists()


def test_a_kept_key_readable_by_others_is_made_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_module()
    monkeypatch.delenv("SUBSIDY_ADMIN_KEY", raising=False)
    key = run.admin_key(tmp_path)
    (tmp_path / "admin_key").chmod(0o644)
    assert run.admin_key(tmp_path) == key
    assert stat.S_IMODE((tmp_path / "admin_key").stat().st_mode) == 0o600


def test_a_data_dir_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    completed = launch({"SUBSIDY_DATA_DIR": str(tmp_path / "file" / "var"), **ports()})
    assert completed.returncode == 1
    assert "SUBSIDY_DATA_DIR" in completed.stderr
    assert "cannot be made" in completed.stderr
    assert "Traceback" not in completed.stderr


async def test_the_service_that_stopped_is_named(
    tmp_path: Path, database_factory: Callable[[str], Awaitable[str]]
) -> None:
    completed = launch(
        {
            "SUBSIDY_DATA_DIR": str(tmp_path),
            **ports(),
            "REGISTRY_DATABASE_URL": await database_factory("e2e_named_registry"),
            "CALCULATOR_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
        }
    )
    assert completed.returncode == 1
    assert "The system did not start: the calculator stopped (exit code" in completed.stderr


def in_its_own_group(tmp_path: Path, *, stderr: int) -> subprocess.Popen[str]:
    """scripts/run.py in a process group of its own, as a terminal starts it."""
    env = {"SUBSIDY_DATA_DIR": str(tmp_path / "var"), **ports()}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "run.py")],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=stderr, text=True,
        start_new_session=True,
    )  # fmt: skip


@pytest.mark.parametrize("after", [0.3, 0.6, 1.2])
def test_ctrl_c_while_starting_stops_everything_at_once(tmp_path: Path, after: float) -> None:
    """Ctrl-C reaches the whole process group. A service forked just then had the launcher's
    handler, which only notes a signal: it ran on until killed 10 s later, and a Ctrl-C before
    the services were ready was answered "Ready", or blamed the registry."""
    process = in_its_own_group(tmp_path, stderr=subprocess.PIPE)
    time.sleep(after)
    os.killpg(process.pid, signal.SIGINT)
    started = time.monotonic()
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert time.monotonic() - started < 8, "a service had to be killed"
    assert "Ready" not in out or out.index("Ready") < out.index("Stopping")
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # nothing of the group is left


def test_a_hangup_to_the_launcher_alone_stops_the_services(tmp_path: Path) -> None:
    """SIGHUP had ended the launcher and left the three services running, holding their ports."""
    process = in_its_own_group(tmp_path, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Ready."):
            break
    process.send_signal(signal.SIGHUP)
    assert process.wait(timeout=30) == 0
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)


def test_a_host_that_cannot_be_resolved_is_named(tmp_path: Path) -> None:
    completed = launch(
        {"SUBSIDY_DATA_DIR": str(tmp_path), **ports(), "SUBSIDY_HOST": "no-such-host.invalid"}
    )
    assert completed.returncode == 1
    assert "SUBSIDY_HOST 'no-such-host.invalid' cannot be resolved" in completed.stderr
    assert "in use" not in completed.stderr
