"""The steps of a referral, one function per domain verb: drafting and sending it,
approval of a referral on a legal basis, the receiving agency's answers, withdrawal, and
recording that a participant read it.

Each step changes the state through transitions.transition(); object permissions are
granted and withdrawn through permissions.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.trail import record
from dienstweg.access import CASE_ROLES, holds_role
from dienstweg.actions import ActionError
from dienstweg.consent import (
    ConsentMissing,
    ProcessingRestricted,
    require_consent,
    require_unrestricted,
)
from dienstweg.models import PUBLIC_KINDS, Agency, Consent, DataCategory, Family, Purpose, User
from dienstweg.uploads import Upload, check_upload
from referrals.access import REFERRING_ROLES
from referrals.actions.notices import notify_of, notify_sending_leads, receiving_leads
from referrals.actions.permissions import grant_view, hand_over_change, revoke_receiver_permissions
from referrals.actions.snapshot import build_snapshot
from referrals.actions.transitions import BASIS_PURPOSE, transition
from referrals.audit_actions import REFERRAL_DELIVERED, REFERRAL_DRAFTED, REFERRAL_STEP_REFUSED
from referrals.models import NeedKind, Referral, ReferralAttachment, ReferralEvent

State = Referral.State
Basis = Referral.Basis

MAX_ATTACHMENTS = 5


@dataclass(frozen=True)
class ReferralData:
    to_agency: Agency
    need: str
    summary: str
    categories: list[str]
    notes: dict[str, str] = field(default_factory=dict)  # what is shared, per category
    basis: str = Basis.CONSENT
    basis_reason: str = ""
    attachments: list[Upload] = field(default_factory=list)
    need_kind: str = NeedKind.OTHER


def check_referral_data(family: Family, data: ReferralData) -> list[str]:
    """The reasons this referral cannot be made (empty if it can)."""
    problems = []
    if data.to_agency.pk == family.owner_id:
        problems.append(_("Die eigene Einrichtung ist kein Empfänger."))
    if not data.need.strip():
        problems.append(_("Bitte den Bedarf angeben."))
    if not data.categories or not set(data.categories) <= set(DataCategory.values):
        problems.append(_("Bitte die geteilten Datenkategorien wählen."))
    if not set(data.notes) <= set(data.categories):
        problems.append(_("Angaben nur zu gewählten Datenkategorien."))
    if data.need_kind not in NeedKind.values:
        problems.append(_("Unbekannter Bereich des Bedarfs."))
    if data.basis not in Basis.values:
        problems.append(_("Unbekannte Rechtsgrundlage."))
    if data.basis != Basis.CONSENT and not data.basis_reason.strip():
        problems.append(_("Bitte begründen Sie die Übermittlung ohne Einwilligung."))
    if data.basis == Basis.CHILD_PROTECTION and data.to_agency.kind != Agency.Kind.JUGENDAMT:
        problems.append(_("Eine Meldung nach § 8a SGB VIII geht an das Jugendamt."))
    if data.basis == Basis.STATUTORY and data.to_agency.kind not in PUBLIC_KINDS:
        problems.append(_("Nach § 69 SGB X wird nur an Sozialleistungsträger übermittelt."))
    if len(data.attachments) > MAX_ATTACHMENTS:
        problems.append(_("Höchstens %(n)d Anhänge.") % {"n": MAX_ATTACHMENTS})
    for upload in data.attachments:
        try:
            check_upload(upload)
        except ActionError as error:
            problems.append(str(error))
    return problems


def refer_family(family: Family, *, data: ReferralData, send: bool, by: User) -> Referral:
    """Create a referral of the family (a draft), and send it (or, on a legal basis,
    submit it for approval) when SEND. A refused send stores nothing but its refusal, which
    is recorded like a refused step on an existing referral (record_refused_step)."""
    sending = False
    try:
        with transaction.atomic():
            if not holds_role(by, *REFERRING_ROLES, agency=family.owner_id):
                raise ActionError(_("Vermitteln dürfen Coaches und Leitungen des Projekts."))
            problems = check_referral_data(family, data)
            if problems:
                raise ActionError(" ".join(problems))
            referral = Referral(
                family=family,
                from_agency_id=family.owner_id,
                to_agency=data.to_agency,
                created_by=by,
                basis=data.basis,
                categories=sorted(set(data.categories)),
                need_kind=data.need_kind,
            )
            referral.encrypt_field("need", data.need.strip())
            referral.encrypt_field("summary", data.summary.strip())
            referral.encrypt_field("category_notes", json.dumps(data.notes, ensure_ascii=False))
            referral.encrypt_field("basis_reason", data.basis_reason.strip())
            referral.save(force_insert=True)
            for upload in data.attachments:
                attachment = ReferralAttachment(
                    referral=referral,
                    content_type=check_upload(upload),
                    size=len(upload.content),
                    uploaded_by=by,
                )
                attachment.encrypt_field("name", upload.name)
                attachment.encrypt_field("content", upload.content)
                attachment.save(force_insert=True)
            # The sending project's case roles follow their referral from the first moment.
            grant_view(referral, family.owner.group)
            ReferralEvent.objects.create(
                referral=referral, verb="drafted", state=State.DRAFT, by=by
            )
            record(
                by,
                REFERRAL_DRAFTED,
                target=referral,
                family=family,
                agency_id=family.owner_id,
                details={"to_agency": data.to_agency.pk, "basis": data.basis},
            )
            if send:
                sending = True
                referral = send_referral(referral, by=by)
            return referral
    except ActionError:
        if sending:
            # The draft rolled back with the refused send: the refusal names the family and
            # the receiving agency, not a referral that was never stored.
            with transaction.atomic():
                record(
                    by,
                    REFERRAL_STEP_REFUSED,
                    family=family,
                    details={"verb": "send", "state": "new", "to_agency": data.to_agency.pk},
                )
        raise


def record_referral_read(
    referral: Referral,
    *,
    action: str,
    side: str,
    by: User,
    details: dict[str, Any] | None = None,
) -> None:
    """Record that a participant read the referral's data (its page, an attachment). The
    receiving side's first reading ends the referral's "new" mark in its inbox."""
    with transaction.atomic():
        if side == "receiver" and referral.receiver_opened_at is None:
            referral.receiver_opened_at = timezone.now()
            Referral.objects.filter(pk=referral.pk, receiver_opened_at__isnull=True).update(
                receiver_opened_at=referral.receiver_opened_at
            )
        record(
            by,
            action,
            target=referral,
            family=referral.family,
            agency_id=referral.from_agency_id if side == "sender" else referral.to_agency_id,
            purpose=BASIS_PURPOSE[Basis(referral.basis)],
            details=details,
        )


def record_refused_step(referral: Referral, *, verb: str, by: User) -> None:
    """Record that a step on a referral was refused (in its own transaction: the refused
    step's was rolled back)."""
    with transaction.atomic():
        record(
            by,
            REFERRAL_STEP_REFUSED,
            target=referral,
            family=referral.family,
            details={"verb": verb, "state": referral.state},
        )


# Sending


def send_referral(referral: Referral, *, by: User) -> Referral:
    """Send a draft: on consent, only if the family's consent covers the receiving agency,
    the shared categories and the purpose "referral" (checked and locked in this
    transaction); on a legal basis, submit it to a second lead of the agency for approval.
    Neither while the family's processing is restricted (GDPR Art. 18)."""
    with transaction.atomic():
        if referral.basis != Basis.CONSENT:
            _require_unrestricted(referral.family)
            submitted = transition(referral, "submit", by=by)
            notify_sending_leads(submitted, exclude=by)
            return submitted
        sent = transition(referral, "send", by=by)
        try:
            consents = require_consent(
                sent.family,
                to_agency=sent.to_agency,
                categories=sent.categories,
                purpose=Purpose.REFERRAL,
            )
        except ProcessingRestricted:
            raise ActionError(str(RESTRICTED_MESSAGE)) from None
        except ConsentMissing as missing:
            labels = ", ".join(
                str(DataCategory(value).label)
                for value in sorted(missing.missing)
                if value in DataCategory.values
            )
            raise ActionError(
                _(
                    "Keine gültige Einwilligung erlaubt dieser Stelle für den Zweck "
                    "Vermittlung: %(categories)s. Es wurde nichts gesendet."
                )
                % {"categories": labels or _("die gewählten Daten")}
            ) from None
        _deliver(sent, consents=consents, by=by)
        return sent


def approve_referral(referral: Referral, *, by: User) -> Referral:
    """Approve a referral on a legal basis (a second lead of the sending agency): it is
    sent, and flagged for the data-protection officer's review. Not while the family's
    processing is restricted."""
    with transaction.atomic():
        _require_unrestricted(referral.family)
        approved = transition(
            referral, "approve", by=by, change=lambda r: setattr(r, "approved_by", by)
        )
        _deliver(approved, consents=[], by=by)
        notify_of(
            [approved.created_by],
            approved,
            "referral.approved",
            gettext_lazy("Vermittlung freigegeben"),
        )
        return approved


def refuse_referral(referral: Referral, *, note: str, by: User) -> Referral:
    """Refuse to approve a referral on a legal basis: nothing is sent."""
    if not note.strip():
        raise ActionError(_("Bitte begründen Sie die Ablehnung der Freigabe."))
    with transaction.atomic():
        refused = transition(
            referral,
            "refuse",
            by=by,
            change=lambda r: r.encrypt_field("decision_note", note.strip()),
        )
        notify_of(
            [refused.created_by], refused, "referral.refused", gettext_lazy("Freigabe verweigert")
        )
        return refused


RESTRICTED_MESSAGE = gettext_lazy(
    "Die Verarbeitung der Daten dieser Familie ist eingeschränkt (Art. 18 DSGVO): Bis der "
    "Datenschutz die Einschränkung aufhebt, verlässt nichts das Projekt. Es wurde nichts "
    "gesendet."
)


def _require_unrestricted(family: Family) -> None:
    """Lock the family row for a transmission; ActionError while its processing is
    restricted."""
    try:
        require_unrestricted(family)
    except ProcessingRestricted:
        raise ActionError(str(RESTRICTED_MESSAGE)) from None


def _deliver(referral: Referral, *, consents: list[Consent], by: User) -> None:
    """Hand the snapshot to the receiving agency: encrypt exactly the shared data, grant the
    agency's group the view permission, remember the consents relied on."""
    referral.encrypt_field("snapshot", json.dumps(build_snapshot(referral), ensure_ascii=False))
    referral.sent_at = timezone.now()
    referral.dpo_review = referral.basis != Basis.CONSENT
    referral.access_until = min((c.valid_until for c in consents), default=None)
    referral.save(update_fields=["snapshot_enc", "sent_at", "dpo_review", "access_until"])
    referral.consents.set(consents)
    grant_view(referral, referral.to_agency.group)
    record(
        by,
        REFERRAL_DELIVERED,
        target=referral,
        family=referral.family,
        agency_id=referral.from_agency_id,
        purpose=BASIS_PURPOSE[Basis(referral.basis)],
        details={
            "to_agency": referral.to_agency_id,
            "basis": referral.basis,
            "dpo_review": referral.dpo_review,
            **{f"shares_{category}": True for category in referral.categories},
        },
    )
    notify_of(
        receiving_leads(referral), referral, "referral.received", gettext_lazy("Neue Vermittlung")
    )


# The receiving agency


def assign_referral(referral: Referral, *, assignee: User, by: User) -> Referral:
    """Assign the referral to a caseworker (or lead) of the receiving agency; she alone
    may then accept, decline and complete it."""
    if not holds_role(assignee, *CASE_ROLES, agency=referral.to_agency_id):
        raise ActionError(_("Zuweisen nur an Fachkräfte der empfangenden Stelle."))
    # The previous assignee as the locked row names her: a reassignment that committed
    # while this one waited for the lock is the one to hand over from, and to record.
    details: dict[str, Any] = {"assignee": assignee.pk}
    previous: list[User | None] = []

    def change(locked: Referral) -> None:
        previous.append(locked.assignee)
        details["previous"] = locked.assignee_id
        locked.assignee = assignee

    with transaction.atomic():
        assigned = transition(referral, "assign", by=by, change=change, details=details)
        hand_over_change(assigned, previous=previous[0], assignee=assignee)
        notify_of([assignee], assigned, "referral.assigned", gettext_lazy("Vermittlung zugewiesen"))
        return assigned


def accept_referral(referral: Referral, *, by: User) -> Referral:
    """Accept the referral (the assignee; or a lead of the receiving agency while nobody is
    assigned, who then becomes the assignee, with the assignee's permission)."""
    details: dict[str, Any] = {}

    def change(locked: Referral) -> None:
        locked.answered_at = timezone.now()
        if locked.assignee_id is None:  # the rule let only a receiving lead get here
            locked.assignee = by
            details["assignee"] = by.pk

    with transaction.atomic():
        accepted = transition(referral, "accept", by=by, change=change, details=details)
        if details:
            hand_over_change(accepted, previous=None, assignee=by)
        notify_of(
            [accepted.created_by],
            accepted,
            "referral.accepted",
            gettext_lazy("Vermittlung angenommen"),
        )
        return accepted


def decline_referral(referral: Referral, *, reason: str, by: User) -> Referral:
    """Decline the referral with a reason (the assignee); the sender sees the reason."""
    if not reason.strip():
        raise ActionError(_("Bitte geben Sie einen Grund für die Ablehnung an."))

    def change(locked: Referral) -> None:
        locked.answered_at = timezone.now()
        locked.encrypt_field("decision_note", reason.strip())

    with transaction.atomic():
        declined = transition(referral, "decline", by=by, change=change)
        notify_of(
            [declined.created_by],
            declined,
            "referral.declined",
            gettext_lazy("Vermittlung abgelehnt"),
        )
        return declined


def complete_referral(referral: Referral, *, outcome: str, by: User) -> Referral:
    """Complete an accepted referral with its outcome, which the sender sees (closed loop)."""
    if not outcome.strip():
        raise ActionError(_("Bitte beschreiben Sie das Ergebnis."))

    def change(locked: Referral) -> None:
        locked.closed_at = timezone.now()
        locked.encrypt_field("outcome", outcome.strip())

    with transaction.atomic():
        completed = transition(referral, "complete", by=by, change=change)
        notify_of(
            [completed.created_by],
            completed,
            "referral.completed",
            gettext_lazy("Vermittlung abgeschlossen"),
        )
        return completed


def withdraw_referral(referral: Referral, *, by: User) -> Referral:
    """Withdraw the referral (the sender), as long as it is not accepted: the receiving
    agency loses its access."""
    with transaction.atomic():
        withdrawn = transition(
            referral, "withdraw", by=by, change=lambda r: setattr(r, "closed_at", timezone.now())
        )
        revoke_receiver_permissions(withdrawn)
        # Asked of the locked row, not of REFERRAL: an approval that committed while this
        # waited for the lock has delivered it, and the receivers know of it.
        if withdrawn.sent_at is not None:
            notify_of(
                [*receiving_leads(withdrawn), withdrawn.assignee],
                withdrawn,
                "referral.withdrawn",
                gettext_lazy("Vermittlung zurückgezogen"),
            )
        return withdrawn
