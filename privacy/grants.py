"""Grants of case and dpo roles, for the DPO (BSI ORP.4: four-eyes principle, separation of
duties): every confirmed proposal with who proposed and who confirmed it, marked where it is
unusual, and what has come about past the rules (an operator holding a case role, a role
that no second person confirmed). It reads the tables; the flags come from the trail."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from dienstweg.access import FOUR_EYES_ROLES
from dienstweg.models import Membership, MembershipProposal, User
from privacy.flags import is_outside_working_hours
from privacy.models import AccessFlag

Kind = AccessFlag.Kind
# How many accounts and roles each list of deviations shows; its count says if there are more.
DEVIATIONS_SHOWN = 50


def confirmed_grants() -> QuerySet[MembershipProposal]:
    """Every confirmed proposal, newest confirmation first (index proposal_decided)."""
    return (
        MembershipProposal.objects.filter(state=MembershipProposal.State.CONFIRMED)
        .select_related("user", "agency", "proposed_by", "decided_by")
        .order_by("-decided_at", "-pk")
    )


@dataclass(frozen=True)
class Mark:
    """Why a grant is unusual, with the flag to review if the hourly run has found one."""

    text: str
    flag_id: int | None = None


@dataclass
class GrantRow:
    """One confirmed grant on the console, with what makes it unusual."""

    grant: MembershipProposal
    marks: list[Mark] = field(default_factory=list)

    @property
    def unusual(self) -> bool:
        return bool(self.marks)


def _marks(grant: MembershipProposal, outside: bool, flags: list[AccessFlag]) -> list[Mark]:
    marks = []
    review = next((f.pk for f in flags if f.kind == Kind.GRANT_OUTSIDE_HOURS), None)
    if outside or review:
        marks.append(Mark(_("außerhalb der Arbeitszeit bestätigt"), review))
    for flag in flags:
        if flag.kind != Kind.MANY_GRANTS:
            continue
        person = grant.decided_by if flag.actor_id == grant.decided_by_id else grant.proposed_by
        name = person.full_name if person else f"user:{flag.actor_id}"
        marks.append(
            Mark(
                _("%(name)s: %(count)d Vergaben an diesem Tag")
                % {"name": name, "count": flag.event_count},
                flag.pk,
            )
        )
    return marks


def grant_rows(grants: list[MembershipProposal]) -> list[GrantRow]:
    """The page's grants with their marks: confirmed outside working hours (the flags'
    rule, at once), and the flags the hourly run found for the confirmer on the day of the
    confirmation or for the proposer on the day of the proposal (one query)."""
    confirmed: dict[int, tuple[int | None, date | None]] = {}
    proposed: dict[int, tuple[int | None, date]] = {}
    for grant in grants:
        decided = timezone.localdate(grant.decided_at) if grant.decided_at else None
        confirmed[grant.pk] = (grant.decided_by_id, decided)
        proposed[grant.pk] = (grant.proposed_by_id, timezone.localdate(grant.proposed_at))
    keys = {key for key in (*confirmed.values(), *proposed.values()) if key[0] and key[1]}
    found: dict[tuple[int, date], list[AccessFlag]] = defaultdict(list)
    if keys:
        stored = AccessFlag.objects.filter(
            kind__in=[Kind.MANY_GRANTS, Kind.GRANT_OUTSIDE_HOURS],
            actor_id__in={actor for actor, _day in keys},
            day__in={day for _actor, day in keys},
        ).order_by("pk")
        for flag in stored:
            found[(flag.actor_id, flag.day)].append(flag)
    rows = []
    for grant in grants:
        flags = list(found.get(confirmed[grant.pk], []))  # type: ignore[arg-type]
        flags += [
            flag
            for flag in found.get(proposed[grant.pk], [])  # type: ignore[arg-type]
            if flag.kind == Kind.MANY_GRANTS and flag not in flags
        ]
        outside = grant.decided_at is not None and is_outside_working_hours(grant.decided_at)
        rows.append(GrantRow(grant, _marks(grant, outside, flags)))
    return rows


def operators_with_case_roles() -> list[User]:
    """Accounts with admin rights that hold or are proposed for a case or dpo role: the
    actions and the admin refuse this, so each one came about past them (a shell, the
    database) or predates the rule."""
    held = Membership.objects.filter(user=OuterRef("pk"), role__in=FOUR_EYES_ROLES)
    proposed = MembershipProposal.objects.filter(
        user=OuterRef("pk"), state=MembershipProposal.State.PENDING, role__in=FOUR_EYES_ROLES
    )
    return list(
        User.objects.filter(Q(is_staff=True) | Q(is_superuser=True))
        .filter(Exists(held) | Exists(proposed))
        .order_by("full_name", "pk")[:DEVIATIONS_SHOWN]
    )


def roles_without_confirmation() -> tuple[int, list[Membership]]:
    """Case and dpo roles held that no second person confirmed: given by the platform
    itself (demo data, a command) or written past the actions. Their count and the first
    DEVIATIONS_SHOWN."""
    roles = Membership.objects.filter(role__in=FOUR_EYES_ROLES, granted_through__isnull=True)
    shown = list(
        roles.select_related("user", "agency").order_by("agency__name", "user__full_name", "pk")[
            :DEVIATIONS_SHOWN
        ]
    )
    return (len(shown) if len(shown) < DEVIATIONS_SHOWN else roles.count()), shown
