"""The ingest pipeline: the durable spool, what feeds it and drains it, and the enrichment
(cost, characters) every record gets once."""
