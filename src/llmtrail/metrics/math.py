"""CloudWatch metric math over `MetricDataResult` series: ``m1 + m2``, ``SUM(METRICS())``,
``m1 / PERIOD(m1)``, ``FILL(m1, 0)``, ``RATE(m1)``,
``SEARCH('{AWS/Bedrock,ModelId} …', 'Sum', 300)``.

Expressions are parsed by a small Pratt parser (binding powers: ``+ -`` < ``* /`` < unary
``-`` < ``^``) into a tree of tuples and evaluated over values that are either a scalar or a
list of series. Arithmetic aligns series by timestamp (a point exists where both sides have
one), applies a scalar to every point, and maps a list of series against a single series or a
scalar. A result that is a scalar is drawn over the inputs' timestamps. Points that divide by
zero or overflow are left out, as CloudWatch leaves a gap. Pure: the data comes in, the
``search`` callback is the only way out (the caller's metrics service).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from llmtrail.errors import ValidationError
from llmtrail.metrics.model import MetricDataResult

SearchFn = Callable[[str, str, int], list[MetricDataResult]]
MAX_EXPRESSION = 2048  # CloudWatch's limit on an expression's length
MAX_DEPTH = 64

_TOKEN = re.compile(
    r"\s*(?:(?P<number>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<string>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<op>[-+*/^(),]))"
)
_BINDING = {"+": 10, "-": 10, "*": 20, "/": 20, "^": 40}
_UNARY = 30
FILL_MODES = ("REPEAT", "LINEAR")


@dataclass(frozen=True)
class _Token:
    kind: str  # number | name | string | op | end
    text: str
    at: int


Inputs = Mapping[str, MetricDataResult | list[MetricDataResult]]


def _flat(inputs: Inputs) -> list[MetricDataResult]:
    return [s for v in inputs.values() for s in (v if isinstance(v, list) else [v])]


Node = (
    tuple  # ("num", x) | ("str", s) | ("ref", id) | ("neg", n) | (op, l, r) | ("call", name, args)
)


def evaluate_expression(
    expression: str,
    inputs: Inputs,
    *,
    period: int,
    search: SearchFn | None = None,
    metric_ids: Collection[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[MetricDataResult]:
    """The series ``expression`` computes from ``inputs`` (by id: a series, or the list an
    expression such as a SEARCH gave). ``metric_ids`` are the
    ids ``METRICS()`` stands for (default: every input); ``start``/``end`` bound the grid
    ``FILL`` fills (default: the inputs' first and last timestamps). Raises `ValidationError`
    naming the expression for a syntax error, an unknown id or a misused function."""
    tree = parse_expression(expression)
    context = _Context(expression, inputs, period, search, metric_ids, start, end)
    value = context.evaluate(tree)
    if isinstance(value, float):
        stamps = sorted({t for s in _flat(inputs) for t in s.timestamps})
        if not math.isfinite(value):
            return [MetricDataResult("", expression)]
        return [MetricDataResult("", expression, stamps, [value] * len(stamps))]
    return value


def parse_expression(expression: str) -> Node:
    """The tree of ``expression``; `ValidationError` naming it when it does not parse."""
    if not isinstance(expression, str) or not expression.strip():
        raise ValidationError("expression", "is required (a metric math expression)")
    if len(expression) > MAX_EXPRESSION:
        raise ValidationError(
            "expression", f"is longer than the limit of {MAX_EXPRESSION} characters"
        )
    return _Parser(expression).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def error(self, reason: str, token: _Token | None = None) -> ValidationError:
        token = token or self.tokens[self.i]
        found = "the end" if token.kind == "end" else repr(token.text)
        return ValidationError(
            "expression", f"{self.text!r}: {reason} at position {token.at + 1}, found {found}"
        )

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        if token.kind != "end":
            self.i += 1
        return token

    def expect(self, text: str) -> None:
        if self.peek().text != text or self.peek().kind != "op":
            raise self.error(f"expected {text!r}")
        self.advance()

    def parse(self) -> Node:
        tree = self.expression(0)
        if self.peek().kind != "end":
            raise self.error("expected an operator or the end")
        return tree

    def expression(self, min_power: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error("the expression is nested too deeply")
        left = self.prefix()
        while True:
            token = self.peek()
            power = _BINDING.get(token.text) if token.kind == "op" else None
            if power is None or power <= min_power:
                break
            self.advance()
            right_power = power - 1 if token.text == "^" else power  # ^ is right-associative
            left = (token.text, left, self.expression(right_power))
        self.depth -= 1
        return left

    def prefix(self) -> Node:
        token = self.advance()
        if token.kind == "number":
            return ("num", float(token.text))
        if token.kind == "string":
            return ("str", _unquote(token.text))
        if token.kind == "op" and token.text == "-":
            return ("neg", self.expression(_UNARY))
        if token.kind == "op" and token.text == "(":
            inner = self.expression(0)
            self.expect(")")
            return inner
        if token.kind == "name":
            if self.peek().kind == "op" and self.peek().text == "(":
                self.advance()
                args: list[Node] = []
                while not (self.peek().kind == "op" and self.peek().text == ")"):
                    args.append(self.expression(0))
                    if self.peek().kind == "op" and self.peek().text == ",":
                        self.advance()
                    elif not (self.peek().kind == "op" and self.peek().text == ")"):
                        raise self.error("expected ',' or ')'")
                self.advance()
                return ("call", token.text.upper(), tuple(args))
            return ("ref", token.text)
        raise self.error("expected a number, a metric id or a function", token)


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            tokens.append(_Token("end", "", pos))
            return tokens
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            raise ValidationError(
                "expression", f"{text!r}: unexpected character {text[pos]!r} at position {pos + 1}"
            )
        tokens.append(
            _Token(match.lastgroup, match.group(match.lastgroup), match.start(match.lastgroup))
        )
        pos = match.end()


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


Value = float | list[MetricDataResult]


class _Context:
    def __init__(
        self,
        expression: str,
        inputs: Inputs,
        period: int,
        search: SearchFn | None,
        metric_ids: Collection[str] | None,
        start: datetime | None,
        end: datetime | None,
    ) -> None:
        self.expression = expression
        self.inputs = inputs
        self.period = period
        self.search = search
        self.metric_ids = list(inputs) if metric_ids is None else list(metric_ids)
        self.start = start
        self.end = end

    def error(self, reason: str) -> ValidationError:
        return ValidationError("expression", f"{self.expression!r}: {reason}")

    def evaluate(self, node: Node) -> Value:
        kind = node[0]
        if kind == "num":
            return float(node[1])
        if kind == "str":
            raise self.error(f"a string ({node[1]!r}) is only an argument of SEARCH or METRICS")
        if kind == "ref":
            if node[1] not in self.inputs:
                known = ", ".join(sorted(self.inputs)) or "none"
                raise self.error(f"unknown id {node[1]!r} (ids here: {known})")
            found = self.inputs[node[1]]
            return list(found) if isinstance(found, list) else [found]
        if kind == "neg":
            return _apply(self.evaluate(node[1]), 0.0, lambda a, _: -a, self.expression)
        if kind == "call":
            return self.call(node[1], node[2])
        left, right = self.evaluate(node[1]), self.evaluate(node[2])
        return _arithmetic(node[0], left, right, self.expression, self.error)

    def call(self, name: str, args: tuple[Node, ...]) -> Value:
        if name == "METRICS":
            if len(args) > 1 or (args and args[0][0] != "str"):
                raise self.error("METRICS takes no argument or one string")
            part = args[0][1] if args else ""
            chosen = [self.inputs[i] for i in self.metric_ids if part in i and i in self.inputs]
            return [s for c in chosen for s in (c if isinstance(c, list) else [c])]
        if name == "SEARCH":
            return self.search_call(args)
        if name == "FILL":
            return self.fill(args)
        if name == "PERIOD":
            self.arity(name, args, 1)
            if args[0][0] != "ref":
                raise self.error("PERIOD takes a metric id")
            self.evaluate(args[0])  # the id must exist
            return float(self.period)
        if name in _REDUCERS:
            self.arity(name, args, 1)
            return _reduce(name, self.evaluate(args[0]))
        if name in _POINTWISE:
            self.arity(name, args, 1)
            return _apply(self.evaluate(args[0]), 0.0, _POINTWISE[name], self.expression)
        if name in ("RATE", "DIFF"):
            self.arity(name, args, 1)
            return _differences(self.evaluate(args[0]), per_second=name == "RATE")
        supported = ", ".join(
            sorted({*_REDUCERS, *_POINTWISE, "METRICS", "SEARCH", "FILL", "PERIOD", "RATE", "DIFF"})
        )
        raise self.error(f"the function {name} is not supported (supported: {supported})")

    def arity(self, name: str, args: tuple[Node, ...], count: int) -> None:
        if len(args) != count:
            raise self.error(f"{name} takes {count} argument(s), got {len(args)}")

    def search_call(self, args: tuple[Node, ...]) -> Value:
        if not 2 <= len(args) <= 3 or args[0][0] != "str" or args[1][0] != "str":
            raise self.error("SEARCH takes a search string, a statistic and an optional period")
        period = self.period
        if len(args) == 3:
            given = args[2][1] if args[2][0] == "num" else math.nan
            if not math.isfinite(given) or given <= 0 or given != int(given):
                raise self.error("the period of SEARCH must be a whole number of seconds")
            period = int(args[2][1])
        if self.search is None:
            raise self.error("SEARCH is not available here")
        return self.search(args[0][1], args[1][1], period)

    def fill(self, args: tuple[Node, ...]) -> Value:
        self.arity("FILL", args, 2)
        series = self.evaluate(args[0])
        if isinstance(series, float):
            return series
        mode = args[1][1].upper() if args[1][0] == "ref" else None
        if mode is not None and mode not in FILL_MODES:
            raise self.error("FILL takes a number, REPEAT or LINEAR as its second argument")
        value = None if mode else self.evaluate(args[1])
        grid = self.grid([*_flat(self.inputs), *series])
        out = []
        for s in series:
            if isinstance(value, list):
                points = dict(zip(s.timestamps, s.values, strict=True))
                filler = (
                    dict(zip(value[0].timestamps, value[0].values, strict=True)) if value else {}
                )
                stamps = sorted(set(grid) | set(points))
                kept = [(t, points.get(t, filler.get(t))) for t in stamps]
                pairs = [(t, v) for t, v in kept if v is not None]
            else:
                pairs = _filled(s, grid, mode, value)
            out.append(_series(s.id, s.label, pairs))
        return out

    def grid(self, series: list[MetricDataResult]) -> list[datetime]:
        stamps = [t for s in series for t in s.timestamps]
        start = self.start or (min(stamps) if stamps else None)
        end = self.end or (max(stamps) + timedelta(seconds=1) if stamps else None)
        if start is None or end is None or self.period <= 0:
            return []
        step = self.period
        first = math.ceil(start.timestamp() / step) * step
        count = min(100_800, max(0, math.ceil((end.timestamp() - first) / step)))
        return [datetime.fromtimestamp(first + i * step, UTC) for i in range(count)]


def _filled(
    s: MetricDataResult, grid: list[datetime], mode: str | None, value: float | None
) -> list[tuple[datetime, float]]:
    points = dict(zip(s.timestamps, s.values, strict=True))
    stamps = sorted(set(grid) | set(points))
    known = sorted(points)
    out = []
    for t in stamps:
        if t in points:
            out.append((t, points[t]))
            continue
        at = bisect.bisect_left(known, t)  # known[at - 1] < t < known[at], found by bisection
        if mode is None and value is not None:
            out.append((t, value))
        elif mode == "REPEAT" and at > 0:
            out.append((t, points[known[at - 1]]))
        elif mode == "LINEAR" and 0 < at < len(known):
            a, b = known[at - 1], known[at]
            share = (t - a) / (b - a)
            out.append((t, points[a] + (points[b] - points[a]) * share))
    return out


def _series(id: str, label: str, pairs: Sequence[tuple[datetime, float]]) -> MetricDataResult:
    kept = [(t, v) for t, v in pairs if math.isfinite(v)]
    return MetricDataResult(id, label, [t for t, _ in kept], [v for _, v in kept])


def _operate(op: str, a: float, b: float) -> float:
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b if b != 0 else math.nan
        return float(a**b) if not (a < 0 and b != int(b)) else math.nan
    except (OverflowError, ZeroDivisionError):
        return math.nan


def _apply(
    value: Value, scalar: float, fn: Callable[[float, float], float], expression: str
) -> Value:
    if isinstance(value, float):
        return fn(value, scalar)
    return [
        _series(
            s.id, s.label, [(t, fn(v, scalar)) for t, v in zip(s.timestamps, s.values, strict=True)]
        )
        for s in value
    ]


def _arithmetic(
    op: str, left: Value, right: Value, expression: str, error: Callable[[str], ValidationError]
) -> Value:
    if isinstance(left, float) and isinstance(right, float):
        return _operate(op, left, right)
    if isinstance(right, float):
        return _apply(left, right, lambda a, b: _operate(op, a, b), expression)
    if isinstance(left, float):
        scalar = left
        return _apply(right, scalar, lambda a, b: _operate(op, b, a), expression)
    if len(left) == 1 and len(right) == 1:
        return [_pair(op, left[0], right[0], expression)]
    if len(right) == 1:
        return [_pair(op, s, right[0], s.label) for s in left]
    if len(left) == 1:
        return [_pair(op, left[0], s, s.label) for s in right]
    raise error(f"{op} between two lists of series ({len(left)} and {len(right)}) is not defined")


def _pair(op: str, a: MetricDataResult, b: MetricDataResult, label: str) -> MetricDataResult:
    other = dict(zip(b.timestamps, b.values, strict=True))
    pairs = [
        (t, _operate(op, v, other[t]))
        for t, v in zip(a.timestamps, a.values, strict=True)
        if t in other
    ]
    return _series(a.id if label == a.label else "", label, pairs)


def _sum(values: list[float]) -> float:
    return math.fsum(values)


_REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "SUM": _sum,
    "AVG": lambda v: math.fsum(v) / len(v),
    "MIN": min,
    "MAX": max,
}
_POINTWISE: dict[str, Callable[[float, float], float]] = {
    "ABS": lambda a, _: abs(a),
    "CEIL": lambda a, _: float(math.ceil(a)) if math.isfinite(a) else a,  # inf/NaN: a gap
    "FLOOR": lambda a, _: float(math.floor(a)) if math.isfinite(a) else a,
}


def _reduce(name: str, value: Value) -> Value:
    """A list of series → one series (per timestamp over the series that have a point);
    one series → a scalar over its points, as CloudWatch's SUM(m1) is."""
    fn = _REDUCERS[name]
    if isinstance(value, float):
        return value
    if len(value) == 1:
        points = value[0].values
        return fn(list(points)) if points else math.nan
    by_time: dict[datetime, list[float]] = {}
    for s in value:
        for t, v in zip(s.timestamps, s.values, strict=True):
            by_time.setdefault(t, []).append(v)
    pairs = [(t, fn(vs)) for t, vs in sorted(by_time.items())]
    return [_series("", name, pairs)]


def _differences(value: Value, *, per_second: bool) -> Value:
    if isinstance(value, float):
        return 0.0
    out = []
    for s in value:
        pairs = []
        for i in range(1, len(s.timestamps)):
            change = s.values[i] - s.values[i - 1]
            seconds = (s.timestamps[i] - s.timestamps[i - 1]).total_seconds()
            pairs.append((s.timestamps[i], change / seconds if per_second else change))
        out.append(_series(s.id, s.label, pairs))
    return out
