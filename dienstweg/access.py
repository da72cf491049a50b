"""Who may see what in the platform core (directory, sessions, families, consent).
Views derive their querysets from here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, cast
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.http import Http404, HttpRequest
from django.utils import timezone

from audit.models import AuditEvent
from audit.trail import record
from dienstweg.audit_actions import FAMILY_ACCESS_DENIED
from dienstweg.models import (
    Agency,
    AuthenticatorDevice,
    Consent,
    Contact,
    EnrolmentLink,
    Family,
    Location,
    Membership,
    MembershipProposal,
    Service,
    StaffSession,
    User,
    hash_link_token,
)


def staff(request: HttpRequest) -> User:
    """The signed-in user of a page behind the second-factor gate."""
    return cast(User, request.user)


@dataclass(frozen=True)
class DirectoryFilter:
    query: str = ""
    kind: str = ""
    rechtskreis: str = ""
    language: str = ""
    accepting_only: bool = False


def directory_visible_to(user: User, search: DirectoryFilter | None = None) -> QuerySet[Agency]:
    """Agencies of the directory, with what a list page shows prefetched.

    The directory holds no family data: every verified member of the network sees all of it
    (the second-factor gate in front of every page has already let only those in)."""
    search = search or DirectoryFilter()
    agencies = Agency.objects.all()
    services = Service.objects.filter(agency=OuterRef("pk"))
    if search.query:
        words = search.query.split()[:8]
        for word in words:
            agencies = agencies.filter(
                Q(name__icontains=word)
                | Q(description__icontains=word)
                | Exists(
                    services.filter(
                        Q(name__icontains=word)
                        | Q(description__icontains=word)
                        | Q(audience__icontains=word)
                        | Q(languages__icontains=word)
                    )
                )
                | Exists(
                    Contact.objects.filter(agency=OuterRef("pk")).filter(
                        Q(name__icontains=word)
                        | Q(title__icontains=word)
                        | Q(department__icontains=word)
                    )
                )
                | Exists(Location.objects.filter(agency=OuterRef("pk"), city__icontains=word))
            )
    if search.kind:
        agencies = agencies.filter(kind=search.kind)
    if search.rechtskreis:
        agencies = agencies.filter(
            Q(rechtskreis=search.rechtskreis)
            | Exists(services.filter(rechtskreis=search.rechtskreis))
        )
    if search.language:
        agencies = agencies.filter(Exists(services.filter(languages__icontains=search.language)))
    if search.accepting_only:
        agencies = agencies.filter(Exists(services.filter(accepts_new_families=True)))
    return agencies.select_related("checked_by").prefetch_related(
        "locations",
        Prefetch("services", queryset=Service.objects.select_related("checked_by", "location")),
        Prefetch("contacts", queryset=Contact.objects.select_related("checked_by")),
    )


def access_agency_by_id(user: User, agency_id: int) -> Agency:
    """Fetch one directory entry the user may see, or 404."""
    try:
        return directory_visible_to(user).get(pk=agency_id)
    except Agency.DoesNotExist:
        raise Http404 from None


def active_sessions_of(user: User) -> QuerySet[StaffSession]:
    """The user's own sessions that have not expired, newest activity first."""
    return StaffSession.objects.filter(user=user, expire_date__gt=timezone.now()).order_by(
        "-last_seen"
    )


# Roles: every "may this user ..." question about memberships is asked through these, so
# the rule reads the same in views, actions, consumers and the console.
Role = Membership.Role
# Families: the owning project's members see them; the DPO and admins see no case content.
CASE_ROLES = (Role.COACH, Role.CASEWORKER, Role.LEAD)
REGISTERING_ROLES = (Role.COACH, Role.LEAD)
# A DPO answers for her own agency (the controller); the network's DPO for the platform
# as a whole, where the agencies are joint controllers (Art. 26 GDPR). Both are DPOs.
DPO_ROLES = (Role.DPO, Role.NETWORK_DPO)

# The user's roles as (agency id, role) pairs, read in one query (roles_of) and asked as
# often as needed without another (holds_role).
Roles = frozenset[tuple[int, str]]


def roles_of(user: User, *, agencies: Iterable[int] | None = None) -> Roles:
    """Every (agency id, role) pair the user holds, or only those in AGENCIES (one query)."""
    memberships = Membership.objects.filter(user=user)
    if agencies is not None:
        memberships = memberships.filter(agency_id__in=list(agencies))
    return frozenset(memberships.values_list("agency_id", "role"))


