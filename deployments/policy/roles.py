"""Who is who: the role sets the rules name (Django groups; choices.Role lists them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


# The leads: they may cancel any ticket, and must use two-factor authentication.
LEAD_ROLES = frozenset({"lead_developer", "tech_lead", "devops_lead"})


QA_ROLE = "qa"


OPERATIONS_ROLE = "operations"


# Who reads the audit trail (page and API): operations, the leads, and staff.
AUDIT_READER_ROLES = frozenset({"operations", "lead_developer", "tech_lead", "devops_lead"})


# Who sees the notification log (/notifications/) and may retry a failed notification.
NOTIFICATION_LOG_ROLES = frozenset({"operations", "tech_lead", "devops_lead", "lead_developer"})


# Who completes a post-deployment review or a post-mortem.
FOLLOW_UP_ROLES = frozenset({"tech_lead", "devops_lead"})


ROLLBACK_APPROVER_ROLES = ("devops_lead", "tech_lead")


# Who may open a rollback besides the environment's deployers (operations in prod).
ROLLBACK_LEAD_ROLES = frozenset(ROLLBACK_APPROVER_ROLES)


def holds_any(groups: Iterable[str], wanted: Iterable[str]) -> bool:
    """Does someone holding ``groups`` hold any of ``wanted``?"""
    return bool(set(groups) & set(wanted))


def is_operations(user_roles: Iterable[str], superuser: bool) -> bool:
    return superuser or OPERATIONS_ROLE in set(user_roles)
