"""Who may see which Familienkonferenz, defined once.

The owning project's case roles see the conferences of their families, as they see the
family record. An invitee sees a conference through her django-guardian object permission,
granted when she was invited, while three things hold: she still holds a case role in the
agency she was invited for, the consents her invitation rests on have not expired or
been revoked (access_until, access_ended_at), and the family's processing is not
restricted (GDPR Art. 18). The DPO and admins hold no case role and see none."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.trail import record
from conferences.audit_actions import (
    CONFERENCE_ACCESS_DENIED,
    CONSULTATION_ACCESS_DENIED,
    REPORT_ACCESS_DENIED,
)
from conferences.models import (
    Agreement,
    Conference,
    ConferenceUserPermission,
    Consultation,
    ConsultationRecipient,
    Invitation,
)
from conferences.report import Scope
from dienstweg.access import CASE_ROLES, REGISTERING_ROLES, Reach, Role, holds_role, reach_of
from dienstweg.models import Agency, Family, Membership, User

# Coaches and leads of the owning project convene and cancel conferences.
CONVENING_ROLES = REGISTERING_ROLES

PROJECT = "project"
INVITEE = "invitee"


def conferences_visible_to(user: User, reach: Reach | None = None) -> QuerySet[Conference]:
    """The conferences USER may open: her project's, and those she is invited to."""
    reach = reach or reach_of(user)
    return Conference.objects.filter(visible_within(user.pk, reach.agency_ids))


def access_conference_by_id(
    user: User, conference_id: UUID | str, reach: Reach | None = None
) -> Conference:
    """Fetch one conference the user may open, or 404 (the same for missing and
    forbidden). A refusal is audited, under the family when the conference exists."""
    try:
        return (
            conferences_visible_to(user, reach)
            .select_related("family__data_key", "project", "convened_by", "follows")
            .get(pk=conference_id)
        )
    except (Conference.DoesNotExist, ValidationError, ValueError):
        existing = _existing(conference_id)
        with transaction.atomic():
            record(
                user,
                CONFERENCE_ACCESS_DENIED,
                target=existing,
                family=existing.family if existing else None,
            )
        raise Http404 from None


def _existing(conference_id: UUID | str) -> Conference | None:
    try:
        return Conference.objects.select_related("family").filter(pk=conference_id).first()
    except (ValidationError, ValueError):
        return None


def side_of(conference: Conference, reach: Reach) -> str:
    """PROJECT for the owning project's case roles, INVITEE for the rest who may open it."""
    return PROJECT if conference.family.owner_id in reach.agency_ids else INVITEE


def may_convene(user: User | Reach, family: Family) -> bool:
    """Whether USER (or her reach) may convene and cancel the family's conferences."""
    roles = user.roles if isinstance(user, Reach) else user
    return holds_role(roles, *CONVENING_ROLES, agency=family.owner_id)


def participants_of(conference: Conference) -> list[Invitation]:
    """Who is invited, with their agencies, in one query; ended invitations marked."""
    return list(
        conference.invitations.select_related("user", "agency").order_by(
            "agency__name", "user__full_name"
        )
    )


def access_agreement_by_id(
    user: User, conference_id: UUID | str, agreement_id: UUID | str, reach: Reach | None = None
) -> Agreement:
    """Fetch one agreement of a conference the user may open, or 404 (audited)."""
    conference = access_conference_by_id(user, conference_id, reach)
    try:
        agreement = conference.agreements.select_related("agency", "person").get(pk=agreement_id)
    except (Agreement.DoesNotExist, ValidationError, ValueError):
        with transaction.atomic():
            record(user, CONFERENCE_ACCESS_DENIED, target=conference, family=conference.family)
        raise Http404 from None
    agreement.conference = conference  # already checked, with its family loaded
    return agreement


def agreements_of(conference: Conference) -> list[Agreement]:
    """The conference's agreements in order, with who is responsible, in one query (each
    holds CONFERENCE, whose family's key decrypts it)."""
    agreements = list(conference.agreements.select_related("agency", "person", "confirmed_by"))
    for agreement in agreements:
        agreement.conference = conference
    return agreements


def acting_for(user: User, conference: Conference, reach: Reach) -> set[int]:
    """The agencies for which USER acts in CONFERENCE (confirms and closes their
    agreements), for every agreement of a page in one query: the project if she holds a
    case role there, and each agency of her open invitations where she still holds one."""
    agencies = {conference.project_id} if conference.project_id in reach.agency_ids else set()
    invited = Invitation.objects.filter(
        conference=conference,
        user=user,
        access_ended_at__isnull=True,
        access_until__gte=timezone.localdate(),
        agency_id__in=reach.agency_ids,
    ).values_list("agency_id", flat=True)
    return agencies | set(invited)


# Anonymous case consultations: the project sees its own; a recipient agency's case roles
# see those they were asked in (the alias and the texts, never the family, unless it was
# named to them with consent), not while the family's processing is restricted.

RECIPIENT = "recipient"


