"""Text → `Query`: a dispatch table of pipe commands over a small expression parser.

Each command keyword maps to a method that parses its arguments (``COMMANDS``), as sqlglot's
PRQL dialect does for its transforms; the expression grammar is precedence climbing:
``or`` < ``and`` < ``not`` < comparison (``= != < <= > >= like =~ in``) < ``+ -`` <
``* / %`` < unary ``-`` < ``^``. Keywords and function names are case-insensitive. Every
error names what was expected at the offending token.
"""

from __future__ import annotations

from collections.abc import Callable

from llmtrail.query.ast import (
    Binary,
    Call,
    Command,
    Dedup,
    Display,
    Expr,
    Field,
    Fields,
    Filter,
    In,
    Like,
    Limit,
    Literal,
    Parse,
    Period,
    Projection,
    Query,
    Regex,
    Sort,
    SortKey,
    Source,
    Stats,
    Unary,
    Unnest,
)
from llmtrail.query.errors import QueryError, Span
from llmtrail.query.regexes import check_regex, glob_regex
from llmtrail.query.tokens import Token, TokenKind, tokenize

MAX_QUERY_CHARS = 10_000  # CloudWatch's own limit on a query string
MAX_DEPTH = 64
KEYWORDS = frozenset({"and", "or", "not", "like", "in", "as", "by", "asc", "desc", "into"})
UNSUPPORTED_COMMANDS = frozenset(
    {"pattern", "diff", "anomaly", "lookup", "unmask", "filterindex", "join"}
)
_COMPARISONS = frozenset({"=", "!=", "<", "<=", ">", ">="})


