"""A referral's visibility is one rule (referrals.access.visible_through), asked five ways:
the lists (referrals_visible_to, inbox and outbox), the look-up by id
(access_referral_by_id), the socket's one-query check (referral_visible_to), the socket's
recipients (referral_readers) and the receiving agency's steps (receiver_sees). For every
state of a referral, with the consent current, expired or the family's processing
restricted, and for every role on both sides and outside, the five agree, and they say
what the design says:

- the sending project's case roles (coach, caseworker, lead) always see the referral;
- the receiving agency's case roles see it once it was delivered, until it is withdrawn,
  the consent is revoked or expires, and while the family's processing is not restricted;
- everybody else (the DPO and admin roles, a foreign agency) never."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from dienstweg import actions as core
from dienstweg.actions import restrict_processing
from dienstweg.models import Consent, DataCategory, Family, Membership, User
from referrals.access import (
    access_referral_by_id,
    agencies_seeing,
    inbox_of,
    outbox_of,
    receiver_sees,
    referral_readers,
    referral_visible_to,
    referrals_visible_to,
    with_receiver_rules,
)
from referrals.actions import steps as referral_steps
from referrals.models import Referral
from tests.builders import project_dpo
from tests.conftest import Network, make_staff

Role = Membership.Role

STATES = ("draft", "pending_approval", "sent", "accepted", "withdrawn", "consent_revoked")
CONDITIONS = ("current", "expired", "restricted")
# Delivered to the receiving agency and not taken back (by the sender or the consent).
RECEIVED = {"sent", "accepted"}


@dataclass
class Person:
    user: User
    side: str  # "sender", "receiver" or "outside": what the design lets her see


def people(network: Network) -> list[Person]:
    """Every role at the project (the sender), the Jobcenter (the receiver) and outside,
    and a caseworker of the Jobcenter who also coaches at the project."""
    staff = [Person(network.anna, "sender"), Person(network.ben, "receiver")]
    for agency, side in ((network.project, "sender"), (network.jobcenter, "receiver")):
        for role in Role.values:
            if (agency, role) in {(network.project, Role.COACH), (network.jobcenter, "caseworker")}:
                continue  # Anna and Ben
            user = make_staff(
                f"{role}@{agency.pk}.example.org", f"{role} {agency.pk}", agency, role
            )
            case_role = role in (Role.COACH, Role.CASEWORKER, Role.LEAD)
            staff.append(Person(user, side if case_role else "outside"))
    both = make_staff("beide@example.org", "Berta Beide", network.jobcenter, Role.CASEWORKER)
    core.add_membership(both, agency=network.project, role=Role.COACH, by=None)
    staff.append(Person(both, "sender"))
    staff += [Person(network.dirk, "outside"), Person(network.dora, "outside")]
    return staff


def referral_in(state: str, network: Network, family: Family, consent: Consent) -> Referral:
    """A referral of the family from the project to the Jobcenter, brought into STATE
    through the real actions."""
    jana = User.objects.get(email=f"lead@{network.jobcenter.pk}.example.org")
    statutory = state == "pending_approval"
    referral = referral_steps.refer_family(
        family,
        data=referral_steps.ReferralData(
            to_agency=network.jobcenter,
            need="Arbeitsvermittlung",
            summary="",
            categories=[DataCategory.IDENTITY, DataCategory.EMPLOYMENT],
            basis=Referral.Basis.STATUTORY if statutory else Referral.Basis.CONSENT,
            basis_reason="Leistungsbezug nach SGB II" if statutory else "",
        ),
        send=state != "draft",
        by=network.anna,
    )
    if state == "accepted":
        referral = referral_steps.assign_referral(referral, assignee=network.ben, by=jana)
        referral = referral_steps.accept_referral(referral, by=network.ben)
    if state == "withdrawn":
        referral = referral_steps.withdraw_referral(referral, by=network.anna)
    if state == "consent_revoked":
        core.revoke_consent(consent, note="Widerruf am Telefon", by=network.anna)
    return Referral.objects.get(pk=referral.pk)


def receiver_may_see(state: str, condition: str) -> bool:
    return state in RECEIVED and condition == "current"


@pytest.mark.parametrize("condition", CONDITIONS)
@pytest.mark.parametrize("state", STATES)
def test_lists_look_up_readers_and_steps_agree(
    network: Network, family: Family, consent: Consent, state: str, condition: str
) -> None:
    staff = people(network)
    referral = referral_in(state, network, family, consent)
    if condition == "expired":
        yesterday = timezone.localdate() - timedelta(days=1)
        Referral.objects.filter(pk=referral.pk).update(access_until=yesterday)
    if condition == "restricted":
        restrict_processing(family, reason="Widerspruch der Familie", by=project_dpo(network))
    referral = Referral.objects.get(pk=referral.pk)
    readers = referral_readers(referral)

    for person in staff:
        user = person.user
        expected = person.side == "sender" or (
            person.side == "receiver" and receiver_may_see(state, condition)
        )
        listed = referrals_visible_to(user).filter(pk=referral.pk).exists()
        in_a_box = referral in inbox_of(user) or referral in outbox_of(user)
        try:
            access_referral_by_id(user, referral.pk)
            opened = True
        except Http404:
            opened = False
        told = user.pk in readers
        checked = referral_visible_to(user, referral.pk)
        seen = (listed, in_a_box, opened, told, checked)
        assert seen == (expected,) * 5, f"{user.email} ({person.side}): {seen}"

    # The receiving agency's steps ask the same rule, loaded with the row or asked apart.
    expected = receiver_may_see(state, condition)
    annotated = with_receiver_rules(Referral.objects.all()).get(pk=referral.pk)
    assert receiver_sees(annotated) is expected
    assert receiver_sees(referral) is expected
    assert (network.jobcenter.pk in agencies_seeing(referral).values_list("pk", flat=True)) is (
        expected
    )
    assert network.project.pk in agencies_seeing(referral).values_list("pk", flat=True)
