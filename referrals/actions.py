"""Every write of referrals and application tags, one function per domain verb.

A referral changes state only through transition(); object permissions (django-guardian)
are granted and withdrawn only here: sending grants the receiving agency's group the view
permission, assigning grants the assignee the change permission, and withdrawal, consent
revocation and expiry take both away."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from guardian.shortcuts import assign_perm, remove_perm

from audit.trail import record
from dienstweg import events
from dienstweg.access import CASE_ROLES, holds_role, roles_of
from dienstweg.actions import BACKUP_CODE_ALPHABET, ActionError, evidence_type
from dienstweg.consent import (
    ConsentMissing,
    ProcessingRestricted,
    require_consent,
    require_unrestricted,
)
from dienstweg.models import Agency, Consent, DataCategory, Family, Membership, Purpose, User
from dienstweg.notifications import notify, send_mail_to
from referrals.access import REFERRING_ROLES, require_tag_consent
from referrals.models import (
    ApplicationTag,
    Referral,
    ReferralAttachment,
    ReferralEvent,
    ReferralGroupPermission,
    ReferralUserPermission,
    TagStatusChange,
)

State = Referral.State
Basis = Referral.Basis

# The legal basis of each kind of referral, as the audit trail names it.
BASIS_PURPOSE = {
    Basis.CONSENT: "Vermittlung: Einwilligung (Art. 6 Abs. 1 lit. a DSGVO, § 67b SGB X)",
    Basis.CHILD_PROTECTION: "Vermittlung: Kinderschutz (§ 8a SGB VIII, § 4 KKG)",
    Basis.STATUTORY: "Vermittlung: Übermittlungsbefugnis (§ 69 SGB X)",
}
PUBLIC_KINDS = {
    Agency.Kind.JOBCENTER,
    Agency.Kind.JUGENDAMT,
    Agency.Kind.SOZIALAMT,
    Agency.Kind.FAMILIENKASSE,
    Agency.Kind.BUT_OFFICE,
}
ATTACHMENT_EXTENSIONS = {
    "application/pdf": {"pdf"},
    "image/jpeg": {"jpg", "jpeg"},
    "image/png": {"png"},
}
MAX_ATTACHMENTS = 5


@dataclass(frozen=True)
class Upload:
    name: str
    content: bytes


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


def check_upload(upload: Upload) -> str:
    """The attachment's content type, or ActionError: PDF, JPEG or PNG by its first bytes,
    a plain file name whose extension matches the content, within the size limit."""
    name = upload.name
    if (
        not name
        or len(name) > 120
        or any(ch in name for ch in "/\\\x00")
        or ".." in name
        or any(ord(ch) < 32 for ch in name)
    ):
        raise ActionError(_("Ungültiger Dateiname."))
    if len(upload.content) > settings.ATTACHMENT_MAX_BYTES:
        raise ActionError(_("Die Datei „%(name)s“ ist zu groß.") % {"name": name})
    content_type = evidence_type(upload.content)
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if content_type is None or extension not in ATTACHMENT_EXTENSIONS[content_type]:
        raise ActionError(
            _("„%(name)s“: nur PDF, JPEG oder PNG mit passender Dateiendung.") % {"name": name}
        )
    return content_type


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
    submit it for approval) when SEND. A refused send stores nothing."""
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
        )
        referral.seal("need", data.need.strip())
        referral.seal("summary", data.summary.strip())
        referral.seal("category_notes", json.dumps(data.notes, ensure_ascii=False))
        referral.seal("basis_reason", data.basis_reason.strip())
        referral.save(force_insert=True)
        for upload in data.attachments:
            attachment = ReferralAttachment(
                referral=referral,
                content_type=check_upload(upload),
                size=len(upload.content),
                uploaded_by=by,
            )
            attachment.seal("name", upload.name)
            attachment.seal("content", upload.content)
            attachment.save(force_insert=True)
        # The sending project's case roles follow their referral from the first moment.
        assign_perm("view_referral", family.owner.group, referral)
        ReferralEvent.objects.create(referral=referral, verb="drafted", state=State.DRAFT, by=by)
        record(
            by,
            "referral.drafted",
            target=referral,
            family=family,
            agency_id=family.owner_id,
            details={"to_agency": data.to_agency.pk, "basis": data.basis},
        )
        if send:
            referral = send_referral(referral, by=by)
        return referral


