"""Every write of conferences, one function per domain verb: convening and cancelling a
Familienkonferenz, recording that someone opened it, the end of an invitee's access when
the consent behind it ends, and the family's conferences erased (GDPR Art. 17)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from guardian.shortcuts import assign_perm, remove_perm

from audit.trail import record
from conferences.access import may_convene
from conferences.audit_actions import (
    CONFERENCE_ACCESS_WITHDRAWN,
    CONFERENCE_CANCELLED,
    CONFERENCE_CONVENED,
    CONFERENCE_SHARED,
)
from conferences.models import (
    Agreement,
    Conference,
    ConferenceUserPermission,
    Consultation,
    Invitation,
)
from dienstweg import events
from dienstweg.access import CASE_ROLES
from dienstweg.actions import ActionError, NotAllowed
from dienstweg.consent import ConsentMissing, ProcessingRestricted, require_consent
from dienstweg.hooks import Loss
from dienstweg.models import Agency, Consent, DataCategory, Family, Membership, Purpose, User
from dienstweg.notifications import notify
from dienstweg.snapshot import identity_snapshot

MAX_INVITEES = 20
MAX_TEXT = 5000
# How far ahead a conference can be planned; one that lies further is a typo.
PLANNED_WITHIN = timedelta(days=366)


@dataclass(frozen=True)
class ConferenceData:
    starts_at: datetime
    duration_minutes: int
    place: str
    video_link: str
    agenda: str
    categories: list[str]
    invitees: list[User]
    notes: dict[str, str] = field(default_factory=dict)  # what is shared, per category


def check_conference_data(data: ConferenceData, *, now: datetime | None = None) -> list[str]:
    """The reasons these details cannot make a conference (empty if they can)."""
    now = now or timezone.now()
    problems = []
    if data.starts_at < now:
        problems.append(_("Der Termin liegt in der Vergangenheit."))
    elif data.starts_at > now + PLANNED_WITHIN:
        problems.append(_("Der Termin liegt mehr als ein Jahr in der Zukunft."))
    if not 15 <= data.duration_minutes <= 480:
        problems.append(_("Die Dauer muss zwischen 15 Minuten und 8 Stunden liegen."))
    if not data.place.strip() and not data.video_link.strip():
        problems.append(_("Bitte geben Sie einen Ort oder einen Video-Link an."))
    if data.video_link and not data.video_link.startswith("https://"):
        problems.append(_("Der Video-Link muss mit https:// beginnen."))
    if not data.invitees:
        problems.append(_("Bitte laden Sie mindestens eine Person ein."))
    if len(data.invitees) > MAX_INVITEES:
        problems.append(
            _("Höchstens %(max)d Personen können eingeladen werden.") % {"max": MAX_INVITEES}
        )
    if not data.categories:
        problems.append(_("Bitte wählen Sie mindestens eine Datenkategorie."))
    if any(value not in DataCategory.values for value in data.categories):
        problems.append(_("Unbekannte Datenkategorie."))
    if any(len(text) > MAX_TEXT for text in [data.agenda, data.place, *data.notes.values()]):
        problems.append(_("Ein Text ist zu lang (höchstens %(max)d Zeichen).") % {"max": MAX_TEXT})
    return problems


def convene_conference(family: Family, *, data: ConferenceData, by: User) -> Conference:
    """Convene a Familienkonferenz of FAMILY (a coach or lead of its project): each invitee
    must hold a case role in an agency that the family's consent covers for case
    coordination and every shared category (checked and locked in this transaction). The
    invitees are notified; they see the snapshot of the shared categories taken now."""
    if not may_convene(by, family):
        raise NotAllowed(_("Familienkonferenzen berufen Coaches und Leitungen des Projekts ein."))
    if family.is_erased:
        raise ActionError(_("Die Daten dieser Familie sind gelöscht."))
    problems = check_conference_data(data)
    if problems:
        raise ActionError(" ".join(problems))
    with transaction.atomic():
        agencies = _agencies_of(data.invitees, family)
        covered: dict[int, list[Consent]] = {}
        for agency in sorted({agency for agency in agencies.values()}, key=lambda a: a.pk):
            covered[agency.pk] = _require_consent(family, agency, data.categories)
        previous = (
            Conference.objects.filter(family=family, state=Conference.State.PLANNED)
            .order_by("-starts_at")
            .first()
        )
        conference = Conference(
            family=family,
            follows=previous,
            project=family.owner,
            convened_by=by,
            starts_at=data.starts_at,
            duration_minutes=data.duration_minutes,
            categories=sorted(data.categories),
        )
        conference.encrypt_field("place", data.place.strip())
        conference.encrypt_field("video_link", data.video_link.strip())
        conference.encrypt_field("agenda", data.agenda.strip())
        conference.encrypt_field("snapshot", json.dumps(_snapshot(family, data)))
        conference.save()
        for user, agency in agencies.items():
            consents = covered[agency.pk]
            invitation = Invitation.objects.create(
                conference=conference,
                user=user,
                agency=agency,
                access_until=min(consent.valid_until for consent in consents),
            )
            invitation.consents.set(consents)
            assign_perm("view_conference", user, conference)
        record(
            by,
            CONFERENCE_CONVENED,
            target=conference,
            family=family,
            purpose=str(Purpose.CASE_COORDINATION.label),
            details={
                "invitees": len(agencies),
                "agencies": len(covered),
                "starts_at": data.starts_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ"),
                **{f"shares_{category}": True for category in sorted(data.categories)},
            },
        )
        # One event per receiving agency, as for a referral: the family's access report
        # names each agency that received the snapshot.
        for agency_id in sorted(covered):
            record(
                by,
                CONFERENCE_SHARED,
                target=conference,
                family=family,
                purpose=str(Purpose.CASE_COORDINATION.label),
                details={
                    "to_agency": agency_id,
                    "invitees": sum(1 for a in agencies.values() if a.pk == agency_id),
                },
            )
        notify(
            agencies.keys(),
            kind="conference.invited",
            title=gettext_lazy("Einladung zur Familienkonferenz"),
            family_ref=family.reference,
            url=reverse("conference_detail", args=[conference.pk]),
        )
    return conference


def _agencies_of(invitees: list[User], family: Family) -> dict[User, Agency]:
    """The agency each invitee is invited for: one where she holds a case role, other than
    the owning project (its people see the family anyway). ActionError if she has none."""
    memberships = (
        Membership.objects.filter(user__in=invitees, role__in=CASE_ROLES, user__is_active=True)
        .exclude(agency_id=family.owner_id)
        .select_related("agency", "user")
        .order_by("agency_id")
    )
    found: dict[int, Membership] = {}
    for membership in memberships:
        found.setdefault(membership.user_id, membership)
    missing = [user for user in invitees if user.pk not in found]
    if missing:
        raise ActionError(
            _("%(names)s kann nicht eingeladen werden: keine Fallrolle bei einer anderen Stelle.")
            % {"names": ", ".join(user.full_name for user in missing)}
        )
    return {found[user.pk].user: found[user.pk].agency for user in invitees}


def _require_consent(family: Family, agency: Agency, categories: list[str]) -> list[Consent]:
    try:
        return require_consent(
            family, to_agency=agency, categories=categories, purpose=Purpose.CASE_COORDINATION
        )
    except ProcessingRestricted:
        raise ActionError(
            _(
                "Gesperrt, solange die Verarbeitung eingeschränkt ist (Art. 18 DSGVO): "
                "Es kann niemand eingeladen werden."
            )
        ) from None
    except ConsentMissing:
        raise ActionError(
            _(
                "Keine gültige Einwilligung erlaubt %(agency)s die Fallabstimmung mit den "
                "gewählten Daten. Es wurde niemand eingeladen."
            )
            % {"agency": agency.name}
        ) from None


def _snapshot(family: Family, data: ConferenceData) -> dict[str, Any]:
    """Exactly what the invitees see of the family: the record's identity data if that
    category is shared, and the coach's notes for each shared category."""
    snapshot: dict[str, Any] = {
        "notes": {c: data.notes[c] for c in data.categories if data.notes.get(c, "").strip()},
    }
    if DataCategory.IDENTITY in data.categories:
        snapshot["identity"] = identity_snapshot(family)
    return snapshot


