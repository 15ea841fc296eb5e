"""The exceptions llmtrail raises.

LlmtrailError
├── ValidationError        bad input: names the field and the limit (→ 400 / 413)
│   └── PayloadTooLarge    a size limit was exceeded (→ 413)
├── ConfigError            the configuration file, an environment variable or a flag is wrong
├── Forbidden              the caller's key lacks a permission the request needs (→ 403)
├── NotFound               no such record, route or model (→ 404)
└── Unavailable            the pipeline cannot accept more now: spool full, not ready (→ 503)

Every exception llmtrail defines pickles and unpickles as itself, whatever its ``__init__``
takes (`Picklable`): worker processes send them back to the server, and an exception that
failed to unpickle would be lost there.
"""

from __future__ import annotations

from typing import Any


class Picklable(Exception):
    """Unpickles without calling ``__init__``: the class, ``args`` and attributes come back
    as they were. Mixed into every exception class llmtrail defines."""

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class LlmtrailError(Picklable):
    """Base of every error llmtrail raises on purpose."""


class ValidationError(LlmtrailError):
    """Input that breaks a documented rule. ``field`` names where, ``message`` says why."""

    status = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PayloadTooLarge(ValidationError):
    status = 413


class ConfigError(LlmtrailError):
    """The configuration cannot be used; the message names the setting."""


class Forbidden(LlmtrailError):
    """The request needs a permission the caller's key does not have: ``field`` names what
    needed it (a body field of a query, ``bodies``), ``permission`` which permission."""

    status = 403

    def __init__(self, field: str, message: str, permission: str = "bodies") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.permission = permission


class NotFound(LlmtrailError):
    status = 404


class Unavailable(LlmtrailError):
    status = 503
