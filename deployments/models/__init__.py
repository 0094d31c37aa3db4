"""Domain models, one module per noun; everything is importable from here."""

from .apikeys import ApiKey, ApiKeyScope, IdempotencyRecord
from .approvals import Approval, Rejection
from .audit import AuditChainHead, AuditEvent
from .environments import Environment
from .runs import RunLogChunk, TerraformRun, plan_upload_to
from .tickets import Ticket

__all__ = [
    "ApiKey",
    "ApiKeyScope",
    "Approval",
    "AuditChainHead",
    "AuditEvent",
    "Environment",
    "IdempotencyRecord",
    "Rejection",
    "RunLogChunk",
    "TerraformRun",
    "Ticket",
    "plan_upload_to",
]
