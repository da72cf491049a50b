"""Who may see which referral, defined once.

Lists, detail pages, downloads and commands all derive from these helpers. A referral is
visible through a django-guardian object permission held by one of the user's agency
groups in which she has a case role (the DPO and admins hold none); the receiving side
loses it when the consent is revoked (the permission is withdrawn) or expires (the
date check below, the same day), and while the family's processing is restricted (GDPR
Art. 18: the owning project alone sees the family's referrals)."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.http import Http404
from django.utils import timezone

from audit.trail import record
from dienstweg.access import CASE_ROLES, Reach, members_holding, reach_of
from dienstweg.compiled import SENTINEL_ID, SENTINEL_UUID, CompiledQuery
from dienstweg.models import Agency, Membership, User
from referrals.audit_actions import REFERRAL_ACCESS_DENIED
from referrals.models import (
    Referral,
    ReferralAttachment,
    ReferralGroupPermission,
)

# Coaches and leads send referrals; caseworkers of a project do not.
REFERRING_ROLES = (Membership.Role.COACH, Membership.Role.LEAD)


# The rule, defined once. Everything below asks it: the lists (referrals_visible_to), the
# look-up by id, who is told on the socket (referral_readers) and the receiving agency's
# steps (receiver_sees); tests/referrals/test_visibility_rule.py holds them together.


def receiving_side_open() -> Q:
    """Over referrals: the receiving side may still see them: the consent the referral
    relied on has not expired (it ends with the day) and the family's processing is not
    restricted (the owning project, the sender, is not bound by either)."""
    return (Q(access_until__isnull=True) | Q(access_until__gte=timezone.localdate())) & Q(
        family__restricted_at__isnull=True
    )


def visible_through(*, agencies: Any, groups: Any) -> Q:
    """Over referrals: whether the case roles of AGENCIES, whose permission groups are
    GROUPS, may open them: one of the groups holds the view permission, and one of the
    agencies sent the referral or the receiving side is still open.

    AGENCIES and GROUPS are lists of ids (a user's reach), subqueries of ids (the same,
    read in the query itself), or the one agency of an outer query: AGENCIES as seen from
    the referral, GROUPS from its permission rows (one OuterRef deeper)."""
    one = not isinstance(agencies, list | tuple | QuerySet)
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
        **{"group_id" if one else "group_id__in": groups},
        permission_id=Subquery(view_permission),
    )
    sender = Q(from_agency_id=agencies) if one else Q(from_agency_id__in=agencies)
    return Exists(may_view) & (sender | receiving_side_open())


def referrals_visible_to(user: User, reach: Reach | None = None) -> QuerySet[Referral]:
    """Referrals the user may open (visible_through, for the agencies in which she holds a
    case role)."""
    reach = reach or reach_of(user)
    return visible_within(reach.agency_ids, reach.group_ids)


def visible_within(agency_ids: list[int], group_ids: list[int]) -> QuerySet[Referral]:
    """referrals_visible_to for the case roles' AGENCY_IDS and GROUP_IDS of a reach (the
    start page's sections compile it once with sentinel ids, dienstweg/compiled.py)."""
    return Referral.objects.filter(visible_through(agencies=agency_ids, groups=group_ids))


def visible_to(user_id: int | Any) -> Q:
    """Over referrals: referrals_visible_to's rule for the user USER_ID with her memberships
    read inside the query itself, so that a check costs one query. An account deactivated
    meanwhile sees nothing, whatever the loaded user object says."""
    case_roles = Membership.objects.filter(
        user_id=user_id, user__is_active=True, role__in=CASE_ROLES
    )
    return visible_through(
        agencies=case_roles.values("agency_id"), groups=case_roles.values("agency__group_id")
    )


# Built and compiled once a day (the consent's end is compared with today): Django took
# several ms of CPU to build this rule for every frame of a socket (dienstweg/compiled.py).
def _opened_by(user_id: int, referral_id: UUID) -> QuerySet[Referral]:
    """The referral REFERRAL_ID if the user USER_ID may open it now (visible_to)."""
    return Referral.objects.filter(pk=referral_id).filter(visible_to(user_id))


_VISIBLE = CompiledQuery(
    lambda user_id, referral_id: _opened_by(user_id, referral_id).values("pk")[:1],
    user_id=SENTINEL_ID,
    referral_id=SENTINEL_UUID,
    prepared=True,
)
_READERS = CompiledQuery(
    lambda referral_id: (
        members_holding(*CASE_ROLES, agencies=agencies_seeing(Referral(pk=referral_id)))
        .filter(is_active=True)
        .values_list("pk")
    ),
    referral_id=SENTINEL_UUID,
    prepared=True,
)


def referral_visible_to(user: User, referral_id: UUID | str) -> bool:
    """Whether the user may open the referral now, in one query (a socket asks it for
    every frame)."""
    try:
        rows = _VISIBLE.rows(timezone.localdate(), user_id=user.pk, referral_id=referral_id)
    except ValueError:  # not an id at all
        return False
    return bool(rows)


