"""Bounded output (issue 17, item 4): whatever Terraform prints, the stored log keeps its
head and tail and says what it dropped, a line is cut, the API and the page serve the log
tail first and page by page, and a plan's summary stays small."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from deployments import services
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import RunLogChunk, TerraformRun
from deployments.services.runs.logstream import LogWriter
from deployments.terraform import runner, summary
from tests.helpers.api import api_for
from tests.helpers.factories import RunFactory, TicketFactory

pytestmark = [pytest.mark.django_db]


def _running_plan() -> TerraformRun:
    ticket = TicketFactory(status=TicketStatus.PLANNING)
    return RunFactory(ticket=ticket, kind=RunKind.PLAN, status=RunStatus.RUNNING, fence=0)


def _finish(run: TerraformRun, writer: LogWriter) -> TerraformRun:
    writer.flush()
    writer.seal()
    services.run_finish(
        run_id=run.pk,
        exit_code=1,
        error="failed",
        plan=None,
        stale=False,
        terraform_version="1.11.4",
        fence=0,
        log_tail=writer.unwritten(),
    )
    run.refresh_from_db()
    return run


def test_a_long_log_keeps_its_head_and_tail_and_says_what_it_dropped(settings: Any) -> None:
    settings.RUN_LOG_MAX_BYTES = 20_000
    run = _running_plan()
    writer = LogWriter(run)
    writer.FLUSH_BYTES = 1000  # many chunks, as a long run writes them
    lines = [f"line {n:05d} of a chatty provider" for n in range(5000)]
    for line in lines:
        writer(line)
    run = _finish(run, writer)
    stored = run.log
    assert len(stored.encode()) <= 20_000 + 2_000  # the cap, give or take a chunk and the note
    kept = stored.splitlines()
    assert kept[0] == lines[0] and kept[-1] == lines[-1]
    notes = [line for line in kept if "of output dropped" in line]
    assert len(notes) == 1
    dropped_lines = int(notes[0].split()[1])
    # Every line is either kept or counted as dropped, and the note sits between them.
    assert len([line for line in kept if line.startswith("line ")]) + dropped_lines == 5000
    head, _, tail = stored.partition(notes[0])
    assert head.splitlines()[-1] < tail.splitlines()[1]
    assert f"({sum(len(line) + 1 for line in lines) - len(head) - len(tail) + 1}" in notes[0]
    assert not RunLogChunk.objects.filter(run=run).exists()


def test_a_short_log_is_kept_whole(settings: Any) -> None:
    settings.RUN_LOG_MAX_BYTES = 20_000
    run = _running_plan()
    writer = LogWriter(run)
    for n in range(100):
        writer(f"line {n}")
    run = _finish(run, writer)
    assert run.log == "".join(f"line {n}\n" for n in range(100))


def test_a_line_of_any_length_is_cut_without_being_read_whole() -> None:
    huge = b"A" * (5 * 1024 * 1024) + b"\nnext line\n" + b"B" * 10
    lines = list(runner._lines(io.BufferedReader(io.BytesIO(huge))))
    assert len(lines) == 3
    assert len(lines[0]) < runner.LINE_MAX_CHARS + 100
    assert lines[0].endswith(f"[line cut: {5 * 1024 * 1024 - runner.LINE_MAX_CHARS} more bytes]")
    assert lines[1:] == ["next line", "B" * 10]


def _finished_run_with_log(text: str) -> TerraformRun:
    ticket = TicketFactory(status=TicketStatus.PLAN_FAILED)
    return RunFactory(ticket=ticket, kind=RunKind.PLAN, status=RunStatus.FAILED, log=text)


def test_the_run_api_serves_the_log_tail_first_and_pages_the_rest(author: Any) -> None:
    from deployments.selectors import LOG_PAGE_CHARS

    text = "".join(f"{n:07d} some output of this run\n" for n in range(10_000))
    run = _finished_run_with_log(text)
    run.ticket.author = author
    run.ticket.save()
    client = api_for(author)
    body = client.get(f"/api/v1/runs/{run.pk}/").json()
    assert body["log_size"] == len(text)
    assert body["log"] == text[-LOG_PAGE_CHARS:]
    assert body["log_start"] == len(text) - LOG_PAGE_CHARS
    pages = [body["log"]]
    before = body["log_start"]
    while before:
        page = client.get(f"/api/v1/runs/{run.pk}/log/?before={before}").json()
        assert page["end"] == before and len(page["text"]) == page["end"] - page["start"]
        pages.insert(0, page["text"])
        before = page["start"]
        assert (page["previous"] is None) == (before == 0)
    assert "".join(pages) == text
    small = client.get(f"/api/v1/runs/{run.pk}/log/?before=100&limit=10").json()
    assert small == {
        "text": text[90:100],
        "start": 90,
        "end": 100,
        "size": len(text),
        "previous": f"/api/v1/runs/{run.pk}/log/?before=90&limit=10",
    }
    assert client.get(f"/api/v1/runs/{run.pk}/log/?before=x").status_code == 400
    assert client.get(f"/api/v1/runs/{run.pk}/log/?before=-1").status_code == 400


def test_the_ticket_page_shows_the_end_of_a_long_log(author: Any, client: Any) -> None:
    from deployments.selectors import LOG_PAGE_CHARS

    text = "FIRST LINE\n" + "x" * (3 * LOG_PAGE_CHARS) + "\nLAST LINE\n"
    run = _finished_run_with_log(text)
    run.ticket.author = author
    run.ticket.save()
    client.force_login(author)
    page = client.get(f"/tickets/{run.ticket.pk}/").content.decode()
    assert "LAST LINE" in page and "FIRST LINE" not in page
    assert f"/runs/{run.pk}/?before=" in page
    assert len(page) < 2 * LOG_PAGE_CHARS
    # The run's page pages back through the log, server-rendered.
    end = client.get(f"/runs/{run.pk}/").content.decode()
    assert "LAST LINE" in end and "FIRST LINE" not in end and len(end) < 2 * LOG_PAGE_CHARS
    first = client.get(f"/runs/{run.pk}/?before={LOG_PAGE_CHARS}").content.decode()
    assert "FIRST LINE" in first and "LAST LINE" not in first


def test_a_plans_summary_stays_small_whatever_the_plan_holds() -> None:
    big_value = "v" * (30 * 1024 * 1024)
    document = {
        "terraform_version": "1.11.4",
        "resource_changes": [
            {
                "address": f'null_resource.x["{"k" * 2000}{n}"]',
                "type": "null_resource",
                "change": {"actions": ["create"], "after": {"v": "plain"}},
            }
            for n in range(summary.SUMMARY_MAX_RESOURCES + 50)
        ],
        "output_changes": {"huge": {"actions": ["create"], "after": big_value}},
    }
    result, secrets = summary.read_plan_json(io.BytesIO(json.dumps(document).encode()))
    stored = json.dumps(result)
    assert big_value not in stored and secrets == []
    assert result["add"] == summary.SUMMARY_MAX_RESOURCES + 50
    assert len(result["resources"]) == summary.SUMMARY_MAX_RESOURCES
    assert result["truncated"] == {"resources": 50}
    assert all(len(r["address"]) <= summary.NAME_MAX_CHARS for r in result["resources"])
    assert len(stored) < 2 * summary.SUMMARY_MAX_RESOURCES * (summary.NAME_MAX_CHARS + 100)
