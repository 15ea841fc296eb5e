"""Keys of ``sort``, ``stats … by`` and ``dedup``, bounded whatever the text holds.

Engines bound a query's memory and time but not the length of one key: a sort, group or
window key is the whole value, so a value of megabytes makes every comparison, hash-table
entry and spilled run that large (a 10 MB ``modelId`` under ``dedup``). The compiler bounds
textual keys itself, and only where a value can be long: a record field whose length the
record's validation bounds (`llmtrail.record.STRING_LIMITS`, never above `KEY_CHARS`) is a
key as it is, and so is any value computed from nothing but such fields and numbers.

* ``sort`` orders text by its first `KEY_CHARS` characters; values that agree on all of them
  are ordered by the next sort key and then the tie-breakers, not by the rest of their text.
* ``stats … by`` and ``dedup`` group text by itself when it has at most `KEY_CHARS`
  characters, and otherwise by its first `KEY_CHARS` characters followed by its MD5 digest,
  which is longer than any short key and so never equal to one. Groups stay exact (but for
  an MD5 collision), and a group shows its value in full.

Both engines count characters as code points, so the bounds agree between them.
"""

from __future__ import annotations

from sqlglot import exp

from llmtrail.query.dialects import SqlDialect, case, number
from llmtrail.query.kinds import Kind, Typed

KEY_CHARS = 2048


def needs_bound(value: Typed) -> bool:
    """Whether ``value`` is text that may be longer than a key should be."""
    textual = value.kind in (Kind.STRING, Kind.ANY, Kind.JSON)
    return textual and not value.short and not value.is_constant


def sort_key(d: SqlDialect, text: exp.Expr) -> exp.Expr:
    """What text is sorted by: its first `KEY_CHARS` characters."""
    return d.text_prefix(text, KEY_CHARS)


def group_key(d: SqlDialect, text: exp.Expr) -> exp.Expr:
    """What text is grouped and deduplicated by: itself when short, else its first
    `KEY_CHARS` characters and its digest. ``NULL`` stays ``NULL``."""
    short = exp.LTE(this=d.strlen(text), expression=number(KEY_CHARS))
    long = d.concat_strict(d.text_prefix(text.copy(), KEY_CHARS), d.digest(text.copy()))
    return case((short, text.copy()), default=long)
