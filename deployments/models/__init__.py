"""Domain models, one module per noun; everything is importable from here."""

from .apikeys import ApiKey, ApiKeyScope, IdempotencyRecord
from .approvals import Approval, Rejection
from .audit import AuditChainHead, AuditEvent, AuditVerification
from .checks import CheckResult, CheckStatus
from .deployments import Deployment, DeploymentOutcome
from .drift import DriftCheck
from .environments import Environment
from .evidence import Evidence, EvidenceKind, evidence_upload_to
from .followups import FollowUp, FollowUpKind, UserPreference
from .freezes import CalendarFeedToken, Freeze
from .monitoring import ChecklistItem, MonitoringCheck, MonitoringPeriod, ProbeSource
from .runs import RunLogChunk, TerraformRun, plan_upload_to
from .tickets import Ticket
from .webhooks import DeliveryStatus, GitHubLogin, PullRequest, WebhookDelivery

__all__ = [
    "ApiKey",
    "ApiKeyScope",
    "Approval",
    "AuditChainHead",
    "AuditEvent",
    "AuditVerification",
    "CalendarFeedToken",
    "CheckResult",
    "CheckStatus",
    "ChecklistItem",
    "DeliveryStatus",
    "Deployment",
    "DeploymentOutcome",
    "DriftCheck",
    "Environment",
    "Evidence",
    "EvidenceKind",
    "FollowUp",
    "FollowUpKind",
    "Freeze",
    "GitHubLogin",
    "IdempotencyRecord",
    "MonitoringCheck",
    "MonitoringPeriod",
    "ProbeSource",
    "PullRequest",
    "Rejection",
    "RunLogChunk",
    "TerraformRun",
    "Ticket",
    "UserPreference",
    "WebhookDelivery",
    "evidence_upload_to",
    "plan_upload_to",
]