def holds_role(who: User | Roles, *roles: str, agency: Agency | int | None = None) -> bool:
    """Whether the user (or her roles_of() pairs) holds one of ROLES, in AGENCY if given.

    Given a user this is one query; given her roles it is none."""
    agency_id = agency.pk if isinstance(agency, Agency) else agency
    if isinstance(who, frozenset):
        if agency_id is not None:  # set look-ups: asked per row of a list page
            return any((agency_id, role) in who for role in roles)
        return any(role in roles for _agency, role in who)
    memberships = memberships_holding(who, *roles)
    if agency_id is not None:
        memberships = memberships.filter(agency_id=agency_id)
    return memberships.exists()


def agency_ids_of(user: User, roles: tuple[str, ...] = CASE_ROLES) -> list[int]:
    """The agencies in which the user holds one of these roles (a tiny query).

    Filtering big tables by this literal list lets the database walk their per-agency
    indexes instead of joining memberships."""
    return list(memberships_holding(user, *roles).values_list("agency_id", flat=True))


def memberships_holding(user: User | OuterRef, *roles: str) -> QuerySet[Membership]:
    """The user's memberships with one of ROLES, as a queryset: to filter by, or inside
    Exists() with USER an OuterRef to a user query."""
    # cast: django-stubs types a foreign-key lookup without OuterRef; the ORM takes it.
    return Membership.objects.filter(user=cast(Any, user), role__in=roles)


def members_holding(
    *roles: str, agencies: Agency | int | Iterable[int] | QuerySet[Any]
) -> QuerySet[User]:
    """The users who hold one of ROLES in AGENCIES (an agency, an id, ids, or a queryset of
    agencies), each once, as a queryset: to notify, to offer, or to filter further."""
    if isinstance(agencies, (Agency, int)):
        agencies = [agencies.pk if isinstance(agencies, Agency) else agencies]
    held = memberships_holding(OuterRef("pk"), *roles).filter(agency__in=agencies)
    return User.objects.filter(Exists(held))


def agencies_where(user: User, *roles: str) -> QuerySet[Agency]:
    """The agencies in which the user holds one of ROLES, as a queryset."""
    return Agency.objects.filter(pk__in=memberships_holding(user, *roles).values("agency_id"))


@dataclass(frozen=True)
class Reach:
    """The user's memberships, read once per request: the agencies (and permission
    groups) in which she holds a case role, and every (agency id, role) pair she holds.
    A page that asks several apps what the user may see hands them this one reading."""

    agency_ids: list[int]
    group_ids: list[int]
    roles: Roles
    # Those of her agencies that are projects: only a project registers families and tags
    # applications (a Jobcenter's lead has no consents ending, no documents to bring).
    project_ids: frozenset[int]
    # What the sections of one page share beyond the memberships (a staff list offered in
    # two of them): a Reach lives for one page or one count of the socket, never longer.
    shared: dict[str, Any] = field(default_factory=dict, compare=False)

    def holds(self, agency_id: int, wanted: tuple[str, ...]) -> bool:
        return holds_role(self.roles, *wanted, agency=agency_id)

    def agencies_holding(self, *wanted: str) -> list[int]:
        """The agencies in which she holds one of WANTED (those she leads, say)."""
        return sorted({agency for agency, role in self.roles if role in wanted})

    def projects_holding(self, *wanted: str) -> list[int]:
        """The projects in which she holds one of WANTED."""
        return sorted(
            {agency for agency, role in self.roles if role in wanted and agency in self.project_ids}
        )


def reach_of(user: User) -> Reach:
    """The user's Reach, in one query."""
    rows = list(
        Membership.objects.filter(user=user).values_list(
            "agency_id", "agency__group_id", "role", "agency__kind"
        )
    )
    return _reach(rows)


def reach_from(memberships: list[Membership]) -> Reach:
    """The Reach of memberships a page has read already (with their agencies)."""
    return _reach(
        [
            (held.agency_id, held.agency.group_id, held.role, held.agency.kind)
            for held in memberships
        ]
    )


def _reach(rows: list[tuple[int, int, str, str]]) -> Reach:
    case = [(agency, group) for agency, group, role, _kind in rows if role in CASE_ROLES]
    return Reach(
        [agency for agency, _group in case],
        [group for _agency, group in case],
        frozenset((agency, role) for agency, _group, role, _kind in rows),
        frozenset(agency for agency, _group, _role, kind in rows if kind == Agency.Kind.PROJECT),
    )


