"""Domain models, one module per noun; everything is importable from here."""

from .approvals import Approval, Rejection
from .audit import AuditChainHead, AuditEvent
from .checks import CheckResult, CheckStatus
from .environments import Environment
from .followups import FollowUp, FollowUpKind, UserPreference
from .runs import RunLogChunk, TerraformRun, plan_upload_to
from .tickets import Ticket
from .webhooks import DeliveryStatus, PullRequest, WebhookDelivery

__all__ = [
    "Approval",
    "AuditChainHead",
    "AuditEvent",
    "CheckResult",
    "CheckStatus",
    "DeliveryStatus",
    "Environment",
    "FollowUp",
    "FollowUpKind",
    "PullRequest",
    "Rejection",
    "RunLogChunk",
    "TerraformRun",
    "Ticket",
    "UserPreference",
    "WebhookDelivery",
    "plan_upload_to",
]
