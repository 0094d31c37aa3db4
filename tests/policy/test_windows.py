"""Change windows: Tuesday/Thursday 02:00-04:00 America/New_York, across DST."""

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from deployments import policy

NY = ZoneInfo("America/New_York")
PROD = SimpleNamespace(
    window_timezone="America/New_York",
    window_days=[2, 4],
    window_start=dt.time(2, 0),
    window_end=dt.time(4, 0),
)
DEV = SimpleNamespace(window_timezone="UTC", window_days=[], window_start=None, window_end=None)

instants = st.datetimes(
    min_value=dt.datetime(2024, 1, 1),
    max_value=dt.datetime(2030, 12, 31),
    timezones=st.just(dt.UTC),
)


@given(instants)
def test_in_window_matches_new_york_wall_clock(moment: dt.datetime) -> None:
    local = moment.astimezone(NY)
    expected = local.isoweekday() in (2, 4) and dt.time(2, 0) <= local.time() < dt.time(4, 0)
    assert policy.in_window(PROD, moment) == expected  # type: ignore[arg-type]


@given(instants)
def test_next_window_start_is_a_tuesday_or_thursday_2am_not_in_the_past(
    moment: dt.datetime,
) -> None:
    start = policy.next_window_start(PROD, moment)  # type: ignore[arg-type]
    assert start is not None
    local = start.astimezone(NY)
    assert local.isoweekday() in (2, 4) and local.time() == dt.time(2, 0)
    assert start <= moment + dt.timedelta(days=7)
    # Either we are inside that window now, or it is still ahead.
    assert start > moment or policy.in_window(PROD, moment)  # type: ignore[arg-type]


def test_window_follows_daylight_saving_time() -> None:
    # 2026-03-08 clocks go forward: 02:00 EST is 07:00 UTC, 02:00 EDT is 06:00 UTC.
    before = dt.datetime(2026, 3, 5, 7, 30, tzinfo=dt.UTC)  # Thu 02:30 EST
    after = dt.datetime(2026, 3, 10, 6, 30, tzinfo=dt.UTC)  # Tue 02:30 EDT
    assert policy.in_window(PROD, before)  # type: ignore[arg-type]
    assert policy.in_window(PROD, after)  # type: ignore[arg-type]
    assert not policy.in_window(PROD, dt.datetime(2026, 3, 10, 8, 30, tzinfo=dt.UTC))  # type: ignore[arg-type]
    start = policy.next_window_start(PROD, dt.datetime(2026, 3, 6, tzinfo=dt.UTC))  # type: ignore[arg-type]
    assert start == dt.datetime(2026, 3, 10, 6, 0, tzinfo=dt.UTC)
    # 2026-11-01 clocks go back: the Tuesday after, 02:00 EST is 07:00 UTC again.
    start = policy.next_window_start(PROD, dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC))  # type: ignore[arg-type]
    assert start == dt.datetime(2026, 11, 3, 7, 0, tzinfo=dt.UTC)


def test_window_end_is_exclusive() -> None:
    end = dt.datetime(2026, 11, 26, 4, 0, tzinfo=NY)  # Thursday 04:00
    assert not policy.in_window(PROD, end)  # type: ignore[arg-type]
    assert policy.in_window(PROD, end - dt.timedelta(microseconds=1))  # type: ignore[arg-type]


def test_environment_without_window_is_always_open() -> None:
    assert policy.in_window(DEV, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))  # type: ignore[arg-type]
    assert policy.next_window_start(DEV, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) is None  # type: ignore[arg-type]


def test_rules_are_described_in_words() -> None:
    assert policy.describe_rule({}) == "no approval required"
    assert policy.describe_rule({"all_of": ["tech_lead", "devops_lead"]}) == (
        "Tech Lead and DevOps Lead, two different people"
    )
    assert policy.describe_rule({"any_of": ["lead_developer", "tech_lead"], "count": 1}) == (
        "1 approval from a Lead Developer or Tech Lead"
    )
