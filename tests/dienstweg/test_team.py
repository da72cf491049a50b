"""A lost second factor is reset by a second person: a lead of the agency (on the page
"Team") or an admin, never the person herself. The reset ends every session of hers, tells
her sockets, and sends her a new enrolment link; it is audited with ids only."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from dienstweg import actions, events
from dienstweg.models import AuthenticatorDevice, EnrolmentLink, Membership, StaffSession, User
from tests.conftest import PASSWORD, enrol, make_staff, verified_client
from tests.dienstweg.signin import redirects_to_login

TEAM_URL = "/team/"


def reset_url(user: User) -> str:
    return f"/team/{user.pk}/zweiter-faktor/"


@pytest.fixture
def clara_client(network) -> Client:
    """Clara leads the Jugendamt; Dora (DPO) is a member there, Ben is at the Jobcenter."""
    return verified_client(network.clara)


@pytest.fixture
def dora_browsers(network) -> list[Client]:
    enrol(network.dora)
    return [verified_client(network.dora), verified_client(network.dora)]


# The action's rules


def test_nobody_resets_her_own_second_factor(network):
    enrol(network.clara)
    with pytest.raises(actions.NotAllowed, match="zweite Person"):
        actions.reset_second_factor(network.clara, by=network.clara)
    assert AuthenticatorDevice.objects.filter(user=network.clara, confirmed=True).exists()
    assert not EnrolmentLink.objects.exists()


def test_a_lead_of_another_agency_may_not_reset(network):
    enrol(network.ben)
    with pytest.raises(actions.NotAllowed):
        actions.reset_second_factor(network.ben, by=network.clara)  # Ben is at the Jobcenter
    assert AuthenticatorDevice.objects.filter(user=network.ben, confirmed=True).exists()
    assert not EnrolmentLink.objects.exists()


def test_a_caseworker_may_not_reset_a_colleague(network):
    emil = make_staff("emil@example.org", "Emil Engel", network.jugendamt, "caseworker")
    with pytest.raises(actions.NotAllowed):
        actions.reset_second_factor(network.dora, by=emil)


def test_a_lead_may_not_reset_an_account_with_admin_rights(network):
    tom = make_staff("tom@example.org", "Tom Technik", network.jugendamt, Membership.Role.ADMIN)
    tom.is_staff = True
    tom.save()
    with pytest.raises(actions.NotAllowed):
        actions.reset_second_factor(tom, by=network.clara)


def test_her_lead_resets_ends_sessions_tells_sockets_and_sends_a_link(
    network, dora_browsers, send_outbox, django_capture_on_commit_callbacks, monkeypatch
):
    sent: list[tuple[list[int], dict]] = []
    monkeypatch.setattr(events, "send_now", lambda users, event: sent.append((users, event)))
    with django_capture_on_commit_callbacks(execute=True):
        issued = actions.reset_second_factor(network.dora, by=network.clara)
    assert not AuthenticatorDevice.objects.filter(user=network.dora).exists()
    assert not StaffSession.objects.filter(user=network.dora).exists()
    for browser in dora_browsers:
        assert redirects_to_login(browser.get("/"))
    # Her sockets are told (after commit) to close: every session of hers has ended.
    assert ([network.dora.pk], {"type": "session.ended", "session": "*"}) in sent
    [mail] = send_outbox()
    assert mail.to == [network.dora.email]
    assert issued.url in mail.body
    assert network.dora.full_name not in mail.body


def test_reset_is_audited_with_ids_only(network, dora_browsers):
    issued = actions.reset_second_factor(network.dora, by=network.clara)
    event = AuditEvent.objects.get(action="account.second_factor_reset")
    assert event.actor_id == network.clara.pk
    assert (event.target_type, event.target_id) == ("dienstweg.user", str(network.dora.pk))
    assert event.details == {"link": issued.link.pk, "password_reset": False}
    ended = AuditEvent.objects.get(action="session.ended")
    assert ended.details == {"count": 2}
    assert network.dora.email not in repr(list(AuditEvent.objects.values()))


def test_she_keeps_her_password_unless_it_is_reset_too(network, dora_browsers):
    kept = actions.reset_second_factor(network.dora, by=network.clara)
    assert kept.link.purpose == EnrolmentLink.Purpose.REPLACE_FACTOR
    network.dora.refresh_from_db()
    assert network.dora.check_password(PASSWORD)
    both = actions.reset_second_factor(network.dora, by=network.clara, reset_password=True)
    assert both.link.purpose == EnrolmentLink.Purpose.ENROL
    network.dora.refresh_from_db()
    assert not network.dora.has_usable_password()
    kept.link.refresh_from_db()
    assert kept.link.voided_at is not None


def test_she_sets_up_a_new_factor_through_the_link(network, dora_browsers):
    from tests.conftest import current_code

    url = urlsplit(actions.reset_second_factor(network.dora, by=network.clara).url).path
    browser = Client()
    browser.get(url)
    device = AuthenticatorDevice.objects.get(user=network.dora, confirmed=False)
    browser.post(url, {"password": PASSWORD, "token": current_code(device)})
    assert browser.get("/").status_code == 200


# The page "Team"


def test_team_lists_the_leads_agency_with_the_state_of_each_access(network, clara_client):
    enrol(network.dora)
    pending = actions.create_account("nina@example.org", full_name="Nina Neu", by=None)
    actions.add_membership(pending.link.user, agency=network.jugendamt, role="caseworker", by=None)
    page = clara_client.get(TEAM_URL).content.decode()
    assert "Dora Demir" in page and "Nina Neu" in page and "Clara Czerny" in page
    assert "Ben Becker" not in page  # another agency
    assert "Zugang eingerichtet" in page
    assert "Einrichtung ausstehend, Link gültig bis" in page
    assert f'href="{reset_url(network.dora)}"' in page
    assert f'href="{reset_url(network.clara)}"' not in page  # not her own


def test_team_is_for_leads(network):
    response = verified_client(network.ben).get(TEAM_URL)
    assert response.status_code == 403


def test_team_page_costs_the_same_queries_for_more_members(network, clara_client):
    clara_client.get(TEAM_URL)
    with CaptureQueriesContext(connection) as few:
        clara_client.get(TEAM_URL)
    for number in range(6):
        make_staff(f"kollege{number}@example.org", f"Kollege {number}", network.jugendamt, "lead")
    with CaptureQueriesContext(connection) as many:
        assert clara_client.get(TEAM_URL).status_code == 200
    assert len(many) == len(few)


def test_home_links_leads_to_the_team_page(network, clara_client):
    assert f'href="{TEAM_URL}"' in clara_client.get("/").content.decode()
    assert f'href="{TEAM_URL}"' not in verified_client(network.ben).get("/").content.decode()


def test_reset_page_asks_first_and_changes_nothing(network, clara_client, dora_browsers):
    response = clara_client.get(reset_url(network.dora))
    assert response.status_code == 200
    page = response.content.decode()
    assert "alle Sitzungen des Kontos sofort beendet" in page
    assert 'method="post"' in page
    assert AuthenticatorDevice.objects.filter(user=network.dora, confirmed=True).exists()
    assert not EnrolmentLink.objects.exists()


def test_reset_page_resets_on_post(network, clara_client, dora_browsers):
    response = clara_client.post(reset_url(network.dora), follow=True)
    assert "ist zurückgesetzt" in response.content.decode()
    assert not AuthenticatorDevice.objects.filter(user=network.dora).exists()
    assert EnrolmentLink.objects.get(user=network.dora).issued_by == network.clara
    for browser in dora_browsers:
        assert redirects_to_login(browser.get("/"))


def test_reset_page_can_reset_the_password_too(network, clara_client, dora_browsers):
    clara_client.post(reset_url(network.dora), {"reset_password": "on"})
    network.dora.refresh_from_db()
    assert not network.dora.has_usable_password()


def test_a_member_of_another_agency_is_not_found(network, clara_client):
    enrol(network.ben)
    for method in (clara_client.get, clara_client.post):
        assert method(reset_url(network.ben)).status_code == 404
    assert AuthenticatorDevice.objects.filter(user=network.ben, confirmed=True).exists()


def test_her_own_reset_page_is_refused(network, clara_client):
    assert clara_client.post(reset_url(network.clara)).status_code == 403
    assert AuthenticatorDevice.objects.filter(user=network.clara, confirmed=True).exists()


def test_reset_of_an_account_that_never_enrolled_voids_its_old_password(network):
    """Dora has never set up a second factor: her password may be one an admin chose."""
    issued = actions.reset_second_factor(network.dora, by=network.clara)
    assert issued.link.purpose == EnrolmentLink.Purpose.ENROL
    network.dora.refresh_from_db()
    assert not network.dora.has_usable_password()
