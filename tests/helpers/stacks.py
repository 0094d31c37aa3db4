"""Declaring the sample's network and application stacks in a test."""

from __future__ import annotations

from typing import Any

from deployments.models import Stack
from deployments.services.stacks import StackInput, stack_save


def sample_stacks(actor: Any) -> tuple[Stack, Stack]:
    """The network stack and the application stack that depends on it, with its own policy
    folder (sample_stack/stacks), in the portal's infrastructure repository, as
    ``seed_demo --stacks`` declares them."""
    network = stack_save(
        actor=actor,
        data=StackInput(
            name="network",
            root_dir="stacks/network",
            var_file_pattern="environments/<env>/terraform.tfvars",
            require_lock_file=True,
        ),
    )
    app = stack_save(
        actor=actor,
        data=StackInput(
            name="app",
            root_dir="stacks/app",
            var_file_pattern="environments/<env>/terraform.tfvars",
            policy_dir="stacks/app/policies",
            depends_on=("network",),
        ),
    )
    return network, app