def agencies_seeing(referral: Referral | OuterRef) -> QuerySet[Agency]:
    """The agencies whose case roles may open the referral now (visible_through, seen from
    the referral; REFERRAL may be an OuterRef to it)."""
    # cast: django-stubs types a primary-key lookup without OuterRef; the ORM takes it.
    referral_id = cast(Any, referral) if isinstance(referral, OuterRef) else referral.pk
    seen = Referral.objects.filter(pk=referral_id).filter(
        visible_through(agencies=OuterRef("pk"), groups=OuterRef(OuterRef("group_id")))
    )
    return Agency.objects.filter(Exists(seen))


def _receiving_agency_sees() -> Exists:
    """Over referrals: whether the agency each was sent to may open it now."""
    # Two levels up from the agency query: the referral itself.
    seeing = agencies_seeing(OuterRef(OuterRef("pk"))).filter(pk=OuterRef("to_agency_id"))
    return Exists(seeing)


def with_receiver_rules(referrals: QuerySet[Referral]) -> QuerySet[Referral]:
    """REFERRALS, each with receiver_sees() and receiving_side_is_open() answered in the
    query that loads it."""
    return referrals.annotate(
        receiver_sees=_receiving_agency_sees(),
        receiving_side_open=ExpressionWrapper(receiving_side_open(), BooleanField()),
    )


def receiver_sees(referral: Referral) -> bool:
    """Whether the receiving agency may open the referral now (visible_through, for the
    agency it was sent to): the check of the receiving agency's steps."""
    return _answer(referral, "receiver_sees", _receiving_agency_sees())


def receiving_side_is_open(referral: Referral) -> bool:
    """receiving_side_open(), for one referral: the receiving side's consent has not expired
    and the family's processing is not restricted."""
    return _answer(referral, "receiving_side_open", receiving_side_open())


def _answer(referral: Referral, name: str, question: Q | Exists) -> bool:
    # Read from the row when it was loaded through with_receiver_rules()
    # (access_referral_by_id, the steps' locked row); else asked of it (one query).
    answer: bool | None = getattr(referral, name, None)
    if answer is None:
        answer = Referral.objects.filter(question, pk=referral.pk).exists()
    return answer


def inbox_of(user: User, reach: Reach | None = None) -> QuerySet[Referral]:
    """Referrals received by the user's agencies (sent to them: a draft addressed to an
    agency is not in its inbox, even for someone who also works at the sender)."""
    reach = reach or reach_of(user)
    return inbox_within(reach.agency_ids, reach.group_ids)


def inbox_within(agency_ids: list[int], group_ids: list[int]) -> QuerySet[Referral]:
    """inbox_of for the case roles' AGENCY_IDS and GROUP_IDS of a reach."""
    # sent_at IS NOT NULL also lets the inbox index skip the unsent rows, which sort
    # first in it (NULLS FIRST), instead of testing the permission of each.
    return visible_within(agency_ids, group_ids).filter(
        to_agency_id__in=agency_ids, sent_at__isnull=False
    )


def outbox_of(user: User, reach: Reach | None = None) -> QuerySet[Referral]:
    """Referrals sent (or drafted) by the user's agencies."""
    reach = reach or reach_of(user)
    return outbox_within(reach.agency_ids, reach.group_ids)


def outbox_within(agency_ids: list[int], group_ids: list[int]) -> QuerySet[Referral]:
    """outbox_of for the case roles' AGENCY_IDS and GROUP_IDS of a reach."""
    return visible_within(agency_ids, group_ids).filter(from_agency_id__in=agency_ids)


def picked_rows() -> QuerySet[Referral]:
    """Referrals unchecked, to read by ids that one of the rules above has picked in the
    same request: a list page's rows (dienstweg.paging.numbered_page, ROWS)."""
    return Referral.objects.all()


def referral_readers(referral: Referral) -> list[int]:
    """The ids of the active users who may open the referral now (the same rule as
    referrals_visible_to, seen from the referral): real-time recipients of its thread."""
    # Asked of the row (not of the loaded referral and family, which may be older): one query.
    return sorted(pk for (pk,) in _READERS.rows(timezone.localdate(), referral_id=referral.pk))


def access_referral_by_id(user: User, referral_id: UUID | str) -> Referral:
    """Fetch one referral the user may open, or 404 (the same for missing and forbidden).
    A refusal is audited, under the family when the referral exists."""
    try:
        opened = _OPENED.rows(timezone.localdate(), user_id=user.pk, referral_id=referral_id)
    except ValueError:  # not an id at all
        opened = []
    try:
        if not opened:
            raise Referral.DoesNotExist
        # Two small queries plan faster than one: the rules on the id alone, then the row
        # with its five related tables (bench/step3.py).
        referral = Referral.objects.select_related(
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
    # As with_receiver_rules() would have annotated them (receiver_sees(),
    # receiving_side_is_open()).
    referral.receiver_sees, referral.receiving_side_open = opened[0]  # type: ignore[attr-defined]
    return referral


# Whether the user may open the referral, and the receiving side's two rules, asked of its
# id in one query built once a day and prepared (dienstweg/compiled.py): building the rule
# and the rules' nested subqueries took Django most of the referral page's gate cost
# (bench/step3.py's referral detail: 1.7 x its plain twin on the slower machine).
_OPENED = CompiledQuery(
    lambda user_id, referral_id: with_receiver_rules(_opened_by(user_id, referral_id)).values_list(
        "receiver_sees", "receiving_side_open"
    ),  # type: ignore[misc]
    user_id=SENTINEL_ID,
    referral_id=SENTINEL_UUID,
    prepared=True,
)


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
