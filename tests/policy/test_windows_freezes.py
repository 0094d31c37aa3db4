"""Windows and freezes against a brute-force minute-by-minute reference, in four zones.

Reference semantics (deployments.policy, "change windows and freezes"): an instant is in
the window when its local wall time on a window day is in [start, end) (a window whose end
is not after its start crosses midnight), and no freeze [starts_at, ends_at) contains it.
"""

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from deployments import policy

ZONES = ["America/New_York", "Australia/Sydney", "Asia/Kolkata", "Europe/London"]
MINUTE = dt.timedelta(minutes=1)


def ref_in_window(env: SimpleNamespace, at: dt.datetime, freezes: list[policy.Period]) -> bool:
    """The reference, written independently: the wall clock and the freeze list."""
    if any(f.starts_at <= at < f.ends_at for f in freezes):
        return False
    local = at.astimezone(ZoneInfo(env.window_timezone))
    wall = (local.hour, local.minute, local.second, local.microsecond)
    start = (env.window_start.hour, env.window_start.minute, 0, 0)
    end = (env.window_end.hour, env.window_end.minute, 0, 0)
    today = local.isoweekday() in env.window_days
    yesterday = (local - dt.timedelta(days=1)).isoweekday() in env.window_days
    if end > start:
        return today and start <= wall < end
    return (today and wall >= start) or (yesterday and wall < end)


def ref_next_window(
    env: SimpleNamespace, after: dt.datetime, freezes: list[policy.Period]
) -> dt.datetime:
    """Minute by minute from ``after`` (windows and freezes are on whole minutes)."""
    if ref_in_window(env, after, freezes):
        return after
    t = after.replace(second=0, microsecond=0) + MINUTE
    for _ in range(60 * 24 * 40):
        if ref_in_window(env, t, freezes):
            return t
        t += MINUTE
    raise AssertionError("no window in 40 days")


@st.composite
def environments(draw: st.DrawFn) -> SimpleNamespace:
    zone = draw(st.sampled_from(ZONES))
    days = draw(st.lists(st.integers(1, 7), min_size=1, max_size=3, unique=True))
    start = dt.time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 45])))
    # Often around the DST change hours (00:00-03:00), sometimes crossing midnight.
    length = draw(st.integers(15, 8 * 60))
    end_minutes = (start.hour * 60 + start.minute + length) % (24 * 60)
    end = dt.time(end_minutes // 60, end_minutes % 60)
    return SimpleNamespace(
        window_timezone=zone, window_days=sorted(days), window_start=start, window_end=end
    )


instants = st.datetimes(
    min_value=dt.datetime(2024, 1, 1),
    max_value=dt.datetime(2030, 12, 31),
    timezones=st.just(dt.UTC),
)


@st.composite
def freezes_near(draw: st.DrawFn, around: dt.datetime) -> list[policy.Period]:
    found = []
    for _ in range(draw(st.integers(0, 3))):
        offset = draw(st.integers(-3 * 24 * 60, 10 * 24 * 60))
        length = draw(st.integers(1, 5 * 24 * 60))
        start = around.replace(second=0, microsecond=0) + offset * MINUTE
        found.append(policy.Period(start, start + length * MINUTE, "launch"))
    return found


@settings(max_examples=300, deadline=None)
@given(environments(), instants, st.data())
def test_in_window_matches_the_reference(
    env: SimpleNamespace, at: dt.datetime, data: st.DataObject
) -> None:
    freezes = data.draw(freezes_near(at))
    assert policy.in_window(env, at, freezes) == ref_in_window(env, at, freezes)  # type: ignore[arg-type]


@settings(max_examples=120, deadline=None)
@given(environments(), instants, st.data())
def test_next_window_matches_the_minute_by_minute_reference(
    env: SimpleNamespace, after: dt.datetime, data: st.DataObject
) -> None:
    freezes = data.draw(freezes_near(after))
    assert policy.next_window(env, after, freezes) == ref_next_window(env, after, freezes)  # type: ignore[arg-type]


# DST edge days, checked against the reference around each transition.
DST_DAYS = [
    ("America/New_York", dt.date(2026, 3, 8)),
    ("America/New_York", dt.date(2026, 11, 1)),
    ("Australia/Sydney", dt.date(2026, 4, 5)),
    ("Australia/Sydney", dt.date(2026, 10, 4)),
    ("Europe/London", dt.date(2026, 3, 29)),
    ("Europe/London", dt.date(2026, 10, 25)),
]


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(DST_DAYS),
    st.integers(0, 23),
    st.sampled_from([0, 30]),
    st.integers(30, 300),
    st.integers(-24 * 60, 24 * 60),
)
def test_dst_days_match_the_reference(
    zone_day: tuple[str, dt.date], hour: int, minute: int, length: int, offset: int
) -> None:
    zone, day = zone_day
    end_minutes = (hour * 60 + minute + length) % (24 * 60)
    env = SimpleNamespace(
        window_timezone=zone,
        window_days=[day.isoweekday()],
        window_start=dt.time(hour, minute),
        window_end=dt.time(end_minutes // 60, end_minutes % 60),
    )
    after = dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)
    after += offset * MINUTE
    assert policy.next_window(env, after) == ref_next_window(env, after, [])  # type: ignore[arg-type]
    t = after
    for _ in range(0, 48 * 60, 7):
        assert policy.in_window(env, t) == ref_in_window(env, t, [])  # type: ignore[arg-type]
        t += 7 * MINUTE


