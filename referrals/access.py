"""Who may see which referral and which application tag, defined once.

Lists, detail pages, downloads and commands all derive from these helpers. A referral is
visible through a django-guardian object permission held by one of the user's agency
groups in which she has a case role (the DPO and admins hold none); the receiving side
loses it when the consent is revoked (the permission is withdrawn) or expires (the
date check below, the same day), and while the family's processing is restricted (GDPR
Art. 18: the owning project alone sees the family's referrals and tags)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.trail import record
from dienstweg.access import CASE_ROLES, agency_ids_of, holds_role
from dienstweg.consent import (
    ConsentMissing,
    ProcessingRestricted,
    has_consent,
    require_consent,
)
from dienstweg.models import Family, Membership, Purpose, User
from referrals.models import (
    ApplicationTag,
    Referral,
    ReferralAttachment,
    ReferralGroupPermission,
)

# Coaches and leads send referrals and tag applications; caseworkers of a project do not.
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
                "referral.access_denied",
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


# Application tags

# The data category a tag discloses to the processing office, by kind of application.
TAG_CATEGORY = {
    ApplicationTag.Kind.EDUCATION: "children",
    ApplicationTag.Kind.CHILDCARE: "children",
    ApplicationTag.Kind.HOUSING_BENEFIT: "housing",
    ApplicationTag.Kind.CHILD_SUPPLEMENT: "household",
    ApplicationTag.Kind.CITIZENS_BENEFIT: "household",
    ApplicationTag.Kind.OTHER: "household",
}


class TagRefused(Exception):
    """The clerk's agency processes the application, but the family's consent does not
    cover it: a clear refusal (the clerk holds the paper with the code anyway)."""


class TagLookupThrottled(Exception):
    """Too many wrong codes in a short time."""


def tags_visible_to(user: User) -> QuerySet[ApplicationTag]:
    """The tags of the user's projects (the coach's list): open document requests first."""
    return ApplicationTag.objects.filter(project_id__in=agency_ids_of(user)).order_by(
        "priority", "-submitted_on", "-id"
    )


def normalize_code(code: str) -> str:
    """The code as printed ("7KQM-3XPA-94TD"), from what a person typed or scanned."""
    letters = "".join(ch for ch in code.upper() if ch.isalnum())[:12]
    return "-".join(letters[i : i + 4] for i in range(0, len(letters), 4))


def _throttle_key(user: User) -> str:
    return f"tag-lookup-failures:{user.pk}"


def check_lookup_throttle(user: User) -> None:
    """Refuse look-ups after too many wrong codes (counted per account)."""
    if cache.get(_throttle_key(user), 0) >= settings.TAG_LOOKUP_MAX_FAILURES:
        with transaction.atomic():
            record(user, "application_tag.lookup_throttled")
        raise TagLookupThrottled


def _count_failure(user: User) -> None:
    key = _throttle_key(user)
    window = settings.TAG_LOOKUP_WINDOW_MINUTES * 60
    if not cache.add(key, 1, timeout=window):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window)


def access_tag_by_code(
    user: User,
    code: str,
    *,
    action: str | None = "application_tag.viewed",
    sides: tuple[str, ...] = ("project", "office"),
) -> tuple[ApplicationTag, str]:
    """Fetch a tag by its code with the side the user sees it from ("project" or
    "office", one of SIDES), and record ACTION; or 404 (an unknown code and a missing right look the
    same, and count towards the throttle), or TagRefused when the family's consent does
    not cover the processing office for application support.

    For the processing office the look-up is a transmission: the consent is checked and
    locked in the transaction that records it."""
    check_lookup_throttle(user)
    tag = (
        ApplicationTag.objects.select_related(
            "family__data_key", "project", "processing_agency", "coach"
        )
        .filter(code=normalize_code(code))
        .first()
    )
    side = _role_side(user, tag) if tag is not None else None
    if tag is not None and side is not None and side not in sides:
        # A page for the other side (the stamp is the project's): refused, audited.
        with transaction.atomic():
            record(user, "application_tag.access_denied", target=tag, family=tag.family)
        raise Http404
    if tag is None or side is None:
        _count_failure(user)
        with transaction.atomic():
            record(
                user,
                "application_tag.access_denied",
                target=tag,
                family=tag.family if tag is not None else None,
            )
        raise Http404
    try:
        with transaction.atomic():
            if side == "office":
                require_tag_consent(tag)
            if action:
                record(
                    user,
                    action,
                    target=tag,
                    family=tag.family,
                    purpose=str(Purpose.APPLICATION_SUPPORT.label) if side == "office" else "",
                    agency_id=tag.processing_agency_id if side == "office" else tag.project_id,
                )
    except ProcessingRestricted:
        with transaction.atomic():
            record(
                user,
                "application_tag.access_restricted",
                target=tag,
                family=tag.family,
                agency_id=tag.processing_agency_id,
                purpose="Art. 18 DSGVO",
            )
        # Whether and why the family restricted its processing is not the office's to know.
        raise TagRefused(
            _(
                "Ihre Stelle kann diesen Antragsmarker derzeit nicht öffnen. Bitte wenden Sie "
                "sich an das Projekt."
            )
        ) from None
    except ConsentMissing:
        with transaction.atomic():
            record(
                user,
                "application_tag.consent_missing",
                target=tag,
                family=tag.family,
                agency_id=tag.processing_agency_id,
            )
        raise TagRefused(
            _(
                "Die Einwilligung der Familie erlaubt Ihrer Stelle keinen Zugriff auf diesen "
                "Antragsmarker. Bitte wenden Sie sich an das Projekt."
            )
        ) from None
    return tag, side


def _role_side(user: User, tag: ApplicationTag) -> str | None:
    """ "project" or "office" by the user's case roles alone (the consent not asked)."""
    reach = reach_of(user)
    if reach.holds(tag.project_id, CASE_ROLES):
        return "project"
    if reach.holds(tag.processing_agency_id, CASE_ROLES):
        return "office"
    return None


def tag_consented(tag: ApplicationTag) -> bool:
    """Whether the family's consent lets the processing office see the tag today and its
    processing is not restricted (no lock: for pages and recipients; a transmission locks
    it, require_tag_consent)."""
    return has_consent(
        tag.family,
        to_agency=tag.processing_agency,
        categories=[TAG_CATEGORY[ApplicationTag.Kind(tag.kind)]],
        purpose=Purpose.APPLICATION_SUPPORT,
    )


def tag_readers(tag: ApplicationTag) -> list[int]:
    """The ids of the active users who may open the tag now: the project's case roles,
    and the processing office's while the family's consent covers it."""
    agencies = [tag.project_id, *([tag.processing_agency_id] if tag_consented(tag) else [])]
    members = Membership.objects.filter(
        agency_id__in=agencies, role__in=CASE_ROLES, user__is_active=True
    )
    return sorted(set(members.values_list("user_id", flat=True)))


def tag_side(user: User, tag: ApplicationTag) -> str | None:
    """ "project", "office" (the consent covering it today) or None: whether and from
    which side the user may see the tag (no throttle, no audit: for helpers above)."""
    side = _role_side(user, tag)
    return None if side == "office" and not tag_consented(tag) else side


def require_tag_consent(tag: ApplicationTag) -> None:
    """Lock the consent that lets the processing office see this tag, or ConsentMissing.
    Runs inside the transaction that shows or changes the tag."""
    require_consent(
        tag.family,
        to_agency=tag.processing_agency,
        categories=[TAG_CATEGORY[ApplicationTag.Kind(tag.kind)]],
        purpose=Purpose.APPLICATION_SUPPORT,
    )
