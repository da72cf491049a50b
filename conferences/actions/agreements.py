"""Agreements (Vereinbarungen) of a Familienkonferenz: recorded by the coach, confirmed by
the responsible agency with a signed receipt, ended as done or as not possible with the
gap it reveals, and reminded of when overdue (the person, then her agency's leads)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import transaction
from django.db.models import Max, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.trail import record
from conferences import receipts
from conferences.access import acting_for, may_convene
from conferences.audit_actions import (
    AGREEMENT_CLOSED,
    AGREEMENT_CONFIRMED,
    AGREEMENT_ESCALATED,
    AGREEMENT_RECORDED,
    AGREEMENT_REMINDED,
)
from conferences.models import Agreement, Conference, GapReason, Invitation
from dienstweg.access import CASE_ROLES, Role, members_holding, reach_of
from dienstweg.actions import ActionError, NotAllowed
from dienstweg.consent import ConsentMissing, require_consent
from dienstweg.models import Agency, Purpose, User
from dienstweg.notifications import notify

MAX_WHAT = 1000
# An agreement is for the months ahead; a due date further out is a typo.
DUE_WITHIN = timedelta(days=2 * 366)
# After the reminder, the agency's leads are told this many days later.
ESCALATION_DAYS = 7
State = Agreement.State


@dataclass(frozen=True)
class AgreementData:
    what: str
    agency: Agency | None  # None: the family itself
    person: User | None
    due_on: date


def open_invitations(conference: Conference) -> QuerySet[Invitation]:
    """The conference's invitations whose access is still open (not ended, not expired)."""
    return Invitation.objects.filter(
        conference=conference, access_ended_at__isnull=True, access_until__gte=timezone.localdate()
    )


def responsible_agencies(conference: Conference) -> list[Agency]:
    """The agencies that can take on an agreement: the project and every agency with an
    invitee whose access is still open."""
    invited = Agency.objects.filter(pk__in=open_invitations(conference).values("agency_id"))
    return [conference.project, *invited.exclude(pk=conference.project_id).order_by("name")]


def responsible_people(conference: Conference, agency: Agency) -> QuerySet[User]:
    """Who of AGENCY may be named responsible: the project's case roles, or the agency's
    invitees whose access is still open."""
    if agency.pk == conference.project_id:
        return members_holding(*CASE_ROLES, agencies=agency)
    return User.objects.filter(
        pk__in=open_invitations(conference).filter(agency=agency).values("user_id")
    )


def record_agreement(conference: Conference, *, data: AgreementData, by: User) -> Agreement:
    """Record an agreement of CONFERENCE (a coach or lead of its project): the responsible
    agency is the project or an invited agency whose access is open, or the family; the
    person, if named, one who may act for that agency. She (or, without a person, the
    agency's invitees) is asked to confirm it."""
    if not may_convene(by, conference.family):
        raise NotAllowed(_("Vereinbarungen halten Coaches und Leitungen des Projekts fest."))
    what = data.what.strip()
    problems = []
    if not what:
        problems.append(_("Bitte beschreiben Sie, was vereinbart ist."))
    if len(what) > MAX_WHAT:
        problems.append(
            _("Die Vereinbarung ist zu lang (höchstens %(max)d Zeichen).") % {"max": MAX_WHAT}
        )
    today = timezone.localdate()
    if data.due_on < today:
        problems.append(_("Das Datum „bis“ liegt in der Vergangenheit."))
    elif data.due_on > today + DUE_WITHIN:
        problems.append(_("Das Datum „bis“ liegt mehr als zwei Jahre in der Zukunft."))
    if data.agency is None and data.person is not None:
        problems.append(_("Ist die Familie zuständig, wird keine Person einer Stelle genannt."))
    if problems:
        raise ActionError(" ".join(problems))
    with transaction.atomic():
        locked = (
            Conference.objects.select_for_update()
            .select_related("family", "project")
            .get(pk=conference.pk)
        )
        if locked.state == Conference.State.CANCELLED:
            raise ActionError(_("Die Familienkonferenz ist abgesagt."))
        if data.agency is not None:
            if data.agency.pk not in {a.pk for a in responsible_agencies(locked)}:
                raise ActionError(
                    _("%(agency)s ist zu dieser Konferenz nicht (mehr) eingeladen.")
                    % {"agency": data.agency.name}
                )
            if data.agency.pk != locked.project_id:
                _require_coordination(locked, data.agency)
            if (
                data.person is not None
                and not responsible_people(locked, data.agency).filter(pk=data.person.pk).exists()
            ):
                raise ActionError(
                    _("%(name)s kann nicht für %(agency)s zuständig sein.")
                    % {"name": data.person.full_name, "agency": data.agency.name}
                )
        number = (locked.agreements.aggregate(last=Max("number"))["last"] or 0) + 1
        agreement = Agreement(
            conference=locked,
            number=number,
            agency=data.agency,
            person=data.person,
            due_on=data.due_on,
            created_by=by,
        )
        agreement.encrypt_field("what", what)
        agreement.save()
        record(
            by,
            AGREEMENT_RECORDED,
            target=agreement,
            family=locked.family,
            details={
                "conference": str(locked.pk),
                "number": number,
                "responsible": data.agency.pk if data.agency else "family",
                "due_on": data.due_on.isoformat(),
            },
        )
        if data.agency is not None and data.agency.pk != locked.project_id:
            asked = [data.person] if data.person else list(responsible_people(locked, data.agency))
            notify(
                asked,
                kind="agreement.recorded",
                title=gettext_lazy("Vereinbarung aus der Familienkonferenz: bitte bestätigen"),
                family_ref=locked.family.reference,
                url=reverse("conference_detail", args=[locked.pk]) + "#vereinbarungen",
            )
    return agreement


