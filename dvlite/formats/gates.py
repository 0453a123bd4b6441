"""Metric gates: the `gates:` section of dvlite.yaml, and judging a value against one.

    gates:
      eval/metrics.json:
        accuracy: ">= 0.9"
        loss: ["<= previous * 1.05", "< 2"]

A condition is `OP BOUND`: OP one of >=, <=, >, <, ==, !=; BOUND a number, `previous` (the
value at the baseline revision), or `previous` times, plus or minus a number.
"""

from __future__ import annotations

import math
import posixpath
import re
from dataclasses import dataclass

from dvlite.errors import FormatError
from dvlite.formats.params import is_number
from dvlite.paths import why_unsafe

OPS = {
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CONDITION = re.compile(
    rf"^\s*(?P<op>>=|<=|==|!=|>|<)\s*(?:(?P<number>{_NUMBER})|previous"
    rf"(?:\s*(?P<arith>[*+-])\s*(?P<operand>{_NUMBER}))?)\s*$")
MAX_CONDITIONS = 10_000
MAX_TEXT = 200

# outcomes
PASSED, FAILED, MISSING, NO_BASELINE = "passed", "failed", "missing", "no-baseline"


@dataclass(frozen=True)
class Condition:
    path: str  # the metrics file, repo-relative
    key: str  # dotted key inside it
    op: str
    number: float | None  # a fixed bound; None when the bound is relative to `previous`
    arith: str | None  # "*", "+" or "-" applied to previous (None: previous itself)
    operand: float | None
    text: str  # as written

    @property
    def relative(self) -> bool:
        return self.number is None

    def bound(self, previous: float) -> float:
        if self.number is not None:
            return self.number
        if self.arith is None:
            return previous
        assert self.operand is not None
        return {"*": previous * self.operand, "+": previous + self.operand,
                "-": previous - self.operand}[self.arith]


@dataclass(frozen=True)
class Outcome:
    condition: Condition
    value: object  # the metric now (None when absent)
    previous: object  # at the baseline (None when absent or not needed)
    bound: float | None
    status: str  # passed | failed | missing | no-baseline

    @property
    def ok(self) -> bool:
        return self.status in (PASSED, NO_BASELINE)


def parse_condition(text: object, path: str, key: str, origin: str) -> Condition:
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise FormatError(f"{origin}: gates: {path}: {key}: a condition is a string such as "
                          f"\">= 0.9\" or \"<= previous * 1.05\"")
    m = _CONDITION.match(text)
    if m is None:
        raise FormatError(f"{origin}: gates: {path}: {key}: cannot read condition {text!r}",
                          hint="write OP BOUND: OP one of >= <= > < == !=, BOUND a number, "
                               "`previous`, or `previous * N` / `+ N` / `- N`")
    number = float(m["number"]) if m["number"] is not None else None
    operand = float(m["operand"]) if m["operand"] is not None else None
    if any(v is not None and not math.isfinite(v) for v in (number, operand)):
        raise FormatError(f"{origin}: gates: {path}: {key}: {text!r} is not a finite number")
    return Condition(path, key, m["op"], number, m["arith"], operand, text.strip())


def parse_gates(raw: dict, origin: str, base_dir: str = "") -> list[Condition]:
    """The conditions of one `gates:` section; paths are relative to the file's directory."""
    out: list[Condition] = []
    for path, keys in raw.items():
        if not isinstance(path, str) or not isinstance(keys, dict) or not keys:
            raise FormatError(f"{origin}: gates: {path!r} must map metric keys to conditions")
        rel = posixpath.normpath(posixpath.join(base_dir, path)) if base_dir else path
        problem = why_unsafe(rel)
        if problem:
            raise FormatError(f"{origin}: gates: {path!r}: {problem}")
        for key, conditions in keys.items():
            texts = conditions if isinstance(conditions, list) else [conditions]
            if not texts:
                raise FormatError(f"{origin}: gates: {path}: {key}: no condition")
            out += [parse_condition(t, rel, str(key), origin) for t in texts]
            if len(out) > MAX_CONDITIONS:
                raise FormatError(f"{origin}: gates: more than {MAX_CONDITIONS} conditions")
    return out


def judge(condition: Condition, value: object, previous: object) -> Outcome:
    """A condition against the metric now and (for relative bounds) at the baseline."""
    if not is_number(value):
        return Outcome(condition, value, previous, None, MISSING)
    if condition.relative:
        if not is_number(previous):
            return Outcome(condition, value, previous, None, NO_BASELINE)
        bound = condition.bound(float(previous))  # type: ignore[arg-type]
    else:
        bound = condition.bound(0.0)
    passed = OPS[condition.op](float(value), bound)  # type: ignore[arg-type]
    return Outcome(condition, value, previous, bound, PASSED if passed else FAILED)
