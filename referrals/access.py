"""Who may see which referral, defined once.

Lists, detail pages, downloads and commands all derive from these helpers. A referral is
visible through a django-guardian object permission held by one of the user's agency
groups in which she has a case role (the DPO and admins hold none); the receiving side
loses it when the consent is revoked (the permission is withdrawn) or expires (the
date check below, the same day), and while the family's processing is restricted (GDPR
Art. 18: the owning project alone sees the family's referrals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from audit.trail import record
from dienstweg.access import CASE_ROLES, holds_role
from dienstweg.models import Family, Membership, User
from referrals.audit_actions import REFERRAL_ACCESS_DENIED
from referrals.models import (
    Referral,
    ReferralAttachment,
    ReferralGroupPermission,
)

# Coaches and leads send referrals; caseworkers of a project do not.
REFERRING_ROLES = (Membership.Role.COACH, Membership.Role.LEAD)


@dataclass(frozen=True)
class Reach:
    """The user's memberships, read once per request: the agencies (and permission
    groups) in which she holds a case role, and every (agency id, role) pair she holds."""

    agency_ids: list[int]
    group_ids: list[int]
    roles: frozenset[tuple[int, str]]

    def holds(self, agency_id: int, wanted: tuple[str, ...]) -> bool:
        return holds_role(self.roles, *wanted, agency=agency_id)


def reach_of(user: User) -> Reach:
    rows = list(
        Membership.objects.filter(user=user).values_list("agency_id", "agency__group_id", "role")
    )
    case = [(agency, group) for agency, group, role in rows if role in CASE_ROLES]
    return Reach(
        [agency for agency, _group in case],
        [group for _agency, group in case],
        frozenset((agency, role) for agency, _group, role in rows),
    )


def referrals_visible_to(user: User, reach: Reach | None = None) -> QuerySet[Referral]:
    """Referrals the user may open: her case groups hold the view permission, and, on the
    receiving side, the consent the referral relied on has not expired and the family's
    processing is not restricted (the sender is the family's owning project)."""
    reach = reach or reach_of(user)
    # The permission by its id, not by a join on auth_permission.codename: with the join
    # PostgreSQL expects 1 in ~150 permission rows to match (there are ~150 permissions)
    # and reads every permission row of the group and sorts, instead of walking the
    # inbox index (bench/step3.py: 600 ms instead of 1 ms for a busy agency's inbox).
    view_permission = Permission.objects.filter(
        content_type__app_label="referrals",
        content_type__model="referral",
        codename="view_referral",
    ).values("pk")[:1]
    may_view = ReferralGroupPermission.objects.filter(
        content_object=OuterRef("pk"),
        group_id__in=reach.group_ids,
        permission_id=Subquery(view_permission),
    )
    return Referral.objects.filter(Exists(may_view)).filter(
        Q(from_agency_id__in=reach.agency_ids)
        | (
            (Q(access_until__isnull=True) | Q(access_until__gte=timezone.localdate()))
            & Q(family__restricted_at__isnull=True)
        )
    )


def inbox_of(user: User, reach: Reach | None = None) -> QuerySet[Referral]:
    """Referrals received by the user's agencies (sent to them: a draft addressed to an
    agency is not in its inbox, even for someone who also works at the sender)."""
    reach = reach or reach_of(user)
    # sent_at IS NOT NULL also lets the inbox index skip the unsent rows, which sort
    # first in it (NULLS FIRST), instead of testing the permission of each.
    return referrals_visible_to(user, reach).filter(
        to_agency_id__in=reach.agency_ids, sent_at__isnull=False
    )


def outbox_of(user: User, reach: Reach | None = None) -> QuerySet[Referral]:
    """Referrals sent (or drafted) by the user's agencies."""
    reach = reach or reach_of(user)
    return referrals_visible_to(user, reach).filter(from_agency_id__in=reach.agency_ids)


def referral_readers(referral: Referral) -> list[int]:
    """The ids of the active users who may open the referral now (the same rule as
    referrals_visible_to, seen from the referral): real-time recipients of its thread."""
    groups = ReferralGroupPermission.objects.filter(
        content_object=referral, permission__codename="view_referral"
    ).values("group_id")
    members = Membership.objects.filter(
        agency__group_id__in=groups, role__in=CASE_ROLES, user__is_active=True
    )
    if referral.access_until is not None and referral.access_until < timezone.localdate():
        members = members.filter(agency_id=referral.from_agency_id)
    # Asked of the row (not of referral.family, which may be older): part of the one query.
    restricted = Family.objects.filter(pk=referral.family_id, restricted_at__isnull=False)
    members = members.filter(Q(agency_id=referral.from_agency_id) | ~Exists(restricted))
    return sorted(set(members.values_list("user_id", flat=True)))


def access_referral_by_id(
    user: User, referral_id: UUID | str, reach: Reach | None = None
) -> Referral:
    """Fetch one referral the user may open, or 404 (the same for missing and forbidden).
    A refusal is audited, under the family when the referral exists."""
    try:
        # Two small queries plan faster than one: the permission test on the id alone,
        # then the row with its five related tables (bench/step3.py).
        if not referrals_visible_to(user, reach).filter(pk=referral_id).exists():
            raise Referral.DoesNotExist
        return Referral.objects.select_related(
            "family__data_key", "from_agency", "to_agency", "assignee", "created_by"
        ).get(pk=referral_id)
    except (Referral.DoesNotExist, ValidationError):
        existing = _existing(Referral, referral_id)
        with transaction.atomic():
            record(
                user,
                REFERRAL_ACCESS_DENIED,
                target=existing,
                family=existing.family if existing else None,
            )
        raise Http404 from None


def access_attachment_by_id(
    user: User, referral: Referral, attachment_id: UUID | str
) -> ReferralAttachment:
    """One attachment of a referral the user has already been allowed to open, or 404."""
    try:
        return referral.attachments.get(pk=attachment_id)
    except (ReferralAttachment.DoesNotExist, ValidationError):
        raise Http404 from None


def side_of(user: User, referral: Referral, reach: Reach | None = None) -> str:
    """ "sender" or "receiver": on which side of the referral the user works."""
    reach = reach or reach_of(user)
    return "sender" if reach.holds(referral.from_agency_id, CASE_ROLES) else "receiver"


def _existing(model: Any, object_id: UUID | str) -> Any:
    try:
        return model.objects.select_related("family").filter(pk=object_id).first()
    except ValidationError:
        return None