def families_visible_to(user: User, reach: Reach | None = None) -> QuerySet[Family]:
    """Families the user may open: those owned by an agency where she has a case role.
    (Agencies that receive a consented referral see the referral, not the family record.)"""
    agency_ids = agency_ids_of(user) if reach is None else reach.agency_ids
    return Family.objects.filter(owner_id__in=agency_ids)


def access_family_by_id(user: User, family_id: UUID | str, reach: Reach | None = None) -> Family:
    """Fetch one family the user may open, or 404 (the same for missing and forbidden).

    A refusal is audited; when the family exists, under its id, so that the family's
    access report shows who tried."""
    try:
        return (
            families_visible_to(user, reach).select_related("owner", "data_key").get(pk=family_id)
        )
    except (Family.DoesNotExist, ValidationError):
        record_refusal(user, FAMILY_ACCESS_DENIED, _existing_family(family_id))
        raise Http404 from None


def _existing_family(family_id: UUID | str) -> Family | None:
    try:
        return Family.objects.filter(pk=family_id).first()
    except ValidationError:
        return None


def may_register_for(user: User, owner: Agency) -> bool:
    """Whether the user may register families for OWNER: a coach or lead of that project."""
    return owner.kind == Agency.Kind.PROJECT and holds_role(user, *REGISTERING_ROLES, agency=owner)


def may_work_on(user: User, family: Family) -> bool:
    """Whether the user may open and change the family's record and consents: a case role
    in the owning project (the rule of families_visible_to, for one family)."""
    return holds_role(user, *CASE_ROLES, agency=family.owner_id)


def may_edit_family(user: User, family: Family) -> bool:
    """Whether the user may change the family's record (address, phone, notes, household):
    a coach or lead of the owning project, as for registering it."""
    return holds_role(user, *REGISTERING_ROLES, agency=family.owner_id)


def is_dpo(user: User, *, agency: Agency | int | None = None) -> bool:
    """Whether the user is data-protection officer (of AGENCY, if given), of her agency or
    of the network."""
    return holds_role(user, *DPO_ROLES, agency=agency)


