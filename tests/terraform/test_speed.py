"""What was changed for speed keeps the log, the secrets and the version exact: the log is
folded in the database byte for byte, parsed configuration is reused only for the same
text, and the Terraform version is asked again for a different binary."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from deployments import services
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import RunLogChunk, TerraformRun
from deployments.terraform import runner, sensitive
from tests.helpers.factories import RunFactory, TicketFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_promotion_gate")]


@pytest.fixture
def no_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)


def _running(kind: str = RunKind.APPLY, fence: int = 2) -> TerraformRun:
    ticket = TicketFactory(
        status=TicketStatus.APPLYING if kind == RunKind.APPLY else TicketStatus.PLANNING
    )
    plan = RunFactory(ticket=ticket, plan_sha256="a" * 64)
    return RunFactory(
        ticket=ticket,
        kind=kind,
        plan=plan if kind == RunKind.APPLY else None,
        status=RunStatus.RUNNING,
        fence=fence,
    )


def _chunks(run: TerraformRun, count: int) -> str:
    """``count`` chunks of varied text (multi-byte, empty lines, quotes, a NUL-free mix),
    inserted in shuffled order so the fold must order them by ``seq``."""
    rng = random.Random(12)
    texts = [
        "".join(
            rng.choice(["line ", "é", "→ ", "'", '"', "\\", "\n", "\t", "ok\n", "💥"])
            for _ in range(rng.randint(1, 60))
        )
        for _ in range(count)
    ]
    starts, offset = [], 0
    for text in texts:
        starts.append(offset)
        offset += len(text)
    order = list(range(count))
    rng.shuffle(order)
    for i in order:
        RunLogChunk.objects.create(run=run, seq=i + 1, start=starts[i], text=texts[i])
    return "".join(texts)


def test_a_finished_run_keeps_its_whole_log_byte_for_byte(no_dispatch: None) -> None:
    run = _running()
    expected = _chunks(run, 300)
    services.run_finish(
        run_id=run.pk,
        exit_code=0,
        error="",
        plan=None,
        stale=False,
        terraform_version="1.11.4",
        fence=2,
        log_tail="not yet written\n",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.log == expected + "not yet written\n"
    assert run.log.encode() == (expected + "not yet written\n").encode()
    assert not RunLogChunk.objects.filter(run=run).exists()


def test_a_run_without_chunks_keeps_its_tail(no_dispatch: None) -> None:
    run = _running()
    services.run_finish(
        run_id=run.pk,
        exit_code=1,
        error="boom",
        plan=None,
        stale=False,
        terraform_version="1.11.4",
        fence=2,
        log_tail="error: boom\n",
    )
    run.refresh_from_db()
    assert run.log == "error: boom\n"


def test_an_interrupted_run_then_its_late_finish_keep_every_line_in_order(
    no_dispatch: None,
) -> None:
    run = _running(fence=5)
    before = _chunks(run, 40)
    assert services.run_interrupt(run_id=run.pk, reason="its worker is gone", fence=5)
    run.refresh_from_db()
    assert run.status == RunStatus.INTERRUPTED
    assert run.log.startswith(before + "\nerror: its worker is gone.")
    interrupted_log = run.log
    RunLogChunk.objects.create(run=run, seq=41, start=len(before), text="late line\n")
    services.run_finish(
        run_id=run.pk,
        exit_code=0,
        error="",
        plan=None,
        stale=False,
        terraform_version="1.11.4",
        fence=5,
        log_tail="tail\n",
    )
    run.refresh_from_db()
    assert run.log.startswith(interrupted_log + "late line\ntail\nnote: terraform apply")
    assert not RunLogChunk.objects.filter(run=run).exists()


def test_the_folded_log_is_what_the_run_object_reads_afterwards(
    no_dispatch: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The instance finishing the run reads the folded log, not the empty one it loaded."""
    run = _running(kind=RunKind.PLAN, fence=0)
    expected = _chunks(run, 5)
    seen: list[str] = []
    real = services.runs.outcome._advance_ticket

    def spy(ticket: Any, finished: TerraformRun, **kwargs: Any) -> None:
        seen.append(finished.log)
        real(ticket, finished, **kwargs)

    monkeypatch.setattr(services.runs.outcome, "_advance_ticket", spy)
    services.run_finish(
        run_id=run.pk,
        exit_code=1,
        error="plan failed",
        plan=None,
        stale=False,
        terraform_version="1.11.4",
        fence=0,
    )
    assert seen == [expected]


# --- parsed configuration, reused by content -------------------------------------------


def _stack(root: Path, *, sensitive_var: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "variables.tf").write_text(
        f'variable "{sensitive_var}" {{\n  type = string\n  sensitive = true\n}}\n'
        'variable "region" {\n  type = string\n}\n'
    )
    (root / "dev.tfvars").write_text(
        'db_password = "hunter2-db"\napi_token = "tok-123456"\nregion = "eu-west-1"\n'
    )
    return root


