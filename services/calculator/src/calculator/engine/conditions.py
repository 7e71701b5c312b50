"""Conditions in CEL, compiled once per rule set and evaluated per event."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from subsidy_common.cel_core import core as cel

_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_ATTRIBUTE = re.compile(r"\b(event|applicant)\.([A-Za-z_][A-Za-z0-9_]*)")

Views = Mapping[str, Any]
Check = Callable[[Views, Views], Any]


class ConditionError(ValueError):
    """A condition that does not compile, or does not evaluate to true or false."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """True, false, or unknown for want of the named attributes."""

    value: bool | None
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled CEL expression and the attributes it reads."""

    source: str
    program: Any
    reads: tuple[tuple[str, str], ...]
    event_reads: tuple[str, ...] = ()
    applicant_reads: tuple[str, ...] = ()
    # Attributes without any one of which it cannot be true (absent makes a comparison, and so
    # an `&&` over it, error or false in CEL), so a decision need not evaluate it.
    needs: tuple[tuple[str, str], ...] = ()
    # The same expression in Python, for values whose meaning in CEL is beyond doubt.
    check: Check | None = field(default=None, compare=False, repr=False)

    def evaluate(self, event: Mapping[str, Any], applicant: Mapping[str, Any]) -> Verdict:
        """Evaluate on an event and applicant; unknown only if a missing attribute decides it.

        CEL short-circuits `&&` and `||` both ways and fails on a missing key only when it must
        read it, so `a == 1 || b == 2` is true with `b` absent when `a` is 1.
        """
        value = self._value(event, applicant)
        if value is _ABSENT:
            return Verdict(None, self._missing(event, applicant))
        return TRUE if value else FALSE

    def holds(self, event: Mapping[str, Any], applicant: Mapping[str, Any]) -> bool:
        """Whether it is true for certain: unknown for want of an attribute does not hold."""
        return self._value(event, applicant) is True

    def _value(self, event: Mapping[str, Any], applicant: Mapping[str, Any]) -> bool | _Absent:
        if (
            self.check is not None
            and _plain(event, self.event_reads)
            and _plain(applicant, self.applicant_reads)
        ):
            try:
                value = self.check(event, applicant)
            except _Unsure:
                pass  # CEL decides, and explains
            else:
                return value if value is _ABSENT else bool(value)
        # Only the attributes the expression reads cross into CEL: converting whole views
        # costs more than evaluating the expression.
        seen_event = {n: event[n] for n in self.event_reads if n in event}
        seen_applicant = {n: applicant[n] for n in self.applicant_reads if n in applicant}
        try:
            value = self.program.execute({"event": seen_event, "applicant": seen_applicant})
        except KeyError:
            if self._missing(event, applicant):
                return _ABSENT
            raise
        except Exception as exc:  # the library raises bare errors on type faults
            raise ConditionError(f"{self.source!r} failed: {exc}") from exc
        if value is True or value is False:
            return value
        raise ConditionError(f"{self.source!r} gave {value!r}, not true or false")

    def _missing(self, event: Mapping[str, Any], applicant: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(n for n in self.event_reads if n not in event) + tuple(
            f"applicant.{n}" for n in self.applicant_reads if n not in applicant
        )


TRUE = Verdict(True)
FALSE = Verdict(False)
_AS_IS = frozenset({str, int, float, bool, type(None)})


def compile_condition(source: str) -> Condition:
    """Parse a condition once."""
    try:
        program = cel.compile(source)
    except ValueError as exc:
        raise ConditionError(str(exc).splitlines()[0]) from exc
    code = _STRING_LITERAL.sub('""', source)
    reads = tuple(sorted({(m.group(1), m.group(2)) for m in _ATTRIBUTE.finditer(code)}))
    parser = _Parser(source)
    check = parser.check(reads)
    return Condition(
        source=source,
        program=program,
        reads=reads,
        event_reads=tuple(name for variable, name in reads if variable == "event"),
        applicant_reads=tuple(name for variable, name in reads if variable == "applicant"),
        check=check,
        needs=tuple(sorted(parser.needs)) if check is not None else (),
    )


def cel_view(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes as CEL sees them; most are plain values and pass as they are."""
    return {k: v if type(v) in _AS_IS else cel_value(v) for k, v in attributes.items()}


def cel_value(value: Any) -> Any:
    """A value as CEL sees it: decimals become numbers, nested values likewise."""
    if type(value) in _AS_IS:
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | tuple):
        return [cel_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: cel_value(v) for k, v in value.items()}
    return value


# The Python evaluation covers the subset of CEL the policy files use: attributes of `event` and
# `applicant`, int, double, string and bool literals, lists of literals, `== != < <= > >= in`,
# `! && ||` and parentheses. It answers only where CEL's answer is certain: every attribute
# present is of a plain type that CEL converts, both sides of a comparison have one type, and
# logical operands are bools. An absent attribute is an error that `&&` and `||` absorb as CEL
# does (`false && x` is false whichever side is false). Anything else raises _Unsure, and CEL
# itself evaluates the expression, so results, errors and missing attributes stay CEL's.


class _Unsure(Exception):
    pass


class _Absent:
    """An attribute the request did not give, or an expression that needed one."""


_ABSENT = _Absent()
_INT64 = range(-(2**63), 2**63)
_SCALARS = (bool, int, float, str)
_ORDERED = (int, float, str)


def _plain_scalar(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return value.isascii() or not any("\ud800" <= c <= "\udfff" for c in value)
    if kind is int:
        return value in _INT64
    return kind is bool or kind is float


def _plain(view: Views, names: tuple[str, ...]) -> bool:
    """Whether every attribute of `names` the view has is a value CEL converts and we read alike."""
    for name in names:
        value = view.get(name, _ABSENT)
        if value is _ABSENT:
            continue
        if type(value) is list:
            if not all(_plain_scalar(item) for item in value):
                return False
        elif not _plain_scalar(value):
            return False
    return True


def _attribute(variable: str, name: str) -> Check:
    if variable == "event":
        return lambda event, applicant: event.get(name, _ABSENT)
    return lambda event, applicant: applicant.get(name, _ABSENT)


def _literal(value: Any) -> Check:
    return lambda event, applicant: value


def _equal(left: Check, right: Check, negate: bool) -> Check:
    def equal(event: Views, applicant: Views) -> Any:
        a, b = left(event, applicant), right(event, applicant)
        if a is _ABSENT or b is _ABSENT:
            return _ABSENT
        if type(a) is not type(b) or type(a) not in _SCALARS:
            raise _Unsure
        return (a == b) is not negate

    return equal


def _order(left: Check, right: Check, compare: Callable[[Any, Any], bool]) -> Check:
    def order(event: Views, applicant: Views) -> Any:
        a, b = left(event, applicant), right(event, applicant)
        if a is _ABSENT or b is _ABSENT:
            return _ABSENT
        if type(a) is not type(b) or type(a) not in _ORDERED or a != a or b != b:  # NaN
            raise _Unsure
        return compare(a, b)

    return order


def _member(left: Check, right: Check) -> Check:
    def member(event: Views, applicant: Views) -> Any:
        a, items = left(event, applicant), right(event, applicant)
        if a is _ABSENT or items is _ABSENT:
            return _ABSENT
        kind = type(a)
        if kind is float or kind not in _SCALARS or type(items) not in (list, tuple):
            raise _Unsure
        if not all(type(item) is kind for item in items):
            raise _Unsure
        return a in items

    return member


def _logical(value: Any) -> Any:
    if value is not True and value is not False and value is not _ABSENT:
        raise _Unsure
    return value


def _and(left: Check, right: Check) -> Check:
    def both(event: Views, applicant: Views) -> Any:
        a = _logical(left(event, applicant))
        if a is False:
            return False
        b = _logical(right(event, applicant))
        if b is False:
            return False
        return True if a is True and b is True else _ABSENT

    return both


def _or(left: Check, right: Check) -> Check:
    def either(event: Views, applicant: Views) -> Any:
        a = _logical(left(event, applicant))
        if a is True:
            return True
        b = _logical(right(event, applicant))
        if b is True:
            return True
        return False if a is False and b is False else _ABSENT

    return either


def _not(operand: Check) -> Check:
    def negation(event: Views, applicant: Views) -> Any:
        a = _logical(operand(event, applicant))
        return a if a is _ABSENT else not a

    return negation


def _boolean(expression: Check) -> Check:
    def boolean(event: Views, applicant: Views) -> Any:
        return _logical(expression(event, applicant))

    return boolean


_TOKEN = re.compile(
    r"[ \t\n\r\f]*(?:"
    r"(?P<attribute>(?:event|applicant)\.[A-Za-z_][A-Za-z0-9_]*)(?![A-Za-z0-9_])"
    r"|(?P<number>(?:0|[1-9][0-9]*)(?:\.[0-9]+)?)(?![A-Za-z0-9_.])"
    r"|(?P<string>'[^'\\\n\r]*'|\"[^\"\\\n\r]*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<symbol>&&|\|\||==|!=|<=|>=|[<>!()\[\],])"
    r")"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_RELATIONS = frozenset({"==", "!=", "in", *_COMPARE})


class _NotCovered(Exception):
    pass


Attribute = tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Node:
    """A parsed expression: its check, the attributes it cannot be true without, and the
    attribute it is, if it is one."""

    check: Check
    needs: frozenset[Attribute] = frozenset()
    attribute: Attribute | None = None


class _Parser:
    """Recursive descent over CEL's grammar, restricted to the subset above."""

    def __init__(self, source: str) -> None:
        self.reads: set[tuple[str, str]] = set()
        self.needs: frozenset[Attribute] = frozenset()
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while source[position:].strip(" \t\n\r\f"):
            match = _TOKEN.match(source, position)
            if match is None or match.lastgroup is None:
                self.tokens = [("error", "")]
                break
            self.tokens.append((match.lastgroup, match.group(match.lastgroup)))
            position = match.end()
        self.position = 0

    def check(self, reads: tuple[tuple[str, str], ...]) -> Check | None:
        """The expression as a Python check, or None when it is outside the subset."""
        try:
            expression = self._or()
        except (_NotCovered, RecursionError):  # deeper than Python recurses: CEL evaluates it
            return None
        if self.position != len(self.tokens) or not self.reads <= set(reads):
            return None
        self.needs = expression.needs
        return _boolean(expression.check)

    def _peek(self) -> str | None:
        """The next operator or keyword, if the next token is one."""
        if self.position < len(self.tokens):
            kind, text = self.tokens[self.position]
            return text if kind in ("symbol", "name") else None
        return None

    def _take(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise _NotCovered
        self.position += 1
        return self.tokens[self.position - 1]

    def _expect(self, text: str) -> None:
        if self._take() != ("symbol", text):
            raise _NotCovered

    def _or(self) -> _Node:
        expression = self._and()
        while self._peek() == "||":
            self.position += 1
            other = self._and()  # true when either is: each needs only what both need
            expression = _Node(_or(expression.check, other.check), expression.needs & other.needs)
        return expression

    def _and(self) -> _Node:
        expression = self._relation()
        while self._peek() == "&&":
            self.position += 1
            other = self._relation()
            expression = _Node(_and(expression.check, other.check), expression.needs | other.needs)
        return expression

    def _relation(self) -> _Node:
        left = self._unary()
        operator = self._peek()
        if operator not in _RELATIONS:
            return left
        self.position += 1
        right = self._unary()
        if self._peek() in _RELATIONS:  # chained relations: left to CEL
            raise _NotCovered
        # An absent attribute compared is an error; a parenthesised operand may not be.
        needs = frozenset(a for a in (left.attribute, right.attribute) if a is not None)
        if operator in ("==", "!="):
            return _Node(_equal(left.check, right.check, negate=operator == "!="), needs)
        if operator == "in":
            return _Node(_member(left.check, right.check), needs)
        return _Node(_order(left.check, right.check, _COMPARE[operator]), needs)

    def _unary(self) -> _Node:
        if self._peek() == "!":
            self.position += 1
            return _Node(_not(self._unary().check))  # true when false: nothing known
        return self._primary()

    def _primary(self) -> _Node:
        kind, text = self._take()
        if kind == "symbol" and text == "(":
            expression = self._or()
            self._expect(")")
            return _Node(expression.check, expression.needs)
        if kind == "symbol" and text == "[":
            items = [self._literal(self._take())]
            while self._peek() == ",":
                self.position += 1
                items.append(self._literal(self._take()))
            self._expect("]")
            if len({type(item) for item in items}) != 1:
                raise _NotCovered
            return _Node(_literal(tuple(items)))
        if kind == "attribute":
            variable, name = text.split(".")
            read = (variable, name)
            self.reads.add(read)
            return _Node(_attribute(variable, name), frozenset({read}), read)
        return _Node(_literal(self._literal((kind, text))))

    @staticmethod
    def _literal(token: tuple[str, str]) -> Any:
        kind, text = token
        if kind == "string":
            return text[1:-1]
        if kind == "number":
            value = float(text) if "." in text else int(text)
            if type(value) is int and value not in _INT64:
                raise _NotCovered
            return value
        if kind == "name" and text in ("true", "false"):
            return text == "true"
        raise _NotCovered
