"""Erasure of a family (GDPR Art. 17): what would go and what stays (plan), and the erasure
itself, which runs the apps' erasure actions in one transaction, destroys the family's data
key (crypto-shredding) and leaves a sealed `family.erased` event. What the law still
requires is kept, and said why."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connections, router, transaction
from django.db.models import Count, Q
from django.utils.translation import gettext as _

from applications import actions as application_actions
from applications.models import ApplicationTag
from audit import context, ordering
from audit.models import AuditEvent, AuditSeal
from audit.sealing import seal_pending
from audit.trail import MAX_PURPOSE, record
from conferences import actions as conference_actions
from conferences.models import Conference, Consultation
from dienstweg import actions as core
from dienstweg.actions import ActionError
from dienstweg.models import Consent, Evidence, Family, HouseholdMember, Notification, User
from messaging import actions as messaging_actions
from messaging.models import Message, Thread
from privacy.audit_actions import FAMILY_ERASED
from referrals.actions import erasure as referral_erasure
from referrals.models import Referral, ReferralAttachment

logger = logging.getLogger(__name__)

MAX_REASON = MAX_PURPOSE  # the reason is the event's purpose
# How long erase_family waits for the sealer's fence to pass its event (PostgreSQL: a
# transaction elsewhere that started earlier holds it back until it ends).
SEAL_WAIT_SECONDS = 3.0


@dataclass(frozen=True)
class Item:
    """One line of a plan or a result: what, how many, and for what is kept, why."""

    key: str
    label: str
    count: int
    reason: str = ""


@dataclass(frozen=True)
class ErasurePlan:
    family: Family
    removed: list[Item]
    kept: list[Item]


@dataclass(frozen=True)
class ErasureResult:
    family: Family
    removed: list[Item]
    kept: list[Item]
    event: AuditEvent
    seal_number: int | None  # None: the sealer service seals it on its next round


@dataclass(frozen=True)
class _Counts:
    members: int
    evidence: int
    consents: int
    referrals_removed: int
    child_protection: int
    statutory: int
    referral_attachments: int
    tags: int
    threads: int
    messages: int
    notifications: int
    audit_events: int
    has_key: bool
    conferences: int = 0


def _count(family: Family) -> _Counts:
    bases = dict(
        Referral.objects.filter(family=family)
        .order_by()
        .values("basis")
        .annotate(n=Count("id"))
        .values_list("basis", "n")
    )
    Basis = Referral.Basis
    return _Counts(
        members=HouseholdMember.objects.filter(family=family).count(),
        evidence=Evidence.objects.filter(family=family).count(),
        consents=Consent.objects.filter(family=family).count(),
        referrals_removed=sum(n for basis, n in bases.items() if basis == Basis.CONSENT),
        child_protection=bases.get(Basis.CHILD_PROTECTION, 0),
        statutory=bases.get(Basis.STATUTORY, 0),
        referral_attachments=ReferralAttachment.objects.filter(referral__family=family).count(),
        tags=ApplicationTag.objects.filter(family=family).count(),
        threads=Thread.objects.filter(family=family).count(),
        messages=Message.objects.filter(thread__family=family).count(),
        notifications=Notification.objects.filter(family_ref=family.reference).count(),
        audit_events=AuditEvent.objects.filter(family_id=str(family.pk)).count(),
        has_key=family.data_key_id is not None,
        conferences=Conference.objects.filter(family=family).count()
        + Consultation.objects.filter(family=family).count(),
    )


def _items(counts: _Counts) -> tuple[list[Item], list[Item]]:
    removed = [
        Item(
            "key",
            _(
                "Datenschlüssel der Familie: jede verschlüsselte Kopie wird unlesbar; wird "
                "eine ältere Sicherung zurückgespielt, löscht die Plattform die Familie erneut"
            ),
            int(counts.has_key),
        ),
        Item("record", _("Familienakte: Anschrift, Telefon, Notizen"), 1),
        Item("members", _("Namen und Geburtsdaten der Haushaltsmitglieder"), counts.members),
        Item("evidence", _("Nachweise der Einwilligungen (Scans)"), counts.evidence),
        Item(
            "referrals",
            _("Vermittlungen auf Grundlage der Einwilligung, mit Verlauf"),
            counts.referrals_removed,
        ),
        Item("referral_attachments", _("Anhänge von Vermittlungen"), counts.referral_attachments),
        Item("tags", _("Antragsmarker mit ihrem Verlauf"), counts.tags),
        Item(
            "conferences",
            _(
                "Familienkonferenzen mit Einladungen, Momentaufnahme und Vereinbarungen; "
                "anonyme Fallberatungen mit ihren Antworten"
            ),
            counts.conferences,
        ),
        Item("threads", _("Unterhaltungen zu Vermittlungen und Anträgen"), counts.threads),
        Item("messages", _("Nachrichten in diesen Unterhaltungen, mit Anhängen"), counts.messages),
        Item(
            "notifications", _("Benachrichtigungen, die die Familie nennen"), counts.notifications
        ),
    ]
    kept = [
        Item(
            "tombstone",
            _("Kennung der Familie, Projekt, Datum der Anlage und der Löschung"),
            1,
            _(
                "Damit das Protokoll die Familie weiter benennen kann und die Kennung nie neu "
                "vergeben wird (Rechenschaftspflicht, Art. 5 Abs. 2 DSGVO)."
            ),
        ),
        Item(
            "consents",
            _(
                "Einwilligungen als Metadaten: Zeitraum, Empfänger, Datenkategorien, Zwecke, "
                "Widerruf (ohne Vermerke und Nachweis)"
            ),
            counts.consents,
            _("Nachweis, dass die Verarbeitung rechtmäßig war (Art. 7 Abs. 1 DSGVO)."),
        ),
        Item(
            "members",
            _("Haushaltsmitglieder als anonyme Einträge (nur „Erwachsene/r“ oder „Kind“)"),
            counts.members,
            _(
                "Die Einwilligungen nennen, wer eingewilligt hat; Namen und Geburtsdaten sind "
                "gelöscht."
            ),
        ),
        Item(
            "child_protection",
            _(
                "Meldungen wegen Verdachts auf Kindeswohlgefährdung, als Metadaten (Stellen, "
                "Daten, Kategorien, Verlauf; ohne Inhalte und Anhänge)"
            ),
            counts.child_protection,
            _("Dokumentationspflicht im Kinderschutz (§ 8a SGB VIII, § 4 KKG)."),
        ),
        Item(
            "statutory",
            _(
                "Übermittlungen auf gesetzlicher Grundlage, als Metadaten (ohne Inhalte und "
                "Anhänge)"
            ),
            counts.statutory,
            _(
                "Die Übermittlung nach § 69 SGB X bleibt nachweisbar (Dokumentationspflicht "
                "nach SGB X)."
            ),
        ),
        Item(
            "audit",
            _("Protokollereignisse zur Familie (nur Kennungen, keine Inhalte)"),
            counts.audit_events,
            _(
                "Rechenschaftspflicht (Art. 5 Abs. 2 DSGVO); das Protokoll wird nach seiner "
                "eigenen Aufbewahrungsfrist gelöscht."
            ),
        ),
    ]
    return removed, kept


def plan(family: Family) -> ErasurePlan:
    """What erasing the family would remove and what it would keep (counts, German labels,
    the legal reason for each kept part). Reads counts only, never content."""
    removed, kept = _items(_count(family))
    return ErasurePlan(family, removed, kept)


def check_reason(reason: str) -> str:
    """The reason, stripped; ActionError when it is empty or too long."""
    reason = reason.strip()
    if not reason:
        raise ActionError(_("Bitte geben Sie den Grund der Löschung an."))
    if len(reason) > MAX_REASON:
        raise ActionError(
            _("Der Grund ist zu lang (höchstens %(max)d Zeichen).") % {"max": MAX_REASON}
        )
    return reason


def erase_family(
    family: Family,
    *,
    by: User | str,
    reason: str,
    agency_id: int | None = None,
    seal: bool = True,
) -> ErasureResult:
    """Erase the family: its threads, its referrals and tags (those on a legal basis kept as
    metadata), its record and household data, and its data key, in one transaction, with a
    `family.erased` event (purpose: the reason; details: counts). After commit the event
    is sealed at once (SEAL false: by the caller, e.g. at the end of a retention run).
    ActionError when the reason is missing or the family is already erased; NotAllowed
    (audited) when BY is a person who is not a DPO whose scope covers the family: its
    owner's DPO or the network's. A name in BY is the platform itself (retention)."""
    # Checked before the transaction, so that a refusal's record stays.
    core.check_dpo(by, agency_id=agency_id, family=family)
    reason = check_reason(reason)
    with _acting_for(agency_id), transaction.atomic():
        locked = Family.objects.select_for_update().select_related("owner").get(pk=family.pk)
        if locked.is_erased:
            raise ActionError(_("Die Daten dieser Familie sind bereits gelöscht."))
        _lock_cases(locked)
        before = _count(locked)
        threads = messaging_actions.erase_family_threads(locked, by=by)
        tags_removed = application_actions.erase_family_tags(locked)
        conferences = conference_actions.erase_family_conferences(locked)
        cases = referral_erasure.erase_family_cases(locked, tags_removed=tags_removed, by=by)
        erased_record = core.erase_family_record(locked, by=by, reason=reason)
        if locked.data_key_id is not None:
            core.erase_family_key(locked, by=by, reason=reason)
        done = _Counts(
            members=erased_record.members,
            evidence=erased_record.evidence,
            consents=erased_record.consents_kept,
            referrals_removed=cases.referrals_removed,
            child_protection=before.child_protection,
            statutory=before.statutory,
            referral_attachments=cases.attachments_removed,
            tags=cases.tags_removed,
            threads=threads.threads,
            messages=threads.messages,
            notifications=erased_record.notifications,
            audit_events=before.audit_events,
            has_key=before.has_key,
            conferences=conferences,
        )
        event = record(
            by,
            FAMILY_ERASED,
            target=locked,
            family=locked,
            purpose=reason,
            agency_id=agency_id,
            details={
                "key_destroyed": done.has_key,
                "members_anonymised": done.members,
                "evidence_removed": done.evidence,
                "consents_kept": done.consents,
                "referrals_removed": done.referrals_removed,
                "referrals_kept": cases.referrals_kept,
                "attachments_removed": done.referral_attachments,
                "tags_removed": done.tags,
                "threads_removed": done.threads,
                "conferences_removed": done.conferences,
                "messages_removed": done.messages,
                "notifications_removed": done.notifications,
            },
        )
    family.refresh_from_db()
    removed, kept = _items(done)
    number = seal_now(event) if seal else None
    return ErasureResult(family, removed, kept, event, number)


def _lock_cases(family: Family) -> None:
    """Lock what the erasure deletes in the platform's lock order (dienstweg.locks), after
    the family row: its referrals and tags, then their threads. The deletions below then
    wait for nothing; a step in flight on one of them has committed before."""
    for rows in (
        Referral.objects.filter(family=family),
        ApplicationTag.objects.filter(family=family),
        Thread.objects.filter(family=family),
        Conference.objects.filter(family=family),
        Consultation.objects.filter(family=family),
    ):
        list(rows.select_for_update(of=("self",)).order_by("pk").values_list("pk"))


@contextmanager
def _acting_for(agency_id: int | None) -> Iterator[None]:
    """The apps' erasure events name the DPO's agency, as her own event does."""
    if agency_id is None:
        yield
        return
    current = context.current()
    with context.bind(request_id=current.request_id, ip=current.ip, agency_id=agency_id):
        yield


def seal_covering(event: AuditEvent) -> int | None:
    """The number of the seal that covers EVENT, or None while it is unsealed."""
    alias = router.db_for_read(AuditSeal)
    basis = ordering.basis(connections[alias])
    if basis == ordering.TXID:
        txid = AuditEvent.objects.using(alias).filter(pk=event.pk).values_list("txid", flat=True)
        position = Q(last_txid__gt=txid[0]) | Q(last_txid=txid[0], last_event_id__gte=event.pk)
    else:
        position = Q(last_event_id__gte=event.pk)
    seals = AuditSeal.objects.using(alias).filter(position).order_by("number")
    return seals.values_list("number", flat=True).first()


def seal_now(event: AuditEvent, *, wait: float = SEAL_WAIT_SECONDS) -> int | None:
    """Seal the committed trail up to EVENT and return the covering seal's number; None if
    that cannot happen now (inside a transaction, or the fence held back for longer than
    WAIT seconds): the sealer service seals it on its next round. Never raises: what it
    seals has committed already."""
    if transaction.get_connection(router.db_for_write(AuditSeal)).in_atomic_block:
        return None
    deadline = time.monotonic() + wait
    try:
        while True:
            seal_pending()
            number = seal_covering(event)
            if number is not None or time.monotonic() >= deadline:
                return number
            time.sleep(0.05)
    except Exception:
        logger.exception("audit event %s not sealed now; the sealer service will", event.pk)
        return None
