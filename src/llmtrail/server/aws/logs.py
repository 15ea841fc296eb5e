"""CloudWatch Logs (``logs``) over llmtrail's records: code written for AWS's invocation logs
runs unchanged, on records of every provider.

Each workspace's records are one log group (named by its logging configuration,
``/aws/bedrock/modelinvocations`` by default) with one log stream,
``aws/bedrock/modelinvocations``; a record is one log event whose message is the record's
Bedrock-shaped JSON. The operations are thin over llmtrail's own library — the filter-pattern
compiler, the Logs Insights language on the pooled query path, the saved queries — so every
answer equals what llmtrail's own API gives for the same records. One module per concept:

* `logs_groups` — DescribeLogGroups, DescribeLogStreams, and how a group is named;
* `logs_events` — FilterLogEvents, GetLogEvents (need the ``bodies`` permission);
* `logs_queries` — StartQuery, GetQueryResults, StopQuery, DescribeQueries (the queries
  started are kept in `logs_query_book`);
* `logs_definitions` — PutQueryDefinition, DescribeQueryDefinitions, DeleteQueryDefinition.

Importing this module registers them all (`operations.OPERATIONS`).
"""

from llmtrail.server.aws import logs_definitions, logs_events, logs_groups, logs_queries

__all__ = ["logs_definitions", "logs_events", "logs_groups", "logs_queries"]
