"""Domain models, one module per noun; everything is importable from here."""

from .approvals import Approval, Rejection
from .audit import AuditChainHead, AuditEvent
from .environments import Environment
from .followups import FollowUp, FollowUpKind, UserPreference
from .runs import RunLogChunk, TerraformRun, plan_upload_to
from .tickets import Ticket

__all__ = [
    "Approval",
    "AuditChainHead",
    "AuditEvent",
    "Environment",
    "FollowUp",
    "FollowUpKind",
    "Rejection",
    "RunLogChunk",
    "TerraformRun",
    "Ticket",
    "UserPreference",
    "plan_upload_to",
]