def cancel_conference(conference: Conference, *, by: User) -> Conference:
    """Cancel a planned conference (a coach or lead of the project); the invitees are told.
    They keep seeing it, marked as cancelled, while their access lasts."""
    if not may_convene(by, conference.family):
        raise NotAllowed(_("Absagen dürfen Coaches und Leitungen des Projekts."))
    with transaction.atomic():
        locked = (
            Conference.objects.select_for_update().select_related("family").get(pk=conference.pk)
        )
        if locked.state != Conference.State.PLANNED:
            raise ActionError(_("Diese Familienkonferenz ist bereits abgesagt."))
        locked.state = Conference.State.CANCELLED
        locked.cancelled_at = timezone.now()
        locked.save(update_fields=["state", "cancelled_at"])
        record(by, CONFERENCE_CANCELLED, target=locked, family=locked.family)
        open_invitations = locked.invitations.filter(access_ended_at__isnull=True)
        notify(
            User.objects.filter(pk__in=open_invitations.values("user_id")),
            kind="conference.cancelled",
            title=gettext_lazy("Familienkonferenz abgesagt"),
            family_ref=locked.family.reference,
            url=reverse("conference_detail", args=[locked.pk]),
        )
    return locked


def record_conference_read(conference: Conference, *, action: str, side: str, by: User) -> None:
    """Record that BY opened the conference (its page, its calendar file)."""
    with transaction.atomic():
        record(
            by,
            action,
            target=conference,
            family=conference.family,
            purpose=str(Purpose.CASE_COORDINATION.label),
            details={"side": side},
        )


