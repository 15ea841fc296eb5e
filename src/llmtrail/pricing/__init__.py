"""Prices and the cost of one record: domain code, pure functions of data.

The price table (`table.PriceTable`: overrides, llmtrail's data files under ``prices/``, the
genai-prices snapshot), a record's cost (`cost.cost_of`) and the text it carries
(`body_text`) are what enrichment (`llmtrail.pipeline.enrich`) computes once per record and
what analytics reads back; they sit below both, import nothing of llmtrail above the record,
and never open a connection or read the clock.
"""
