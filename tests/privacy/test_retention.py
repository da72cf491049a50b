"""The retention run (`manage.py apply_retention`, which runs outside a transaction, as the
sealer does: hence `committed`): closed referrals and decided tags past
their period go with their threads, quiet direct threads with their key, inactive
families are erased as on request, expired audit events leave through the trail's
pruning; what is open, recent or restricted stays. Each run leaves a sealed record and the
trail still verifies; a dry run changes nothing; a trail that does not verify stops the
run before anything is removed.

Who is here: Anna (coach at the project) refers the Yılmaz family and tags its
applications; Ben (caseworker at the Jobcenter) decides them and writes to Anna directly."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from applications import actions as application_actions
from applications.models import ApplicationTag
from audit.models import AuditEvent, AuditSeal
from audit.trail import record
from audit.verify import verify
from dienstweg import actions as core
from dienstweg import erasure_register
from dienstweg.models import Consent, DataKey, Family
from messaging.models import Message, Thread
from privacy import erasure, retention
from referrals.actions import steps as referrals
from referrals.models import Referral
from tests.audit.helpers import seal_all, triggers_lifted, wait_until_final
from tests.builders import (
    build_direct_thread,
    build_referral,
    build_referral_thread,
    build_tag,
    build_tag_thread,
)
from tests.conftest import YILMAZ, Network, consent_data

LONG_AGO = timedelta(days=4000)  # beyond every period
CASE_DAYS_AGO = timedelta(days=800)  # beyond RETENTION_CLOSED_CASE_DAYS (730), not families'


def ago(delta: timedelta) -> datetime:
    return timezone.now() - delta


def age(queryset: QuerySet[Any], delta: timedelta, *fields: str) -> None:
    """Move these timestamps of domain rows back (the audit trail cannot be changed)."""
    queryset.update(**{field: ago(delta) for field in fields})


def record_at(moment: datetime, action: str, **fields: Any) -> AuditEvent:
    """An audit event that happened at MOMENT (record() takes its time from timezone.now)."""
    with mock.patch("django.utils.timezone.now", return_value=moment), transaction.atomic():
        return record(None, action, **fields)


def withdrawn(network: Network, family: Family, closed: timedelta) -> Referral:
    """A referral Anna sent and withdrew, CLOSED ago, with a thread of two messages."""
    referral = referrals.withdraw_referral(build_referral(network, family), by=network.anna)
    build_referral_thread(referral, messages=["Nachfrage"] * 2, by=network.anna)
    filtered = Referral.objects.filter(pk=referral.pk)
    age(filtered, closed, "closed_at", "updated_at", "created_at", "sent_at")
    age(Thread.objects.filter(referral=referral), closed, "last_message_at", "created_at")
    return referral


def tag(network: Network, family: Family, *, decided: bool, changed: timedelta) -> ApplicationTag:
    tag_ = build_tag(network, family)
    if decided:
        application_actions.record_tag_status(
            tag_, state="decided", decided_on=timezone.localdate(), by=network.ben
        )
    age(ApplicationTag.objects.filter(pk=tag_.pk), changed, "updated_at", "created_at")
    return tag_


def direct(network: Network, quiet: timedelta) -> Thread:
    thread = build_direct_thread(by=network.anna, colleague=network.ben, messages=["Kurze Frage"])
    age(Thread.objects.filter(pk=thread.pk), quiet, "last_message_at", "created_at")
    return thread


def inactive(family: Family) -> Family:
    """Make the family look untouched for longer than RETENTION_FAMILY_DAYS."""
    age(Family.objects.filter(pk=family.pk), LONG_AGO, "registered_at")
    for consent in Consent.objects.filter(family=family):
        Consent.objects.filter(pk=consent.pk).update(
            recorded_at=ago(LONG_AGO),
            valid_from=(ago(LONG_AGO)).date(),
            valid_until=(ago(LONG_AGO) + timedelta(days=365)).date(),
        )
    return family


def register(network: Network, reference_note: str = "Notiz") -> Family:
    return core.register_family(
        owner=network.project,
        members=YILMAZ,
        address="Horster Straße 30, 45964 Gladbeck",
        phone="02043 123456",
        notes=reference_note,
        by=network.anna,
    )


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("apply_retention", *args, stdout=out)
    return out.getvalue()


def exists(model_object: Model) -> bool:
    return type(model_object)._default_manager.filter(pk=model_object.pk).exists()


def removal_events(action: str, target: Model) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(action=action, target_id=str(target.pk))


# Cases


@pytest.mark.usefixtures("committed")
def test_closed_referrals_past_the_period_go_with_their_threads(
    network: Network, family: Family, consent: Consent
) -> None:
    old = withdrawn(network, family, CASE_DAYS_AGO)
    old_thread = Thread.objects.get(referral=old)
    recent = withdrawn(network, family, timedelta(days=10))
    still_open = build_referral(network, family)
    age(Referral.objects.filter(pk=still_open.pk), LONG_AGO, "updated_at", "sent_at", "created_at")

    retention.apply_retention()

    assert not exists(old)
    assert not exists(old_thread)
    assert not Message.objects.filter(thread_id=old_thread.pk).exists()
    assert exists(recent) and exists(still_open)
    [event] = removal_events("referral.removed_by_retention", old)
    # The family's access report finds it: the event names the family.
    assert event.family_id == str(family.pk)
    assert event.actor_label == "system:retention"
    assert event.details == {"state": "withdrawn", "basis": "consent", "messages": 2}


@pytest.mark.usefixtures("committed")
def test_decided_tags_past_the_period_go_undecided_ones_stay(
    network: Network, family: Family, consent: Consent
) -> None:
    old = tag(network, family, decided=True, changed=CASE_DAYS_AGO)
    build_tag_thread(old, messages=["Bescheid ist raus"], by=network.ben)
    recent = tag(network, family, decided=True, changed=timedelta(days=5))
    undecided = tag(network, family, decided=False, changed=LONG_AGO)

    retention.apply_retention()

    assert not exists(old)
    assert not Thread.objects.filter(application_tag_id=old.pk).exists()
    assert exists(recent) and exists(undecided)
    [event] = removal_events("application_tag.removed_by_retention", old)
    assert event.family_id == str(family.pk)
    assert event.details["messages"] == 1


@pytest.mark.usefixtures("committed")
def test_quiet_direct_threads_go_with_their_key(network: Network) -> None:
    quiet = direct(network, CASE_DAYS_AGO)
    key = quiet.data_key_id
    dirk_and_ben = build_direct_thread(by=network.dirk, colleague=network.ben, messages=["Hallo"])

    retention.apply_retention()

    assert not exists(quiet)
    assert not DataKey.objects.filter(pk=key).exists()
    assert exists(dirk_and_ben)
    [event] = removal_events("thread.removed_by_retention", quiet)
    assert event.family_id is None and event.details == {"messages": 1}


@pytest.mark.usefixtures("committed")
def test_inactive_families_are_erased_as_on_request(
    network: Network, family: Family, consent: Consent
) -> None:
    old_referral = withdrawn(network, family, LONG_AGO)  # closed long ago: nothing open
    gone = inactive(family)  # its consent expired long ago
    consented = inactive(register(network))
    core.grant_consent(consented, data=consent_data(network, consented), by=network.anna)
    restricted = inactive(register(network))
    Family.objects.filter(pk=restricted.pk).update(restricted_at=ago(LONG_AGO))
    recent = register(network)

    run_ = retention.apply_retention()

    assert run_.counts.families == 1
    erased = Family.objects.get(pk=gone.pk)
    assert erased.is_erased and erased.data_key_id is None
    assert not exists(old_referral)
    event = AuditEvent.objects.get(action="family.erased", family_id=str(gone.pk))
    assert event.actor_label == "system:retention"
    assert event.purpose == "Aufbewahrungsfrist abgelaufen"
    for kept in (consented, restricted, recent):
        assert not Family.objects.get(pk=kept.pk).is_erased
    # Registered outside the database, so that no restore brings it back.
    assert [entry.family_id for entry in erasure_register.entries()] == [str(gone.pk)]


@pytest.mark.usefixtures("committed")
def test_records_the_run_with_counts(network: Network, family: Family, consent: Consent) -> None:
    withdrawn(network, family, CASE_DAYS_AGO)
    direct(network, CASE_DAYS_AGO)

    run_ = retention.apply_retention()

    event = AuditEvent.objects.get(action="retention.applied")
    assert event == run_.event
    assert event.actor_label == "system:retention"
    assert event.details["referrals"] == 1
    assert event.details["direct_threads"] == 1
    assert event.details["families"] == 0
    assert event.details["closed_case_days"] == 730


# Dry run


def snapshot() -> dict[str, int]:
    return {
        "referrals": Referral.objects.count(),
        "tags": ApplicationTag.objects.count(),
        "threads": Thread.objects.count(),
        "messages": Message.objects.count(),
        "keys": DataKey.objects.count(),
        "erased": Family.objects.filter(erased_at__isnull=False).count(),
        "events": AuditEvent.objects.count(),
        "seals": AuditSeal.objects.count(),
    }


def test_dry_run_says_what_would_go_and_changes_nothing(
    network: Network, family: Family, consent: Consent
) -> None:
    withdrawn(network, family, CASE_DAYS_AGO)
    tag(network, family, decided=True, changed=CASE_DAYS_AGO)
    direct(network, CASE_DAYS_AGO)
    inactive(register(network))
    before = snapshot()

    output = run("--dry-run")

    assert snapshot() == before
    assert "Probelauf" in output
    assert "       1  abgeschlossene Vermittlungen" in output
    assert "       1  entschiedene Antragsmarker" in output
    assert "       1  ruhende Direktnachrichten" in output
    assert "       1  Familien ohne Offenes" in output


# The trail


@pytest.mark.usefixtures("committed")
def test_expired_audit_events_go_each_run_is_sealed_and_the_trail_verifies(
    network: Network, settings
) -> None:
    # History written after the present: the sealer would refuse it as backdated.
    settings.AUDIT_CLOCK_SKEW_SECONDS = 100 * 366 * 24 * 3600
    family = register(network)
    core.grant_consent(family, data=consent_data(network, family), by=network.anna)
    withdrawn(network, family, CASE_DAYS_AGO)
    login = record_at(ago(timedelta(days=100)), "auth.login_failed")
    viewed = record_at(ago(LONG_AGO), "family.viewed", family=family)
    kept = record_at(ago(timedelta(days=10)), "auth.login_failed")
    seal_all()  # what the sealer service would have done long ago

    output = run()

    assert not AuditEvent.objects.filter(pk__in=[login.pk, viewed.pk]).exists()
    assert AuditEvent.objects.filter(pk=kept.pk).exists()
    assert "Protokoll [" in output and "Vermittlungen [" in output  # progress bars
    assert "abgelaufene, versiegelte Protokollereignisse" in output
    event = AuditEvent.objects.get(action="retention.applied")
    assert event.details["audit_events"] == 2
    assert event.details["referrals"] == 1
    assert event.details["checkpoint"] == 1
    if erasure.seal_covering(event) is None and connection.vendor == "postgresql":
        wait_until_final()  # another test run held the sealer's fence back
        erasure.seal_now(event)
    assert erasure.seal_covering(event) is not None
    report = verify()
    assert report.ok, report.lines()
    call_command("audit_verify", stdout=io.StringIO())

    # A second run finds nothing more to remove and is sealed as well.
    run()
    second = AuditEvent.objects.filter(action="retention.applied").order_by("-id").first()
    assert second is not None and second.details["audit_events"] == 0
    seal_all()
    assert verify().ok
    call_command("audit_verify", stdout=io.StringIO())


@pytest.mark.usefixtures("committed")
def test_a_trail_that_does_not_verify_stops_the_run_before_anything_goes(
    network: Network,
) -> None:
    family = register(network)
    core.grant_consent(family, data=consent_data(network, family), by=network.anna)
    referral = withdrawn(network, family, CASE_DAYS_AGO)
    record_at(ago(LONG_AGO), "family.viewed", family=family)
    seal_all()
    tampered = AuditEvent.objects.filter(action="family.registered").get()
    with triggers_lifted() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET purpose = %s WHERE id = %s", ["geändert", tampered.pk]
        )
    events_before = AuditEvent.objects.count()

    with pytest.raises(CommandError, match="Löschen verweigert"):
        run()

    assert AuditEvent.objects.count() == events_before
    assert exists(referral)
    assert not AuditEvent.objects.filter(action="retention.applied").exists()
