"""Who may see what: keys, roles and workspaces, the server secret, redaction, the logging
configuration, retention and erasure, and the audit chain.

Access is decided once per request, at the edge of the server (`llmtrail.server.access`),
into a `Principal`; everything below takes the principal's workspace as an argument, so a
surface cannot widen what a key reads by forgetting a filter: the stores and the query
compiler require the workspace.
"""
