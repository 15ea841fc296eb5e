"""Amazon Bedrock's control plane (signing name ``bedrock``, rest-json): code that manages
Bedrock with boto3 manages llmtrail with only ``endpoint_url`` added.

Three groups, each a module of its own over the library llmtrail's own API uses:

- `bedrock_logging`: ``Put``/``Get``/``DeleteModelInvocationLoggingConfiguration`` on the
  workspace's logging configuration;
- `bedrock_profiles`: ``Create``/``Get``/``List``/``DeleteInferenceProfile`` and
  ``TagResource``/``UntagResource``/``ListTagsForResource`` on the inference profiles;
- `bedrock_foundation_models`: ``ListFoundationModels`` from the routes and the price table.

Importing this module registers every handler (`operations.OPERATIONS`); the protocol core
routes botocore's request URIs to them, validates input against botocore's shapes first and
checks the permission each names (reads ``read``, changes ``manage``).
"""

from __future__ import annotations

from llmtrail.server.aws import bedrock_foundation_models, bedrock_logging, bedrock_profiles

__all__ = ["bedrock_foundation_models", "bedrock_logging", "bedrock_profiles"]
