"""The syntax tree of a Logs Insights query.

Plain frozen dataclasses: a `Query` is a tuple of commands, each command holds expressions.
Every node keeps its `Span` (excluded from equality and repr) so the compiler can point at it.
`render` gives an expression's canonical text — the key under which a computed value is
found again later in the query (``sort count(*) desc`` after ``stats count(*)``) — and
`dump` gives the compact tree the golden files show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, is_dataclass
from dataclasses import fields as dataclass_fields

from llmtrail.query.errors import Span

# -- expressions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A field path: ``modelId``, ``input.inputTokenCount``, ``@timestamp``."""

    path: tuple[str, ...]
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Literal:
    """A string or number literal; ``text`` is a number as written."""

    value: str | int | float
    span: Span = field(repr=False, compare=False)
    text: str = field(default="", compare=False)


@dataclass(frozen=True)
class Regex:
    """A ``/regex/`` literal (the text between the slashes, ``\\/`` unescaped)."""

    pattern: str
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Period:
    """A time period such as ``5m``: a whole number of a unit, as written."""

    text: str
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Unary:
    """``-x`` or ``not x``."""

    op: str
    operand: Expr
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Binary:
    """Arithmetic (``+ - * / % ^``), comparison (``= != < <= > >=``) or ``and``/``or``."""

    op: str
    left: Expr
    right: Expr
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Like:
    """``x like "sub"``, ``x like /re/``, ``x =~ /re/``, ``x not like …``."""

    operand: Expr
    pattern: Literal | Regex
    negated: bool
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class In:
    """``x in [a, b]`` or ``x not in [a, b]``."""

    operand: Expr
    items: tuple[Expr, ...]
    negated: bool
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Call:
    """A function call; ``name`` is lower-cased, ``star`` marks ``count(*)``."""

    name: str
    args: tuple[Expr, ...]
    span: Span = field(repr=False, compare=False)
    star: bool = False


Expr = Field | Literal | Regex | Period | Unary | Binary | Like | In | Call

# -- commands -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """An expression with an optional ``as`` alias; ``text`` is its source text."""

    expr: Expr
    alias: str | None
    text: str = field(compare=False)
    span: Span = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        """The output name CloudWatch gives it: the alias, a field's path, or the text."""
        if self.alias is not None:
            return self.alias
        if isinstance(self.expr, Field):
            return ".".join(self.expr.path)
        return self.text


@dataclass(frozen=True)
class Fields:
    items: tuple[Projection, ...]
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Display:
    items: tuple[Projection, ...]
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Filter:
    condition: Expr
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Stats:
    aggregates: tuple[Projection, ...]
    by: tuple[Projection, ...]
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class SortKey:
    expr: Expr
    descending: bool
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Sort:
    keys: tuple[SortKey, ...]
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Limit:
    count: int
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Dedup:
    fields: tuple[Field, ...]
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Parse:
    """``parse field "glob*" as a`` (kind ``glob``) or ``parse field /(?<a>re)/`` (``regex``).

    ``regex`` is the pattern the engines run (named groups as ``(?P<name>…)``); ``names``
    are the extracted fields in group order."""

    source: Field
    kind: str
    pattern: str
    regex: str
    names: tuple[str, ...]
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Unnest:
    source: Field
    alias: str
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Source:
    """``SOURCE 'log-group'`` (``names``) or ``SOURCE logGroups(namePrefix: [...])``
    (``prefixes``, ``log_class``): which log groups a query reads; resolved to a data set by
    `llmtrail.query.sources`."""

    names: tuple[str, ...]
    prefixes: tuple[str, ...]
    span: Span = field(repr=False, compare=False)
    log_class: str | None = None


Command = Fields | Display | Filter | Stats | Sort | Limit | Dedup | Parse | Unnest | Source


@dataclass(frozen=True)
class Query:
    """A parsed query: its commands in pipe order and the text they came from."""

    commands: tuple[Command, ...]
    text: str = field(repr=False, compare=False)


# -- canonical text -----------------------------------------------------------------------

_PLAIN_PART = re.compile(r"@?[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_PRECEDENCE = {
    "or": 1,
    "and": 2,
    "=": 4,
    "!=": 4,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
    "^": 8,
}


def render_path(path: tuple[str, ...]) -> str:
    """A field path as written, with backticks only where a part needs them."""
    out = []
    for i, part in enumerate(path):
        plain = _PLAIN_PART.fullmatch(part) and not (i and part.startswith("@"))
        out.append(part if plain and not (i == 0 and part.isdigit()) else f"`{part}`")
    return ".".join(out)


def render(expr: Expr) -> str:
    """The canonical text of ``expr``: one spelling per meaning (lower-case function names,
    single spaces), used to find a computed value again by what it computes."""
    return _render(expr, 0)


