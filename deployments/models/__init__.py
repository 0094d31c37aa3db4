"""Domain models, one module per noun; everything is importable from here."""

from .approvals import Approval, Rejection
from .audit import AuditChainHead, AuditEvent
from .environments import Environment
from .freezes import CalendarFeedToken, Freeze
from .runs import RunLogChunk, TerraformRun, plan_upload_to
from .tickets import Ticket

__all__ = [
    "Approval",
    "AuditChainHead",
    "AuditEvent",
    "CalendarFeedToken",
    "Environment",
    "Freeze",
    "Rejection",
    "RunLogChunk",
    "TerraformRun",
    "Ticket",
    "plan_upload_to",
]
