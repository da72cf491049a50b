"""Overdue referrals are escalated to the receiving agency's leads once; the weekly digest
tells leads how many referrals wait, without naming a family; the demo has referrals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from dienstweg.models import DataCategory, Membership, Notification
from referrals.actions import reminders as referral_reminders
from referrals.actions import steps as referral_steps
from referrals.models import Referral
from tests.builders import build_referral
from tests.conftest import Network, make_staff


@pytest.fixture
def jobcenter_lead(network: Network):
    return make_staff("lena@example.org", "Lena Lorenz", network.jobcenter, Membership.Role.LEAD)


def send(network: Network, family) -> Referral:
    return build_referral(
        network, family, need="Arbeitsvermittlung", summary="", categories=[DataCategory.IDENTITY]
    )


def age(referral: Referral, days: int) -> None:
    Referral.objects.filter(pk=referral.pk).update(sent_at=timezone.now() - timedelta(days=days))


def test_overdue_referral_is_escalated_to_the_lead_once(
    network, family, consent, jobcenter_lead, settings
):
    settings.REFERRAL_ANSWER_DAYS = 5
    overdue, fresh = send(network, family), send(network, family)
    age(overdue, 6)
    age(fresh, 2)

    call_command("referral_reminders")
    call_command("referral_reminders")

    escalations = Notification.objects.filter(kind="referral.overdue")
    assert [(n.user, n.family_ref) for n in escalations] == [(jobcenter_lead, family.reference)]
    assert AuditEvent.objects.filter(action="referral.escalated").count() == 1
    overdue.refresh_from_db()
    fresh.refresh_from_db()
    assert overdue.escalated_at is not None and fresh.escalated_at is None


def test_answered_referral_is_not_escalated(network, family, consent, jobcenter_lead, settings):
    referral = send(network, family)
    referral_steps.assign_referral(referral, assignee=network.ben, by=jobcenter_lead)
    referral_steps.accept_referral(referral, by=network.ben)
    age(referral, 30)

    assert referral_reminders.escalate_overdue() == 0


def test_inbox_overdue_filter_shows_only_overdue(
    network, family, consent, jobcenter_lead, settings
):
    from tests.conftest import verified_client

    settings.REFERRAL_ANSWER_DAYS = 5
    overdue, fresh = send(network, family), send(network, family)
    age(overdue, 9)
    client = verified_client(jobcenter_lead)

    page = client.get("/vermittlungen/eingang/?overdue=on").content.decode()

    assert str(overdue.pk) in page and str(fresh.pk) not in page
    assert "überfällig" in page


def test_weekly_digest_counts_without_naming_families(
    network, family, consent, jobcenter_lead, send_outbox, settings
):
    settings.REFERRAL_ANSWER_DAYS = 5
    age(send(network, family), 8)
    send(network, family)
    send_outbox().clear()  # the referrals' own notifications

    call_command("referral_digest")
    mailoutbox = send_outbox()

    assert [mail.to for mail in mailoutbox] == [[jobcenter_lead.email]]
    body = mailoutbox[0].body
    assert "Unbeantwortet: 2" in body
    assert "überfällig (mehr als 5 Tage): 1" in body
    assert "/vermittlungen/eingang/?state=sent" in body
    for secret in (family.reference, "Ayşe", "Yılmaz", "Arbeitsvermittlung"):
        assert secret not in body and secret not in mailoutbox[0].subject


def test_digest_skips_agencies_without_waiting_referrals(network, jobcenter_lead, send_outbox):
    call_command("referral_digest")

    assert send_outbox() == []


@pytest.mark.django_db
def test_demo_has_referrals_and_tags(settings):
    from django.core.management import call_command as run

    settings.DEBUG = True
    run("load_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    run("load_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115 (again: nothing doubles)

    # The first project's; the second one's (conferences' demo, for the report's figures)
    # are counted by tests/dienstweg/test_demo.py's idempotence.
    from applications.models import ApplicationTag
    from dienstweg.demo import AGENCIES

    project = AGENCIES[0][0]
    states = sorted(
        Referral.objects.filter(from_agency__name=project).values_list("state", flat=True)
    )
    assert states == ["completed", "sent", "sent"]
    assert ApplicationTag.objects.filter(project__name=project).count() == 3
