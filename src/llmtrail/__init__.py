"""llmtrail: self-hosted logging and observability for calls to generative models.

Importing this package is light: it pulls in the record and its validation only. The server,
stores and gateway live in subpackages that the ``llmtrail[server]`` extra provides.
"""

from llmtrail.errors import LlmtrailError, ValidationError
from llmtrail.record import InvocationRecord, validate_request_metadata

__version__ = "0.1.0"

__all__ = [
    "InvocationRecord",
    "LlmtrailError",
    "ValidationError",
    "__version__",
    "validate_request_metadata",
]
