"""Views derived from records and spans: prices and cost, errors, timelines, budgets.

Each module is a pure function of data (records, spans, price tables) or a query over the
store built with bound values; surfaces (HTTP, CLI, reports) call them and compute nothing of
their own."""
