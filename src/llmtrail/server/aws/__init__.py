"""AWS-shaped APIs: code written for AWS's ``bedrock``, ``logs``, ``cloudwatch`` and ``ce``
runs unchanged against llmtrail with ``endpoint_url``.

Why it is built this way:

- Request parsing, validation and response shaping are derived from **botocore's own
  service models** (shapes, required members, enums, ranges, locations), loaded from the
  installed botocore; nothing here restates a shape by hand. What the installed botocore
  chooses for a service is what the server speaks: JSON 1.1 with ``X-Amz-Target`` (``logs``,
  ``ce``), rest-json (``bedrock``), Smithy RPC v2 CBOR (``cloudwatch``).
- Each operation is one async handler from validated parameters to an output dict
  (`operations.operation`), over llmtrail's own library (query language, metrics, alarms,
  dashboards, cost, profiles, logging configuration); the wire never reaches a handler.
- The caller is the `Principal` the front door proved (SigV4 with an issued key pair, or
  open mode on loopback): its role decides each operation, its workspace is the only one
  a handler reads or changes.
"""
