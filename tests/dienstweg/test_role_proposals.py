"""A case role takes two people: an admin proposes, a lead of the agency confirms on her start
page (an agency's first lead and the network's DPO: a second admin, in the admin). A proposal
grants nothing until then; nobody decides her own proposal or one for herself; refusal and
expiry leave nothing; lowering a role takes effect at once.

- Ada, Otto: platform operators (superusers). Ada proposes; Otto is the second admin.
- Pia, Paul: new accounts without any role.
- Clara: lead at the Jugendamt, so she decides proposals there. The project (Anna, coach)
  and the Jobcenter (Ben, caseworker) have no lead in tests/conftest.py."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from dienstweg import actions
from dienstweg.access import (
    agency_ids_of,
    needs_second_admin,
    proposals_awaiting,
    reach_of,
    roles_of,
)
from dienstweg.models import Membership, MembershipProposal, Notification, User
from tests.conftest import PASSWORD, Network, make_staff, verified_client

Role = Membership.Role
State = MembershipProposal.State
PROPOSALS = "/admin/dienstweg/membershipproposal/"


@pytest.fixture
def ada(db: None) -> User:
    return User.objects.create_superuser("ada@example.org", PASSWORD, full_name="Ada Admin")


@pytest.fixture
def otto(db: None) -> User:
    return User.objects.create_superuser("otto@example.org", PASSWORD, full_name="Otto Ott")


@pytest.fixture
def pia(db: None) -> User:
    return User.objects.create_user("pia@example.org", PASSWORD, full_name="Pia Pohl")


@pytest.fixture
def paul(db: None) -> User:
    return User.objects.create_user("paul@example.org", PASSWORD, full_name="Paul Peters")


def propose(user: User, agency: Any, role: str, by: User, **kwargs: Any) -> MembershipProposal:
    return actions.propose_membership(user, agency=agency, role=role, by=by, **kwargs)


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# Proposing grants nothing


def test_a_proposal_grants_nothing(network: Network, ada: User, pia: User) -> None:
    proposal = propose(pia, network.jugendamt, Role.CASEWORKER, ada)
    assert proposal.state == State.PENDING
    assert not Membership.objects.filter(user=pia).exists()
    assert not pia.groups.exists()
    assert roles_of(pia) == frozenset()
    assert agency_ids_of(pia) == []
    assert reach_of(pia).group_ids == []
    [event] = events("membership.proposed")
    assert event.actor_id == ada.pk
    assert event.details == {"proposal": proposal.pk, "user": pia.pk, "role": "caseworker"}


def test_the_agencys_lead_is_notified_and_sees_it_on_her_start_page(
    network: Network, ada: User, pia: User
) -> None:
    proposal = propose(pia, network.jugendamt, Role.CASEWORKER, ada)
    [notice] = Notification.objects.filter(user=network.clara)
    assert notice.kind == "membership.proposed" and notice.url == "/"
    page = verified_client(network.clara).get("/").content.decode()
    assert "Pia Pohl als Fallbearbeitung" in page
    assert f'action="/rollen/{proposal.pk}/bestaetigen/"' in page
    assert f'action="/rollen/{proposal.pk}/ablehnen/"' in page
    # Nobody else's start page shows it: not the coach, not the DPO of the same agency.
    for other in (network.anna, network.dora, network.ben):
        assert "Pia Pohl" not in verified_client(other).get("/").content.decode()


def test_the_start_page_costs_the_same_however_many_proposals_wait(
    network: Network, ada: User
) -> None:
    clara = verified_client(network.clara)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert clara.get("/").status_code == 200
        return len(captured)

    people = [
        User.objects.create_user(f"p{n}@example.org", PASSWORD, full_name=f"P{n}") for n in range(4)
    ]
    propose(people[0], network.jugendamt, Role.CASEWORKER, ada)
    queries()  # the session's first request of the test writes its activity
    one = queries()
    for person in people[1:]:
        propose(person, network.jugendamt, Role.COACH, ada)
    assert queries() == one


def test_one_open_proposal_per_person_and_agency(network: Network, ada: User, pia: User) -> None:
    propose(pia, network.jugendamt, Role.CASEWORKER, ada)
    with pytest.raises(actions.ActionError, match="offener Vorschlag"):
        propose(pia, network.jugendamt, Role.LEAD, ada)
    assert MembershipProposal.objects.count() == 1


def test_only_admins_propose(network: Network, pia: User) -> None:
    with pytest.raises(actions.NotAllowed, match="Administratorinnen"):
        propose(pia, network.jugendamt, Role.CASEWORKER, network.clara)
    assert not MembershipProposal.objects.exists()


# The lead confirms


def test_the_lead_confirms_and_the_role_takes_effect(
    network: Network, ada: User, pia: User
) -> None:
    proposal = propose(pia, network.jugendamt, Role.CASEWORKER, ada)
    response = verified_client(network.clara).post(f"/rollen/{proposal.pk}/bestaetigen/")
    assert response.status_code == 302
    proposal.refresh_from_db()
    assert (proposal.state, proposal.decided_by) == (State.CONFIRMED, network.clara)
    membership = Membership.objects.get(user=pia, agency=network.jugendamt)
    assert membership.role == Role.CASEWORKER
    assert membership.granted_through == proposal
    assert pia.groups.filter(pk=network.jugendamt.group_id).exists()
    assert roles_of(pia) == {(network.jugendamt.pk, Role.CASEWORKER)}
    [confirmed] = events("membership.proposal_confirmed")
    assert confirmed.actor_id == network.clara.pk
    assert confirmed.details == {
        "proposal": proposal.pk,
        "user": pia.pk,
        "role": "caseworker",
        "proposed_by": ada.pk,
        "second_admin": False,
    }
    [granted] = [e for e in events("membership.granted") if e.details["user"] == pia.pk]
    assert granted.details["proposal"] == proposal.pk
    assert Notification.objects.filter(user=pia, kind="membership.confirmed").exists()
    # The proposal has left her queue.
    assert not proposals_awaiting(network.clara).exists()


def test_nobody_confirms_her_own_proposal(network: Network, ada: User, paul: User) -> None:
    # The project has no lead: a second admin decides. The proposing admin is no second.
    proposal = propose(paul, network.project, Role.LEAD, ada)
    with pytest.raises(actions.NotAllowed, match="eigenen Vorschlag"):
        actions.confirm_proposal(proposal, by=ada)
    with pytest.raises(actions.NotAllowed, match="eigenen Vorschlag"):
        actions.refuse_proposal(proposal, by=ada)
    proposal.refresh_from_db()
    assert proposal.state == State.PENDING
    assert not Membership.objects.filter(user=paul).exists()


def test_nobody_confirms_a_proposal_for_herself(network: Network, ada: User) -> None:
    # Clara, lead at the Jugendamt, proposed for its DPO role: she cannot decide it.
    proposal = propose(network.clara, network.jugendamt, Role.DPO, ada)
    with pytest.raises(actions.NotAllowed, match="für sich selbst"):
        actions.confirm_proposal(proposal, by=network.clara)
    assert Membership.objects.get(user=network.clara).role == Role.LEAD
    # Nor on her start page, where it does not even show.
    clara = verified_client(network.clara)
    assert "als Datenschutzbeauftragte/r" not in clara.get("/").content.decode()
    assert clara.post(f"/rollen/{proposal.pk}/bestaetigen/").status_code == 404
    proposal.refresh_from_db()
    assert proposal.state == State.PENDING


def test_a_lead_of_another_agency_cannot_confirm(network: Network, ada: User, pia: User) -> None:
    make_staff("jana@example.org", "Jana Jansen", network.jobcenter, Role.LEAD)
    proposal = propose(pia, network.jobcenter, Role.CASEWORKER, ada)
    with pytest.raises(actions.NotAllowed, match="Leitung der Einrichtung"):
        actions.confirm_proposal(proposal, by=network.clara)
    clara = verified_client(network.clara)
    assert clara.post(f"/rollen/{proposal.pk}/bestaetigen/").status_code == 404
    assert clara.post(f"/rollen/{proposal.pk}/ablehnen/").status_code == 404
    proposal.refresh_from_db()
    assert proposal.state == State.PENDING
    assert not Membership.objects.filter(user=pia).exists()


def test_where_a_lead_decides_an_admin_cannot(
    network: Network, ada: User, otto: User, pia: User
) -> None:
    proposal = propose(pia, network.jugendamt, Role.CASEWORKER, ada)
    assert not needs_second_admin(proposal)
    with pytest.raises(actions.NotAllowed, match="Leitung der Einrichtung"):
        actions.confirm_proposal(proposal, by=otto)
    # Nor a colleague of the agency without the lead role.
    with pytest.raises(actions.NotAllowed, match="Leitung der Einrichtung"):
        actions.confirm_proposal(proposal, by=network.dora)


# The first lead of an agency, and the network's DPO: a second admin


def test_an_agencys_first_lead_needs_a_second_admin(
    network: Network, ada: User, otto: User, paul: User, pia: User
) -> None:
    proposal = propose(paul, network.project, Role.LEAD, ada)
    assert needs_second_admin(proposal)
    # Neither a lead elsewhere nor the project's own coach decides it.
    for who in (network.clara, network.anna):
        with pytest.raises(actions.NotAllowed, match="zweite Administratorin"):
            actions.confirm_proposal(proposal, by=who)
    actions.confirm_proposal(proposal, by=otto)
    assert roles_of(paul) == {(network.project.pk, Role.LEAD)}
    [event] = events("membership.proposal_confirmed")
    assert (event.actor_id, event.details["second_admin"]) == (otto.pk, True)
    # From now on the project's lead decides, and a second admin no longer may.
    later = propose(pia, network.project, Role.COACH, ada)
    assert not needs_second_admin(later)
    with pytest.raises(actions.NotAllowed, match="Leitung der Einrichtung"):
        actions.confirm_proposal(later, by=otto)
    actions.confirm_proposal(later, by=paul)
    assert roles_of(pia) == {(network.project.pk, Role.COACH)}


def test_a_deactivated_lead_does_not_count(
    network: Network, ada: User, otto: User, pia: User
) -> None:
    actions.deactivate_staff(network.clara, by=None)
    proposal = propose(pia, network.jugendamt, Role.CASEWORKER, ada)
    assert needs_second_admin(proposal)
    actions.confirm_proposal(proposal, by=otto)
    assert roles_of(pia) == {(network.jugendamt.pk, Role.CASEWORKER)}


def test_the_network_dpo_needs_a_second_admin_never_a_lead(
    network: Network, ada: User, otto: User, pia: User
) -> None:
    proposal = propose(pia, network.jugendamt, Role.NETWORK_DPO, ada)
    assert needs_second_admin(proposal)  # although the Jugendamt has a lead
    assert not proposals_awaiting(network.clara).exists()
    with pytest.raises(actions.NotAllowed, match="des Verbunds"):
        actions.confirm_proposal(proposal, by=network.clara)
    with pytest.raises(actions.NotAllowed, match="eigenen Vorschlag"):
        actions.confirm_proposal(proposal, by=ada)
    assert not Membership.objects.filter(user=pia).exists()
    actions.confirm_proposal(proposal, by=otto)
    assert roles_of(pia) == {(network.jugendamt.pk, Role.NETWORK_DPO)}


def test_the_second_admin_confirms_in_the_admin(
    network: Network, ada: User, otto: User, paul: User, pia: User
) -> None:
    first_lead = propose(paul, network.project, Role.LEAD, ada)
    for_clara = propose(pia, network.jugendamt, Role.CASEWORKER, ada)
    response = verified_client(otto).post(
        PROPOSALS,
        {"action": "confirm", "_selected_action": [first_lead.pk, for_clara.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "1 Vorschlag bestätigt." in page
    assert "Diesen Vorschlag bestätigt die Leitung der Einrichtung." in page
    assert roles_of(paul) == {(network.project.pk, Role.LEAD)}
    assert not Membership.objects.filter(user=pia).exists()


def test_the_proposing_admin_cannot_confirm_in_the_admin(
    network: Network, ada: User, paul: User
) -> None:
    proposal = propose(paul, network.project, Role.LEAD, ada)
    response = verified_client(ada).post(
        PROPOSALS, {"action": "confirm", "_selected_action": [proposal.pk]}, follow=True
    )
    assert "Den eigenen Vorschlag bestätigt eine zweite Person." in response.content.decode()
    proposal.refresh_from_db()
    assert proposal.state == State.PENDING


def test_an_admin_proposes_in_the_admin(network: Network, ada: User, pia: User) -> None:
    response = verified_client(ada).post(
        f"{PROPOSALS}add/",
        {"user": pia.pk, "agency": network.jugendamt.pk, "role": Role.CASEWORKER},
    )
    assert response.status_code == 302
    proposal = MembershipProposal.objects.get()
    assert (proposal.user, proposal.proposed_by, proposal.state) == (pia, ada, State.PENDING)
    assert not Membership.objects.filter(user=pia).exists()


# Refusal, withdrawal, expiry: nothing is granted


def test_refusal_leaves_nothing(network: Network, ada: User, pia: User) -> None:
    proposal = propose(pia, network.jugendamt, Role.CASEWORKER, ada)
    response = verified_client(network.clara).post(f"/rollen/{proposal.pk}/ablehnen/")
    assert response.status_code == 302
    proposal.refresh_from_db()
    assert (proposal.state, proposal.decided_by) == (State.REFUSED, network.clara)
    assert not Membership.objects.filter(user=pia).exists()
    assert not pia.groups.exists()
    [event] = events("membership.proposal_refused")
    assert event.details == {"proposal": proposal.pk, "user": pia.pk, "role": "caseworker"}
    # Decided once: a second click from another tab changes nothing.
    with pytest.raises(actions.ActionError, match="schon entschieden"):
        actions.confirm_proposal(proposal, by=network.clara)
    assert not Membership.objects.filter(user=pia).exists()


def test_an_admin_withdraws_a_proposal(network: Network, ada: User, otto: User, pia: User) -> None:
    proposal = propose(pia, network.jugendamt, Role.CASEWORKER, ada)
    actions.withdraw_proposal(proposal, by=otto)
    proposal.refresh_from_db()
    assert proposal.state == State.WITHDRAWN
    assert events("membership.proposal_withdrawn")[0].actor_id == otto.pk
    with pytest.raises(actions.NotAllowed):
        actions.withdraw_proposal(proposal, by=network.clara)


def test_a_stale_proposal_expires(network: Network, ada: User, pia: User) -> None:
    now = timezone.now()
    days = settings.MEMBERSHIP_PROPOSAL_DAYS
    proposal = propose(pia, network.jugendamt, Role.CASEWORKER, ada, now=now)
    later = now + timedelta(days=days)
    # Still open a moment before the deadline, gone at it.
    assert proposals_awaiting(network.clara, now=later - timedelta(seconds=1)).exists()
    assert not proposals_awaiting(network.clara, now=later).exists()
    with pytest.raises(actions.ActionError, match="abgelaufen"):
        actions.confirm_proposal(proposal, by=network.clara, now=later)
    assert actions.expire_proposals(now=later - timedelta(seconds=1)) == 0
    assert actions.expire_proposals(now=later) == 1
    proposal.refresh_from_db()
    assert proposal.state == State.EXPIRED
    assert events("membership.proposal_expired")[0].actor_label == "system:proposals"
    assert not Membership.objects.filter(user=pia).exists()
    # The admin may propose again.
    propose(pia, network.jugendamt, Role.CASEWORKER, ada, now=later)


def test_proposing_again_lets_an_overdue_proposal_expire(
    network: Network, ada: User, pia: User
) -> None:
    now = timezone.now()
    old = propose(pia, network.jugendamt, Role.CASEWORKER, ada, now=now)
    later = now + timedelta(days=settings.MEMBERSHIP_PROPOSAL_DAYS, hours=1)
    new = propose(pia, network.jugendamt, Role.COACH, ada, now=later)
    old.refresh_from_db()
    assert (old.state, new.state) == (State.EXPIRED, State.PENDING)


# Changing a role


def test_a_higher_role_is_a_proposal_too(network: Network, ada: User) -> None:
    with pytest.raises(actions.NotAllowed, match="Vier-Augen-Prinzip"):
        actions.add_membership(network.ben, agency=network.jobcenter, role=Role.LEAD, by=ada)
    proposal = propose(network.ben, network.jobcenter, Role.LEAD, ada)
    assert roles_of(network.ben) == {(network.jobcenter.pk, Role.CASEWORKER)}
    assert needs_second_admin(proposal)  # the Jobcenter has no lead yet


def test_a_lower_role_takes_effect_at_once(network: Network, ada: User, pia: User) -> None:
    proposal = propose(pia, network.jugendamt, Role.LEAD, ada)
    actions.confirm_proposal(proposal, by=network.clara)
    actions.add_membership(pia, agency=network.jugendamt, role=Role.CASEWORKER, by=ada)
    membership = Membership.objects.get(user=pia)
    assert membership.role == Role.CASEWORKER
    assert membership.granted_through == proposal  # the confirmation still covers it
    with pytest.raises(actions.ActionError, match="niedrigere Rolle"):
        propose(network.clara, network.jugendamt, Role.COACH, ada)


def test_removing_a_role_takes_effect_at_once(network: Network, ada: User) -> None:
    membership = Membership.objects.get(user=network.anna)
    actions.remove_membership(membership, by=ada)
    assert roles_of(network.anna) == frozenset()


def test_admin_rights_given_after_the_proposal_stop_the_confirmation(
    network: Network, ada: User, pia: User
) -> None:
    proposal = propose(pia, network.jugendamt, Role.CASEWORKER, ada)
    # Past the actions (set_admin_rights refuses it): a plain save, as a shell would.
    User.objects.filter(pk=pia.pk).update(is_staff=True)
    with pytest.raises(actions.NotAllowed, match="Verwaltungsrechten"):
        actions.confirm_proposal(proposal, by=network.clara)
    assert not Membership.objects.filter(user=pia).exists()


def test_the_expiry_command_reports_what_it_expired(network: Network, ada: User, pia: User) -> None:
    long_ago = timezone.now() - timedelta(days=settings.MEMBERSHIP_PROPOSAL_DAYS + 1)
    propose(pia, network.jugendamt, Role.CASEWORKER, ada, now=long_ago)
    out = StringIO()
    call_command("expire_proposals", stdout=out)
    assert out.getvalue().startswith("1 Rollenvorschlag")
    assert MembershipProposal.objects.get().state == State.EXPIRED
