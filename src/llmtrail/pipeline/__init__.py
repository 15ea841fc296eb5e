"""The ingest pipeline: the durable spool and what feeds it and drains it."""
