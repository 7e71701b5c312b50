"""Event decisions per second, in process, with the whole registry of policy files.

    .venv/bin/python bench/engine.py [--events 200000] [--seconds 5] [--rounds 1]
    .venv/bin/python bench/engine.py --instructions

One core, no I/O: the engine's `decide` over a mix of seed matters and dates, each event
decided with every clause that rewards its matter. On a shared machine, run several rounds and
read the median, or count instructions: `--instructions` runs callgrind twice over the same
workload, 1,000 and 11,000 one-event decisions, and prints the instructions per decision, a
figure that does not move with the machine's load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import statistics
import sys
import time
from pathlib import Path

from calculator.engine.decide import decide
from calculator.engine.model import Applicant, Event
from calculator.engine.rules import RuleSet, compile_snapshot
from harness import instructions_per_unit
from registry.policy_files.loader import read_policy_dir

ROOT = Path(__file__).resolve().parents[1]


def seed_rules() -> RuleSet:
    """The rule set the registry would serve for the repository's policy files."""
    policy_set = read_policy_dir(ROOT / "policies")
    return compile_snapshot(
        {
            "version": "bench",
            "regions": [r.model_dump(mode="json") for r in policy_set.regions.regions],
            "matters": [m.model_dump(mode="json") for m in policy_set.matters.matters],
            "documents": [d.model_dump(mode="json") for _, d in policy_set.documents],
        }
    )


def workload(rules: RuleSet, count: int, rng: random.Random) -> list[tuple[Applicant, Event]]:
    """Applicants and events over the matters the seeds reward, 2014 to 2024."""
    matters = sorted(m for m in rules.clauses if rules.clauses[m])
    regions = ["510502", "510503", "510504", "510521", "510500-GX", "530402", "620000"]
    cases = []
    for i in range(count):
        matter = rng.choice(matters)
        attributes: dict[str, object] = {}
        for name, spec in rules.attributes.get(matter, {}).items():
            if spec.get("on", "event") != "event":
                continue
            kind = spec.get("type")
            if kind == "enum":
                attributes[name] = rng.choice(spec["values"])
            elif kind in ("integer",):
                attributes[name] = rng.randint(0, 20)
            elif kind in ("money", "decimal"):
                attributes[name] = rng.randint(0, 100_000_000)
            elif kind == "boolean":
                attributes[name] = rng.random() < 0.8
        kind = rng.choice(["enterprise", "enterprise", "individual", "institution"])
        applicant = Applicant(id=f"A{i}", kind=kind, region=rng.choice(regions))  # type: ignore[arg-type]
        event = Event(
            matter=matter,
            date=dt.date(2014, 1, 1) + dt.timedelta(days=rng.randint(0, 3650)),
            subject=f"S{i}",
            quantity=rng.randint(1, 3),
            attributes=attributes,
        )
        cases.append((applicant, event))
    return cases


_PER_UNIT = 10  # decisions per unit of the instruction count


def decide_once(decisions: int) -> None:
    """Decide the first decisions of a fixed workload once, one event each (for callgrind)."""
    rules = seed_rules()
    cases = workload(rules, 1100 * _PER_UNIT, random.Random(7))
    for applicant, event in cases[:decisions]:
        decide(applicant, [event], rules)


def instructions() -> None:
    """Instructions per one-event decision: two callgrind runs that differ by 10,000 decisions."""
    per_unit = instructions_per_unit(
        lambda units: [sys.executable, __file__, "--decide-once", str(units * _PER_UNIT)]
    )
    print(f"{per_unit / _PER_UNIT:,.0f} instructions per one-event decision")


def main() -> None:
    """Run the benchmark and print decisions per second, or count instructions."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=1, help="runs per size; the median is shown")
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--decide-once", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.instructions:
        instructions()
        return
    if args.decide_once is not None:
        decide_once(args.decide_once)
        return
    rules = seed_rules()
    clauses = sum(len(c) for c in rules.clauses.values())
    cases = workload(rules, args.events, random.Random(7))
    print(f"python {platform.python_version()} on {platform.machine()}, {clauses} clauses")
    for per_applicant in (1, 5):
        groups = [
            (cases[i][0], [event for _, event in cases[i : i + per_applicant]])
            for i in range(0, len(cases), per_applicant)
        ]
        for applicant, events in groups[:200]:
            decide(applicant, events, rules)
        rates = []
        for _ in range(args.rounds):
            decided = 0
            started = time.perf_counter()
            while time.perf_counter() - started < args.seconds:
                for applicant, events in groups:
                    decide(applicant, events, rules)
                decided += len(cases)
            elapsed = time.perf_counter() - started
            rates.append(decided / elapsed)
            print(
                f"{per_applicant} event(s) per applicant: {decided} event decisions in"
                f" {elapsed:.2f} s: {decided / elapsed:,.0f} per second"
            )
        if args.rounds > 1:
            print(
                f"{per_applicant} event(s) per applicant: median of {args.rounds}:"
                f" {statistics.median(rates):,.0f} per second"
            )


if __name__ == "__main__":
    main()