@dataclass(frozen=True)
class DpoScope:
    """What a data-protection officer answers for, read once per request.

    A DPO of one or more agencies (each its own controller) sees the events in which one of
    them acted (AuditEvent.agency_id) and the families one of them owns; the network's DPO
    sees everything. Every console query derives from this one reading."""

    agency_ids: frozenset[int]  # every agency where she holds a DPO role
    agency_names: tuple[str, ...]  # the same, by name, for the console's header
    network_wide: bool
    acting_agency_id: int  # the agency her console's own records name (the lowest id)

    def covers_agency(self, agency_id: int | None) -> bool:
        """Whether events and flags of AGENCY_ID (None: of no agency) are hers to see."""
        return self.network_wide or (agency_id is not None and agency_id in self.agency_ids)

    def covers_family(self, family: Family) -> bool:
        """Whether the family is hers to answer for: owned by one of her agencies."""
        return self.covers_agency(family.owner_id)

    def events(self, events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        """EVENTS narrowed to those in which one of her agencies acted. A literal id list on
        the indexed agency_id column: the (agency_id, occurred_at, id) index per agency."""
        if self.network_wide:
            return events
        return events.filter(agency_id__in=sorted(self.agency_ids))

    def families(self, families: QuerySet[Family]) -> QuerySet[Family]:
        """FAMILIES narrowed to those her agencies own (the indexed owner column)."""
        if self.network_wide:
            return families
        return families.filter(owner_id__in=sorted(self.agency_ids))

    def of_agencies(self, rows: QuerySet[Any], field: str = "agency_id") -> QuerySet[Any]:
        """ROWS (memberships, proposals: anything with an agency) narrowed to her agencies."""
        if self.network_wide:
            return rows
        return rows.filter(**{f"{field}__in": sorted(self.agency_ids)})

    def agencies(self, agencies: QuerySet[Agency]) -> QuerySet[Agency]:
        """AGENCIES narrowed to hers (every agency for the network's DPO)."""
        if self.network_wide:
            return agencies
        return agencies.filter(pk__in=sorted(self.agency_ids))

    def acting_agency_for(self, family: Family) -> int:
        """The agency a step of hers on FAMILY is recorded under: its owner when she is that
        controller's DPO, else the agency of her console records."""
        if family.owner_id in self.agency_ids:
            return family.owner_id
        return self.acting_agency_id


def dpo_scope_of(user: User) -> DpoScope | None:
    """The user's DpoScope, or None when she holds no DPO role (one query)."""
    rows = list(
        Membership.objects.filter(user=user, role__in=DPO_ROLES)
        .order_by("agency__name", "agency_id")
        .values_list("agency_id", "agency__name", "role")
    )
    if not rows:
        return None
    return DpoScope(
        agency_ids=frozenset(agency for agency, _name, _role in rows),
        agency_names=tuple(dict.fromkeys(name for _agency, name, _role in rows)),
        network_wide=any(role == Role.NETWORK_DPO for _agency, _name, role in rows),
        acting_agency_id=min(agency for agency, _name, _role in rows),
    )


def is_operator(user: User) -> bool:
    """Whether the account has admin rights (the Django admin): a platform operator."""
    return user.is_active and (user.is_staff or user.is_superuser)


# Accounts: a lead looks after the access of her agency's members (her team).


def team_visible_to(user: User) -> QuerySet[Membership]:
    """The memberships of the agencies the user leads, with whether each member has set up
    her second factor and until when her open enrolment link is valid (one query)."""
    open_links = EnrolmentLink.objects.filter(
        user=OuterRef("user_id"), used_at=None, voided_at=None, expires_at__gt=timezone.now()
    ).order_by("-expires_at")
    return (
        Membership.objects.filter(agency__in=agencies_where(user, Role.LEAD))
        .select_related("user", "agency")
        .annotate(
            enrolled=Exists(
                AuthenticatorDevice.objects.filter(user=OuterRef("user_id"), confirmed=True)
            ),
            link_valid_until=Subquery(open_links.values("expires_at")[:1]),
        )
        .order_by("agency__name", "user__full_name", "pk")
    )


def may_reset_second_factor(by: User, user: User) -> bool:
    """Whether BY may reset USER's second factor: a second person, who is an admin or a lead
    of one of USER's agencies. An account with admin rights only an admin resets."""
    if by.pk == user.pk or not by.is_active:
        return False
    if is_operator(by):
        return True
    if user.is_staff or user.is_superuser:
        return False
    her_agencies = Membership.objects.filter(user=user).values("agency_id")
    return memberships_holding(by, Role.LEAD).filter(agency_id__in=her_agencies).exists()


def access_team_member_by_id(user: User, member_id: int) -> User:
    """A member of one of the agencies the user leads, or 404 (the same for missing and
    forbidden)."""
    member = User.objects.filter(
        pk=member_id, memberships__agency__in=agencies_where(user, Role.LEAD)
    ).first()
    if member is None:
        raise Http404
    return member


def enrolment_link_by_token(token: str, *, now: datetime | None = None) -> EnrolmentLink | None:
    """The open enrolment link with this token, or None: unknown, used, replaced and expired
    links are alike, and so is a link of a deactivated account."""
    link = (
        EnrolmentLink.objects.select_related("user")
        .filter(token_hash=hash_link_token(token))
        .first()
    )
    if link is None or not link.is_open(now or timezone.now()) or not link.user.is_active:
        return None
    return link


def record_refusal(user: User, action: str, family: Family | None) -> None:
    """Record a refused access in its own transaction (whatever was refused rolls back)."""
    with transaction.atomic():
        record(user, action, target=family, family=family)


def agencies_registering_for(user: User) -> QuerySet[Agency]:
    """The projects in which the user may register families."""
    return agencies_where(user, *REGISTERING_ROLES).filter(kind=Agency.Kind.PROJECT)


def access_consent_by_id(user: User, family: Family, consent_id: UUID | str) -> Consent:
    """One consent of a family the user has already been allowed to open, or 404."""
    try:
        return family.consents.select_related(
            "evidence", "given_by", "on_behalf_of", "recorded_by", "revoked_by"
        ).get(pk=consent_id)
    except (Consent.DoesNotExist, ValidationError):
        raise Http404 from None


# Separation of duties and the four-eyes principle (BSI IT-Grundschutz ORP.4). Operators
# (accounts with admin rights) never hold these roles, and a person gets one only when a
# second person confirms an admin's proposal (dienstweg/actions/roles.py).
# The steering group sees the network's figures (no family): a second person confirms it too.
FOUR_EYES_ROLES = (*CASE_ROLES, Role.DPO, Role.NETWORK_DPO, Role.STEERING)
# A role change to one of these takes effect at once, without a proposal: it only takes
# rights away (a lead may do all a coach or a caseworker may, and more).
LOWER_ROLES: dict[str, frozenset[str]] = {
    Role.LEAD: frozenset({Role.COACH, Role.CASEWORKER}),
}


def has_admin_rights(user: User) -> bool:
    """Whether the account is an operator: it may open the admin (staff) or is superuser."""
    return bool(user.is_staff or user.is_superuser)


def is_raise(current: str | None, role: str) -> bool:
    """Whether going from role CURRENT (None: no membership) to ROLE needs a second person:
    ROLE is a case or dpo role and not a mere lowering of CURRENT."""
    if role not in FOUR_EYES_ROLES or role == current:
        return False
    return current is None or role not in LOWER_ROLES.get(current, frozenset())


def holds_four_eyes_role(user: User) -> bool:
    """Whether the user holds a case or dpo role, or is proposed for one (two queries at
    most). Such an account never gets admin rights."""
    if memberships_holding(user, *FOUR_EYES_ROLES).exists():
        return True
    return MembershipProposal.objects.filter(
        user=user, state=MembershipProposal.State.PENDING, role__in=FOUR_EYES_ROLES
    ).exists()


class _Proposed(Protocol):
    @property
    def proposed_at(self) -> datetime: ...


def proposal_deadline(proposal: _Proposed) -> datetime:
    """The moment a pending proposal expires unconfirmed."""
    return proposal.proposed_at + timedelta(days=settings.MEMBERSHIP_PROPOSAL_DAYS)


def is_expired(proposal: MembershipProposal, *, now: datetime | None = None) -> bool:
    return (now or timezone.now()) >= proposal_deadline(proposal)


def deciding_leads(proposal: MembershipProposal) -> QuerySet[User]:
    """The leads who decide the proposal: those of its agency, never the person proposed.
    Empty for the network's DPO role (two admins decide it) and for an agency without a
    lead of its own yet (its first lead: a second admin decides)."""
    if proposal.role == Role.NETWORK_DPO:
        return User.objects.none()
    return members_holding(Role.LEAD, agencies=proposal.agency_id).exclude(pk=proposal.user_id)


def needs_second_admin(proposal: MembershipProposal) -> bool:
    """Whether a second admin, rather than a lead of the agency, decides the proposal."""
    return not deciding_leads(proposal).filter(is_active=True).exists()


def proposals_awaiting(
    user: User, *, now: datetime | None = None, reach: Reach | None = None
) -> QuerySet[MembershipProposal]:
    """The pending, unexpired proposals this user decides as lead of their agency: never
    her own, never one for herself, never the network's DPO role. REACH, if the page has
    read her memberships already, names the agencies she leads."""
    led = agency_ids_of(user, (Role.LEAD,)) if reach is None else reach.agencies_holding(Role.LEAD)
    return proposals_awaiting_within(user.pk, proposals_open_since(now), led).select_related(
        "user", "agency", "proposed_by"
    )


def proposals_open_since(now: datetime | None = None) -> datetime:
    """Proposals made after this moment are still open (MEMBERSHIP_PROPOSAL_DAYS)."""
    return (now or timezone.now()) - timedelta(days=settings.MEMBERSHIP_PROPOSAL_DAYS)


def proposals_awaiting_within(
    user_id: int, since: datetime, led: list[int]
) -> QuerySet[MembershipProposal]:
    """proposals_awaiting by ids and moments alone (for a compiled query,
    dienstweg/compiled.py): the user's id, the moment before which proposals have
    expired, and the agencies she leads."""
    return (
        MembershipProposal.objects.filter(
            state=MembershipProposal.State.PENDING,
            proposed_at__gt=since,
            agency_id__in=led,
        )
        .exclude(role=Role.NETWORK_DPO)
        .exclude(user_id=user_id)
        .exclude(proposed_by_id=user_id)
        .order_by("proposed_at", "pk")
    )


def access_proposal_by_id(user: User, proposal_id: int) -> MembershipProposal:
    """One pending proposal the user decides as lead, or 404 (the same for missing,
    decided and someone else's)."""
    try:
        return proposals_awaiting(user).get(pk=proposal_id)
    except MembershipProposal.DoesNotExist:
        raise Http404 from None