# The state machine


# The user's roles, as (agency id, role) pairs: those in the two agencies of a referral, or
# all of hers (a view passes Reach.roles; the rules only ask about the two agencies).
Roles = frozenset[tuple[int, str]]


def roles_in(user: User, referral: Referral) -> Roles:
    """One query for everything the rules below ask about the user."""
    return roles_of(user, agencies=[referral.from_agency_id, referral.to_agency_id])


def _holds(roles: Roles, agency_id: int, wanted: tuple[str, ...]) -> bool:
    return holds_role(roles, *wanted, agency=agency_id)


@dataclass(frozen=True)
class Rule:
    sources: frozenset[str]
    target: str | None  # None: the state stays (assigning)
    allowed: Callable[[User, Referral, Roles], bool]
    event: str  # audit action and timeline verb

    def permits(self, user: User, referral: Referral, roles: Roles) -> bool:
        """Whether the user may take this step now (actor and state)."""
        return referral.state in self.sources and self.allowed(user, referral, roles)


def _sender(user: User, referral: Referral, roles: Roles) -> bool:
    return _holds(roles, referral.from_agency_id, REFERRING_ROLES)


def _approver(user: User, referral: Referral, roles: Roles) -> bool:
    # Four eyes: a lead of the sending agency who did not write the referral.
    return referral.created_by_id != user.pk and _holds(
        roles, referral.from_agency_id, (Membership.Role.LEAD,)
    )


def receiver_access(referral: Referral) -> bool:
    """Whether the receiving agency may still see the referral (consent not ended, the
    family's processing not restricted)."""
    return (
        referral.access_ended_at is None
        and (referral.access_until is None or referral.access_until >= timezone.localdate())
        and not referral.family.is_restricted
    )


def _receiving_lead(user: User, referral: Referral, roles: Roles) -> bool:
    return receiver_access(referral) and _holds(
        roles, referral.to_agency_id, (Membership.Role.LEAD,)
    )


def _assignee(user: User, referral: Referral, roles: Roles) -> bool:
    return (
        receiver_access(referral)
        and referral.assignee_id == user.pk
        and _holds(roles, referral.to_agency_id, CASE_ROLES)
        and user.has_perm("referrals.change_referral", referral)
    )


RULES: dict[str, Rule] = {
    "send": Rule(frozenset({State.DRAFT}), State.SENT, _sender, "sent"),
    "submit": Rule(frozenset({State.DRAFT}), State.PENDING_APPROVAL, _sender, "submitted"),
    "approve": Rule(frozenset({State.PENDING_APPROVAL}), State.SENT, _approver, "approved"),
    "refuse": Rule(frozenset({State.PENDING_APPROVAL}), State.REFUSED, _approver, "refused"),
    "withdraw": Rule(
        frozenset({State.DRAFT, State.PENDING_APPROVAL, State.SENT}),
        State.WITHDRAWN,
        _sender,
        "withdrawn",
    ),
    "assign": Rule(frozenset({State.SENT, State.ACCEPTED}), None, _receiving_lead, "assigned"),
    "accept": Rule(frozenset({State.SENT}), State.ACCEPTED, _assignee, "accepted"),
    "decline": Rule(frozenset({State.SENT}), State.DECLINED, _assignee, "declined"),
    "complete": Rule(frozenset({State.ACCEPTED}), State.COMPLETED, _assignee, "completed"),
}


