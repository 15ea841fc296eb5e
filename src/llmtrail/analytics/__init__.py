"""Views derived from records and spans: cost over time, errors, timelines, budgets.

Prices and the cost of one record are domain code in `llmtrail.pricing`. Each module here is
a pure function of data (records, spans, price tables) or a query over the store built with
bound values; surfaces (HTTP, CLI, reports) call them and compute nothing of their own."""
