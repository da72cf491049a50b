"""The referral's state machine (referrals/actions/transitions.py): a step it refuses leaves
state, timeline and trail as they were; every step records its audit event, naming the
family, and one entry on the referral's timeline.

Who does what here: Anna (coach at the project) sends; Jana (lead at the Jobcenter,
tests/referrals/conftest.py) assigns; Ben (caseworker at the Jobcenter) is the assignee;
Lena (a second lead of the project, tests/referrals/conftest.py) approves referrals on a
legal basis; Clara (lead at the Jugendamt) receives child-protection referrals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dienstweg.actions import ActionError
from dienstweg.models import User
from referrals.actions import steps as referral_steps
from referrals.models import Referral, ReferralEvent
from tests.conftest import verified_client
from tests.referrals.helpers import (
    OUTCOME,
    REASON,
    assigned,
    child_protection,
    detail,
    refer,
    referral_audit,
    step,
    unchanged,
)

# Steps the state machine refuses


def test_completing_a_declined_referral_is_refused(network, family, consent, jana):
    referral = referral_steps.decline_referral(
        assigned(network, family, jana), reason=REASON, by=network.ben
    )
    check = unchanged(referral)

    with pytest.raises(ActionError, match="Nicht möglich: Die Vermittlung ist bereits „abgelehnt“"):
        referral_steps.complete_referral(referral, outcome=OUTCOME, by=network.ben)

    check()
    assert referral.decrypt_field("outcome") == ""


def test_accepting_twice_is_refused_with_a_clear_message(network, family, consent, jana):
    referral = assigned(network, family, jana)
    ben = verified_client(network.ben)
    assert step(ben, "referral_accept", referral) == ["Angenommen."]
    check = unchanged(referral)

    messages = step(ben, "referral_accept", referral)

    assert messages == ["Nicht möglich: Die Vermittlung ist bereits „angenommen“."]
    check()
    assert ReferralEvent.objects.filter(referral=referral, verb="accepted").count() == 1


@pytest.mark.parametrize("who", ["jana", "anna", "dirk"])
def test_only_the_assignee_accepts(network, family, consent, jana, who):
    referral = assigned(network, family, jana)
    check = unchanged(referral)
    user = jana if who == "jana" else getattr(network, who)

    with pytest.raises(ActionError, match="nicht berechtigt"):
        referral_steps.accept_referral(referral, by=user)

    check()
    assert referral.state == Referral.State.SENT


def test_receiving_caseworker_cannot_accept_an_unassigned_referral(network, family, consent):
    referral = refer(network, family)
    check = unchanged(referral)

    messages = step(verified_client(network.ben), "referral_accept", referral)

    assert messages == ["Dazu sind Sie bei dieser Vermittlung nicht berechtigt."]
    check()


def test_approving_ones_own_legal_basis_referral_is_refused(network, family, lena):
    referral = child_protection(network, family, by=lena)
    check = unchanged(referral)

    messages = step(verified_client(lena), "referral_approve", referral)

    assert messages == ["Dazu sind Sie bei dieser Vermittlung nicht berechtigt."]
    check()
    assert referral.state == Referral.State.PENDING_APPROVAL
    assert referral.approved_by is None


def test_a_coach_cannot_approve(network, family, lena):
    referral = child_protection(network, family, by=lena)
    check = unchanged(referral)

    with pytest.raises(ActionError, match="nicht berechtigt"):
        referral_steps.approve_referral(referral, by=network.anna)

    check()


# Audit trail and timeline


def _draft(ctx: dict[str, Any]) -> tuple[Referral, User]:
    return refer(ctx["network"], ctx["family"], send=False), ctx["network"].anna


def _send(ctx: dict[str, Any]) -> tuple[Referral, User]:
    return refer(ctx["network"], ctx["family"]), ctx["network"].anna


def _submit(ctx: dict[str, Any]) -> tuple[Referral, User]:
    return child_protection(ctx["network"], ctx["family"], by=ctx["network"].anna), ctx[
        "network"
    ].anna


def _approve(ctx: dict[str, Any]) -> tuple[Referral, User]:
    referral, _anna = _submit(ctx)
    return referral_steps.approve_referral(referral, by=ctx["lena"]), ctx["lena"]


def _refuse(ctx: dict[str, Any]) -> tuple[Referral, User]:
    referral, _anna = _submit(ctx)
    return referral_steps.refuse_referral(referral, note="nein", by=ctx["lena"]), ctx["lena"]


def _assign(ctx: dict[str, Any]) -> tuple[Referral, User]:
    return assigned(ctx["network"], ctx["family"], ctx["jana"]), ctx["jana"]


def _accept(ctx: dict[str, Any]) -> tuple[Referral, User]:
    referral, _jana = _assign(ctx)
    ben = ctx["network"].ben
    return referral_steps.accept_referral(referral, by=ben), ben


def _decline(ctx: dict[str, Any]) -> tuple[Referral, User]:
    referral, _jana = _assign(ctx)
    ben = ctx["network"].ben
    return referral_steps.decline_referral(referral, reason=REASON, by=ben), ben


def _complete(ctx: dict[str, Any]) -> tuple[Referral, User]:
    referral, ben = _accept(ctx)
    return referral_steps.complete_referral(referral, outcome=OUTCOME, by=ben), ben


def _withdraw(ctx: dict[str, Any]) -> tuple[Referral, User]:
    referral, anna = _send(ctx)
    return referral_steps.withdraw_referral(referral, by=anna), anna


STEPS: dict[str, tuple[Callable[[dict[str, Any]], tuple[Referral, User]], str]] = {
    # audit action: (how to get there, the side whose agency the event names)
    "drafted": (_draft, "project"),
    "sent": (_send, "project"),
    "delivered": (_send, "project"),
    "submitted": (_submit, "project"),
    "approved": (_approve, "project"),
    "refused": (_refuse, "project"),
    "assigned": (_assign, "to_agency"),
    "accepted": (_accept, "to_agency"),
    "declined": (_decline, "to_agency"),
    "completed": (_complete, "to_agency"),
    "withdrawn": (_withdraw, "project"),
}


@pytest.mark.parametrize("verb", list(STEPS))
def test_every_step_records_its_audit_event_with_the_family(
    network, family, consent, jana, lena, verb
):
    run, side = STEPS[verb]

    referral, actor = run({"network": network, "family": family, "jana": jana, "lena": lena})

    (event,) = referral_audit(f"referral.{verb}")
    assert event.actor_id == actor.pk
    assert event.family_id == str(family.pk)
    assert event.family_ref == family.reference
    assert (event.target_type, event.target_id) == ("referrals.referral", str(referral.pk))
    expected_agency = network.project if side == "project" else referral.to_agency
    assert event.agency_id == expected_agency.pk
    assert event.purpose.startswith("Vermittlung:") or verb == "drafted"


def test_timeline_has_one_event_per_step(network, family, consent, jana):
    referral = referral_steps.complete_referral(
        referral_steps.accept_referral(assigned(network, family, jana), by=network.ben),
        outcome=OUTCOME,
        by=network.ben,
    )

    assert list(referral.events.values_list("verb", "state")) == [
        ("drafted", "draft"),
        ("sent", "sent"),
        ("assigned", "sent"),
        ("accepted", "accepted"),
        ("completed", "completed"),
    ]
    # The trail has the same steps, one each (plus the delivery of the snapshot).
    assert [e.action for e in referral_audit()] == [
        "referral.drafted",
        "referral.sent",
        "referral.delivered",
        "referral.assigned",
        "referral.accepted",
        "referral.completed",
    ]
    timeline = verified_client(network.ben).get(detail(referral)).context["events"]
    assert [event.verb for event in timeline] == [
        "drafted",
        "sent",
        "assigned",
        "accepted",
        "completed",
    ]


def test_legal_basis_timeline_has_one_event_per_step(network, family, lena):
    referral = referral_steps.approve_referral(
        child_protection(network, family, by=network.anna), by=lena
    )

    assert list(referral.events.values_list("verb", "state", "by")) == [
        ("drafted", "draft", network.anna.pk),
        ("submitted", "pending_approval", network.anna.pk),
        ("approved", "sent", lena.pk),
    ]
