"""Overdue referrals: the escalation to the receiving agency's leads, and the weekly digest
of unanswered referrals (counts only, never a family)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.trail import record
from dienstweg.access import Role, members_holding
from dienstweg.models import Agency
from dienstweg.outbox import queue_mail
from referrals.actions.notices import notify_of, receiving_leads
from referrals.actions.transitions import lock_referral
from referrals.audit_actions import REFERRAL_ESCALATED
from referrals.models import Referral

State = Referral.State


def overdue_since(now: datetime | None = None) -> datetime:
    """Referrals sent before this moment and still unanswered are overdue."""
    return (now or timezone.now()) - timedelta(days=settings.REFERRAL_ANSWER_DAYS)


def overdue_referrals() -> QuerySet[Referral]:
    """Sent referrals without an answer after REFERRAL_ANSWER_DAYS."""
    cutoff = overdue_since()
    return Referral.objects.filter(state=State.SENT, sent_at__lt=cutoff)


def escalate_overdue() -> int:
    """Notify the receiving agency's leads of each overdue referral, once."""
    count = 0
    for referral in overdue_referrals().filter(escalated_at__isnull=True).iterator():
        with transaction.atomic():
            locked = lock_referral(referral)
            if locked is None or locked.escalated_at is not None or locked.state != State.SENT:
                continue
            locked.escalated_at = timezone.now()
            locked.save(update_fields=["escalated_at"])
            record(
                "system:escalation",
                REFERRAL_ESCALATED,
                target=locked,
                family=locked.family,
                agency_id=locked.to_agency_id,
            )
            notify_of(
                receiving_leads(locked),
                locked,
                "referral.overdue",
                gettext_lazy("Vermittlung überfällig: noch keine Antwort"),
            )
            count += 1
    return count


# The weekly digest: counts only, never a family.


@dataclass(frozen=True)
class Backlog:
    agency: Agency
    unanswered: int
    overdue: int


def unanswered_backlogs() -> list[Backlog]:
    """Per receiving agency: referrals sent and not yet accepted or declined."""
    cutoff = overdue_since()
    rows = (
        Referral.objects.filter(state=State.SENT)
        .order_by()
        .values("to_agency")
        .annotate(
            unanswered=Count("id"),
            overdue=Count("id", filter=Q(sent_at__lt=cutoff)),
        )
    )
    agencies = Agency.objects.in_bulk([row["to_agency"] for row in rows])
    return [Backlog(agencies[row["to_agency"]], row["unanswered"], row["overdue"]) for row in rows]


def send_weekly_digest() -> int:
    """E-mail each lead of an agency with unanswered referrals how many there are (and how
    many are overdue), with a link to the inbox. Returns how many e-mails were queued (the
    outbox's sender sends them)."""
    queued = 0
    link = settings.DIENSTWEG_BASE_URL.rstrip("/") + reverse("referral_inbox") + "?state=sent"
    for backlog in unanswered_backlogs():
        leads = members_holding(Role.LEAD, agencies=backlog.agency)
        body = "\n".join(
            [
                _("Wochenübersicht der Vermittlungen an %(agency)s:")
                % {"agency": backlog.agency.name},
                "",
                _("Unbeantwortet: %(n)d") % {"n": backlog.unanswered},
                _("Davon überfällig (mehr als %(days)d Tage): %(n)d")
                % {"days": settings.REFERRAL_ANSWER_DAYS, "n": backlog.overdue},
                "",
                _("Zum Eingang: %(link)s") % {"link": link},
                _("Einzelheiten sehen Sie nach der Anmeldung in Dienstweg."),
            ]
        )
        mails = queue_mail(
            leads,
            kind="referral.digest",
            subject=_("Dienstweg: Wochenübersicht Vermittlungen"),
            body=body,
        )
        queued += len(mails)
    return queued
