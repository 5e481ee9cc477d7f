"""Working days, for the records-request deadline (spec/requests.md §5). Pure: holidays are an argument.

A working day is Monday to Friday and not in the caller's ``holidays`` (the district's calendar: state
holidays, school breaks). Counting starts the day after the request: a request made on a Monday with a
10-working-day limit is due by the Monday two weeks later and overdue from the Tuesday.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from protocol.errors import InvalidInput

DEFAULT_WORKING_DAYS = 10
MAX_WORKING_DAYS = 365


def _check_date(value: object, field: str) -> None:
    # datetime is a date subclass; accepting one would silently compare times with dates.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidInput(f"{field} must be a date", field=field)


def _check_holidays(holidays: frozenset[date]) -> None:
    if not isinstance(holidays, frozenset):
        raise InvalidInput("holidays must be a frozenset of dates", field="holidays")
    for day in holidays:
        _check_date(day, "holidays")


def is_working_day(day: date, *, holidays: frozenset[date] = frozenset()) -> bool:
    return day.weekday() < 5 and day not in holidays


def working_days_between(start: date, end: date, *, holidays: frozenset[date] = frozenset()) -> int:
    """Working days after ``start`` up to and including ``end``; 0 when ``end`` is not after ``start``."""
    _check_date(start, "start")
    _check_date(end, "end")
    _check_holidays(holidays)
    if end <= start:
        return 0
    weeks, rest = divmod((end - start).days, 7)
    first = start.weekday()
    count = weeks * 5 + sum(1 for i in range(1, rest + 1) if (first + i) % 7 < 5)
    return count - sum(1 for day in holidays if start < day <= end and day.weekday() < 5)


def add_working_days(start: date, days: int, *, holidays: frozenset[date] = frozenset()) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself when ``days`` is 0)."""
    _check_date(start, "start")
    _check_holidays(holidays)
    if type(days) is not int or not 0 <= days <= MAX_WORKING_DAYS:
        raise InvalidInput(f"working days must be 0 to {MAX_WORKING_DAYS}", field="working_days")
    day = start
    while days:
        day += timedelta(days=1)
        days -= is_working_day(day, holidays=holidays)
    return day


def due_date(
    created: date, *, working_days: int = DEFAULT_WORKING_DAYS, holidays: frozenset[date] = frozenset()
) -> date:
    """The last day an answer is on time."""
    return add_working_days(created, working_days, holidays=holidays)


def is_overdue(
    created: date,
    today: date,
    *,
    working_days: int = DEFAULT_WORKING_DAYS,
    holidays: frozenset[date] = frozenset(),
) -> bool:
    """Whether more than ``working_days`` working days have passed since ``created``."""
    if type(working_days) is not int or not 1 <= working_days <= MAX_WORKING_DAYS:
        raise InvalidInput(f"working days must be 1 to {MAX_WORKING_DAYS}", field="working_days")
    return working_days_between(created, today, holidays=holidays) > working_days