def consultations_visible_to(user: User, reach: Reach | None = None) -> QuerySet[Consultation]:
    reach = reach or reach_of(user)
    return consultations_within(reach.agency_ids)


def consultations_within(agencies: Any) -> QuerySet[Consultation]:
    """consultations_visible_to for the case roles' AGENCIES (ids, or a compiled query's
    placeholders)."""
    asked = ConsultationRecipient.objects.filter(
        consultation=OuterRef("pk"), agency_id__in=agencies
    )
    return Consultation.objects.filter(
        Q(family__owner_id__in=agencies) | Q(Exists(asked), family__restricted_at__isnull=True)
    )


def access_consultation_by_id(
    user: User, consultation_id: UUID | str, reach: Reach | None = None
) -> Consultation:
    """Fetch one consultation the user may open, or 404 (audited, under the family)."""
    try:
        return (
            consultations_visible_to(user, reach)
            .select_related("family__data_key", "project", "created_by")
            .get(pk=consultation_id)
        )
    except (Consultation.DoesNotExist, ValidationError, ValueError):
        try:
            existing = (
                Consultation.objects.select_related("family").filter(pk=consultation_id).first()
            )
        except (ValidationError, ValueError):
            existing = None
        with transaction.atomic():
            record(
                user,
                CONSULTATION_ACCESS_DENIED,
                target=existing,
                family=existing.family if existing else None,
            )
        raise Http404 from None


def consultation_side(consultation: Consultation, reach: Reach) -> str:
    return PROJECT if consultation.family.owner_id in reach.agency_ids else RECIPIENT


# The Strukturkonferenz report: the steering group sees the network's figures, a lead those
# of the agencies she leads; anyone else, a DPO and admins included, gets a 404 (audited).


def report_scope(user: User, reach: Reach | None = None) -> Scope | None:
    """Whose figures USER may see, or None."""
    reach = reach or reach_of(user)
    if reach.agencies_holding(Role.STEERING):
        return Scope(None, str(_("das ganze Netzwerk")))
    led = reach.agencies_holding(Role.LEAD)
    if not led:
        return None
    names = Agency.objects.filter(pk__in=led).order_by("name").values_list("name", flat=True)
    return Scope(tuple(led), "; ".join(names))


def require_report_scope(user: User) -> Scope:
    scope = report_scope(user)
    if scope is None:
        with transaction.atomic():
            record(user, REPORT_ACCESS_DENIED)
        raise Http404
    return scope


# The conference's live thread (messaging/subjects.py): it follows the conference's rule.
THREAD_KIND = "conference"  # messaging.models.Thread.Kind.CONFERENCE


def visible_within(user_id: Any, agencies: Any) -> Q:
    """Over conferences: the rule of conferences_visible_to for the user USER_ID whose case
    roles are in AGENCIES (ids, or a compiled query's placeholders)."""
    open_invitation = Invitation.objects.filter(
        conference=OuterRef("pk"),
        user_id=user_id,
        access_ended_at__isnull=True,
        access_until__gte=timezone.localdate(),
        agency_id__in=agencies,
    )
    permission = ConferenceUserPermission.objects.filter(
        content_object=OuterRef("pk"),
        user_id=user_id,
        permission__codename="view_conference",
        permission__content_type__app_label="conferences",
    )
    return Q(family__owner_id__in=agencies) | Q(
        Exists(open_invitation), Exists(permission), family__restricted_at__isnull=True
    )


def thread_listed(user_id: Any, agencies: Any) -> Q:
    """Over a user's Participant rows: the conference of the thread is hers to see."""
    seen = Conference.objects.filter(pk=OuterRef("thread__subject_id")).filter(
        visible_within(user_id, agencies)
    )
    return Q(Exists(seen))


def may_use_conference_thread(user: User, conference_id: UUID) -> bool:
    return user.is_active and conferences_visible_to(user).filter(pk=conference_id).exists()


def conference_readers(conference_id: UUID) -> list[int]:
    """Who may read the conference's thread now: the owning project's case roles and the
    invitees whose access is open (their role held, the family not restricted)."""
    conference = Conference.objects.filter(pk=conference_id).select_related("family").first()
    if conference is None:
        return []
    project = Membership.objects.filter(
        agency_id=conference.family.owner_id, role__in=CASE_ROLES, user__is_active=True
    ).values_list("user_id", flat=True)
    readers = set(project)
    if conference.family.restricted_at is None:
        holds_role_there = Membership.objects.filter(
            user_id=OuterRef("user_id"), agency_id=OuterRef("agency_id"), role__in=CASE_ROLES
        )
        permitted = ConferenceUserPermission.objects.filter(
            content_object_id=conference_id,
            user_id=OuterRef("user_id"),
            permission__codename="view_conference",
        )
        readers |= set(
            Invitation.objects.filter(
                conference_id=conference_id,
                access_ended_at__isnull=True,
                access_until__gte=timezone.localdate(),
                user__is_active=True,
            )
            .filter(Exists(holds_role_there), Exists(permitted))
            .values_list("user_id", flat=True)
        )
    return sorted(readers)
