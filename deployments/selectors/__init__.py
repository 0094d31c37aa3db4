"""Every read that pages and the API use, scoped to what the caller may see; one module per
noun. The names most callers need are re-exported here (``selectors.ticket_get``); the
others are imported from their module (``from deployments.selectors import evidence``).

- access: roles, visible environments, tickets, runs (404 outside them)
- tickets: lists, the actions a viewer may take, ticket_view (the page's and the API's one
  view model of a ticket)
- approvals: votes_for (the one way votes are built), approval_summary
- runs, audit, followups, rollbacks, drift, notifications: reads of each noun
- windows, queue (what needs me), evidence, monitoring, checks, history, metrics
"""

from deployments.selectors.access import (
    AnyUser,
    environment_get,
    environments_fileable_by,
    environments_viewable_by,
    environments_visible_to,
    is_superuser,
    run_get,
    runs_visible_to,
    ticket_get,
    tickets_visible_to,
    user_roles,
    visible_q,
    visible_ticket_ids,
)
from deployments.selectors.approvals import (
    approval_summary,
    attach_approver_roles,
    stray_approvals,
    ticket_approvals,
    votes_for,
)
from deployments.selectors.audit import (
    AUDIT_FILTER_TEXT_MAX,
    AuditFilters,
    audit_events,
    audit_filters,
    audit_for_ticket,
    may_read_audit,
)
from deployments.selectors.calendar import next_window_opening
from deployments.selectors.drift import drift_checks_of, latest_drift_by_environment
from deployments.selectors.followups import follow_ups_of, tickets_with_overdue_follow_ups
from deployments.selectors.notifications import notifications_visible_to
from deployments.selectors.review import plan_review, run_summary_line
from deployments.selectors.rollbacks import (
    KnownGood,
    RollbackChoice,
    attach_last_known_good,
    known_good_for,
    last_known_good,
    rollback_choice,
    ticket_last_known_good,
)
from deployments.selectors.runs import (
    LOG_PAGE_CHARS,
    LogPage,
    run_log_page,
    run_log_since,
    run_log_text,
    runs_with_log_tails,
)
from deployments.selectors.stacks import (
    stack_get,
    stack_names,
    stack_rows,
    stacks_list,
    upstream_states,
)
from deployments.selectors.tickets import (
    DEEP_OFFSET,
    ConflictView,
    Permission,
    TicketView,
    available_actions,
    check_may_approve_now,
    conflict_seen_by,
    rows_at,
    ticket_actions,
    ticket_list,
    ticket_view,
)

__all__ = [
    "AUDIT_FILTER_TEXT_MAX",
    "DEEP_OFFSET",
    "LOG_PAGE_CHARS",
    "AnyUser",
    "AuditFilters",
    "ConflictView",
    "KnownGood",
    "LogPage",
    "Permission",
    "RollbackChoice",
    "TicketView",
    "approval_summary",
    "attach_approver_roles",
    "attach_last_known_good",
    "audit_events",
    "audit_filters",
    "audit_for_ticket",
    "available_actions",
    "check_may_approve_now",
    "conflict_seen_by",
    "drift_checks_of",
    "environment_get",
    "environments_fileable_by",
    "environments_viewable_by",
    "environments_visible_to",
    "follow_ups_of",
    "is_superuser",
    "known_good_for",
    "last_known_good",
    "latest_drift_by_environment",
    "may_read_audit",
    "next_window_opening",
    "notifications_visible_to",
    "plan_review",
    "rollback_choice",
    "rows_at",
    "run_get",
    "run_log_page",
    "run_log_since",
    "run_log_text",
    "run_summary_line",
    "runs_visible_to",
    "runs_with_log_tails",
    "stack_get",
    "stack_names",
    "stack_rows",
    "stacks_list",
    "stray_approvals",
    "ticket_actions",
    "ticket_approvals",
    "ticket_get",
    "ticket_last_known_good",
    "ticket_list",
    "ticket_view",
    "tickets_visible_to",
    "tickets_with_overdue_follow_ups",
    "upstream_states",
    "user_roles",
    "visible_q",
    "visible_ticket_ids",
    "votes_for",
]
