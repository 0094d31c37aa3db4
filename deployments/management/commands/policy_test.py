"""``manage.py policy_test [path ...] [--run ID]``: a policy author's loop (docs/policies.md).

Runs each folder's ``*_test.rego`` unit tests (each ``test_*`` rule must be true, as
``opa test`` reads them) with regopy in the same sandbox the worker uses, and with
``--run`` evaluates the folders' policies (their manifests' levels and environments) on a
stored plan run's masked plan document, as they would have decided it: the first folder
as the environment's policy folder, every other as a stack's own (its policies named
``<path>/<package>``). Nothing is recorded. Exit code 1 when a test fails or a policy
cannot be evaluated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments import policy
from deployments.models import TerraformRun
from deployments.services import policies as service
from deployments.terraform import rego


class Command(BaseCommand):
    help = "Run a policy folder's *_test.rego tests; with --run, evaluate it on a stored plan."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "paths",
            nargs="*",
            default=["policies"],
            metavar="path",
            help="Policy folders (default: policies): the environment's, then stacks' own.",
        )
        parser.add_argument("--run", type=int, help="A plan run whose stored plan to evaluate.")

    def handle(self, *args: Any, **options: Any) -> None:
        folders: list[service.RepoFolder] = []
        for index, path in enumerate(options["paths"]):
            folder = Path(path)
            if not folder.is_dir():
                raise CommandError(f"{folder} is not a folder")
            try:
                files, manifest = rego.read_policy_folder(folder)
            except rego.PolicyFolderError as exc:
                raise CommandError(f"{folder}: {exc}") from None
            folders.append(
                service.RepoFolder(
                    dir=str(path).rstrip("/"),
                    files=tuple(sorted(files.items())),
                    manifest=manifest,
                    stack=index > 0,
                )
            )
        passed = failed = 0
        for item in folders:
            if len(folders) > 1:
                self.stdout.write(f"{item.dir}:")
            modules = [rego.PolicyModule(path=p, source=t) for p, t in item.files]
            ok, bad = self._tests(modules)
            passed, failed = passed + ok, failed + bad
        if len(folders) > 1:
            self.stdout.write(f"all {len(folders)} folders: {passed} passed, {failed} failed")
        if options["run"] is not None:
            failed += self._evaluate(options["run"], folders)
        if failed:
            raise CommandError(f"{failed} failed")

    def _tests(self, modules: list[rego.PolicyModule]) -> tuple[int, int]:
        policies = tuple(m for m in modules if not m.is_test)
        jobs = tuple(
            rego.RegoJob(id=m.path, modules=(m, *policies), mode="test")
            for m in modules
            if m.is_test
        )
        if not jobs:
            self.stdout.write("no *_test.rego files")
            return 0, 0
        result = rego.evaluate(
            rego.RegoSpec(
                jobs=jobs,
                timeout=settings.POLICY_TIMEOUT * max(1, len(jobs)),
                sandbox=settings.TERRAFORM_SANDBOX_CONFIG,
                work_root=settings.TERRAFORM_HOME / "policy-work",
                memory_bytes=settings.POLICY_MEMORY_MB * 1024**2,
            )
        )
        passed = failed = 0
        for job in result.results:
            if job.error:
                failed += 1
                self.stdout.write(f"ERROR {job.id}: {job.error}")
                continue
            if not job.tests:
                self.stdout.write(f"{job.id}: no test_ rules")
            for name, ok in job.tests:
                self.stdout.write(f"{'PASS' if ok else 'FAIL'} {job.id}: {name}")
                passed += ok
                failed += not ok
        self.stdout.write(f"{passed} passed, {failed} failed ({result.seconds:.2f} s)")
        return passed, failed

    def _evaluate(self, run_id: int, folders: list[service.RepoFolder]) -> int:
        run = TerraformRun.objects.select_related("ticket", "environment").filter(pk=run_id).first()
        if run is None or run.kind != "plan":
            raise CommandError(f"no plan run {run_id}")
        try:
            evaluated, seconds = service.policy_dry_run(run, folders=folders)
        except policy.PolicyError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"plan run {run.pk} of ticket #{run.ticket_id} in {run.environment.name} "
            f"({len(evaluated)} policies, {seconds:.2f} s):"
        )
        errors = 0
        for item in evaluated:
            self.stdout.write(f"  {item.outcome.upper():5} {item.planned.policy} ({item.level})")
            for message in item.messages:
                self.stdout.write(f"        {message}")
            for message in item.warnings:
                self.stdout.write(f"        warning: {message}")
            errors += item.outcome == "error"
        findings = [
            policy.plan_policies.PolicyFinding(
                policy=e.planned.policy, source=e.planned.source, level=e.level, outcome=e.outcome
            )
            for e in evaluated
        ]
        self.stdout.write(f"policy status: {policy.plan_policies.policy_status(findings)}")
        return errors
