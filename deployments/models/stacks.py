"""Stacks: the Terraform roots the portal governs, each in its own repository, with its own
lock, history and dependencies per environment (docs/stacks.md)."""

from __future__ import annotations

from django.db import models

DEFAULT_STACK = "default"
# Replaced by the environment's name in a stack's var-file pattern.
ENV_PLACEHOLDER = "<env>"


class Stack(models.Model):
    """One Terraform root: where it lives, how it is run, what it depends on.

    Blank repository, branch and root directory mean the portal's INFRA_REPO, INFRA_BRANCH
    and TERRAFORM_DIR (the ``default`` stack is exactly today's single stack). Credentials
    are referenced by name only, never stored here.
    """

    name = models.SlugField(max_length=64, unique=True)
    description = models.CharField(max_length=200, blank=True)
    repository = models.CharField(
        max_length=500,
        blank=True,
        help_text="Git URL or local path of the repository (without credentials); "
        "blank: the portal's INFRA_REPO.",
    )
    repository_credentials = models.CharField(
        max_length=64,
        blank=True,
        help_text="Name of an environment variable (on the web and worker processes) "
        "holding 'user:token' for an HTTPS repository; the value never enters the database.",
    )
    webhook_secret_env = models.CharField(
        max_length=64,
        blank=True,
        help_text="Name of the environment variable holding this repository's GitHub "
        "webhook secret; blank: GITHUB_WEBHOOK_SECRET.",
    )
    web_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="The repository's web address, for commit and compare links "
        "(e.g. https://github.com/acme/network).",
    )
    branch = models.CharField(
        max_length=200, blank=True, help_text="Protected branch; blank: INFRA_BRANCH."
    )
    root_dir = models.CharField(
        max_length=255,
        blank=True,
        help_text="Terraform root inside the repository; blank: TERRAFORM_DIR.",
    )
    var_file_pattern = models.CharField(
        max_length=255,
        blank=True,
        help_text="Var-file relative to the root, <env> replaced by the environment's name "
        "(e.g. environments/<env>/terraform.tfvars); blank: the environment's var-file.",
    )
    # Terraform -backend-config items ("key=value"); [] means TERRAFORM_BACKEND_CONFIG, with
    # a local backend's workspace_dir given a folder of this stack's own (docs/stacks.md).
    backend_config = models.JSONField(default=list, blank=True)
    require_lock_file = models.BooleanField(
        default=False,
        help_text="Refuse to run a commit of this stack without .terraform.lock.hcl (on top "
        "of each environment's own setting).",
    )
    policy_dir = models.CharField(
        max_length=255,
        blank=True,
        help_text="A folder of Rego policies of this stack's own (repository-relative, e.g. "
        "stacks/app/policies), evaluated on its plans on top of the environment's policy "
        "folder: it can add policies, never remove one; blank: none.",
    )
    # Stricter rules per environment: {"staging": {"required_roles": ["devops_lead"]}}: each
    # listed role must also approve this stack's tickets there (policy.stacks).
    environment_rules = models.JSONField(default=dict, blank=True)
    depends_on = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="dependents"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def default(cls) -> Stack:
        """The stack a ticket gets when it names none: the only one, else ``default``."""
        only = list(cls.objects.all()[:2])
        if len(only) == 1:
            return only[0]
        stack, _ = cls.objects.get_or_create(name=DEFAULT_STACK)
        return stack

    def var_file_for(self, environment_name: str, environment_var_file: str) -> str:
        if not self.var_file_pattern:
            return environment_var_file
        return self.var_file_pattern.replace(ENV_PLACEHOLDER, environment_name)

    def required_roles_in(self, environment_name: str) -> list[str]:
        rules = (self.environment_rules or {}).get(environment_name) or {}
        return [str(role) for role in rules.get("required_roles", [])]