def _require_coordination(conference: Conference, agency: Agency) -> None:
    """The consent still covers AGENCY for case coordination and the shared categories;
    locked until the caller commits, so that a revocation waits (or comes first)."""
    try:
        require_consent(
            conference.family,
            to_agency=agency,
            categories=conference.categories,
            purpose=Purpose.CASE_COORDINATION,
        )
    except ConsentMissing:
        raise ActionError(
            _("Die Einwilligung deckt %(agency)s nicht mehr: nichts wurde geändert.")
            % {"agency": agency.name}
        ) from None


def acts_for(user: User, agreement: Agreement) -> bool:
    """Whether USER acts for the agreement's responsible agency (access.acting_for: a case
    role in the project for the project's agreements; an open invitation for that agency,
    where she still holds a case role, otherwise)."""
    if agreement.agency_id is None:
        return False
    return agreement.agency_id in acting_for(user, agreement.conference, reach_of(user))


def _locked(agreement: Agreement) -> Agreement:
    return (
        Agreement.objects.select_for_update(of=("self",))
        .select_related("conference__family__data_key", "conference__project", "agency")
        .get(pk=agreement.pk)
    )


def confirm_agreement(agreement: Agreement, *, by: User) -> Agreement:
    """Confirm an open agreement for the responsible agency (one who acts for it): its
    binding commitment, signed by the platform (conferences/receipts.py). For another
    agency than the project, only while the family's consent still covers it (checked
    and locked here: a revocation at the same moment comes first or waits)."""
    agency = agreement.agency
    if agency is None:
        raise ActionError(_("Was die Familie selbst übernimmt, bestätigt keine Stelle."))
    with transaction.atomic():
        if agency.pk != agreement.conference.project_id:
            _require_coordination(agreement.conference, agency)
        locked = _locked(agreement)
        if not acts_for(by, locked):
            raise NotAllowed(_("Bestätigen kann nur die zuständige Stelle."))
        if locked.state != State.OPEN:
            raise ActionError(_("Diese Vereinbarung ist schon bestätigt oder beendet."))
        now = timezone.now()
        receipt = receipts.issue(
            agreement_id=str(locked.pk),
            conference_id=str(locked.conference_id),
            number=locked.number,
            family_reference=locked.conference.family.reference,
            agency=agency,
            by=by,
            at=now,
            due_on=locked.due_on.isoformat(),
            what=locked.decrypt_field("what"),
        )
        locked.state = State.CONFIRMED
        locked.confirmed_by = by
        locked.confirmed_at = now
        locked.receipt = json.dumps(receipt, ensure_ascii=False)
        locked.signature = receipt["signature"]
        locked.save(update_fields=["state", "confirmed_by", "confirmed_at", "receipt", "signature"])
        record(
            by,
            AGREEMENT_CONFIRMED,
            target=locked,
            family=locked.conference.family,
            agency_id=locked.agency_id,
            details={
                "conference": str(locked.conference_id),
                "number": locked.number,
                "key_id": receipt["key_id"],
            },
        )
        notify(
            [u for u in [locked.conference.convened_by] if u is not None],
            kind="agreement.confirmed",
            title=gettext_lazy("Vereinbarung bestätigt"),
            family_ref=locked.conference.family.reference,
            url=reverse("conference_detail", args=[locked.conference_id]) + "#vereinbarungen",
        )
    return locked


