"""A total order for every result, the same on both engines.

``limit`` and paging are only deterministic if no two rows compare equal, and DuckDB and
ClickHouse agree only where the order is spelled out. So every ``ORDER BY`` the compiler
writes is the query's own keys followed by tie-breakers (``@timestamp desc, recordId desc``
and unnested elements for records, the group keys after ``stats``), each key with explicit
``NULL``-last placement. A JSON value (`Kind.ANY`) sorts text before numbers and numbers
numerically, like CloudWatch's natural sort but simpler. Text that may be long is sorted by
its first characters only (`llmtrail.query.keys`).
"""

from __future__ import annotations

from sqlglot import exp

from llmtrail.query.dialects import SqlDialect, is_null
from llmtrail.query.keys import needs_bound, sort_key
from llmtrail.query.kinds import Kind, Typed

_NEVER_NULL = frozenset({"timestamp", "record_id", "workspace"})


def total_order(
    d: SqlDialect, keys: list[tuple[Typed, bool]], breakers: list[tuple[Typed, bool]]
) -> list[exp.Ordered]:
    """``ORDER BY`` terms for ``keys`` then ``breakers`` ((value, descending) pairs), each
    term once."""
    terms: list[exp.Ordered] = []
    seen: set[str] = set()
    for value, desc in keys + breakers:
        for term in sort_terms(d, value, desc):
            text = term.sql()
            if text not in seen:
                seen.add(text)
                terms.append(term)
    return terms


def sort_terms(d: SqlDialect, value: Typed, desc: bool) -> list[exp.Ordered]:
    """The terms that sort by one value: missing last, then by kind."""
    if value.is_constant:
        return []
    sql = value.fresh().sql
    out = []
    if not (isinstance(sql, exp.Column) and sql.name in _NEVER_NULL):
        out.append(exp.Ordered(this=is_null(sql.copy()), desc=False, nulls_first=False))
    bounded = needs_bound(value)
    if value.kind in (Kind.ANY, Kind.JSON):
        text = d.json_text(sql, ()) if value.kind is Kind.JSON else sql
        as_number = d.text_to_double(text.copy())
        is_number = exp.Not(this=is_null(as_number))
        out.append(exp.Ordered(this=is_number, desc=desc, nulls_first=False))
        out.append(exp.Ordered(this=as_number.copy(), desc=desc, nulls_first=False))
        text = sort_key(d, text) if bounded else text
        out.append(exp.Ordered(this=text, desc=desc, nulls_first=False))
    else:
        key = sort_key(d, sql) if bounded else sql
        out.append(exp.Ordered(this=key, desc=desc, nulls_first=False))
    return out
