"""The referral's state machine: which step each user may take in which state, and
transition(), the only way a referral's state changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.trail import record
from dienstweg import worklist
from dienstweg.access import CASE_ROLES, holds_role, roles_of
from dienstweg.actions import ActionError
from dienstweg.locks import lock_family_row
from dienstweg.models import Membership, User
from referrals.access import (
    REFERRING_ROLES,
    receiver_sees,
    referral_readers,
    with_receiver_rules,
)
from referrals.audit_actions import (
    REFERRAL_ACCEPTED,
    REFERRAL_APPROVED,
    REFERRAL_ASSIGNED,
    REFERRAL_COMPLETED,
    REFERRAL_DECLINED,
    REFERRAL_REFUSED,
    REFERRAL_SENT,
    REFERRAL_SUBMITTED,
    REFERRAL_WITHDRAWN,
)
from referrals.models import Referral, ReferralEvent

State = Referral.State
Basis = Referral.Basis


# The legal basis of each kind of referral, as the audit trail names it.
BASIS_PURPOSE = {
    Basis.CONSENT: "Vermittlung: Einwilligung (Art. 6 Abs. 1 lit. a DSGVO, § 67b SGB X)",
    Basis.CHILD_PROTECTION: "Vermittlung: Kinderschutz (§ 8a SGB VIII, § 4 KKG)",
    Basis.STATUTORY: "Vermittlung: Übermittlungsbefugnis (§ 69 SGB X)",
}


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
    event: str  # the timeline's verb (ReferralEvent.Verb)
    action: str  # the audit action (referrals.audit_actions)

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


def _receiving_lead(user: User, referral: Referral, roles: Roles) -> bool:
    return receiver_sees(referral) and _holds(roles, referral.to_agency_id, (Membership.Role.LEAD,))


def _assignee(user: User, referral: Referral, roles: Roles) -> bool:
    return (
        receiver_sees(referral)
        and referral.assignee_id == user.pk
        and _holds(roles, referral.to_agency_id, CASE_ROLES)
        and user.has_perm("referrals.change_referral", referral)
    )


def _acceptor(user: User, referral: Referral, roles: Roles) -> bool:
    # The assignee, or a lead of the receiving agency while nobody is assigned: she
    # accepts and becomes the assignee in one step (accept_referral).
    if referral.assignee_id is None:
        return _receiving_lead(user, referral, roles)
    return _assignee(user, referral, roles)


RULES: dict[str, Rule] = {
    "send": Rule(frozenset({State.DRAFT}), State.SENT, _sender, "sent", REFERRAL_SENT),
    "submit": Rule(
        frozenset({State.DRAFT}), State.PENDING_APPROVAL, _sender, "submitted", REFERRAL_SUBMITTED
    ),
    "approve": Rule(
        frozenset({State.PENDING_APPROVAL}), State.SENT, _approver, "approved", REFERRAL_APPROVED
    ),
    "refuse": Rule(
        frozenset({State.PENDING_APPROVAL}), State.REFUSED, _approver, "refused", REFERRAL_REFUSED
    ),
    "withdraw": Rule(
        frozenset({State.DRAFT, State.PENDING_APPROVAL, State.SENT}),
        State.WITHDRAWN,
        _sender,
        "withdrawn",
        REFERRAL_WITHDRAWN,
    ),
    "assign": Rule(
        frozenset({State.SENT, State.ACCEPTED}),
        None,
        _receiving_lead,
        "assigned",
        REFERRAL_ASSIGNED,
    ),
    "accept": Rule(
        frozenset({State.SENT}), State.ACCEPTED, _acceptor, "accepted", REFERRAL_ACCEPTED
    ),
    "decline": Rule(
        frozenset({State.SENT}), State.DECLINED, _assignee, "declined", REFERRAL_DECLINED
    ),
    "complete": Rule(
        frozenset({State.ACCEPTED}), State.COMPLETED, _assignee, "completed", REFERRAL_COMPLETED
    ),
}


def refusal(referral: Referral, verb: str, *, allowed: bool = True) -> str:
    """Why VERB is refused: not the user's step, or not in the referral's state."""
    if not allowed or referral.state in RULES[verb].sources:
        return _("Dazu sind Sie bei dieser Vermittlung nicht berechtigt.")
    return _("Nicht möglich: Die Vermittlung ist bereits „%(state)s“.") % {
        "state": State(referral.state).label
    }


def lock_referral(referral: Referral) -> Referral | None:
    """Lock the referral's family row, then the referral's (the lock order of
    dienstweg.locks), and return the referral as locked, with what the rules read; None if
    it was deleted meanwhile (an erasure that held the family row first)."""
    lock_family_row(referral.family_id)
    return (
        with_receiver_rules(
            Referral.objects.select_for_update(of=("self",)).select_related(
                "family__data_key", "family__owner", "to_agency"
            )
        )
        .filter(pk=referral.pk)
        .first()
    )


def transition(
    referral: Referral,
    verb: str,
    *,
    by: User,
    details: dict[str, Any] | None = None,
    change: Callable[[Referral], None] | None = None,
) -> Referral:
    """Move the referral by VERB, the only way its state changes: lock the family row,
    then the referral's (dienstweg.locks), check the actor and the current state, apply
    CHANGE to the locked row, save, and record the step (timeline and audit). Refuses with
    ActionError and changes nothing when the step is not allowed now, e.g. a second
    "accept" from another tab, which waits for the lock and then finds the referral
    accepted, or a referral erased meanwhile. DETAILS are read after CHANGE has run, which
    may add what it found in the locked row."""
    rule = RULES[verb]
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("transition() must run inside a transaction")
    locked = lock_referral(referral)
    if locked is None:
        raise ActionError(_("Diese Vermittlung gibt es nicht mehr."))
    allowed = rule.allowed(by, locked, roles_in(by, locked))
    if not allowed or locked.state not in rule.sources:
        raise ActionError(refusal(locked, verb, allowed=allowed))
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
        rule.action,
        target=locked,
        family=locked.family,
        agency_id=side_agency,
        purpose=BASIS_PURPOSE[Basis(locked.basis)],
        details={"state": locked.state, **(details or {})},
    )
    # Both sides' start pages and badges (a lead's unassigned, a coach's answers) recount.
    worklist.counts_changed(referral_readers(locked))
    return locked
