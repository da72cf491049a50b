"""The inbox a lead triages: the kind of need, a mark for referrals nobody of the agency has
opened yet, the answer's due date, the overdue ones first and marked without a filter,
sorting by whitelisted keys, several referrals assigned at once, and a lead who accepts an
unassigned referral herself. (Query counts: tests/referrals/test_query_counts.py.)"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import get_perms

from audit.models import AuditEvent
from dienstweg import actions as core
from dienstweg.models import Consent, DataCategory, Family, Membership, Purpose
from referrals.actions import steps as referral_steps
from referrals.models import NeedKind, Referral
from tests.builders import build_referral
from tests.conftest import Network, consent_data, make_staff, verified_client

INBOX = "/vermittlungen/eingang/"


def another_family(network: Network, number: int) -> Family:
    """A consented family of the project (the Jobcenter may receive its referrals)."""
    family = core.register_family(
        owner=network.project,
        members=[core.MemberData("adult", f"Person{number}", "Muster", date(1980, 1, 1))],
        address=f"Hauptstraße {number}, 45964 Gladbeck",
        phone="",
        notes="",
        by=network.anna,
    )
    core.grant_consent(
        family,
        data=core.ConsentData(
            recipients=[network.jobcenter],
            categories=[DataCategory.IDENTITY, DataCategory.EMPLOYMENT],
            purposes=[Purpose.REFERRAL],
            valid_from=timezone.localdate(),
            valid_until=timezone.localdate() + timedelta(days=365),
            given_by=family.members.get(),
            capacity=Consent.Capacity.ADULT_SELF,
            method=Consent.Method.ORAL_RECORDED,
            witness_note="Belehrung im Beisein einer Kollegin",
            text_version="2026-1",
        ),
        by=network.anna,
    )
    return family


def sent_days_ago(referral: Referral, days: int) -> Referral:
    """The referral as if it had been sent DAYS ago."""
    Referral.objects.filter(pk=referral.pk).update(sent_at=timezone.now() - timedelta(days=days))
    referral.refresh_from_db()
    return referral


def rows(page: str) -> list[str]:
    """The table rows of the list, in order."""
    return re.findall(r"<tr[^>]*>.*?</tr>", page.split("<tbody>")[1], re.S)


def order(page: str, referrals: list[Referral]) -> list[int]:
    """The indexes of REFERRALS in the order the page lists them."""
    found = [
        (page.index(reverse("referral_detail", args=[r.pk])), i)
        for i, r in enumerate(referrals)
        if reverse("referral_detail", args=[r.pk]) in page
    ]
    return [i for _at, i in sorted(found)]


@pytest.fixture
def three(network: Network, consent, settings) -> list[Referral]:
    """Three referrals to the Jobcenter, answers due within 5 days: sent 20 days ago
    (overdue), 2 days ago and today, of three kinds of need."""
    settings.REFERRAL_ANSWER_DAYS = 5
    families = [another_family(network, n) for n in range(3)]
    overdue = sent_days_ago(build_referral(network, families[0], need_kind=NeedKind.WORK), 20)
    recent = sent_days_ago(build_referral(network, families[1], need_kind=NeedKind.HOUSING), 2)
    today = build_referral(network, families[2], need_kind=NeedKind.DEBTS)
    return [overdue, recent, today]


def test_the_default_order_puts_the_overdue_first_and_marks_them(network, three, jana):
    overdue, _recent, _today = three
    page = verified_client(jana).get(INBOX).content.decode()
    # Due date: the earliest first, with no filter set; then the newest received.
    assert order(page, three) == [0, 1, 2]
    listed = rows(page)
    assert 'class="overdue"' in listed[0] and "überfällig" in listed[0]
    assert "überfällig" not in "".join(listed[1:])
    due = timezone.localtime(overdue.sent_at + timedelta(days=settings.REFERRAL_ANSWER_DAYS))
    assert due.strftime("%d.%m.%Y") in listed[0]
    # The kind of need, never its words.
    assert "Arbeit und Ausbildung" in listed[0] and "Wohnen" in listed[1]
    assert "Schulden" in listed[2]
    assert "Arbeitsvermittlung in Teilzeit" not in page


def test_answered_referrals_come_after_the_waiting_ones(network, three, jana):
    _overdue, _recent, today = three
    referral_steps.assign_referral(today, assignee=network.ben, by=jana)
    referral_steps.accept_referral(today, by=network.ben)
    page = verified_client(jana).get(INBOX).content.decode()
    assert order(page, three) == [0, 1, 2]
    assert "–" in rows(page)[2]  # accepted: no answer is due
    assert "badge new" not in rows(page)[2]  # and nothing new about it


def test_sorting_by_received_and_by_need(network, three, jana):
    client = verified_client(jana)
    newest_first = client.get(INBOX + "?sortierung=eingang").content.decode()
    assert order(newest_first, three) == [2, 1, 0]
    # by the kind of need (its code): debts, housing, work
    by_need = client.get(INBOX + "?sortierung=bedarf").content.decode()
    assert order(by_need, three) == [2, 1, 0]
    assert 'aria-current="true">Bereich des Bedarfs' in by_need


def test_an_unknown_sort_key_gives_the_default_order(network, three, jana):
    page = verified_client(jana).get(INBOX + "?sortierung=need_enc").content.decode()
    assert order(page, three) == [0, 1, 2]


def test_sorting_keeps_the_filters(network, three, jana):
    page = verified_client(jana).get(INBOX + "?state=sent&sortierung=eingang").content.decode()
    assert "state=sent&amp;sortierung=bedarf" in page
    assert 'name="sortierung" value="eingang"' in page


def test_new_until_someone_of_the_receiving_agency_opens_it(network, three, jana):
    _overdue, recent, today = three
    lead = verified_client(jana)
    page = lead.get(INBOX).content.decode()
    assert all('badge new">neu' in row for row in rows(page))
    # The sender opening it changes nothing for the receiver.
    verified_client(network.anna).get(reverse("referral_detail", args=[recent.pk]))
    # Ben (a caseworker of the Jobcenter) opens one: new for nobody of the agency any more.
    verified_client(network.ben).get(reverse("referral_detail", args=[today.pk]))
    page = lead.get(INBOX).content.decode()
    new = ['badge new">neu' in row for row in rows(page)]
    assert new == [True, True, False]
    # And the outbox has no such mark.
    assert (
        'badge new">neu'
        not in verified_client(network.anna).get(reverse("referral_outbox")).content.decode()
    )


def test_a_lead_assigns_several_at_once_each_audited(network, three, jana):
    kai = make_staff("kai@example.org", "Kai Kaya", network.jobcenter, Membership.Role.CASEWORKER)
    overdue, recent, today = three
    client = verified_client(jana)
    page = client.get(INBOX).content.decode()
    assert f'<option value="{kai.pk}">Kai Kaya</option>' in page
    assert page.count('id="id_assignee"') == 1  # the filter's; the assignment has its own
    response = client.post(
        reverse("referral_inbox_assign"),
        {
            "referral": [str(overdue.pk), str(today.pk)],
            "assignee": kai.pk,
            "zurueck": "sortierung=eingang",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == INBOX + "?sortierung=eingang"
    assigned = dict(Referral.objects.values_list("pk", "assignee"))
    assert (assigned[overdue.pk], assigned[recent.pk], assigned[today.pk]) == (kai.pk, None, kai.pk)
    events = AuditEvent.objects.filter(action="referral.assigned", actor_id=jana.pk)
    assert sorted(events.values_list("target_id", flat=True)) == sorted(
        [str(overdue.pk), str(today.pk)]
    )
    assert all(event.details["assignee"] == kai.pk for event in events)
    assert "change_referral" in get_perms(kai, Referral.objects.get(pk=today.pk))
    messages = [str(m) for m in client.get(INBOX).context["messages"]]
    assert messages == ["2 Vermittlungen an Kai Kaya zugewiesen."]


def test_a_refused_one_is_reported_and_the_others_are_done(network, family, consent, three, jana):
    overdue, recent, _today = three
    # Recent is declined meanwhile: it can no longer be assigned. A referral elsewhere
    # (to the Jugendamt) is not the lead's to see.
    referral_steps.assign_referral(recent, assignee=network.ben, by=jana)
    referral_steps.decline_referral(recent, reason="Nicht zuständig", by=network.ben)
    core.grant_consent(
        family,
        data=consent_data(network, family, recipients=[network.jugendamt]),
        by=network.anna,
    )
    elsewhere = build_referral(network, family, to=network.jugendamt)
    client = verified_client(jana)
    response = client.post(
        reverse("referral_inbox_assign"),
        {
            "referral": [str(overdue.pk), str(recent.pk), str(elsewhere.pk)],
            "assignee": network.ben.pk,
        },
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert messages[0] == "1 Vermittlung an Ben Becker zugewiesen."
    assert any(recent.family.reference in m and "abgelehnt" in m for m in messages[1:])
    assert any("nicht (mehr) sichtbar" in m for m in messages[1:])
    assert len(messages) == 3
    assert Referral.objects.get(pk=overdue.pk).assignee == network.ben
    assert Referral.objects.get(pk=elsewhere.pk).assignee is None
    # The refusal and the look-up beyond her reach are in the trail.
    assert AuditEvent.objects.filter(
        action="referral.step_refused", target_id=str(recent.pk), actor_id=jana.pk
    ).exists()
    assert AuditEvent.objects.filter(
        action="referral.access_denied", target_id=str(elsewhere.pk), actor_id=jana.pk
    ).exists()


def test_only_a_lead_gets_the_assignment_form_and_only_her_staff(network, three, jana):
    ben_page = verified_client(network.ben).get(INBOX).content.decode()
    assert "referral_inbox_assign" not in ben_page and 'name="referral"' not in ben_page
    # A lead elsewhere chooses among her own agency's staff only.
    other_lead = make_staff(
        "lea@example.org", "Lea Lorenz", network.jugendamt, Membership.Role.LEAD
    )
    response = verified_client(other_lead).post(
        reverse("referral_inbox_assign"),
        {"referral": [str(three[0].pk)], "assignee": network.ben.pk},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == [
        "Bitte eine Fachkraft der Stelle wählen."
    ]
    assert Referral.objects.get(pk=three[0].pk).assignee is None


def test_nothing_ticked_says_so(network, three, jana):
    response = verified_client(jana).post(
        reverse("referral_inbox_assign"), {"assignee": network.ben.pk}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == [
        "Bitte mindestens eine Vermittlung ankreuzen."
    ]


# Accepting without assigning first


def test_a_lead_accepts_an_unassigned_referral_and_becomes_its_assignee(network, three, jana):
    today = three[2]
    client = verified_client(jana)
    page = client.get(reverse("referral_detail", args=[today.pk])).content.decode()
    assert reverse("referral_accept", args=[today.pk]) in page
    client.post(reverse("referral_accept", args=[today.pk]))
    today.refresh_from_db()
    assert (today.state, today.assignee) == (Referral.State.ACCEPTED, jana)
    assert "change_referral" in get_perms(jana, today)
    event = AuditEvent.objects.get(action="referral.accepted", target_id=str(today.pk))
    assert event.details["assignee"] == jana.pk
    # As the assignee she completes it.
    referral_steps.complete_referral(today, outcome="Vermittelt", by=jana)


def test_a_lead_does_not_accept_what_is_assigned_to_someone_else(network, three, jana):
    today = referral_steps.assign_referral(three[2], assignee=network.ben, by=jana)
    client = verified_client(jana)
    page = client.get(reverse("referral_detail", args=[today.pk])).content.decode()
    assert reverse("referral_accept", args=[today.pk]) not in page
    client.post(reverse("referral_accept", args=[today.pk]))
    today.refresh_from_db()
    assert (today.state, today.assignee) == (Referral.State.SENT, network.ben)


def test_a_caseworker_does_not_accept_an_unassigned_referral(network, three):
    today = three[2]
    verified_client(network.ben).post(reverse("referral_accept", args=[today.pk]))
    today.refresh_from_db()
    assert (today.state, today.assignee) == (Referral.State.SENT, None)
