"""``[schedule] cron`` fires as cron(8) would: a table of expressions and their next fire times.

cron(8): "If both fields are restricted (i.e., don't start with *), the command will be run when either
field matches the current time." ``0 3 1 * 1`` runs on the 1st of the month and on every Monday.
Times are the local ones the service schedules in. May 2026 starts on a Friday.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from apscheduler.triggers.base import BaseTrigger

from reconciler.config.policy_model import ThresholdsConfig
from reconciler.config.service_model import ScheduleConfig
from reconciler.service.schedule import crontab_trigger, schedule_period_s, scheduled_interval_s

START = datetime(2026, 4, 30, 12).astimezone()
"""Thursday 30 April 2026, noon local time."""
DAY = 86400.0


def may(*days: int) -> list[date]:
    return [date(2026, 5, day) for day in days]


def june(*days: int) -> list[date]:
    return [date(2026, 6, day) for day in days]


EXPECTED = {
    "0 3 1 * 1": may(1, 4, 11, 18, 25) + june(1, 8),  # the 1st OR Mondays
    "0 3 * * 1": may(4, 11, 18, 25) + june(1, 8),  # Mondays only
    "0 3 1 * *": [date(2026, month, 1) for month in range(5, 12)],  # the 1st only
    "0 3 1-7 * 1": may(1, 2, 3, 4, 5, 6, 7, 11, 18),  # the first week, then Mondays
    "0 3 13 * 5": may(1, 8, 13, 15, 22, 29) + june(5),  # the 13th OR Fridays
    "0 3 1,15 * sun": may(1, 3, 10, 15, 17, 24, 31),  # names, lists
    "0 3 15 * 0": may(3, 10, 15, 17, 24, 31) + june(7),  # 0 is Sunday
    "0 3 15 * 7": may(3, 10, 15, 17, 24, 31) + june(7),  # so is 7
    "0 3 */2 * 1": may(11, 25) + june(1, 15, 29),  # a day field starting with * restricts nothing: odd days AND Mondays
    "0 3 * * 1-5": may(1, 4, 5, 6, 7, 8, 11),  # weekdays
    "0 3 1 6 1": june(1, 8, 15, 22, 29) + [date(2027, 6, 1), date(2027, 6, 7)],  # in June: the 1st OR Mondays
}


def fire_times(trigger: BaseTrigger, count: int, start: datetime = START) -> list[datetime]:
    times: list[datetime] = []
    previous, now = None, start
    for _ in range(count):
        following = trigger.get_next_fire_time(previous, now)
        assert following is not None
        times.append(following)
        previous, now = following, following + timedelta(microseconds=1)
    return times


@pytest.mark.parametrize(("expression", "expected"), EXPECTED.items(), ids=EXPECTED.keys())
def test_cron_fires_as_cron_8_does(expression: str, expected: list[date]) -> None:
    fired = fire_times(crontab_trigger(expression), len(expected))
    assert [moment.date() for moment in fired] == expected
    assert {(moment.hour, moment.minute) for moment in fired} == {(3, 0)}


def test_jitter_delays_each_fire_time_of_an_either_day_schedule_within_its_bound() -> None:
    exact = fire_times(crontab_trigger("0 3 1 * 1"), 7)
    jittered = [crontab_trigger("0 3 1 * 1", jitter_s=600).get_next_fire_time(None, moment) for moment in exact]
    offsets = [(late - on_time).total_seconds() for late, on_time in zip(jittered, exact, strict=True) if late]
    assert len(offsets) == len(exact) and all(0 <= offset <= 600 for offset in offsets)
    assert len(set(offsets)) > 1, "the jitter is drawn for each fire"


def test_the_longest_gap_and_the_quarantine_see_the_either_day_fire_times() -> None:
    """``/healthz`` and the quarantine measure "late" by the longest gap between fire times: with the 1st OR
    Mondays that is a week (Monday to Monday), not the months between Mondays that fall on a 1st."""
    either = ScheduleConfig(cron="0 3 1 * 1")
    assert schedule_period_s(either, START) == 7 * DAY
    assert schedule_period_s(ScheduleConfig(cron="0 3 1-7 * 1"), START) == 7 * DAY
    assert schedule_period_s(ScheduleConfig(cron="0 3 1 * *"), START) == 31 * DAY
    thresholds = ThresholdsConfig(quarantine_after=3, quarantine_interval_s=14 * DAY)
    assert scheduled_interval_s(schedule_period_s(either, START), 2, thresholds) == 7 * DAY
    assert scheduled_interval_s(schedule_period_s(either, START), 3, thresholds) == 14 * DAY