NY_PROD = SimpleNamespace(
    name="prod",
    window_timezone="America/New_York",
    window_days=[2, 4],
    window_start=dt.time(2, 0),
    window_end=dt.time(4, 0),
)


def test_spring_forward_start_that_does_not_exist_opens_when_the_clock_jumps() -> None:
    env = SimpleNamespace(**{**vars(NY_PROD), "window_days": [7], "window_start": dt.time(2, 30)})
    # Sunday 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC); 02:30 never happens.
    opens = policy.next_window(env, dt.datetime(2026, 3, 8, 5, tzinfo=dt.UTC))  # type: ignore[arg-type]
    assert opens == dt.datetime(2026, 3, 8, 7, 0, tzinfo=dt.UTC)


def test_fall_back_repeated_hour_is_in_the_window_twice() -> None:
    env = SimpleNamespace(
        **{
            **vars(NY_PROD),
            "window_days": [7],
            "window_start": dt.time(1, 0),
            "window_end": dt.time(1, 30),
        }
    )
    # Sunday 2026-11-01: 01:00-01:30 happens at 05:00 UTC (EDT) and again at 06:00 UTC (EST).
    assert policy.in_window(env, dt.datetime(2026, 11, 1, 5, 10, tzinfo=dt.UTC))  # type: ignore[arg-type]
    assert not policy.in_window(env, dt.datetime(2026, 11, 1, 5, 40, tzinfo=dt.UTC))  # type: ignore[arg-type]
    assert policy.next_window(env, dt.datetime(2026, 11, 1, 5, 40, tzinfo=dt.UTC)) == dt.datetime(  # type: ignore[arg-type]
        2026, 11, 1, 6, 0, tzinfo=dt.UTC
    )


def test_freeze_over_the_window_moves_the_next_window() -> None:
    thursday = dt.datetime(2026, 11, 26, 7, 0, tzinfo=dt.UTC)  # Thu 02:00 EST
    freeze = policy.Period(
        thursday - dt.timedelta(hours=1), thursday + dt.timedelta(hours=3), "launch"
    )
    after = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
    assert policy.next_window(NY_PROD, after) == thursday  # type: ignore[arg-type]
    assert policy.next_window(NY_PROD, after, [freeze]) == dt.datetime(
        2026, 12, 1, 7, tzinfo=dt.UTC
    )  # type: ignore[arg-type]
    # A freeze ending inside a window opens it at the freeze's end.
    short = policy.Period(thursday, thursday + dt.timedelta(minutes=45), "db migration")
    assert policy.next_window(NY_PROD, after, [short]) == thursday + dt.timedelta(minutes=45)  # type: ignore[arg-type]


def test_refusal_names_the_next_window_in_its_zone_with_utc_and_how_long() -> None:
    ticket = SimpleNamespace(change_type="normal")
    now = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)  # Tue 22:00 EST
    try:
        policy.check_window(NY_PROD, ticket, now, [])  # type: ignore[arg-type]
    except policy.PolicyError as exc:
        assert exc.message == (
            "prod deploys only inside the change window (Tue/Thu 02:00\u201304:00 "
            "America/New_York); the next window opens Thu 26 Nov 02:00 EST (07:00 UTC), "
            "in 1 day 4 h"
        )
    else:
        raise AssertionError("not refused")


def test_emergency_ignores_windows_and_freezes() -> None:
    now = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)
    freeze = policy.Period(now - MINUTE, now + MINUTE, "launch")
    policy.check_window(NY_PROD, SimpleNamespace(change_type="emergency"), now, [freeze])  # type: ignore[arg-type]


def test_a_freeze_refuses_even_inside_the_window() -> None:
    inside = dt.datetime(2026, 11, 26, 7, 30, tzinfo=dt.UTC)
    freeze = policy.Period(inside - MINUTE, inside + dt.timedelta(hours=1), "product launch")
    try:
        policy.check_window(NY_PROD, SimpleNamespace(change_type="normal"), inside, [freeze])  # type: ignore[arg-type]
    except policy.PolicyError as exc:
        assert (
            "prod is frozen until Thu 26 Nov 03:30 EST (08:30 UTC) (product launch)" in exc.message
        )
        assert "the next window opens Thu 26 Nov 03:30 EST" in exc.message
    else:
        raise AssertionError("not refused")


def test_fall_back_window_reopens_when_the_wall_clock_reaches_start_the_second_time() -> None:
    env = SimpleNamespace(
        **{
            **vars(NY_PROD),
            "window_days": [7],
            "window_start": dt.time(1, 30),
            "window_end": dt.time(3, 0),
        }
    )
    # Sunday 2026-11-01: 01:30 EDT (05:30 UTC) opens; at 06:00 UTC the clock falls back to
    # 01:00 EST (outside: before 01:30), and reaches 01:30 again at 06:30 UTC.
    after = dt.datetime(2026, 11, 1, 6, 10, tzinfo=dt.UTC)
    assert not policy.in_window(env, after)  # type: ignore[arg-type]
    expected = dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC)
    assert policy.next_window(env, after) == expected  # type: ignore[arg-type]
    assert ref_next_window(env, after, []) == expected
