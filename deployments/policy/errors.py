"""The two refusals of the domain: a rule says no (PolicyError: 403 for the person, 409
for the state), or the input is bad (InputError: 400; lib.validation's, named here too)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deployments.choices import TicketStatus
from deployments.lib.validation import InputError

__all__ = ["ApplyRefused", "InputError", "PolicyError"]

if TYPE_CHECKING:
    pass


class PolicyError(Exception):
    """A rule refuses the action; ``kind`` maps it to HTTP (actor → 403, state → 409)."""

    ACTOR = "actor"
    STATE = "state"

    def __init__(
        self, message: str, kind: str = STATE, *, data: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        # Extra fields of the API's error body (e.g. the id of a conflicting ticket).
        self.data = dict(data or {})


class ApplyRefused(PolicyError):
    """An apply that may not start; ``back_to`` is the ticket status it returns to."""

    def __init__(self, message: str, back_to: TicketStatus) -> None:
        super().__init__(message)
        self.back_to = back_to
