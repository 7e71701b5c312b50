"""The Python check of a condition gives CEL's verdict wherever it answers (Hypothesis)."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from calculator.engine.conditions import Condition, Verdict, cel_value, compile_condition
from calculator.engine.rules import compile_snapshot
from hypothesis import event, given, settings
from hypothesis import strategies as st
from registry.policy_files.loader import read_policy_dir

ROOT = Path(__file__).resolve().parents[4]

Views = Mapping[str, Any]
Outcome = Verdict | tuple[str, str]

SCALARS = ("int", "float", "str", "bool")
ELEMENTS = {"ints": "int", "floats": "float", "strs": "str", "bools": "bool"}
LISTS = {element: kind for kind, element in ELEMENTS.items()}
KINDS = (*SCALARS, *ELEMENTS)
ATTRIBUTES = {
    "int": "count",
    "float": "share",
    "str": "level",
    "bool": "local",
    "ints": "years",
    "floats": "shares",
    "strs": "levels",
    "bools": "flags",
}
KIND_OF = {name: kind for kind, name in ATTRIBUTES.items()}
INTS = [0, 1, 2, 3, 10, 2**63 - 1]
FLOATS = [0.5, 2.5, 0.3, 10.0, 1.0, 0.0]
STRINGS = ["", "x", "y", "X", "é", "a b", "中文", "event.level", "it's", 'say "hi"']
WILD = [
    None,
    "\ud800",
    "x\udfffy",
    ["\ud800"],
    2**63,
    -(2**63) - 1,
    2**64,
    Decimal("1.5"),
    {"a": 1},
    (1, 2),
    [1, "x"],
    [1, True],
    [2.5],
    [[1]],
    b"x",
]

int_values = st.sampled_from([*INTS, -5, -(2**63)]) | st.integers(-(2**63), 2**63 - 1)
float_values = st.sampled_from([*FLOATS, -0.0, math.inf, -math.inf, *[math.nan] * 3]) | st.floats()
string_values = st.sampled_from(STRINGS) | st.text(max_size=4)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "int": int_values,
    "float": float_values,
    "str": string_values,
    "bool": st.booleans(),
    "ints": st.lists(int_values, max_size=3),
    "floats": st.lists(float_values, max_size=3),
    "strs": st.lists(string_values, max_size=3),
    "bools": st.lists(st.booleans(), max_size=3),
}
wild_values = st.sampled_from(WILD)

string_contents = st.sampled_from(STRINGS) | st.text(
    st.characters(codec="utf-8", exclude_characters="'\"\\\n\r"), max_size=4
)
LITERALS: dict[str, st.SearchStrategy[str]] = {
    "int": st.sampled_from(INTS).map(str) | st.integers(0, 2**63 - 1).map(str),
    "float": st.sampled_from(FLOATS).map(str)
    | st.builds(
        "{}.{}".format, st.integers(0, 10**20), st.text("0123456789", min_size=1, max_size=20)
    ),
    "str": string_contents.map(lambda s: f'"{s}"' if "'" in s else f"'{s}'"),
    "bool": st.sampled_from(["true", "false"]),
}
LIST_LITERALS = {
    kind: st.lists(literal, min_size=1, max_size=3).map(", ".join)
    for kind, literal in LITERALS.items()
}


@cache
def pick(*options: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(options)


def rarely(draw: st.DrawFn, odds: int = 10) -> bool:
    return bool(draw(pick(*range(odds))) == 0)


def spaced(draw: st.DrawFn, operator: str) -> str:
    gap = " " if operator == "in" else draw(pick(" ", "", "\n\t"))
    return f"{gap}{operator}{gap}"


def attribute(draw: st.DrawFn, kind: str) -> str:
    return f"{draw(pick('event', 'event', 'applicant'))}.{ATTRIBUTES[kind]}"


def collection(draw: st.DrawFn, kind: str) -> str:
    """A list attribute, or a list literal of one type."""
    if draw(st.booleans()):
        return attribute(draw, kind)
    return f"[{draw(LIST_LITERALS[ELEMENTS[kind]])}]"


def primary(draw: st.DrawFn, kind: str, depth: int) -> str:
    """An attribute, literal or parenthesised expression, now and then of another type."""
    if rarely(draw):
        kind = draw(pick(*KINDS))
    if kind in ELEMENTS:
        return collection(draw, kind)
    form = draw(pick("attribute", "literal", "nested"))
    if form == "nested" and kind == "bool" and depth > 0:
        return f"({disjunction(draw, depth - 1)})"
    return attribute(draw, kind) if form == "attribute" else draw(LITERALS[kind])


def unary(draw: st.DrawFn, kind: str, depth: int) -> str:
    bangs = "!" * draw(pick(0, 0, 1, 2)) if kind == "bool" else ""
    return bangs + primary(draw, kind, depth)


def relation(draw: st.DrawFn, depth: int) -> str:
    """A comparison, a membership test, or a boolean operand alone."""
    form = draw(pick("compare", "member", "operand"))
    if form == "compare":
        kind = draw(pick(*SCALARS))
        other = draw(pick(*SCALARS)) if rarely(draw, 5) else kind
        ordered = kind != "bool" or rarely(draw)
        operator = draw(pick("==", "!=", "<", "<=", ">", ">=") if ordered else pick("==", "!="))
        return unary(draw, kind, depth) + spaced(draw, operator) + unary(draw, other, depth)
    if form == "member":
        kind = draw(pick("int", "int", "int", "str", "str", "str", "bool", "float"))
        return unary(draw, kind, depth) + spaced(draw, "in") + collection(draw, LISTS[kind])
    return unary(draw, "bool", depth)


def conjunction(draw: st.DrawFn, depth: int) -> str:
    terms = [relation(draw, depth) for _ in range(draw(pick(1, 1, 1, 2, 3)))]
    return spaced(draw, "&&").join(terms)


def disjunction(draw: st.DrawFn, depth: int) -> str:
    terms = [conjunction(draw, depth) for _ in range(draw(pick(1, 1, 1, 2, 3)))]
    return spaced(draw, "||").join(terms)


@st.composite
def expressions(draw: st.DrawFn) -> str:
    """A boolean expression in the subset the check covers."""
    return disjunction(draw, 2)


@st.composite
def views(draw: st.DrawFn, reads: tuple[tuple[str, str], ...]) -> tuple[Views, Views]:
    """The attributes read, present or absent, mostly of their own type, now and then not."""
    chosen: dict[str, dict[str, Any]] = {"event": {}, "applicant": {}}
    for variable, name in reads:
        form = draw(pick(*["typed"] * 18, "absent", "absent", "absent", "other", "other", "wild"))
        if form == "typed":
            chosen[variable][name] = draw(VALUES[KIND_OF[name]])
        elif form == "other":
            chosen[variable][name] = draw(VALUES[draw(pick(*KINDS))])
        elif form == "wild":
            chosen[variable][name] = draw(wild_values)
    return chosen["event"], chosen["applicant"]


def outcome(condition: Condition, event_view: Views, applicant_view: Views) -> Outcome:
    try:
        return condition.evaluate(event_view, applicant_view)
    except Exception as exc:
        return type(exc).__name__, str(exc)


def agree(condition: Condition, event_view: Views, applicant_view: Views) -> bool:
    """Assert the condition's outcome is CEL's alone; say whether the Python check gave it."""
    check = condition.check
    assert check is not None, condition.source
    answers: list[Any] = []

    def spy(seen_event: Views, seen_applicant: Views) -> Any:
        answers.append(check(seen_event, seen_applicant))
        return answers[-1]

    fast = outcome(replace(condition, check=spy), event_view, applicant_view)
    slow = outcome(replace(condition, check=None), event_view, applicant_view)
    assert fast == slow, (condition.source, event_view, applicant_view)
    return bool(answers)


def never_true_without_what_it_needs(
    condition: Condition, event_view: Views, applicant_view: Views
) -> None:
    """Where an attribute of `needs` is absent, CEL itself does not say true."""
    given_views = {"event": event_view, "applicant": applicant_view}
    if any(name not in given_views[variable] for variable, name in condition.needs):
        event("an attribute it needs is absent")
        cel = outcome(replace(condition, check=None), event_view, applicant_view)
        assert cel != Verdict(True), (condition.source, event_view, applicant_view)


@settings(max_examples=400, deadline=None)
@given(expressions(), st.data())
def test_the_check_agrees_with_cel(source: str, data: st.DataObject) -> None:
    condition = compile_condition(source)
    for event_view, applicant_view in data.draw(
        st.lists(views(condition.reads), min_size=1, max_size=6)
    ):
        event("answered by the check" if agree(condition, event_view, applicant_view) else "CEL")
        never_true_without_what_it_needs(condition, event_view, applicant_view)


@pytest.mark.parametrize(
    ("source", "needs"),
    [
        ("applicant.kind == 'enterprise' && event.year in applicant.years", 3),
        ("event.count == 1 || event.count == 2", 1),
        ("event.count == 1 || applicant.count == 2", 0),
        ("event.local && (event.count == 1 || true)", 1),
        ("!event.local", 0),
        ("(event.count == 1) == applicant.local", 1),
        ("has(event.count)", 0),
    ],
)
def test_what_a_condition_needs(source: str, needs: int) -> None:
    assert len(compile_condition(source).needs) == needs


NAN = math.nan
EDGES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("event.share < 1.0", {"share": NAN}, {}),
    ("event.share >= event.share", {"share": NAN}, {}),
    ("event.share == event.share || event.share != 0.5", {"share": NAN}, {}),
    ("event.share in event.shares", {"share": NAN, "shares": [NAN]}, {}),
    ("event.share == 0.0 && !(event.share < 0.0)", {"share": -0.0}, {}),
    ("event.share > 10.0", {"share": math.inf}, {}),
    ("event.count == applicant.count", {"count": -(2**63) - 1}, {"count": -(2**63)}),
    ("event.count < applicant.count", {"count": -(2**63) - 1}, {"count": -(2**63)}),
    ("event.count > 9223372036854775807", {"count": 2**63}, {}),
    ("event.count == 0", {"count": 2**64}, {}),
    ("event.count in event.years", {"count": 1, "years": [2**63]}, {}),
    ("event.count == 1", {"count": True}, {}),
    ("event.count == 1", {"count": 1.0}, {}),
    ("event.count < 2", {"count": 1.5}, {}),
    ("event.count in event.years", {"count": 1, "years": [True]}, {}),
    ("event.local in event.flags", {"local": True, "flags": [1]}, {}),
    ("event.local == true", {"local": 1}, {}),
    ("event.share == 1.5", {"share": Decimal("1.5")}, {}),
    ("event.level == 'x'", {"level": "\ud800"}, {}),
    ("event.level < applicant.level", {"level": "\uffff"}, {"level": "\U00010000"}),
    ("event.level < 'é' && 'é' < 'z'", {"level": "e"}, {}),
    ("event.level in ['x', 'y']", {"level": "x\udfffy"}, {}),
    ("event.count == 1 || true", {}, {}),
    ("event.count == 1 && false", {}, {}),
    ("false || event.local", {}, {}),
    ("!event.local", {}, {}),
    ("event.count < 'x'", {}, {}),
    ("event.count in event.years", {"years": 5}, {}),
    ("event.count in event.years", {"count": 1}, {}),
    ("event.local || applicant.local", {}, {"local": 5}),
    ("event.local && applicant.local", {"local": True}, {"local": True}),
    ("(event.count == 1) == applicant.local", {}, {"local": False}),
    ("event.count", {"count": 1}, {}),
    ("event.years", {"years": []}, {}),
]


@pytest.mark.parametrize(("source", "event_view", "applicant_view"), EDGES)
def test_the_check_agrees_with_cel_at_the_edges(
    source: str, event_view: dict[str, Any], applicant_view: dict[str, Any]
) -> None:
    agree(compile_condition(source), event_view, applicant_view)


def policy_conditions() -> tuple[dict[str, Condition], dict[tuple[str, str], list[Any]]]:
    """Every condition of the policy files, and values for the attributes the matters declare."""
    policy_set = read_policy_dir(ROOT / "policies")
    rules = compile_snapshot(
        {
            "version": "policy-files",
            "regions": [r.model_dump(mode="json") for r in policy_set.regions.regions],
            "matters": [m.model_dump(mode="json") for m in policy_set.matters.matters],
            "documents": [d.model_dump(mode="json") for _, d in policy_set.documents],
        }
    )
    conditions = {
        c.condition.source: c.condition
        for clauses in rules.clauses.values()
        for c in clauses
        if c.condition is not None
    }
    for exclusions in rules.exclusions.values():
        conditions.update((e.when.source, e.when) for e in exclusions)
    values: dict[tuple[str, str], list[Any]] = {
        ("event", "year"): [2014, 2016, 2017, 2020, 2024],
        ("event", "quantity"): [1, 2, 3],
        ("event", "date"): ["2014-01-01", "2020-06-30", "2024-12-31"],
        ("applicant", "kind"): ["enterprise", "individual", "institution"],
    }
    for attributes in rules.attributes.values():
        for name, spec in attributes.items():
            slot = values.setdefault((spec.get("on", "event"), name), [])
            kind = spec.get("type")
            if kind == "enum":
                slot += [*spec["values"], "other"]
            elif kind == "integer":
                slot += [0, 1, 3, 12, 40, 2**63 - 1]
            elif kind in ("money", "decimal"):
                slot += [cel_value(Decimal(v)) for v in ("0", "0.25", "0.3", "1", "3500.5")]
            elif kind == "boolean":
                slot += [True, False]
            elif kind == "integer_list":
                slot += [[], [2016, 2017], [2020]]
            elif kind == "date":
                slot += ["2013-09-01", "2016-08-31", "2021-03-15"]
            else:
                slot += ["", "x"]
    return conditions, values


def policy_inputs(
    condition: Condition, values: Mapping[tuple[str, str], list[Any]]
) -> list[tuple[Views, Views]]:
    """No attribute, each one missing, each of a wrong type, and random declared values."""
    numbers = {Decimal(n) for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?", condition.source)}
    near = [cel_value(n + d) for n in numbers for d in (-1, 0, 1)]
    rng = random.Random(condition.source)

    def draw(read: tuple[str, str]) -> Any:
        pool = values.get(read) or ["x", 1, True]
        if near and all(type(v) in (int, float) for v in pool) and rng.random() < 0.5:
            pool = near
        return rng.choice(pool)

    def wrong(read: tuple[str, str]) -> Any:
        return 1 if all(type(v) is str for v in values.get(read, ())) else "x"

    def split(chosen: Mapping[tuple[str, str], Any]) -> tuple[Views, Views]:
        return (
            {name: v for (variable, name), v in chosen.items() if variable == "event"},
            {name: v for (variable, name), v in chosen.items() if variable == "applicant"},
        )

    reads = condition.reads
    inputs = [split({})]
    inputs += [split({r: draw(r) for r in reads}) for _ in range(12)]
    inputs += [split({r: draw(r) for r in reads if r != read}) for read in reads]
    inputs += [split({r: wrong(r) if r == read else draw(r) for r in reads}) for read in reads]
    return inputs


def test_every_policy_condition_agrees_with_cel() -> None:
    conditions, values = policy_conditions()
    covered = [c for c in conditions.values() if c.check is not None]
    assert len(covered) > len(conditions) / 2
    for condition in covered:
        answered = [agree(condition, *pair) for pair in policy_inputs(condition, values)]
        assert any(answered), condition.source


@pytest.mark.parametrize("negations", [1998, 1999])
def test_a_condition_deeper_than_python_recurses_is_left_to_cel(negations: int) -> None:
    """The registry lets CEL judge a condition's depth; a chain of negations CEL takes is
    compiled without the Python check, and judged as CEL judges it."""
    condition = compile_condition("!" * negations + "true")
    assert condition.check is None
    assert condition.evaluate({}, {}) == Verdict(negations % 2 == 0)
