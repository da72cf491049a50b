"""Operators and case staff are different people: an account with admin rights (staff or
superuser) never holds a case or dpo role, and an account that holds or is proposed for one
never gets admin rights. The actions refuse it whoever calls them; the admin's forms show
the refusal and save nothing.

- Ada, Otto: platform operators (superusers), no role anywhere.
- Anna (coach), Dora (dpo), Clara (lead) and the others: tests/conftest.py."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from dienstweg import actions
from dienstweg.access import FOUR_EYES_ROLES, roles_of
from dienstweg.models import Membership, MembershipProposal, User
from tests.conftest import PASSWORD, Network, verified_client
from tests.dienstweg.test_deactivation import change_form_data

Role = Membership.Role
MEMBERSHIP_ADD = "/admin/dienstweg/membership/add/"
USERS = "/admin/dienstweg/user/"


@pytest.fixture
def ada(db: None) -> User:
    return User.objects.create_superuser("ada@example.org", PASSWORD, full_name="Ada Admin")


@pytest.fixture
def otto(db: None) -> User:
    return User.objects.create_superuser("otto@example.org", PASSWORD, full_name="Otto Ott")


@pytest.fixture
def ada_client(ada: User) -> Client:
    return verified_client(ada)


def errors_of(response: Any) -> str:
    form = response.context["adminform"].form
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


# Self-grant: the admin adds himself a case role (issue 13: Tom, coach, reads a family)


def test_an_admin_cannot_grant_himself_a_case_role_in_the_action(
    network: Network, family: Any, ada: User
) -> None:
    with pytest.raises(actions.NotAllowed, match="Niemand vergibt sich selbst"):
        actions.add_membership(ada, agency=network.project, role=Role.COACH, by=ada)
    with pytest.raises(actions.NotAllowed, match="schlägt sich selbst"):
        actions.propose_membership(ada, agency=network.project, role=Role.COACH, by=ada)
    assert roles_of(ada) == frozenset()
    assert not MembershipProposal.objects.exists()
    assert not ada.groups.exists()
    assert verified_client(ada).get(f"/familien/{family.pk}/").status_code == 404


def test_an_admin_cannot_grant_himself_a_case_role_on_the_admin_page(
    network: Network, family: Any, ada: User, ada_client: Client
) -> None:
    response = ada_client.post(
        MEMBERSHIP_ADD, {"user": ada.pk, "agency": network.project.pk, "role": Role.COACH}
    )
    assert response.status_code == 200  # the form again, with its error
    assert "Niemand vergibt sich selbst eine Rolle." in errors_of(response)
    assert not Membership.objects.filter(user=ada).exists()
    assert not AuditEvent.objects.filter(action="membership.granted", actor_id=ada.pk).exists()
    assert ada_client.get(f"/familien/{family.pk}/").status_code == 404


def test_an_admin_cannot_propose_himself_on_the_admin_page(
    network: Network, ada: User, ada_client: Client
) -> None:
    response = ada_client.post(
        "/admin/dienstweg/membershipproposal/add/",
        {"user": ada.pk, "agency": network.project.pk, "role": Role.COACH},
    )
    assert response.status_code == 200
    assert "Niemand schlägt sich selbst für eine Rolle vor." in errors_of(response)
    assert not MembershipProposal.objects.exists()


# An admin account holds no case or dpo role, whoever grants it


@pytest.mark.parametrize("role", FOUR_EYES_ROLES)
def test_no_case_or_dpo_role_for_an_admin_account_even_from_the_platform(
    network: Network, ada: User, otto: User, role: str
) -> None:
    with pytest.raises(actions.NotAllowed, match="Verwaltungsrechten"):
        actions.add_membership(otto, agency=network.jugendamt, role=role, by=None)
    with pytest.raises(actions.NotAllowed, match="Verwaltungsrechten"):
        actions.propose_membership(otto, agency=network.jugendamt, role=role, by=ada)
    assert not Membership.objects.filter(user=otto).exists()
    assert not MembershipProposal.objects.exists()


def test_staff_without_superuser_is_an_admin_account_too(network: Network, ada: User) -> None:
    staff = User.objects.create_user("sam@example.org", PASSWORD, full_name="Sam", is_staff=True)
    with pytest.raises(actions.NotAllowed, match="Verwaltungsrechten"):
        actions.propose_membership(staff, agency=network.jugendamt, role=Role.CASEWORKER, by=ada)


def test_the_admin_page_refuses_a_case_role_for_an_admin_account(
    network: Network, otto: User, ada_client: Client
) -> None:
    response = ada_client.post(
        MEMBERSHIP_ADD, {"user": otto.pk, "agency": network.project.pk, "role": Role.LEAD}
    )
    assert response.status_code == 200
    assert "Betrieb und Fallarbeit bleiben getrennt" in errors_of(response)
    response = ada_client.post(
        "/admin/dienstweg/membershipproposal/add/",
        {"user": otto.pk, "agency": network.project.pk, "role": Role.LEAD},
    )
    assert "Betrieb und Fallarbeit bleiben getrennt" in errors_of(response)
    assert not Membership.objects.filter(user=otto).exists()
    assert not MembershipProposal.objects.exists()


def test_the_admin_role_stays_allowed_for_admins(
    network: Network, otto: User, ada_client: Client
) -> None:
    response = ada_client.post(
        MEMBERSHIP_ADD, {"user": otto.pk, "agency": network.jugendamt.pk, "role": Role.ADMIN}
    )
    assert response.status_code == 302, errors_of(response)
    assert roles_of(otto) == {(network.jugendamt.pk, Role.ADMIN)}


def test_the_admin_page_sends_a_case_role_to_the_proposals(
    network: Network, ada_client: Client
) -> None:
    # Anna (coach at the project) for the Jugendamt: a case role, so a proposal, not a save.
    response = ada_client.post(
        MEMBERSHIP_ADD, {"user": network.anna.pk, "agency": network.jugendamt.pk, "role": "coach"}
    )
    assert response.status_code == 200
    assert "„Rollenvorschläge“" in errors_of(response)
    assert not Membership.objects.filter(user=network.anna, agency=network.jugendamt).exists()


def test_changing_a_role_upwards_on_the_admin_page_is_refused(
    network: Network, ada_client: Client
) -> None:
    membership = Membership.objects.get(user=network.ben)
    url = f"/admin/dienstweg/membership/{membership.pk}/change/"
    response = ada_client.post(url, {"role": Role.LEAD})
    assert response.status_code == 200
    assert "Vier-Augen-Prinzip" in errors_of(response)
    membership.refresh_from_db()
    assert membership.role == Role.CASEWORKER


def test_lowering_a_role_on_the_admin_page_takes_effect_at_once(
    network: Network, ada_client: Client
) -> None:
    membership = Membership.objects.get(user=network.clara)
    url = f"/admin/dienstweg/membership/{membership.pk}/change/"
    response = ada_client.post(url, {"role": Role.CASEWORKER})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.CASEWORKER


# Admin rights: the action


@pytest.mark.parametrize("who", ["anna", "dora", "clara"])
@pytest.mark.parametrize("rights", [(True, False), (False, True), (True, True)])
def test_admin_rights_are_refused_for_a_case_or_dpo_account(
    network: Network, ada: User, who: str, rights: tuple[bool, bool]
) -> None:
    user: User = getattr(network, who)
    staff, superuser = rights
    with pytest.raises(actions.NotAllowed, match="Fall- oder Datenschutzrolle"):
        actions.set_admin_rights(user, staff=staff, superuser=superuser, by=ada)
    user.refresh_from_db()
    assert not user.is_staff and not user.is_superuser
    assert not AuditEvent.objects.filter(action="account.admin_rights_changed").exists()


def test_admin_rights_are_refused_while_a_case_role_is_proposed(
    network: Network, ada: User, otto: User
) -> None:
    pia = User.objects.create_user("pia@example.org", PASSWORD, full_name="Pia Pohl")
    actions.propose_membership(pia, agency=network.jugendamt, role=Role.CASEWORKER, by=ada)
    with pytest.raises(actions.NotAllowed, match="vorgeschlagen"):
        actions.set_admin_rights(pia, staff=True, superuser=False, by=otto)
    pia.refresh_from_db()
    assert not pia.is_staff


def test_admin_rights_are_given_and_taken_by_a_superuser_and_recorded(
    network: Network, ada: User
) -> None:
    sam = User.objects.create_user("sam@example.org", PASSWORD, full_name="Sam Sauer")
    actions.set_admin_rights(sam, staff=True, superuser=False, by=ada)
    sam.refresh_from_db()
    assert sam.is_staff and not sam.is_superuser
    actions.set_admin_rights(sam, staff=False, superuser=False, by=ada)
    sam.refresh_from_db()
    assert not sam.is_staff
    events = AuditEvent.objects.filter(action="account.admin_rights_changed").order_by("id")
    assert [event.details for event in events] == [
        {"user": sam.pk, "staff": True, "superuser": False},
        {"user": sam.pk, "staff": False, "superuser": False},
    ]
    assert {event.actor_id for event in events} == {ada.pk}


def test_admin_rights_need_a_superuser_and_another_person(network: Network, ada: User) -> None:
    sam = User.objects.create_user("sam@example.org", PASSWORD, full_name="Sam", is_staff=True)
    nina = User.objects.create_user("nina@example.org", PASSWORD, full_name="Nina")
    with pytest.raises(actions.NotAllowed, match="mit allen Rechten"):
        actions.set_admin_rights(nina, staff=True, superuser=False, by=sam)
    with pytest.raises(actions.NotAllowed, match="mit allen Rechten"):
        actions.set_admin_rights(nina, staff=True, superuser=True, by=network.clara)
    with pytest.raises(actions.NotAllowed, match="eigenen Verwaltungsrechte"):
        actions.set_admin_rights(ada, staff=True, superuser=False, by=ada)
    nina.refresh_from_db()
    ada.refresh_from_db()
    assert not nina.is_staff and ada.is_superuser


# Admin rights: the admin's user form


@pytest.mark.parametrize("field", ["is_staff", "is_superuser"])
def test_the_user_form_refuses_admin_rights_for_case_staff(
    network: Network, ada_client: Client, field: str
) -> None:
    url = f"{USERS}{network.anna.pk}/change/"
    data = change_form_data(ada_client.get(url))
    data[field] = "on"
    response = ada_client.post(url, data)
    assert response.status_code == 200
    assert "Betrieb und Fallarbeit bleiben getrennt" in errors_of(response)
    network.anna.refresh_from_db()
    assert not network.anna.is_staff and not network.anna.is_superuser


def test_the_user_form_gives_admin_rights_through_the_action(
    network: Network, ada: User, ada_client: Client
) -> None:
    sam = User.objects.create_user("sam@example.org", PASSWORD, full_name="Sam Sauer")
    url = f"{USERS}{sam.pk}/change/"
    data = change_form_data(ada_client.get(url))
    # No memberships: the helper drops the inline's counts of 0 (falsy), the browser sends them.
    data.update({"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"})
    data["is_staff"] = "on"
    response = ada_client.post(url, data)
    assert response.status_code == 302, errors_of(response)
    sam.refresh_from_db()
    assert sam.is_staff
    [event] = AuditEvent.objects.filter(action="account.admin_rights_changed")
    assert (event.actor_id, event.details["user"]) == (ada.pk, sam.pk)


def test_an_admin_cannot_take_his_own_rights_on_the_user_form(
    ada: User, ada_client: Client
) -> None:
    url = f"{USERS}{ada.pk}/change/"
    data = change_form_data(ada_client.get(url))
    data.update({"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"})
    del data["is_superuser"]
    response = ada_client.post(url, data)
    assert response.status_code == 200
    assert "zweite Person" in errors_of(response)
    ada.refresh_from_db()
    assert ada.is_superuser