def test_a_changed_configuration_is_parsed_again(tmp_path: Path) -> None:
    stack = _stack(tmp_path / "a", sensitive_var="db_password")
    assert sensitive.sensitive_values(stack, [stack / "dev.tfvars"]) == ["hunter2-db"]
    # The same file again: the same answer (from the parsed copy).
    assert sensitive.sensitive_values(stack, [stack / "dev.tfvars"]) == ["hunter2-db"]
    # Another commit declares another variable sensitive: its value is found.
    _stack(stack, sensitive_var="api_token")
    assert sensitive.sensitive_values(stack, [stack / "dev.tfvars"]) == ["tok-123456"]


def test_callers_cannot_change_the_remembered_configuration(tmp_path: Path) -> None:
    stack = _stack(tmp_path / "a", sensitive_var="db_password")
    first = sensitive._module_documents(stack)
    first[0]["variable"].clear()
    assert sensitive.sensitive_values(stack, [stack / "dev.tfvars"]) == ["hunter2-db"]


def test_an_unparseable_configuration_still_fails_closed(tmp_path: Path) -> None:
    stack = _stack(tmp_path / "a", sensitive_var="db_password")
    assert sensitive.sensitive_values(stack, [stack / "dev.tfvars"]) == ["hunter2-db"]
    (stack / "broken.tf").write_text('resource "x" {\n')
    found = sensitive.sensitive_values(stack, [stack / "dev.tfvars"])
    assert set(found) == {"hunter2-db", "tok-123456", "eu-west-1"}


# --- the Terraform version, asked once per binary ----------------------------------------


def _fake_binary(path: Path, calls: Path, answer: str) -> Path:
    path.write_text(f"#!/bin/sh\necho x >> {calls}\n{answer}\n")
    path.chmod(0o755)
    return path


