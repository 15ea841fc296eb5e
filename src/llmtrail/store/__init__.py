"""Where records and control-plane state are kept.

Small interfaces (`RecordStore`, `StateStore`) with one contract suite each, so that the
embedded DuckDB store and, later, ClickHouse are interchangeable. Every stored column is
described once in `llmtrail.schema`; DDL, the Arrow schema and the record serialiser derive
from it. Importing this package is light: backends live in subpackages.
"""
