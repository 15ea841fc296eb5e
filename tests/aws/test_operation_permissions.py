"""Every AWS-shaped operation declares its permission, and changes need ``manage``: an
operation added without one, or a change open to readers, fails here."""

from __future__ import annotations

import importlib

from llmtrail.security.principal import Permission
from llmtrail.server.aws.models import operation_model
from llmtrail.server.aws.router import SERVICE_MODULES, load_operations

CHANGES = ("Put", "Delete", "Create", "Tag", "Untag", "Set", "Update", "Enable", "Disable")


def test_every_service_module_loads_and_every_service_is_served() -> None:
    operations = load_operations()
    for name in SERVICE_MODULES:
        importlib.import_module(f"llmtrail.server.aws.{name}")
    assert {service for service, _ in operations} == {"logs", "monitoring", "ce", "bedrock"}


def test_changes_need_manage_and_reads_need_read() -> None:
    operations = load_operations()
    assert len(operations) >= 30
    for (service, name), op in operations.items():
        operation_model(service, name)  # botocore's model has it: a typo fails here
        assert op.permission in (Permission.READ, Permission.MANAGE), (service, name)
        if name.startswith(CHANGES):
            assert op.permission is Permission.MANAGE, (service, name)