def test_the_version_is_asked_once_per_binary_and_again_when_it_changes(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    binary = _fake_binary(
        tmp_path / "terraform", calls, """echo '{"terraform_version": "1.11.4"}'"""
    )
    assert runner.version(str(binary)) == "1.11.4"
    assert runner.version(str(binary)) == "1.11.4"
    assert calls.read_text().count("x") == 1
    # Upgraded in place: a different file, asked again.
    _fake_binary(binary, calls, """echo '{"terraform_version": "1.12.10"}'""")
    assert runner.version(str(binary)) == "1.12.10"
    assert calls.read_text().count("x") == 2


def test_a_version_that_could_not_be_read_is_asked_again(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    binary = _fake_binary(tmp_path / "terraform", calls, "echo 'not json'")
    assert runner.version(str(binary)) == ""
    assert runner.version(str(binary)) == ""
    assert calls.read_text().count("x") == 2
    assert runner.version(str(tmp_path / "missing")) == ""


# --- the plan's base state, read from the saved plan ------------------------------------


@pytest.mark.terraform
@pytest.mark.django_db(transaction=True)
def test_the_base_state_read_from_the_plan_file_is_the_state_terraform_reports(
    author: Any, infra_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against an empty workspace it is "", as `state pull` says; after an apply it is the
    lineage/serial `state pull` reported after that apply; and a plan file that is not a
    zip falls back to `state pull`, which answers the same."""
    from deployments.models import Deployment
    from tests.helpers.flow import drain, file_dev

    monkeypatch.setattr(services.runs.start, "run_dispatch", lambda run_id: None)
    first = drain(file_dev(author))
    assert first.status == TicketStatus.COMPLETED, first.status_reason
    assert first.runs.get(kind=RunKind.PLAN).base_state == ""
    state_after = Deployment.objects.get(ticket=first).state_after
    assert state_after.count("/") == 1 and state_after.split("/")[0]

    second = drain(file_dev(author))
    assert second.runs.get(kind=RunKind.PLAN).base_state == state_after

    def not_a_zip(*args: Any, **kwargs: Any) -> Any:
        raise runner.zipfile.BadZipFile("not a zip")

    monkeypatch.setattr(runner.zipfile, "ZipFile", not_a_zip)
    third = drain(file_dev(author))
    # (The second ticket's apply wrote the state again: a new serial.)
    assert third.runs.get(kind=RunKind.PLAN).base_state == (
        Deployment.objects.get(ticket=second).state_after
    )


# --- the export cache, per commit --------------------------------------------------------


def _repo(tmp_path: Path) -> tuple[Any, str]:
    from deployments.terraform.source import InfraRepo, create_repository

    source = tmp_path / "source"
    (source / "terraform" / "environments" / "dev").mkdir(parents=True)
    (source / "terraform" / "main.tf").write_text('resource "null_resource" "a" {}\n')
    (source / "terraform" / "environments" / "dev" / "terraform.tfvars").write_text('x = "1"\n')
    (source / "terraform" / "hook.sh").write_text("#!/bin/sh\necho hook\n")
    (source / "terraform" / "hook.sh").chmod(0o755)
    sha = create_repository(source, tmp_path / "repo")
    return InfraRepo(location=str(tmp_path / "repo"), cache_dir=tmp_path / "home"), sha


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o777)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_cached_export_is_the_commit_byte_for_byte_without_asking_git_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, sha = _repo(tmp_path)
    fresh = repo.export(sha, "terraform", tmp_path / "fresh")
    first = repo.export_cached(sha, "terraform", tmp_path / "run1", tmp_path / "cache")
    assert _tree(first) == _tree(fresh)
    assert _tree(first)["hook.sh"][1] & 0o100  # executable bits kept

    def no_git(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("git was asked again for a cached commit")

    monkeypatch.setattr(type(repo), "_git", no_git)
    monkeypatch.setattr(type(repo), "_archive_into", no_git)
    second = repo.export_cached(sha, "terraform", tmp_path / "run2", tmp_path / "cache")
    assert _tree(second) == _tree(fresh)


def test_another_commit_gets_its_own_export(tmp_path: Path) -> None:
    from deployments.terraform.source import commit_all

    repo, sha = _repo(tmp_path)
    repo.export_cached(sha, "terraform", tmp_path / "run1", tmp_path / "cache")
    (tmp_path / "repo" / "terraform" / "main.tf").write_text('resource "null_resource" "b" {}\n')
    newer = commit_all(tmp_path / "repo", "b")
    root = repo.export_cached(newer, "terraform", tmp_path / "run2", tmp_path / "cache")
    assert 'null_resource" "b"' in (root / "main.tf").read_text()
    old = repo.export_cached(sha, "terraform", tmp_path / "run3", tmp_path / "cache")
    assert 'null_resource" "a"' in (old / "main.tf").read_text()


@pytest.mark.parametrize("damage", ["edit", "delete", "truncate_manifest"])
def test_a_damaged_cache_entry_is_rebuilt(tmp_path: Path, damage: str) -> None:
    repo, sha = _repo(tmp_path)
    cache = tmp_path / "cache"
    fresh = _tree(repo.export(sha, "terraform", tmp_path / "fresh"))
    repo.export_cached(sha, "terraform", tmp_path / "run1", cache)
    (entry,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    cached_main = entry / "tree" / "terraform" / "main.tf"
    if damage == "edit":
        cached_main.write_text('resource "null_resource" "tampered" {}\n')
    elif damage == "delete":
        cached_main.unlink()
    else:
        (entry / "manifest.json").write_text('{"terraform/main.tf": ')
    root = repo.export_cached(sha, "terraform", tmp_path / "run2", cache)
    assert _tree(root) == fresh
    # And the entry itself is whole again.
    assert _tree(repo.export_cached(sha, "terraform", tmp_path / "run3", cache)) == fresh


def test_an_unknown_commit_or_folder_still_fails_and_caches_nothing_else(
    tmp_path: Path,
) -> None:
    from deployments.terraform.source import SourceError

    repo, sha = _repo(tmp_path)
    cache = tmp_path / "cache"
    with pytest.raises(SourceError):
        repo.export_cached("f" * 40, "terraform", tmp_path / "run1", cache)
    assert list(cache.iterdir()) == []
    with pytest.raises(SourceError, match="nowhere/ does not exist at commit"):
        repo.export_cached(sha, "nowhere", tmp_path / "run2", cache)
    # The entry is the commit's whole tree, shared by every root in it: kept.
    (entry,) = list(cache.iterdir())
    assert (entry / "tree/terraform/main.tf").is_file()


def test_a_finished_runs_working_directory_is_removed(tmp_path: Path) -> None:
    """Removed by a thread after the run returns; nothing of the run stays behind."""
    import threading
    import time

    from deployments.terraform.source import InfraRepo

    _, sha = _repo(tmp_path)
    spec = runner.RunSpec(
        binary=str(tmp_path / "no-terraform"),
        repo=InfraRepo(location=str(tmp_path / "repo"), cache_dir=tmp_path / "home"),
        commit_sha=sha,
        terraform_dir="terraform",
        workspace="dev",
        var_file="environments/dev/terraform.tfvars",
        provider_mirror=tmp_path / "mirror",
        plugin_cache=tmp_path / "plugins",
        work_root=tmp_path / "work",
    )
    result = runner.plan(spec, lambda line: None)
    assert not result.ok  # no binary: it failed after the directory was made
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(timeout=30)
    deadline = time.monotonic() + 30
    while [p for p in (tmp_path / "work").iterdir() if p.name.startswith("run-")]:
        assert time.monotonic() < deadline, "the run's directory was never removed"
        time.sleep(0.05)
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["exports"]