def transition(
    referral: Referral,
    verb: str,
    *,
    by: User,
    details: dict[str, Any] | None = None,
    change: Callable[[Referral], None] | None = None,
) -> Referral:
    """Move the referral by VERB, the only way its state changes: lock the row, check the
    actor and the current state, apply CHANGE, save, and record the step (timeline and
    audit). Refuses with ActionError and changes nothing when the step is not allowed
    now, e.g. a second "accept" from another tab, which waits for the lock and then
    finds the referral accepted."""
    rule = RULES[verb]
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("transition() must run inside a transaction")
    locked = (
        Referral.objects.select_for_update(of=("self",))
        .select_related("family__data_key", "family__owner", "to_agency")
        .get(pk=referral.pk)
    )
    if not rule.allowed(by, locked, roles_in(by, locked)):
        raise ActionError(_("Dazu sind Sie bei dieser Vermittlung nicht berechtigt."))
    if locked.state not in rule.sources:
        raise ActionError(
            _("Nicht möglich: Die Vermittlung ist bereits „%(state)s“.")
            % {"state": State(locked.state).label}
        )
    now = timezone.now()
    if rule.target is not None:
        locked.state = rule.target
    locked.updated_at = now
    if change is not None:
        change(locked)
    locked.save()
    ReferralEvent.objects.create(referral=locked, verb=rule.event, state=locked.state, by=by)
    side_agency = (
        locked.from_agency_id
        if verb in {"send", "submit", "approve", "refuse", "withdraw"}
        else locked.to_agency_id
    )
    record(
        by,
        f"referral.{rule.event}",
        target=locked,
        family=locked.family,
        agency_id=side_agency,
        purpose=BASIS_PURPOSE[Basis(locked.basis)],
        details={"state": locked.state, **(details or {})},
    )
    return locked


def record_referral_read(
    referral: Referral,
    *,
    action: str,
    side: str,
    by: User,
    details: dict[str, Any] | None = None,
) -> None:
    """Record that a participant read the referral's data (its page, an attachment)."""
    with transaction.atomic():
        record(
            by,
            action,
            target=referral,
            family=referral.family,
            agency_id=referral.from_agency_id if side == "sender" else referral.to_agency_id,
            purpose=BASIS_PURPOSE[Basis(referral.basis)],
            details=details,
        )


