"""The start page as a work queue (dienstweg/worklist.py and the sections the apps register):
per role what waits, one click from its action; never what another agency's people may
not see; a lead's referrals assigned from the list, several at once; a fixed number of
queries whatever the number of items; counts as numbers only."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from applications import actions as application_actions
from applications.models import ApplicationTag
from audit.models import AuditEvent
from dienstweg import actions as core
from dienstweg import worklist
from dienstweg.models import Family, Membership, User
from referrals.actions import steps
from referrals.models import Referral
from tests.builders import (
    build_direct_thread,
    build_referral,
    build_referral_thread,
    build_tag,
)
from tests.conftest import Network, consent_data, make_staff, verified_client


@pytest.fixture
def jana(network: Network) -> User:
    """Lead at the Jobcenter: hands out incoming referrals."""
    return make_staff("jana@example.org", "Jana Jansen", network.jobcenter, Membership.Role.LEAD)


def home(user: User) -> str:
    response = verified_client(user).get(reverse("home"))
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def section(page: str, key: str) -> str:
    """The HTML of one section of the work queue ('' if the page has none)."""
    match = re.search(rf'<section [^>]*data-queue="{re.escape(key)}">(.*?)</section>', page, re.S)
    return match.group(1) if match else ""


def german(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def overdue(referral: Referral, days: int = 8) -> None:
    Referral.objects.filter(pk=referral.pk).update(sent_at=timezone.now() - timedelta(days=days))


# Lead


def test_lead_sees_unassigned_and_overdue_referrals_of_her_agency(
    network: Network, family: Family, consent: object, jana: User
) -> None:
    fresh = build_referral(network, family)
    late = build_referral(network, family, need="Schuldnerberatung")
    overdue(late)
    core.grant_consent(
        family, data=consent_data(network, family, recipients=[network.jugendamt]), by=network.anna
    )
    elsewhere = build_referral(network, family, to=network.jugendamt)

    page = home(jana)
    unassigned = section(page, "referrals.unassigned")
    # Each row links to the referral, where she assigns it.
    assert f'href="{reverse("referral_detail", args=[fresh.pk])}"' in unassigned
    assert f'href="{reverse("referral_detail", args=[late.pk])}"' in unassigned
    assert str(elsewhere.pk) not in page  # another agency's inbox
    late_section = section(page, "referrals.overdue")
    assert f'href="{reverse("referral_detail", args=[late.pk])}"' in late_section
    assert str(fresh.pk) not in late_section
    # Sent eight days ago, due five answer days after sending: three days overdue.
    assert f"überfällig seit {german(timezone.localdate() - timedelta(days=3))}" in late_section
    assert 'href="/vermittlungen/eingang/?state=sent&assignee=none"' in unassigned

    # Assigned, it leaves the list of unassigned ones; the overdue one stays overdue.
    steps.assign_referral(fresh, assignee=network.ben, by=jana)
    page = home(jana)
    assert str(fresh.pk) not in section(page, "referrals.unassigned")

    # Clara leads the Jugendamt: its referral is hers, the Jobcenter's are not.
    clara = home(network.clara)
    assert str(elsewhere.pk) in section(clara, "referrals.unassigned")
    assert str(fresh.pk) not in clara and str(late.pk) not in clara


def assign_from_home(user: User, referrals: list[str], assignee: object) -> list[str]:
    """USER ticks REFERRALS on her start page and assigns them to ASSIGNEE: the messages she
    is shown where she comes back to (the start page)."""
    client = verified_client(user)
    response = client.post(
        reverse("referral_inbox_assign"),
        {"referral": referrals, "assignee": assignee, "next": reverse("home")},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    return [str(message) for message in client.get(response["Location"]).context["messages"]]


def assignees(*referrals: Referral) -> list[int | None]:
    return [Referral.objects.get(pk=referral.pk).assignee_id for referral in referrals]


def test_lead_assigns_several_referrals_from_the_start_page(
    network: Network, family: Family, consent: object, jana: User
) -> None:
    kai = make_staff("kai@example.org", "Kai Kaya", network.jobcenter, Membership.Role.CASEWORKER)
    fresh = build_referral(network, family)
    late = build_referral(network, family, need="Schuldnerberatung")
    overdue(late)

    page = home(jana)
    for key in ("referrals.unassigned", "referrals.overdue"):
        listed = section(page, key)
        # The inbox's form: its view, a way back to the start page, her agency's staff.
        assert f'action="{reverse("referral_inbox_assign")}"' in listed
        assert 'name="next" value="/"' in listed
        assert f'<option value="{kai.pk}">Kai Kaya</option>' in listed
        assert f'value="{late.pk}"' in listed  # unassigned and overdue: in both
    assert f'value="{fresh.pk}"' in section(page, "referrals.unassigned")
    # Two forms on one page, and a referral listed twice: no id twice (labels find theirs);
    # each button is described by its section's heading.
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    for key in ("referrals.unassigned", "referrals.overdue"):
        heading = re.search(r'<h3 id="([^"]+)"', section(page, key))
        assert heading and f'aria-describedby="{heading.group(1)}">Zuweisen' in section(page, key)

    messages = assign_from_home(jana, [str(fresh.pk), str(late.pk)], kai.pk)
    assert messages == ["2 Vermittlungen an Kai Kaya zugewiesen."]  # as in the inbox
    assert assignees(fresh, late) == [kai.pk, kai.pk]
    page = home(jana)
    assert section(page, "referrals.unassigned") == ""
    assert str(late.pk) in section(page, "referrals.overdue")  # assigned, still unanswered
    assert AuditEvent.objects.filter(action="referral.assigned", actor_id=jana.pk).count() == 2


def test_only_a_lead_of_the_receiving_agency_assigns_from_the_start_page(
    network: Network, family: Family, consent: object, jana: User
) -> None:
    referral = build_referral(network, family)
    overdue(referral)
    # Ben, a caseworker of the Jobcenter, sees no form and cannot post one.
    assert 'name="referral"' not in home(network.ben)
    assert assign_from_home(network.ben, [str(referral.pk)], network.ben.pk) == [
        "Bitte eine Fachkraft der Stelle wählen."
    ]
    # Clara leads the Jugendamt: not the Jobcenter's staff, nor its referrals.
    assert 'name="referral"' not in home(network.clara)
    assert assign_from_home(network.clara, [str(referral.pk)], network.ben.pk) == [
        "Bitte eine Fachkraft der Stelle wählen."
    ]
    jule = make_staff("jule@example.org", "Jule Jung", network.jugendamt, "caseworker")
    assert assign_from_home(network.clara, [str(referral.pk)], jule.pk) == [
        "Nicht zugewiesen: eine Vermittlung ist nicht (mehr) sichtbar"
    ]
    assert assignees(referral) == [None]


def test_bad_input_from_the_start_page_changes_nothing_and_says_why(
    network: Network, family: Family, consent: object, jana: User
) -> None:
    referral = build_referral(network, family)
    assert assign_from_home(jana, [], network.ben.pk) == [
        "Bitte mindestens eine Vermittlung ankreuzen."
    ]
    assert assign_from_home(jana, [str(referral.pk)], "") == [
        "Bitte eine Fachkraft der Stelle wählen."
    ]
    assert assign_from_home(jana, [str(referral.pk)], "999999") == [
        "Bitte eine Fachkraft der Stelle wählen."
    ]
    assert assign_from_home(jana, ["keine-vermittlung"], network.ben.pk) == [
        "Nicht zugewiesen: eine Vermittlung ist nicht (mehr) sichtbar"
    ]
    assert assignees(referral) == [None]
    # `next` leads back to this site only; elsewhere, the inbox.
    inbox = reverse("referral_inbox")
    for elsewhere in ("https://evil.example/", "//evil.example/", "javascript:alert(1)"):
        response = verified_client(jana).post(
            reverse("referral_inbox_assign"),
            {"referral": [str(referral.pk)], "assignee": "", "next": elsewhere},
        )
        assert response["Location"] == inbox


def test_lead_decides_role_proposals_from_the_queue(network: Network, jana: User) -> None:
    admin = User.objects.create_superuser("olga@example.org", "x" * 20, full_name="Olga Ort")
    newcomer = User.objects.create_user("nina@example.org", "x" * 20, full_name="Nina Neu")
    proposal = core.propose_membership(
        newcomer, agency=network.jobcenter, role=Membership.Role.CASEWORKER, by=admin
    )
    page = section(home(jana), "dienstweg.proposals")
    assert "Nina Neu als Fallbearbeitung" in page
    assert reverse("proposal_confirm", args=[proposal.pk]) in page
    # What the lead needs to decide: whom, where, proposed by whom, open until when.
    for shown in ("nina@example.org", network.jobcenter.name, "von Olga Ort"):
        assert html.escape(shown) in page
    until = proposal.proposed_at + timedelta(days=settings.MEMBERSHIP_PROPOSAL_DAYS)
    assert german(timezone.localdate(until)) in page


# Caseworker


def test_caseworker_sees_her_referrals_by_due_date(
    network: Network, family: Family, consent: object, jana: User
) -> None:
    older = build_referral(network, family)
    newer = build_referral(network, family, need="Schuldnerberatung")
    Referral.objects.filter(pk=older.pk).update(sent_at=timezone.now() - timedelta(days=2))
    not_hers = build_referral(network, family, need="Kita")
    for referral in (newer, older):
        steps.assign_referral(referral, assignee=network.ben, by=jana)
    colleague = make_staff("kai@example.org", "Kai Kurz", network.jobcenter, "caseworker")
    steps.assign_referral(not_hers, assignee=colleague, by=jana)

    mine = section(home(network.ben), "referrals.assigned")
    assert mine.index(str(older.pk)) < mine.index(str(newer.pk))  # the next due first
    due = timezone.localdate() + timedelta(days=3)
    assert f"fällig am {german(due)}" in mine
    assert str(not_hers.pk) not in mine
    # Dirk works at another agency: none of it.
    assert section(home(network.dirk), "referrals.assigned") == ""


# Coach


def test_coach_sees_answers_requested_documents_ending_consents_and_unread_threads(
    network: Network, family: Family, jana: User
) -> None:
    # A consent that ends in ten days and one that ends in a month (not yet).
    core.grant_consent(
        family,
        data=consent_data(network, family, valid_until=date.today() + timedelta(days=10)),
        by=network.anna,
    )
    declined = build_referral(network, family)
    steps.assign_referral(declined, assignee=network.ben, by=jana)
    steps.decline_referral(declined, reason="Keine Kapazität", by=network.ben)
    tag = build_tag(network, family)
    application_actions.record_tag_status(
        tag, state=ApplicationTag.State.DOCUMENTS_REQUESTED, note="Mietvertrag", by=network.ben
    )
    thread = build_referral_thread(declined, by=network.ben, messages=["Rückfrage"])

    page = home(network.anna)
    answers = section(page, "referrals.answers")
    assert f'href="{reverse("referral_detail", args=[declined.pk])}"' in answers
    assert "abgelehnt von Jobcenter Kreis Recklinghausen" in answers
    documents = section(page, "applications.requested_documents")
    assert f'href="{reverse("tag_detail", args=[tag.code])}"' in documents
    assert "Mietvertrag" not in page  # what is missing is read on the tag's page
    ending = section(page, "dienstweg.consents_ending")
    assert family.reference in ending
    assert german(date.today() + timedelta(days=10)) in ending
    unread = section(page, "messaging.unread")
    assert f'href="{reverse("thread_detail", args=[thread.pk])}"' in unread
    assert "1 ungelesene Nachricht" in unread
    # The badge beside "Nachrichten".
    assert '<span data-count="messages">1</span>' in page
    # No names on the start page: references, agencies and dates only.
    assert "Yılmaz" not in page and "Ayşe" not in page

    # A renewed consent that lasts longer: nothing left to do.
    core.grant_consent(family, data=consent_data(network, family), by=network.anna)
    assert section(home(network.anna), "dienstweg.consents_ending") == ""


def test_an_unread_direct_conversation_is_named_by_the_other_person_and_her_agency(
    network: Network,
) -> None:
    """As in the thread list: whom the conversation is with, not just that it is direct."""
    from_ben = build_direct_thread(by=network.ben, colleague=network.anna, messages=["Hallo"])
    from_anna = build_direct_thread(by=network.anna, colleague=network.clara, messages=["Hi"])

    unread = section(home(network.anna), "messaging.unread")
    assert (
        f'<a href="{reverse("thread_detail", args=[from_ben.pk])}">'
        "Ben Becker (Jobcenter Kreis Recklinghausen, Bezirksstelle Gladbeck)</a>"
        " – 1 ungelesene Nachricht"
    ) in unread  # a name wraps on a phone: no class="reference"
    assert "Direktnachricht" not in unread
    # Her agency without its carrier's bracket, as the thread list has it.
    unread = section(home(network.clara), "messaging.unread")
    assert f"{reverse('thread_detail', args=[from_anna.pk])}" in unread
    assert "Anna Albers (Familiencoaching Gladbeck)</a>" in unread
    assert section(home(network.ben), "messaging.unread") == ""  # he wrote it


def test_unread_messages_count_only_in_threads_she_may_still_reach(
    network: Network, family: Family, consent: object
) -> None:
    """The badge and the section ask first whether anything is unread at all; what is
    unread in a thread she has lost (the consent revoked) still counts for nothing."""
    referral = build_referral(network, family)
    thread = build_referral_thread(referral, by=network.anna, messages=["Rückfrage"])
    assert worklist.counts_of(network.ben)["badges"] == {"messages": 1}
    assert str(thread.pk) in section(home(network.ben), "messaging.unread")

    core.revoke_consent(consent, note="Widerruf", by=network.anna)  # type: ignore[arg-type]
    assert worklist.counts_of(network.ben)["badges"] == {"messages": 0}
    page = home(network.ben)
    assert section(page, "messaging.unread") == ""
    assert '<span data-count="messages">0</span>' in page


# Processing office


def test_office_sees_its_open_document_requests_while_the_consent_covers_it(
    network: Network, family: Family, consent: object
) -> None:
    tag = build_tag(network, family)
    application_actions.record_tag_status(
        tag, state=ApplicationTag.State.DOCUMENTS_REQUESTED, note="Lohnzettel", by=network.ben
    )
    office = section(home(network.ben), "applications.office_requests")
    assert f'href="{reverse("tag_detail", args=[tag.code])}"' in office
    assert tag.code not in home(network.dirk)  # not her office

    core.revoke_consent(consent, note="Widerruf", by=network.anna)  # type: ignore[arg-type]
    assert tag.code not in home(network.ben)


# Counts


def test_counts_are_numbers_for_the_users_own_sections(
    network: Network, family: Family, consent: object, jana: User
) -> None:
    build_referral(network, family)
    counts = worklist.counts_of(jana)
    assert counts["queue"]["referrals.unassigned"] == 1
    assert counts["queue"]["referrals.overdue"] == 0
    assert "referrals.answers" not in counts["queue"]  # she is no coach
    # A Jobcenter registers no families and tags no applications: a project's sections
    # are not hers, though she leads (and the coach's are).
    assert "dienstweg.consents_ending" not in counts["queue"]
    assert "applications.requested_documents" not in counts["queue"]
    coach = worklist.counts_of(network.anna)["queue"]
    assert "dienstweg.consents_ending" in coach and "applications.requested_documents" in coach
    # And a project processes no applications: no office's section is hers.
    assert "applications.office_requests" not in coach
    assert "applications.office_requests" in counts["queue"]
    assert counts["badges"] == {"messages": 0}
    assert isinstance(counts["notifications"], int)
    assert worklist.counts_of(network.dirk)["queue"].get("referrals.unassigned") is None
    # Without the queue: the navigation's numbers alone.
    assert worklist.counts_of(jana, queue=False)["queue"] == {}


def test_a_section_shows_the_oldest_first_and_the_first_rows_only(
    network: Network, family: Family, consent: object, jana: User
) -> None:
    """The rows picked (by id, then read) keep the section's order: the longest waiting
    first, SHOWN of them, and the count of them all."""
    count = worklist.SHOWN + 2
    referrals = [build_referral(network, family, need=f"Anliegen {n}") for n in range(count)]
    # Sent on other days than created: the newest created waited longest.
    for days, referral in enumerate(referrals):
        overdue(referral, days=days + 8)
    oldest_first = [str(referral.pk) for referral in reversed(referrals)]
    page = home(jana)
    for key in ("referrals.unassigned", "referrals.overdue"):
        shown = re.findall(r'href="/vermittlungen/([0-9a-f-]+)/"', section(page, key))
        assert shown == oldest_first[: worklist.SHOWN], key
        assert f'data-queue-count="{key}">{count}</span>' in section(page, key)


def test_a_section_counts_up_to_its_cap_and_then_says_more(
    network: Network, family: Family, consent: object, jana: User, monkeypatch
) -> None:
    """Past COUNTED_UP_TO a section says "99+" (here "2+") instead of counting every row:
    on the page, in its link to the full list, and in the socket's number, which the page's
    script shows the same way."""
    monkeypatch.setattr(worklist, "COUNTED_UP_TO", 2)
    build_referral(network, family)
    build_referral(network, family, need="Schuldnerberatung")
    unassigned = section(home(jana), "referrals.unassigned")
    assert 'data-queue-count="referrals.unassigned">2</span>' in unassigned
    assert worklist.counts_of(jana)["queue"]["referrals.unassigned"] == 2

    build_referral(network, family, need="Wohnungssuche")
    page = home(jana)
    assert 'data-counted-up-to="2"' in page
    unassigned = section(page, "referrals.unassigned")
    assert 'data-queue-count="referrals.unassigned">2+</span>' in unassigned
    assert unassigned.count('href="/vermittlungen/') >= 3  # every row still shown
    assert worklist.counts_of(jana)["queue"]["referrals.unassigned"] == 3  # 3 means "more"


def test_notifying_tells_the_recipients_sockets_to_recount(
    network: Network, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    sent: list[tuple[list[int], object]] = []
    monkeypatch.setattr(
        "dienstweg.events.send_now", lambda users, event: sent.append((users, event))
    )
    from dienstweg.notifications import notify

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        notify([network.ben], kind="referral.received", title="Neue Vermittlung", url="/")
    assert sent == [([network.ben.pk], {"type": "counts.changed"})]


# Query counts


def _queries(user: User) -> int:
    client = verified_client(user)
    client.get(reverse("home"))  # sessions and caches warm
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("home")).status_code == 200
    return len(captured.captured_queries)


def test_start_page_queries_do_not_grow_with_the_items(
    network: Network, family: Family, consent: object, jana: User
) -> None:
    def add(number: int) -> None:
        for _ in range(number):
            # A new colleague writes to each of them directly: named by person and agency.
            colleague = make_staff(
                f"kollegin{User.objects.count()}@example.org",
                "Karla Kollegin",
                network.jugendamt,
                Membership.Role.CASEWORKER,
            )
            for user in (network.anna, network.ben, jana):
                build_direct_thread(by=colleague, colleague=user, messages=["Hallo"])
            referral = build_referral(network, family)
            overdue(referral)
            tag = build_tag(network, family)
            application_actions.record_tag_status(
                tag, state=ApplicationTag.State.DOCUMENTS_REQUESTED, note="x", by=network.ben
            )
            declined = build_referral(network, family)
            steps.assign_referral(declined, assignee=network.ben, by=jana)
            build_referral_thread(declined, by=network.ben, messages=["?"])
            steps.decline_referral(declined, reason="x", by=network.ben)

    add(1)
    few = {user.pk: _queries(user) for user in (network.anna, network.ben, jana)}
    add(12)  # beyond the rows a section shows
    many = {user.pk: _queries(user) for user in (network.anna, network.ben, jana)}
    assert many == few
    page = home(jana)
    assert "(13)" in section(page, "referrals.overdue")  # the link to all of them
    # The counted page has the lead's forms to assign and the direct threads' names.
    for key in ("referrals.unassigned", "referrals.overdue"):
        assert section(page, key).count('name="referral"') == worklist.SHOWN
        assert f'<option value="{network.ben.pk}">Ben Becker</option>' in section(page, key)
    assert "Karla Kollegin (Stadt Gladbeck, Amt für Jugend und Familie)" in section(
        page, "messaging.unread"
    )
