"""Domain models, one module per noun; everything is importable from here."""

from deployments.models.apikeys import ApiKey, ApiKeyScope, IdempotencyRecord
from deployments.models.approvals import Approval, Rejection
from deployments.models.audit import AuditChainHead, AuditEvent, AuditVerification
from deployments.models.checks import CheckResult, CheckStatus
from deployments.models.deployments import Deployment, DeploymentOutcome
from deployments.models.drift import DriftCheck
from deployments.models.environments import Environment
from deployments.models.evidence import Evidence, EvidenceKind, evidence_upload_to
from deployments.models.followups import FollowUp, FollowUpKind, UserPreference
from deployments.models.freezes import CalendarFeedToken, Freeze
from deployments.models.monitoring import (
    ChecklistItem,
    MonitoringCheck,
    MonitoringPeriod,
    ProbeSource,
)
from deployments.models.plans import SpeculativePlan
from deployments.models.policies import (
    PolicyCheck,
    PolicyOverride,
    PolicyResult,
    PortalPolicy,
    PortalPolicyVersion,
)
from deployments.models.replans import PendingReschedule
from deployments.models.runs import RunLogChunk, TerraformRun, plan_upload_to
from deployments.models.stacks import DEFAULT_STACK, Stack
from deployments.models.tickets import Ticket
from deployments.models.webhooks import DeliveryStatus, GitHubLogin, PullRequest, WebhookDelivery

__all__ = [
    "DEFAULT_STACK",
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
    "PendingReschedule",
    "PolicyCheck",
    "PolicyOverride",
    "PolicyResult",
    "PortalPolicy",
    "PortalPolicyVersion",
    "ProbeSource",
    "PullRequest",
    "Rejection",
    "RunLogChunk",
    "SpeculativePlan",
    "Stack",
    "TerraformRun",
    "Ticket",
    "UserPreference",
    "WebhookDelivery",
    "evidence_upload_to",
    "plan_upload_to",
]