def parse_query(text: str) -> Query:
    """Parse a Logs Insights query. Raises `QueryError` with the line, column and a caret."""
    if not isinstance(text, str):
        raise TypeError("the query must be a string")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the query is {len(text)} characters; at most {MAX_QUERY_CHARS} are allowed",
            text,
            Span(MAX_QUERY_CHARS, len(text)),
        )
    return _Parser(text).query()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # -- token plumbing ---------------------------------------------------------------------
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.peek()
        if token.kind is not TokenKind.EOF:
            self.i += 1
        return token

    def error(self, reason: str, token: Token | None = None) -> QueryError:
        token = token or self.peek()
        return QueryError(f"{reason}, found {_describe(token)}", self.text, token.span)

    def expect(self, kind: TokenKind, what: str) -> Token:
        if self.peek().kind is not kind:
            raise self.error(f"expected {what}")
        return self.advance()

    def accept_word(self, *words: str) -> Token | None:
        if self.peek().is_word(*words):
            return self.advance()
        return None

    def accept_op(self, *ops: str) -> Token | None:
        token = self.peek()
        if token.kind is TokenKind.OP and token.value in ops:
            return self.advance()
        return None

    # -- commands ---------------------------------------------------------------------------
    def query(self) -> Query:
        commands: list[Command] = []
        while True:
            token = self.peek()
            name = token.parts[0].lower() if token.is_word(*COMMANDS) else None
            if name is None:
                if token.kind is TokenKind.NAME and token.parts[0].lower() in UNSUPPORTED_COMMANDS:
                    raise QueryError(
                        f"the {token.parts[0]} command is not supported by llmtrail",
                        self.text,
                        token.span,
                    )
                raise self.error(f"expected a command ({', '.join(sorted(COMMANDS))})")
            self.advance()
            command = COMMANDS[name](self, token)
            if isinstance(command, Source) and not all(isinstance(c, Source) for c in commands):
                raise QueryError(
                    "SOURCE must come before every other command", self.text, command.span
                )
            commands.append(command)
            if self.peek().kind is TokenKind.EOF:
                return Query(tuple(commands), self.text)
            self.expect(TokenKind.PIPE, "| or the end of the query")

    def fields(self, start: Token) -> Command:
        items = self.projections()
        return Fields(items, start.span.to(items[-1].span))

    def display(self, start: Token) -> Command:
        items = self.projections()
        return Display(items, start.span.to(items[-1].span))

    def filter(self, start: Token) -> Command:
        condition = self.expression()
        return Filter(condition, start.span.to(condition.span))

    def stats(self, start: Token) -> Command:
        aggregates = self.projections()
        by: tuple[Projection, ...] = ()
        if self.accept_word("by"):
            by = self.projections()
        end = (by or aggregates)[-1].span
        return Stats(aggregates, by, start.span.to(end))

    def sort(self, start: Token) -> Command:
        keys = []
        while True:
            expr = self.expression()
            direction = self.accept_word("asc", "desc")
            descending = direction is not None and direction.parts[0].lower() == "desc"
            span = expr.span.to(direction.span) if direction else expr.span
            keys.append(SortKey(expr, descending, span))
            if self.peek().kind is not TokenKind.COMMA:
                return Sort(tuple(keys), start.span.to(span))
            self.advance()

    def limit(self, start: Token) -> Command:
        token = self.expect(TokenKind.NUMBER, "the number of rows to return")
        if not token.value.isdigit() or not 0 < int(token.value) < 2**63:
            raise QueryError("limit needs a whole number above 0", self.text, token.span)
        return Limit(int(token.value), start.span.to(token.span))

    def dedup(self, start: Token) -> Command:
        fields = []
        while True:
            fields.append(self.field_name("a field to de-duplicate by"))
            if self.peek().kind is not TokenKind.COMMA:
                return Dedup(tuple(fields), start.span.to(fields[-1].span))
            self.advance()

    def parse(self, start: Token) -> Command:
        source = Field(("@message",), start.span)
        if self.peek().kind is TokenKind.NAME:
            source = self.field_name("a field to parse")
        token = self.peek()
        if token.kind is TokenKind.REGEX:
            self.advance()
            regex, groups = check_regex(token.value, self.text, token.span)
            if not groups:
                raise QueryError(
                    "the regex needs named groups, such as (?<user>\\w+), to name the fields",
                    self.text,
                    token.span,
                )
            names = tuple(sorted(groups, key=lambda n: groups[n]))
            return Parse(source, "regex", token.value, regex, names, start.span.to(token.span))
        if token.kind is not TokenKind.STRING:
            raise self.error('expected a glob pattern in quotes ("user=*") or a /regex/')
        self.advance()
        wildcards = token.value.count("*")
        if wildcards == 0:
            raise QueryError("the glob pattern needs a * for each field", self.text, token.span)
        if not self.accept_word("as"):
            raise self.error(f"expected as and {wildcards} field name(s) for the pattern")
        names_tokens = [self.name_token("a field name")]
        while self.peek().kind is TokenKind.COMMA:
            self.advance()
            names_tokens.append(self.name_token("a field name"))
        if len(names_tokens) != wildcards:
            raise QueryError(
                f"the pattern has {wildcards} * but {len(names_tokens)} field name(s) follow as",
                self.text,
                token.span.to(names_tokens[-1].span),
            )
        names = tuple(".".join(t.parts) for t in names_tokens)
        return Parse(
            source,
            "glob",
            token.value,
            glob_regex(token.value),
            names,
            start.span.to(names_tokens[-1].span),
        )

    def unnest(self, start: Token) -> Command:
        source = self.field_name("a field holding a list")
        if not self.accept_word("into"):
            raise self.error("expected into and a name for the elements")
        alias = self.name_token("a name for the elements")
        return Unnest(source, ".".join(alias.parts), start.span.to(alias.span))

    def source(self, start: Token) -> Command:
        """``SOURCE 'group'`` or ``SOURCE logGroups(namePrefix: ['a', 'b'], class: 'STANDARD')``,
        as Logs Insights writes them (a dashboard's log widget starts with one per group)."""
        token = self.peek()
        if token.kind is TokenKind.STRING:
            self.advance()
            return Source((token.value,), (), start.span.to(token.span))
        if not token.is_word("loggroups"):
            raise self.error("expected a log group name in quotes or logGroups(namePrefix: [...])")
        self.advance()
        self.expect(TokenKind.LPAREN, "(")
        prefixes: list[str] = []
        log_class = None
        while self.peek().kind is not TokenKind.RPAREN:
            key = self.peek()
            if not key.is_word("nameprefix", "class"):
                raise self.error("expected namePrefix or class")
            self.advance()
            self.expect(TokenKind.COLON, ": after " + key.value)
            if key.is_word("class"):
                value = self.expect(TokenKind.STRING, "a log class in quotes ('STANDARD')")
                if value.value not in ("STANDARD", "INFREQUENT_ACCESS"):
                    raise QueryError(
                        "the log class must be 'STANDARD' or 'INFREQUENT_ACCESS'",
                        self.text,
                        value.span,
                    )
                log_class = value.value
            else:
                self.expect(TokenKind.LBRACKET, "[ and log group name prefixes in quotes")
                while self.peek().kind is not TokenKind.RBRACKET:
                    prefixes.append(self.expect(TokenKind.STRING, "a prefix in quotes").value)
                    if self.peek().kind is TokenKind.COMMA:
                        self.advance()
                self.advance()
            if self.peek().kind is TokenKind.COMMA:
                self.advance()
        end = self.advance()
        if not prefixes:
            raise QueryError(
                "logGroups needs namePrefix: [...]", self.text, start.span.to(end.span)
            )
        return Source((), tuple(prefixes), start.span.to(end.span), log_class)

    # -- pieces -----------------------------------------------------------------------------
    def projections(self) -> tuple[Projection, ...]:
        items = []
        while True:
            expr = self.expression()
            alias = None
            span = expr.span
            if self.accept_word("as"):
                token = self.name_token("a name after as")
                alias = ".".join(token.parts)
                span = span.to(token.span)
            text = self.text[expr.span.start : expr.span.end]
            items.append(Projection(expr, alias, text, span))
            if self.peek().kind is not TokenKind.COMMA:
                return tuple(items)
            self.advance()

    def name_token(self, what: str) -> Token:
        token = self.peek()
        if token.kind is not TokenKind.NAME or (not token.quoted and token.is_word(*KEYWORDS)):
            raise self.error(f"expected {what}")
        return self.advance()

    def field_name(self, what: str) -> Field:
        token = self.name_token(what)
        if self.peek().kind is TokenKind.LPAREN:
            raise self.error(f"expected {what}, not a function call", self.peek())
        return Field(token.parts, token.span)

    # -- expressions ------------------------------------------------------------------------
    def expression(self) -> Expr:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self.error("the expression is nested too deeply")
            return self.disjunction()
        finally:
            self.depth -= 1

    def disjunction(self) -> Expr:
        left = self.conjunction()
        while self.accept_word("or"):
            right = self.conjunction()
            left = Binary("or", left, right, left.span.to(right.span))
        return left

    def conjunction(self) -> Expr:
        left = self.negation()
        while self.accept_word("and"):
            right = self.negation()
            left = Binary("and", left, right, left.span.to(right.span))
        return left

    def negation(self) -> Expr:
        token = self.accept_word("not")
        if token is None:
            return self.comparison()
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self.error("the expression is nested too deeply")
            operand = self.negation()
        finally:
            self.depth -= 1
        return Unary("not", operand, token.span.to(operand.span))

    def comparison(self) -> Expr:
        left = self.additive()
        token = self.peek()
        if token.kind is TokenKind.OP and token.value in _COMPARISONS:
            self.advance()
            right = self.additive()
            return Binary(token.value, left, right, left.span.to(right.span))
        if token.kind is TokenKind.OP and token.value == "=~":
            self.advance()
            return self.like_rest(left, negated=False)
        if token.is_word("like"):
            self.advance()
            return self.like_rest(left, negated=False)
        if token.is_word("in"):
            self.advance()
            return self.in_rest(left, negated=False)
        if token.is_word("not") and (self.peek(1).is_word("like") or self.peek(1).is_word("in")):
            self.advance()
            if self.advance().is_word("like"):
                return self.like_rest(left, negated=True)
            return self.in_rest(left, negated=True)
        return left

    def like_rest(self, left: Expr, negated: bool) -> Expr:
        token = self.peek()
        pattern: Literal | Regex
        if token.kind is TokenKind.REGEX:
            check_regex(token.value, self.text, token.span)
            pattern = Regex(token.value, token.span)
        elif token.kind is TokenKind.STRING:
            pattern = Literal(token.value, token.span)
        else:
            raise self.error('expected a "substring" or a /regex/ to match')
        self.advance()
        return Like(left, pattern, negated, left.span.to(pattern.span))

    def in_rest(self, left: Expr, negated: bool) -> Expr:
        self.expect(TokenKind.LBRACKET, "[ to start the list of values")
        items: list[Expr] = []
        if self.peek().kind is not TokenKind.RBRACKET:
            while True:
                items.append(self.additive())
                if self.peek().kind is not TokenKind.COMMA:
                    break
                self.advance()
        end = self.expect(TokenKind.RBRACKET, "] or , in the list of values")
        return In(left, tuple(items), negated, left.span.to(end.span))

    def additive(self) -> Expr:
        left = self.multiplicative()
        while (op := self.accept_op("+", "-")) is not None:
            right = self.multiplicative()
            left = Binary(op.value, left, right, left.span.to(right.span))
        return left

    def multiplicative(self) -> Expr:
        left = self.unary()
        while (op := self.accept_op("*", "/", "%")) is not None:
            right = self.unary()
            left = Binary(op.value, left, right, left.span.to(right.span))
        return left

    def unary(self) -> Expr:
        token = self.accept_op("-")
        if token is None:
            return self.power()
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self.error("the expression is nested too deeply")
            operand = self.unary()
        finally:
            self.depth -= 1
        if isinstance(operand, Literal) and not isinstance(operand.value, str):
            value = -operand.value
            return Literal(value, token.span.to(operand.span), "-" + operand.text)
        return Unary("-", operand, token.span.to(operand.span))

    def power(self) -> Expr:
        base = self.primary()
        if self.accept_op("^") is None:
            return base
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self.error("the expression is nested too deeply")
            exponent = self.unary()
        finally:
            self.depth -= 1
        return Binary("^", base, exponent, base.span.to(exponent.span))

    def primary(self) -> Expr:
        token = self.peek()
        if token.kind is TokenKind.NUMBER:
            self.advance()
            return Literal(_number(token, self.text), token.span, token.value)
        if token.kind is TokenKind.STRING:
            self.advance()
            return Literal(token.value, token.span)
        if token.kind is TokenKind.PERIOD:
            self.advance()
            return Period(token.value, token.span)
        if token.kind is TokenKind.LPAREN:
            self.advance()
            inner = self.expression()
            self.expect(TokenKind.RPAREN, ") to close the (")
            return inner
        if token.kind is TokenKind.NAME and not (not token.quoted and token.is_word(*KEYWORDS)):
            self.advance()
            if self.peek().kind is TokenKind.LPAREN and len(token.parts) == 1 and not token.quoted:
                return self.call(token)
            return Field(token.parts, token.span)
        if token.kind is TokenKind.REGEX:
            raise self.error("a /regex/ only goes after like or =~")
        raise self.error("expected an expression (a field, a value or a function call)")

    def call(self, name: Token) -> Expr:
        self.advance()  # (
        args: list[Expr] = []
        star = False
        if self.peek().kind is TokenKind.OP and self.peek().value == "*":
            self.advance()
            if self.peek().kind is not TokenKind.RPAREN:
                raise self.error("expected ) after *", self.peek())
            star = True
        elif self.peek().kind is not TokenKind.RPAREN:
            while True:
                args.append(self.expression())
                if self.peek().kind is not TokenKind.COMMA:
                    break
                self.advance()
        end = self.expect(TokenKind.RPAREN, f") or , in the arguments of {name.parts[0]}")
        return Call(name.parts[0].lower(), tuple(args), name.span.to(end.span), star)


def _number(token: Token, text: str) -> int | float:
    if token.value.isdigit():
        value = int(token.value)
        if value >= 2**63:
            raise QueryError("the number is too large (at most 2^63-1)", text, token.span)
        return value
    number = float(token.value)
    if number in (float("inf"), float("-inf")):
        raise QueryError("the number is too large", text, token.span)
    return number


def _describe(token: Token) -> str:
    if token.kind is TokenKind.EOF:
        return "the end of the query"
    if token.kind is TokenKind.STRING:
        return "a string"
    if token.kind is TokenKind.REGEX:
        return "a regex"
    shown = token.value if len(token.value) <= 40 else token.value[:37] + "..."
    return f"{shown!r}"


COMMANDS: dict[str, Callable[[_Parser, Token], Command]] = {
    "fields": _Parser.fields,
    "display": _Parser.display,
    "filter": _Parser.filter,
    "stats": _Parser.stats,
    "sort": _Parser.sort,
    "limit": _Parser.limit,
    "dedup": _Parser.dedup,
    "parse": _Parser.parse,
    "unnest": _Parser.unnest,
    "source": _Parser.source,
}
