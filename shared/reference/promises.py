"""Business days and the promised delivery date, from the shipping rules' calendar and promise per service level:
fulfillment fixes the promise when it releases a pick task, and allocation weighs it in an order's priority.
Pure: the caller passes the clock's instant and the rules in."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from shared.contracts.events import ServiceLevel

from .rates import Calendar, ShippingRules

SATURDAY = 5


def is_business_day(day: date, calendar: Calendar) -> bool:
    return day.weekday() < SATURDAY and day not in calendar.holidays


def next_business_day(day: date, calendar: Calendar) -> date:
    """The first business day strictly after `day`."""
    day += timedelta(days=1)
    while not is_business_day(day, calendar):
        day += timedelta(days=1)
    return day


def add_business_days(day: date, count: int, calendar: Calendar) -> date:
    for _ in range(count):
        day = next_business_day(day, calendar)
    return day


def ship_date(at: datetime, cutoff: time, calendar: Calendar) -> date:
    """The day a parcel handed to the warehouse at `at` leaves it: that day if it is a business day and the
    warehouse's cut-off (local time of the calendar) has not passed yet, else the next business day."""
    local = at.astimezone(calendar.zone)
    if is_business_day(local.date(), calendar) and local.time() < cutoff:
        return local.date()
    return next_business_day(local.date(), calendar)


def cutoff_at(day: date, cutoff: time, calendar: Calendar) -> datetime:
    """The instant of the warehouse's cut-off on `day`, in the calendar's time zone."""
    return datetime.combine(day, cutoff, tzinfo=calendar.zone)


def promised_delivery(service_level: ServiceLevel, released_at: datetime, cutoff: time, rules: ShippingRules) -> date:
    """What the customer is promised when the warehouse gets the pick task at `released_at`."""
    leaves = ship_date(released_at, cutoff, rules.calendar)
    return add_business_days(leaves, rules.promise_business_days[service_level], rules.calendar)
