"""The static types of compiled values and the conversions between them.

Insights is dynamically typed; llmtrail knows most types from the schema (token counts are
integers, ``modelId`` a string, ``@timestamp`` a timestamp). What comes out of JSON — unknown
keys, bodies, parsed fields — is `Kind.ANY`: the value as text, which becomes a number
where a number is needed (``filter output.outputBodyJson.usage.outputTokens > 100``) the way
CloudWatch compares numerically when the other side is a number. `Kind.JSON` is JSON text
that still has its quotes (an element of an unnested list).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from sqlglot import exp


class Kind(enum.Enum):
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    DECIMAL = "decimal"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    ANY = "any"  # a JSON value as text: strings unquoted
    JSON = "json"  # JSON text as is

    @property
    def numeric(self) -> bool:
        return self in (Kind.INT, Kind.FLOAT, Kind.DECIMAL)

    @property
    def textual(self) -> bool:
        return self in (Kind.STRING, Kind.ANY)


@dataclass(frozen=True)
class Typed:
    """A compiled value: its SQL, its kind, and its Python value when it is a constant.
    ``short`` says that its text is known to fit a key as it is (`llmtrail.query.keys`)."""

    sql: exp.Expr
    kind: Kind
    constant: str | int | float | Decimal | bool | None = None
    is_constant: bool = False
    short: bool = False

    def fresh(self) -> Typed:
        """A copy whose SQL tree can be placed in another spot of a query."""
        return Typed(self.sql.copy(), self.kind, self.constant, self.is_constant, self.short)

    def moved(self, sql: exp.Expr) -> Typed:
        """The same value read from ``sql`` (a column of a subquery that holds it)."""
        return Typed(sql, self.kind, short=self.short)


def widest_number(kinds: list[Kind]) -> Kind:
    """The kind numbers of ``kinds`` are combined in: float beats decimal beats int."""
    if Kind.FLOAT in kinds or Kind.ANY in kinds or Kind.STRING in kinds:
        return Kind.FLOAT
    if Kind.DECIMAL in kinds:
        return Kind.DECIMAL
    return Kind.INT