def record_refused_step(target: Referral | ApplicationTag, *, verb: str, by: User) -> None:
    """Record that a step on a referral or tag was refused (in its own transaction: the
    refused step's was rolled back)."""
    noun = "referral" if isinstance(target, Referral) else "application_tag"
    with transaction.atomic():
        record(
            by,
            f"{noun}.step_refused",
            target=target,
            family=target.family,
            details={"verb": verb, "state": target.state},
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
            _notify_sending_leads(submitted, exclude=by)
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
        _notify(
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
            referral, "refuse", by=by, change=lambda r: r.seal("decision_note", note.strip())
        )
        _notify(
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
    """Hand the snapshot to the receiving agency: seal exactly the shared data, grant the
    agency's group the view permission, remember the consents relied on."""
    referral.seal("snapshot", json.dumps(build_snapshot(referral), ensure_ascii=False))
    referral.sent_at = timezone.now()
    referral.dpo_review = referral.basis != Basis.CONSENT
    referral.access_until = min((c.valid_until for c in consents), default=None)
    referral.save(update_fields=["snapshot_enc", "sent_at", "dpo_review", "access_until"])
    referral.consents.set(consents)
    assign_perm("view_referral", referral.to_agency.group, referral)
    record(
        by,
        "referral.delivered",
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
    _notify(
        receiving_leads(referral), referral, "referral.received", gettext_lazy("Neue Vermittlung")
    )


def build_snapshot(referral: Referral) -> dict[str, Any]:
    """Exactly the data shared: identity data from the family record if that category is
    shared, and the coach's notes for each shared category. Nothing else of the record."""
    notes = json.loads(referral.unseal("category_notes") or "{}")
    snapshot: dict[str, Any] = {
        "notes": {c: notes[c] for c in referral.categories if notes.get(c)},
    }
    if DataCategory.IDENTITY in referral.categories:
        family = referral.family
        snapshot["identity"] = {
            "members": [
                {
                    "kind": member.kind,
                    "name": member.display_name,
                    "birth_date": member.birth_date.isoformat(),
                }
                for member in family.members.all()
            ],
            "address": family.unseal("address"),
            "phone": family.unseal("phone"),
        }
    return snapshot


# The receiving agency


def assign_referral(referral: Referral, *, assignee: User, by: User) -> Referral:
    """Assign the referral to a caseworker (or lead) of the receiving agency; she alone
    may then accept, decline and complete it."""
    if not holds_role(assignee, *CASE_ROLES, agency=referral.to_agency_id):
        raise ActionError(_("Zuweisen nur an Fachkräfte der empfangenden Stelle."))
    with transaction.atomic():
        previous = referral.assignee

        def change(locked: Referral) -> None:
            locked.assignee = assignee

        assigned = transition(
            referral, "assign", by=by, change=change, details={"assignee": assignee.pk}
        )
        if previous is not None and previous != assignee:
            remove_perm("change_referral", previous, assigned)
        assign_perm("change_referral", assignee, assigned)
        _notify([assignee], assigned, "referral.assigned", gettext_lazy("Vermittlung zugewiesen"))
        return assigned


def accept_referral(referral: Referral, *, by: User) -> Referral:
    """Accept the referral (the assignee)."""
    with transaction.atomic():
        accepted = transition(
            referral, "accept", by=by, change=lambda r: setattr(r, "answered_at", timezone.now())
        )
        _notify(
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
        locked.seal("decision_note", reason.strip())

    with transaction.atomic():
        declined = transition(referral, "decline", by=by, change=change)
        _notify(
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
        locked.seal("outcome", outcome.strip())

    with transaction.atomic():
        completed = transition(referral, "complete", by=by, change=change)
        _notify(
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
        was_sent = referral.state == State.SENT
        withdrawn = transition(
            referral, "withdraw", by=by, change=lambda r: setattr(r, "closed_at", timezone.now())
        )
        _revoke_receiver_permissions(withdrawn)
        if was_sent:
            _notify(
                [*receiving_leads(withdrawn), withdrawn.assignee],
                withdrawn,
                "referral.withdrawn",
                gettext_lazy("Vermittlung zurückgezogen"),
            )
        return withdrawn


# Consent ended


def end_receiver_access(referral: Referral, *, reason: str, by: User | None) -> None:
    """Withdraw the receiving agency's access (consent revoked or expired)."""
    with transaction.atomic():
        locked = (
            Referral.objects.select_for_update(of=("self",))
            .select_related("family", "to_agency")
            .get(pk=referral.pk)
        )
        if locked.access_ended_at is not None:
            return
        locked.access_ended_at = timezone.now()
        locked.save(update_fields=["access_ended_at"])
        _revoke_receiver_permissions(locked)
        ReferralEvent.objects.create(
            referral=locked, verb="access_ended", state=locked.state, by=by
        )
        record(
            by if by is not None else "system:consent_expiry",
            "referral.access_withdrawn",
            target=locked,
            family=locked.family,
            agency_id=locked.to_agency_id,
            purpose="Art. 7 Abs. 3 DSGVO" if reason == "consent_revoked" else "Art. 5 Abs. 1 DSGVO",
            details={"reason": reason, "to_agency": locked.to_agency_id},
        )
        _notify(
            [*receiving_leads(locked), locked.assignee, locked.created_by],
            locked,
            "referral.access_ended",
            gettext_lazy("Einwilligung beendet: Zugriff der empfangenden Stelle entzogen"),
        )


def hide_after_restriction(*, family: Family, by: User, **_kwargs: Any) -> None:
    """Receiver of dienstweg.consent.processing_restricted, in the restricting transaction:
    the receiving agencies' sockets re-check the family's referral threads. Nothing is
    withdrawn (access.py hides the referrals while restricted), so lifting restores it."""
    sent = Referral.objects.filter(family=family, sent_at__isnull=False)
    receivers = Membership.objects.filter(agency_id__in=sent.values("to_agency_id"))
    events.access_revoked(
        [
            *receivers.values_list("user_id", flat=True),
            *sent.filter(assignee__isnull=False).values_list("assignee_id", flat=True),
        ]
    )


def withdraw_access_after_revocation(*, consent: Consent, by: User, **_kwargs: Any) -> None:
    """Receiver of dienstweg.consent.consent_revoked: runs in the revoking transaction."""
    for referral in Referral.objects.filter(consents=consent, access_ended_at__isnull=True):
        end_receiver_access(referral, reason="consent_revoked", by=by)


def end_expired_access() -> int:
    """Withdraw the permissions of referrals whose consent has expired (they are already
    hidden from the receiving agency by the date; this tidies the permissions and records
    the end in the trail)."""
    expired = Referral.objects.filter(
        access_until__lt=timezone.localdate(), access_ended_at__isnull=True
    )
    count = 0
    for referral in expired.iterator():
        end_receiver_access(referral, reason="consent_expired", by=None)
        count += 1
    return count


def _revoke_receiver_permissions(referral: Referral) -> None:
    remove_perm("view_referral", referral.to_agency.group, referral)
    if referral.assignee is not None:
        remove_perm("change_referral", referral.assignee, referral)
    # Open sockets of the receiving agency re-check what they follow (its thread).
    receivers = Membership.objects.filter(agency_id=referral.to_agency_id)
    events.access_revoked([*receivers.values_list("user_id", flat=True), referral.assignee_id])


# Erasure (GDPR Art. 17)

# Referrals made without consent, on a legal basis: their metadata stays (who sent what
# kind of data to whom, when, on which basis), because the transmission must stay
# documented (§ 8a SGB VIII, § 4 KKG; SGB X).
KEPT_BASES = (Basis.CHILD_PROTECTION, Basis.STATUTORY)
SEALED_REFERRAL_FIELDS = (
    "need",
    "summary",
    "category_notes",
    "snapshot",
    "basis_reason",
    "decision_note",
    "outcome",
)


@dataclass(frozen=True)
class CaseErasure:
    """What erase_family_cases removed and kept (counts)."""

    referrals_removed: int
    referrals_kept: int
    tags_removed: int
    attachments_removed: int


def erase_family_cases(family: Family, *, by: User | str | None) -> CaseErasure:
    """Delete the family's referrals on consent and all its application tags, with their
    timelines, attachments and permissions. Referrals on a legal basis stay as metadata:
    their sealed fields and attachments are removed and nobody on the platform can open
    them any more."""
    with transaction.atomic():
        referrals = Referral.objects.filter(family=family)
        kept = referrals.filter(basis__in=KEPT_BASES)
        removed = referrals.exclude(basis__in=KEPT_BASES)
        groups = ReferralGroupPermission.objects.filter(content_object__family=family)
        readers = {
            *Membership.objects.filter(agency__group_id__in=groups.values("group_id")).values_list(
                "user_id", flat=True
            ),
            *ReferralUserPermission.objects.filter(content_object__family=family).values_list(
                "user_id", flat=True
            ),
        }
        attachments, _details = ReferralAttachment.objects.filter(referral__family=family).delete()
        kept_count = kept.update(
            **{f"{name}_enc": b"" for name in SEALED_REFERRAL_FIELDS}, updated_at=timezone.now()
        )
        ReferralGroupPermission.objects.filter(content_object__in=kept).delete()
        ReferralUserPermission.objects.filter(content_object__in=kept).delete()
        removed_count = removed.count()
        removed.delete()
        tags = ApplicationTag.objects.filter(family=family)
        tags_count = tags.count()
        tags.delete()
        erased = CaseErasure(removed_count, kept_count, tags_count, attachments)
        record(
            by,
            "family.cases_erased",
            target=family,
            family=family,
            purpose="Art. 17 DSGVO",
            details={
                "referrals_removed": removed_count,
                "referrals_kept": kept_count,
                "tags_removed": tags_count,
                "attachments_removed": attachments,
            },
        )
        # Open pages and sockets of everyone who could see a referral re-check at once.
        events.access_revoked(readers)
        return erased


# Reminders


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
            locked = (
                Referral.objects.select_for_update(of=("self",))
                .select_related("family", "to_agency")
                .get(pk=referral.pk)
            )
            if locked.escalated_at is not None or locked.state != State.SENT:
                continue
            locked.escalated_at = timezone.now()
            locked.save(update_fields=["escalated_at"])
            record(
                "system:escalation",
                "referral.escalated",
                target=locked,
                family=locked.family,
                agency_id=locked.to_agency_id,
            )
            _notify(
                receiving_leads(locked),
                locked,
                "referral.overdue",
                gettext_lazy("Vermittlung überfällig: noch keine Antwort"),
            )
            count += 1
    return count


# Notifications: only the pseudonymous reference and a link leave the platform.


def receiving_leads(referral: Referral) -> list[User]:
    """Who is told of an incoming referral: the agency's leads, or its caseworkers if it
    has no lead."""
    for roles in ((Membership.Role.LEAD,), (Membership.Role.CASEWORKER,)):
        users = list(
            User.objects.filter(
                memberships__agency_id=referral.to_agency_id, memberships__role__in=roles
            )
        )
        if users:
            return users
    return []


def _notify_sending_leads(referral: Referral, *, exclude: User) -> None:
    leads = User.objects.filter(
        memberships__agency_id=referral.from_agency_id,
        memberships__role=Membership.Role.LEAD,
    ).exclude(pk=exclude.pk)
    _notify(leads, referral, "referral.approval_requested", gettext_lazy("Freigabe erbeten"))


def _notify(users: Iterable[User | None], referral: Referral, kind: str, title: Any) -> None:
    notify(
        [user for user in users if user is not None],
        kind=kind,
        title=title,
        family_ref=referral.family.reference,
        url=reverse("referral_detail", args=[referral.pk]),
    )


# Application tags


def new_tag_code() -> str:
    """12 characters from a 31-letter alphabet (about 59 bits), printed as XXXX-XXXX-XXXX:
    too many to guess, even before the look-up throttle."""
    letters = "".join(secrets.choice(BACKUP_CODE_ALPHABET) for _ in range(12))
    return "-".join(letters[i : i + 4] for i in range(0, 12, 4))


@dataclass(frozen=True)
class TagData:
    kind: str
    processing_agency: Agency
    submitted_on: date
    file_number: str = ""


def tag_application(family: Family, *, data: TagData, by: User) -> ApplicationTag:
    """Tag a benefit application the coach helped with; she is its contact."""
    if not holds_role(by, *REFERRING_ROLES, agency=family.owner_id):
        raise ActionError(_("Anträge markieren Coaches und Leitungen des Projekts."))
    # Asked of the row: FAMILY may have been loaded before the DPO restricted it.
    if Family.objects.filter(pk=family.pk, restricted_at__isnull=False).exists():
        raise ActionError(
            _(
                "Die Verarbeitung der Daten dieser Familie ist eingeschränkt (Art. 18 DSGVO): "
                "Bis der Datenschutz die Einschränkung aufhebt, werden keine Anträge markiert."
            )
        )
    if data.kind not in ApplicationTag.Kind.values:
        raise ActionError(_("Unbekannte Antragsart."))
    if data.processing_agency.pk == family.owner_id:
        raise ActionError(_("Die eigene Einrichtung bearbeitet keine Anträge."))
    if data.processing_agency.kind not in PUBLIC_KINDS:  # as offered by TagForm
        raise ActionError(_("Anträge bearbeiten nur Leistungsträger und Behörden."))
    if data.submitted_on > timezone.localdate():
        raise ActionError(_("Das Einreichungsdatum liegt in der Zukunft."))
    if len(data.file_number) > 60:
        raise ActionError(_("Das Aktenzeichen ist zu lang."))
    for attempt in range(3):
        try:
            with transaction.atomic():
                tag = ApplicationTag(
                    code=new_tag_code(),
                    family=family,
                    project_id=family.owner_id,
                    processing_agency=data.processing_agency,
                    kind=data.kind,
                    submitted_on=data.submitted_on,
                    coach=by,
                )
                tag.seal("file_number", data.file_number.strip())
                tag.save(force_insert=True)
                TagStatusChange.objects.create(
                    tag=tag, state=ApplicationTag.State.SUBMITTED, by=by, at=tag.created_at
                )
                record(
                    by,
                    "application_tag.created",
                    target=tag,
                    family=family,
                    agency_id=family.owner_id,
                    details={"kind": data.kind, "processing_agency": data.processing_agency.pk},
                )
                return tag
        except IntegrityError:
            if attempt == 2:  # three colliding 59-bit codes: something else is wrong
                raise
    raise AssertionError("unreachable")


TAG_NEXT = {
    ApplicationTag.State.SUBMITTED: {"received", "documents_requested", "decided"},
    ApplicationTag.State.RECEIVED: {"documents_requested", "decided"},
    ApplicationTag.State.DOCUMENTS_REQUESTED: {"received", "documents_requested", "decided"},
    ApplicationTag.State.DECIDED: set(),
}
TAG_PRIORITY = {"documents_requested": 0, "submitted": 1, "received": 1, "decided": 2}


def record_tag_status(
    tag: ApplicationTag, *, state: str, note: str = "", decided_on: date | None = None, by: User
) -> ApplicationTag:
    """Record the processing office's step (received, documents requested with what is
    missing, decided with the date); the coach is notified. Needs the family's consent
    for the office, checked and locked in this transaction."""
    if state == ApplicationTag.State.DOCUMENTS_REQUESTED and not note.strip():
        raise ActionError(_("Bitte angeben, welche Unterlagen fehlen."))
    if state == ApplicationTag.State.DECIDED and decided_on is None:
        raise ActionError(_("Bitte das Datum der Entscheidung angeben."))
    with transaction.atomic():
        locked = (
            ApplicationTag.objects.select_for_update(of=("self",))
            .select_related("family__data_key", "processing_agency")
            .get(pk=tag.pk)
        )
        if not holds_role(by, *CASE_ROLES, agency=locked.processing_agency_id):
            raise ActionError(_("Den Stand trägt die bearbeitende Stelle ein."))
        if state not in TAG_NEXT[ApplicationTag.State(locked.state)]:
            raise ActionError(
                _("Nicht möglich: Der Antrag ist „%(state)s“.")
                % {"state": ApplicationTag.State(locked.state).label}
            )
        if decided_on is not None and not (
            locked.submitted_on <= decided_on <= timezone.localdate()
        ):
            raise ActionError(
                _("Das Entscheidungsdatum muss zwischen Einreichung und heute liegen.")
            )
        try:
            require_tag_consent(locked)
        except ConsentMissing:
            raise ActionError(
                _("Die Einwilligung der Familie deckt Ihre Stelle nicht (mehr) ab.")
            ) from None
        change = TagStatusChange(tag=locked, state=state, by=by, decided_on=decided_on)
        change.seal("note", note.strip())
        change.save(force_insert=True)
        locked.state = state
        locked.priority = TAG_PRIORITY[state]
        locked.updated_at = change.at
        if state == ApplicationTag.State.DOCUMENTS_REQUESTED:
            locked.seal("missing_documents", note.strip())
        if decided_on is not None:
            locked.decided_on = decided_on
            locked.days_to_decision = (decided_on - locked.submitted_on).days
        locked.save()
        record(
            by,
            "application_tag.status_changed",
            target=locked,
            family=locked.family,
            agency_id=locked.processing_agency_id,
            purpose=str(Purpose.APPLICATION_SUPPORT.label),
            details={"state": state},
        )
        notify(
            [locked.coach] if locked.coach else [],
            kind="application_tag.status_changed",
            title=gettext_lazy("Neuer Stand zu einem markierten Antrag"),
            family_ref=locked.family.reference,
            url=reverse("tag_detail", args=[locked.code]),
        )
        return locked


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
    many are overdue), with a link to the inbox. Returns how many e-mails went out."""
    sent = 0
    link = settings.DIENSTWEG_BASE_URL.rstrip("/") + reverse("referral_inbox") + "?state=sent"
    for backlog in unanswered_backlogs():
        leads = User.objects.filter(
            memberships__agency=backlog.agency, memberships__role=Membership.Role.LEAD
        )
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
        sent += send_mail_to(
            leads, subject=_("Dienstweg: Wochenübersicht Vermittlungen"), body=body
        )
    return sent
