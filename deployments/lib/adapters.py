"""allauth configuration: accounts are provisioned by administrators, not by sign-up."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter


class NoSignupAccountAdapter(DefaultAccountAdapter):
    """Sign-in only: every account is created by an administrator."""

    def is_open_for_signup(self, request: Any) -> bool:
        return False