def close_agreement(
    agreement: Agreement, *, done: bool, reason: str = "", note: str = "", by: User
) -> Agreement:
    """End an open agreement as done, or as not possible with a REASON from GapReason (the
    gap it reveals) and an optional NOTE. Either the responsible agency or the project's
    coach or lead ends it."""
    note = note.strip()
    if not done and reason not in GapReason.values:
        raise ActionError(_("Bitte wählen Sie, warum es nicht möglich war."))
    if len(note) > MAX_WHAT:
        raise ActionError(
            _("Die Anmerkung ist zu lang (höchstens %(max)d Zeichen).") % {"max": MAX_WHAT}
        )
    with transaction.atomic():
        locked = _locked(agreement)
        if not (acts_for(by, locked) or may_convene(by, locked.conference.family)):
            raise NotAllowed(_("Beenden kann die zuständige Stelle oder das Projekt."))
        if not locked.is_open:
            raise ActionError(_("Diese Vereinbarung ist schon beendet."))
        locked.state = State.DONE if done else State.NOT_POSSIBLE
        locked.gap_reason = "" if done else reason
        locked.encrypt_field("outcome_note", note)
        locked.closed_by = by
        locked.closed_at = timezone.now()
        locked.save(
            update_fields=["state", "gap_reason", "outcome_note_enc", "closed_by", "closed_at"]
        )
        record(
            by,
            AGREEMENT_CLOSED,
            target=locked,
            family=locked.conference.family,
            details={
                "conference": str(locked.conference_id),
                "number": locked.number,
                "state": locked.state,
                "gap_reason": locked.gap_reason or None,
            },
        )
    return locked


def overdue_agreements(today: date | None = None) -> QuerySet[Agreement]:
    """Open agreements of an agency past their date (the family's own are the coach's to
    follow up, on her page; they are not reminded of)."""
    return Agreement.objects.filter(
        state__in=[State.OPEN, State.CONFIRMED],
        due_on__lt=today or timezone.localdate(),
        agency__isnull=False,
        conference__state=Conference.State.PLANNED,
    )


def remind_overdue_agreements() -> tuple[int, int]:
    """Remind the person responsible for each overdue agreement (or, without one, the
    agency's invitees), once, if she can still open the conference; ESCALATION_DAYS later
    tell the agency's leads, once (the family's reference only). Returns (reminded,
    escalated)."""
    reminded = escalated = 0
    today = timezone.localdate()
    for agreement in overdue_agreements(today).iterator():
        with transaction.atomic():
            locked = _locked(agreement)
            if not locked.is_open or locked.agency is None:
                continue
            conference = locked.conference
            url = reverse("conference_detail", args=[conference.pk]) + "#vereinbarungen"
            if locked.reminded_at is None:
                people = (
                    [locked.person]
                    if locked.person is not None
                    else list(responsible_people(conference, locked.agency))
                )
                people = [person for person in people if acts_for(person, locked)]
                locked.reminded_at = timezone.now()
                locked.save(update_fields=["reminded_at"])
                record(
                    "system:escalation",
                    AGREEMENT_REMINDED,
                    target=locked,
                    family=conference.family,
                    agency_id=locked.agency_id,
                    details={"number": locked.number, "told": len(people)},
                )
                notify(
                    people,
                    kind="agreement.overdue",
                    title=gettext_lazy("Vereinbarung überfällig"),
                    family_ref=conference.family.reference,
                    url=url,
                )
                reminded += 1
            elif locked.escalated_at is None and (
                timezone.localdate(locked.reminded_at) + timedelta(days=ESCALATION_DAYS) <= today
            ):
                # Her leads are told of it (the reference, nothing of the family); they
                # are not invited, so they ask her or the coach, as for a referral.
                leads = list(members_holding(Role.LEAD, agencies=locked.agency))
                locked.escalated_at = timezone.now()
                locked.save(update_fields=["escalated_at"])
                record(
                    "system:escalation",
                    AGREEMENT_ESCALATED,
                    target=locked,
                    family=conference.family,
                    agency_id=locked.agency_id,
                    details={"number": locked.number, "told": len(leads)},
                )
                notify(
                    leads,
                    kind="agreement.escalated",
                    title=gettext_lazy("Vereinbarung Ihrer Stelle überfällig"),
                    family_ref=conference.family.reference,
                    url=reverse("conference_list"),
                )
                escalated += 1
    return reminded, escalated
