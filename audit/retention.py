"""How long audit events are kept: security events for AUDIT_SECURITY_RETENTION_DAYS days,
every other event until the end of the AUDIT_ACCESS_RETENTION_YEARS-th calendar year after
its own (local calendar, TIME_ZONE). Seals and checkpoints hold no personal data and are
kept for good. Removal itself goes through audit/pruning.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, ngettext

# Logins, failed logins, second factors passed and failed, lock-outs, logouts, ended
# sessions (dienstweg/actions.py). Account changes (account.*) are permission changes and
# kept like every other event.
SECURITY_PREFIXES = ("auth.", "session.")


def is_security(action: str) -> bool:
    return action.startswith(SECURITY_PREFIXES)


def security_days() -> int:
    days = settings.AUDIT_SECURITY_RETENTION_DAYS
    if not isinstance(days, int) or days < 1:
        raise ImproperlyConfigured("AUDIT_SECURITY_RETENTION_DAYS must be a whole number ≥ 1.")
    return days


def access_years() -> int:
    years = settings.AUDIT_ACCESS_RETENTION_YEARS
    if not isinstance(years, int) or years < 0:
        raise ImproperlyConfigured("AUDIT_ACCESS_RETENTION_YEARS must be a whole number ≥ 0.")
    return years


def _start_of_year(year: int) -> datetime:
    """1 January, 00:00 local time (Europe/Berlin: 23:00 UTC the day before)."""
    return datetime(year, 1, 1, tzinfo=timezone.get_default_timezone())


def expires_at(action: str, occurred_at: datetime) -> datetime:
    """The moment from which an event of ACTION at OCCURRED_AT counts as expired."""
    if is_security(action):
        return occurred_at + timedelta(days=security_days())
    year = timezone.localtime(occurred_at, timezone.get_default_timezone()).year
    return _start_of_year(year + access_years() + 1)


def expired_q(now: datetime | None = None) -> Q:
    """The events expired at NOW (by default: now), as a filter over AuditEvent; the same
    rule as expires_at(): expired from that moment on."""
    now = timezone.now() if now is None else now
    security = Q(action__startswith=SECURITY_PREFIXES[0])
    for prefix in SECURITY_PREFIXES[1:]:
        security |= Q(action__startswith=prefix)
    # An event of year Y is expired once the local year reaches Y + N + 1, i.e. every
    # event before 1 January of (this local year - N).
    this_year = timezone.localtime(now, timezone.get_default_timezone()).year
    return (security & Q(occurred_at__lte=now - timedelta(days=security_days()))) | (
        ~security & Q(occurred_at__lt=_start_of_year(this_year - access_years()))
    )


def describe() -> list[tuple[str, str]]:
    """The retention periods of the trail, labelled for the record of processing
    activities (GDPR Art. 30)."""
    days, years = security_days(), access_years()
    if years == 0:
        access = gettext("bis zum Ende des Kalenderjahres des Ereignisses")
    else:
        access = ngettext(
            "bis zum Ende des Kalenderjahres nach dem Ereignis",
            "bis zum Ende des %(years)d. Kalenderjahres nach dem Ereignis",
            years,
        ) % {"years": years}
    return [
        (
            gettext(
                "Sicherheitsereignisse (Anmeldungen, Fehlversuche, zweiter Faktor, Sperren, "
                "Abmeldungen, beendete Sitzungen)"
            ),
            ngettext("%(days)d Tag", "%(days)d Tage", days) % {"days": days},
        ),
        (gettext("Zugriffs- und Übermittlungsereignisse (alle übrigen Ereignisse)"), access),
        (
            gettext("Siegel und Prüfpunkte des Protokolls (ohne personenbezogene Daten)"),
            gettext("unbefristet"),
        ),
    ]
