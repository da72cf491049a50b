"""Retention of audit events: security events for 90 days, every other event until the end
of the calendar year after its own, in local time (Europe/Berlin)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured

from audit.models import AuditEvent
from audit.retention import describe, expired_q, expires_at, is_security

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)

# Every security event the platform records (dienstweg/actions.py).
SECURITY_ACTIONS = [
    "auth.login",
    "auth.login_failed",
    "auth.locked_out",
    "auth.second_factor_failed",
    "auth.second_factor_passed",
    "auth.logout",
    "session.ended",
]


def event(occurred_at: datetime, action: str = "family.viewed") -> AuditEvent:
    return AuditEvent.objects.create(occurred_at=occurred_at, actor_label="user:7", action=action)


def expired_ids(now: datetime) -> set[int]:
    return set(AuditEvent.objects.filter(expired_q(now)).values_list("id", flat=True))


@pytest.mark.parametrize("action", SECURITY_ACTIONS)
def test_security_events_are_security(action: str) -> None:
    assert is_security(action)


@pytest.mark.parametrize(
    "action", ["family.viewed", "referral.sent", "account.deactivated", "authority.viewed"]
)
def test_other_events_are_not_security(action: str) -> None:
    assert not is_security(action)


def test_security_event_expires_after_90_days(db: None) -> None:
    kept = event(NOW - timedelta(days=89), "auth.login_failed")
    gone = event(NOW - timedelta(days=91), "auth.login_failed")
    session = event(NOW - timedelta(days=91), "session.ended")
    assert expired_ids(NOW) == {gone.id, session.id}
    assert kept.id not in expired_ids(NOW)
    assert expires_at("auth.login", NOW) == NOW + timedelta(days=90)


def test_security_event_is_expired_from_its_expiry_on(db: None) -> None:
    at = event(NOW - timedelta(days=90), "auth.login")
    assert expires_at(at.action, at.occurred_at) == NOW
    assert expired_ids(NOW) == {at.id}
    assert expired_ids(NOW - timedelta(microseconds=1)) == set()


def test_access_event_is_kept_until_the_end_of_the_next_calendar_year(db: None) -> None:
    old = event(datetime(2024, 12, 31, 23, 59, tzinfo=BERLIN))
    last_year = event(datetime(2025, 1, 1, 0, 0, tzinfo=BERLIN))
    recent = event(datetime(2026, 1, 2, 9, 0, tzinfo=BERLIN))
    # A 91-day-old read is still kept: only security events go after 90 days.
    assert expired_ids(NOW) == {old.id}
    assert {last_year.id, recent.id}.isdisjoint(expired_ids(NOW))


def test_access_year_ends_at_midnight_local_time(db: None) -> None:
    """23:30 on 31 December in Berlin is 22:30 UTC; 00:30 on 1 January is still 31 December
    in UTC: the local calendar decides the year."""
    december = event(datetime(2025, 12, 31, 23, 30, tzinfo=BERLIN))
    january = event(datetime(2026, 1, 1, 0, 30, tzinfo=BERLIN))
    assert january.occurred_at.astimezone(UTC).year == 2025
    new_year = datetime(2027, 1, 1, 0, 0, tzinfo=BERLIN)
    assert expires_at("family.viewed", december.occurred_at) == new_year
    assert expires_at("family.viewed", january.occurred_at) == datetime(2028, 1, 1, tzinfo=BERLIN)
    assert expired_ids(new_year - timedelta(seconds=1)) == set()
    assert expired_ids(new_year) == {december.id}


def test_retention_periods_are_configurable(db: None, settings) -> None:
    settings.AUDIT_SECURITY_RETENTION_DAYS = 30
    settings.AUDIT_ACCESS_RETENTION_YEARS = 0
    login = event(NOW - timedelta(days=31), "auth.login")
    read = event(datetime(2025, 7, 1, tzinfo=BERLIN))
    assert expired_ids(NOW) == {login.id, read.id}
    assert expires_at("family.viewed", read.occurred_at) == datetime(2026, 1, 1, tzinfo=BERLIN)


def test_nonsense_periods_are_refused(settings) -> None:
    settings.AUDIT_SECURITY_RETENTION_DAYS = 0
    with pytest.raises(ImproperlyConfigured):
        expired_q(NOW)
    settings.AUDIT_SECURITY_RETENTION_DAYS = 90
    settings.AUDIT_ACCESS_RETENTION_YEARS = -1
    with pytest.raises(ImproperlyConfigured):
        expires_at("family.viewed", NOW)


def test_expired_q_agrees_with_expires_at(db: None) -> None:
    start = datetime(2024, 12, 20, tzinfo=UTC)
    events = [
        event(start + timedelta(days=days, hours=hours), action)
        for days in range(0, 800, 37)
        for hours in (0, 23)
        for action in ("auth.logout", "referral.viewed")
    ]
    for now in (datetime(2026, 1, 1, tzinfo=BERLIN), datetime(2027, 3, 1, tzinfo=UTC), NOW):
        assert expired_ids(now) == {
            e.id for e in events if expires_at(e.action, e.occurred_at) <= now
        }


def test_describe_lists_the_periods_for_the_record_of_processing() -> None:
    periods = dict(describe())
    assert len(periods) == 3
    assert "90 Tage" in periods.values()
    assert "bis zum Ende des Kalenderjahres nach dem Ereignis" in periods.values()
    assert "unbefristet" in periods.values()