def record_agreement_read(agreement: Agreement, *, action: str, by: User) -> None:
    """Record that BY downloaded an agreement's signed confirmation."""
    with transaction.atomic():
        record(
            by,
            action,
            target=agreement,
            family=agreement.conference.family,
            details={"conference": str(agreement.conference_id), "number": agreement.number},
        )


# The end of an invitee's access


def end_invitee_access(invitation: Invitation, *, reason: str, by: User | None) -> None:
    """Withdraw one invitee's access (the consent behind it revoked): her permission goes,
    her open sockets re-check, the trail records it, she and the convener are told."""
    with transaction.atomic():
        locked = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("conference__family", "user")
            .filter(pk=invitation.pk, access_ended_at__isnull=True)
            .first()
        )
        if locked is None:
            return
        locked.access_ended_at = timezone.now()
        locked.save(update_fields=["access_ended_at"])
        conference = locked.conference
        remove_perm("view_conference", locked.user, conference)
        record(
            by if by is not None else "system:consent_expiry",
            CONFERENCE_ACCESS_WITHDRAWN,
            target=conference,
            family=conference.family,
            agency_id=locked.agency_id,
            purpose="Art. 7 Abs. 3 DSGVO",
            details={"reason": reason, "agency": locked.agency_id, "user": locked.user_id},
        )
        events.access_revoked([locked.user_id])
        notify(
            [locked.user],
            kind="conference.access_ended",
            title=gettext_lazy("Einwilligung beendet: Zugriff auf Familienkonferenz entzogen"),
            family_ref=conference.family.reference,
            url=reverse("conference_list"),
        )


def invitations_losing_access(consent: Consent) -> list[Invitation]:
    """The open invitations that rest on CONSENT (ended if it is revoked)."""
    return list(
        Invitation.objects.filter(consents=consent, access_ended_at__isnull=True)
        .select_related("agency", "conference__family")
        .order_by("conference__starts_at", "pk")
    )


def withdraw_access_after_revocation(*, consent: Consent, by: User) -> None:
    """Handler of dienstweg.hooks.consent_revoked: runs in the revoking transaction."""
    for invitation in invitations_losing_access(consent):
        end_invitee_access(invitation, reason="consent_revoked", by=by)


def losses_on_revocation(consent: Consent) -> list[Loss]:
    """Handler of dienstweg.hooks.revocation_losses: each conference an agency would lose."""
    losses: dict[tuple[str, str], Loss] = {}
    for invitation in invitations_losing_access(consent):
        conference = invitation.conference
        what = _("Familienkonferenz %(ref)s am %(date)s") % {
            "ref": conference.family.reference,
            "date": date_format(timezone.localtime(conference.starts_at), "SHORT_DATE_FORMAT"),
        }
        losses[(invitation.agency.name, what)] = Loss(agency=invitation.agency.name, what=what)
    return list(losses.values())


def hide_after_restriction(*, family: Family, by: User) -> None:
    """Handler of dienstweg.hooks.processing_restricted: the invitees' sockets re-check.
    Nothing is withdrawn (access.py hides the conferences while restricted)."""
    events.access_revoked(
        Invitation.objects.filter(conference__family=family, access_ended_at__isnull=True)
        .values_list("user_id", flat=True)
        .distinct()
    )


def erase_family_conferences(family: Family) -> int:
    """Delete the family's conferences (with their invitations, agreements and
    permissions) and its anonymous consultations (with their answers), inside the erasing
    transaction, whose one `family.erased` event counts them; returns how many."""
    ConferenceUserPermission.objects.filter(content_object__family=family).delete()
    conferences = Conference.objects.filter(family=family)
    consultations = Consultation.objects.filter(family=family)
    count = conferences.count() + consultations.count()
    conferences.delete()
    consultations.delete()
    return count
