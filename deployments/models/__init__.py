"""Domain models, one module per noun; everything is importable from here."""

from .approvals import Approval, Rejection
from .audit import AuditChainHead, AuditEvent
from .environments import Environment
from .evidence import Evidence, EvidenceKind, evidence_upload_to
from .runs import RunLogChunk, TerraformRun, plan_upload_to
from .tickets import Ticket

__all__ = [
    "Approval",
    "AuditChainHead",
    "AuditEvent",
    "Environment",
    "Evidence",
    "EvidenceKind",
    "Rejection",
    "RunLogChunk",
    "TerraformRun",
    "Ticket",
    "evidence_upload_to",
    "plan_upload_to",
]
