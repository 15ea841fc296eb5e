"""botocore's service models, as the installed botocore has them: the single source of the
shapes, operations, error codes and request URIs the AWS-shaped APIs speak."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.loaders import Loader
    from botocore.model import OperationModel, ServiceModel, Shape

__all__ = [
    "MODEL_NAMES",
    "error_shape",
    "operation_model",
    "service_model",
    "validation_code",
]

# signing name → botocore's service name
MODEL_NAMES = {"logs": "logs", "monitoring": "cloudwatch", "ce": "ce", "bedrock": "bedrock"}

# What each service answers for input that breaks its shape's constraints.
_VALIDATION = {
    "logs": "InvalidParameterException",
    "monitoring": "ValidationError",
    "ce": "ValidationException",
    "bedrock": "ValidationException",
}


@functools.cache
def _loader() -> Loader:
    # botocore and its models (~15 MB) load with the first AWS-shaped request, not at start
    from botocore.loaders import Loader

    return Loader()


@functools.cache
def service_model(signing_name: str) -> ServiceModel:
    from botocore.model import ServiceModel

    name = MODEL_NAMES[signing_name]
    data = _loader().load_service_model(name, "service-2")
    return ServiceModel(data, service_name=name)


def operation_model(signing_name: str, operation: str) -> OperationModel:
    return service_model(signing_name).operation_model(operation)


def validation_code(signing_name: str) -> str:
    return _VALIDATION[signing_name]


@functools.cache
def _errors(signing_name: str) -> dict[str, Shape]:
    """Error shapes by wire code (``error.code``), then by shape name (which wins)."""
    shapes = service_model(signing_name).error_shapes
    found: dict[str, Shape] = {}
    for shape in shapes:
        code = shape.metadata.get("error", {}).get("code")
        if code:
            found.setdefault(code, shape)
    found.update({shape.name: shape for shape in shapes})
    return found


def error_shape(signing_name: str, code: str) -> Shape | None:
    """The modelled error for ``code`` (a shape name or a wire code), if there is one."""
    return _errors(signing_name).get(code)