def _render(expr: Expr, outer: int) -> str:
    if isinstance(expr, Field):
        return render_path(expr.path)
    if isinstance(expr, Literal):
        if isinstance(expr.value, str):
            return '"' + expr.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return expr.text or repr(expr.value)
    if isinstance(expr, Regex):
        return "/" + expr.pattern.replace("/", "\\/") + "/"
    if isinstance(expr, Period):
        return expr.text
    if isinstance(expr, Call):
        inner = "*" if expr.star else ", ".join(_render(a, 0) for a in expr.args)
        return f"{expr.name}({inner})"
    if isinstance(expr, Unary):
        if expr.op == "not":
            return _wrap(f"not {_render(expr.operand, 3)}", 3, outer)
        return _wrap(f"-{_render(expr.operand, 7)}", 7, outer)
    if isinstance(expr, Like):
        op = "not like" if expr.negated else "like"
        return _wrap(f"{_render(expr.operand, 5)} {op} {_render(expr.pattern, 5)}", 4, outer)
    if isinstance(expr, In):
        op = "not in" if expr.negated else "in"
        items = ", ".join(_render(i, 0) for i in expr.items)
        return _wrap(f"{_render(expr.operand, 5)} {op} [{items}]", 4, outer)
    level = _PRECEDENCE[expr.op]
    right_level = level if expr.op == "^" else level + 1
    left_level = level + 1 if expr.op == "^" else level
    text = f"{_render(expr.left, left_level)} {expr.op} {_render(expr.right, right_level)}"
    return _wrap(text, level, outer)


def _wrap(text: str, level: int, outer: int) -> str:
    return f"({text})" if level < outer else text


def fields_in(node: object) -> list[Field]:
    """Every `Field` under an AST node (a command, an expression, a projection)."""
    found: list[Field] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Field):
            found.append(item)
        elif isinstance(item, tuple | list):
            stack.extend(item)
        elif is_dataclass(item):
            stack.extend(getattr(item, f.name) for f in dataclass_fields(item))
    return found


# -- the golden-file view -----------------------------------------------------------------


def dump(query: Query) -> str:
    """The tree as indented S-expressions, one command per line."""
    return "\n".join(_dump_command(c) for c in query.commands)


def _dump_command(cmd: Command) -> str:
    if isinstance(cmd, Fields | Display):
        return f"({type(cmd).__name__.lower()} {' '.join(_dump_projection(p) for p in cmd.items)})"
    if isinstance(cmd, Filter):
        return f"(filter {_dump(cmd.condition)})"
    if isinstance(cmd, Stats):
        aggs = " ".join(_dump_projection(p) for p in cmd.aggregates)
        by = " ".join(_dump_projection(p) for p in cmd.by)
        return f"(stats {aggs}" + (f" (by {by}))" if cmd.by else ")")
    if isinstance(cmd, Sort):
        keys = " ".join(f"({'desc' if k.descending else 'asc'} {_dump(k.expr)})" for k in cmd.keys)
        return f"(sort {keys})"
    if isinstance(cmd, Limit):
        return f"(limit {cmd.count})"
    if isinstance(cmd, Dedup):
        return f"(dedup {' '.join(_dump(f) for f in cmd.fields)})"
    if isinstance(cmd, Parse):
        names = " ".join(cmd.names)
        return f"(parse {_dump(cmd.source)} {cmd.kind} {cmd.regex!r} (as {names}))"
    if isinstance(cmd, Source):
        names = " ".join(repr(n) for n in cmd.names)
        prefixes = " ".join(repr(n) for n in cmd.prefixes)
        return f"(source {names})" if cmd.names else f"(source (prefix {prefixes}))"
    return f"(unnest {_dump(cmd.source)} (into {cmd.alias}))"


def _dump_projection(p: Projection) -> str:
    return _dump(p.expr) if p.alias is None else f"(as {_dump(p.expr)} {p.alias})"


def _dump(expr: Expr) -> str:
    if isinstance(expr, Field):
        return f"(field {render_path(expr.path)})"
    if isinstance(expr, Literal | Regex | Period):
        return render(expr)
    if isinstance(expr, Call):
        args = " *" if expr.star else "".join(" " + _dump(a) for a in expr.args)
        return f"({expr.name}{args})"
    if isinstance(expr, Unary):
        return f"({'neg' if expr.op == '-' else 'not'} {_dump(expr.operand)})"
    if isinstance(expr, Like):
        op = "not-like" if expr.negated else "like"
        return f"({op} {_dump(expr.operand)} {_dump(expr.pattern)})"
    if isinstance(expr, In):
        items = " ".join(_dump(i) for i in expr.items)
        return f"({'not-in' if expr.negated else 'in'} {_dump(expr.operand)} [{items}])"
    return f"({expr.op} {_dump(expr.left)} {_dump(expr.right)})"
