"""Stacks as the API shows them: where each root lives, its dependencies, and (detail) its
last deployment in each environment the caller may see."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deployments import terraform as tf
from deployments.models import Deployment, Stack
from deployments.selectors.stacks import StackEnvironment
from deployments.services.stacks import stack_branch, stack_root


class StackEnvironmentRuleSerializer(serializers.Serializer[Any]):
    """A stack's stricter rule in one environment."""

    required_roles = serializers.ListField(
        child=serializers.CharField(),
        help_text="Roles of which each must also approve this stack's tickets there.",
    )


class StackSerializer(serializers.Serializer[Any]):
    """A stack: a Terraform root in a repository (docs/stacks.md)."""

    name = serializers.CharField()
    url = serializers.SerializerMethodField()
    description = serializers.CharField()
    repository = serializers.SerializerMethodField()
    repository_credentials = serializers.CharField(
        help_text="The name of the environment variable holding the repository's "
        "credentials (never their value); empty: none."
    )
    web_url = serializers.CharField()
    branch = serializers.SerializerMethodField()
    root_dir = serializers.SerializerMethodField()
    var_file_pattern = serializers.CharField(
        help_text="<env> is replaced by the environment's name; empty: each environment's "
        "own var-file."
    )
    policy_dir = serializers.CharField(
        help_text="The stack's own folder of Rego policies (repository-relative), evaluated "
        "on its plans on top of the environment's policy folder; empty: none."
    )
    require_lock_file = serializers.BooleanField()
    environment_rules = serializers.DictField(
        child=StackEnvironmentRuleSerializer(),
        help_text='Stricter rules per environment: {"staging": {"required_roles": [...]}}.',
    )
    depends_on = serializers.SerializerMethodField()
    dependents = serializers.SerializerMethodField()

    def get_url(self, stack: Stack) -> str:
        return reverse("api:stack-detail", args=[stack.name])

    def get_repository(self, stack: Stack) -> str:
        """The repository (empty in the database: the portal's INFRA_REPO), without
        credentials."""
        location = stack.repository or settings.INFRA_REPO
        return tf.InfraRepo(location=location, cache_dir=settings.TERRAFORM_HOME).display_location

    def get_branch(self, stack: Stack) -> str:
        return stack_branch(stack)

    def get_root_dir(self, stack: Stack) -> str:
        return stack_root(stack)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_depends_on(self, stack: Stack) -> list[str]:
        return sorted(s.name for s in stack.depends_on.all())

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_dependents(self, stack: Stack) -> list[str]:
        return sorted(s.name for s in stack.dependents.all())


class StackDeploymentSerializer(serializers.Serializer[Any]):
    """A stack's last deployment in an environment."""

    id = serializers.IntegerField()
    ticket = serializers.IntegerField(source="ticket_id")
    ticket_status = serializers.CharField(source="ticket.status")
    commit_sha = serializers.CharField()
    outcome = serializers.CharField()
    finished_at = serializers.DateTimeField()
    monitoring_failed_at = serializers.DateTimeField(allow_null=True)
    rolled_back_at = serializers.DateTimeField(allow_null=True)


class StackEnvironmentSerializer(serializers.Serializer[Any]):
    environment = serializers.CharField(source="environment.name")
    var_file = serializers.SerializerMethodField()
    last_deployment = serializers.SerializerMethodField()

    def get_var_file(self, row: StackEnvironment) -> str:
        stack: Stack = self.context["stack"]
        return stack.var_file_for(row.environment.name, row.environment.var_file)

    @extend_schema_field(StackDeploymentSerializer(allow_null=True))
    def get_last_deployment(self, row: StackEnvironment) -> dict[str, Any] | None:
        last: Deployment | None = row.last
        return dict(StackDeploymentSerializer(last).data) if last is not None else None


class StackDetailSerializer(StackSerializer):
    """A stack with its last deployment in each environment the caller may see."""

    environments = serializers.SerializerMethodField()

    @extend_schema_field(StackEnvironmentSerializer(many=True))
    def get_environments(self, stack: Stack) -> list[dict[str, Any]]:
        rows: list[StackEnvironment] = self.context["environments"]
        return list(StackEnvironmentSerializer(rows, many=True, context={"stack": stack}).data)
