"""Agreements of a Familienkonferenz: recorded by the coach, confirmed by the responsible
agency with a signed receipt, ended as done or not possible with the gap, reminded of when
overdue; the race of a confirmation against a revocation."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from conferences import actions, receipts
from conferences.actions import AgreementData
from conferences.models import Agreement, Conference, GapReason
from dienstweg import actions as core
from dienstweg import worklist
from dienstweg.actions import ActionError, NotAllowed
from dienstweg.models import Consent, Family, Membership, Notification, User
from tests.builders import conference_data
from tests.concurrency import TIMEOUT, Worker, wait_for_lock_wait
from tests.conftest import Network, make_staff, verified_client

WHAT = "Ben prüft bis Monatsende eine Teilzeitstelle im Einzelhandel für Frau Y."


def agree(conference: Conference, network: Network, **changes: object) -> Agreement:
    values: dict[str, object] = {
        "what": WHAT,
        "agency": network.jobcenter,
        "person": network.ben,
        "due_on": timezone.localdate() + timedelta(days=30),
    }
    values.update(changes)
    return actions.record_agreement(
        conference,
        data=AgreementData(**values),
        by=network.anna,  # type: ignore[arg-type]
    )


def test_records_an_agreement_and_asks_the_person_to_confirm(
    network: Network, conference: Conference
) -> None:
    first = agree(conference, network)
    second = agree(conference, network, agency=None, person=None, what="Frau Y. meldet Emre an.")
    assert (first.number, second.number) == (1, 2)
    assert first.decrypt_field("what") == WHAT
    asked = Notification.objects.filter(kind="agreement.recorded")
    assert [n.user for n in asked] == [network.ben]
    event = AuditEvent.objects.filter(action="agreement.recorded").first()
    assert event is not None and "Teilzeit" not in json.dumps(event.details)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"what": "  "}, "beschreiben"),
        ({"due_on": timezone.localdate() - timedelta(days=1)}, "Vergangenheit"),
        ({"agency": None}, "keine Person"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    network: Network, conference: Conference, changes: dict, message: str
) -> None:
    with pytest.raises(ActionError, match=message):
        agree(conference, network, **changes)
    assert not Agreement.objects.exists()


def test_only_invited_agencies_and_their_invitees_can_be_responsible(
    network: Network, conference: Conference, jonas: User
) -> None:
    with pytest.raises(ActionError, match="nicht \\(mehr\\) eingeladen"):
        agree(conference, network, agency=network.migration, person=None)
    with pytest.raises(ActionError, match="Jonas Jung"):
        agree(conference, network, person=jonas)  # of the Jobcenter, but not invited
    with pytest.raises(ActionError, match="Clara Czerny"):
        agree(conference, network, person=network.clara)  # invited for the Jugendamt
    with pytest.raises(NotAllowed):
        actions.record_agreement(
            conference,
            data=AgreementData(WHAT, network.jobcenter, None, timezone.localdate()),
            by=network.ben,
        )
    assert not Agreement.objects.exists()


def options(page: str, name: str) -> str:
    """The options of the form's select NAME (user and agency ids may be equal numbers)."""
    return page[page.index(f'name="{name}"') :].split("</select>")[0]


def test_the_form_offers_only_invitees_whose_access_is_open(
    network: Network, conference: Conference
) -> None:
    page = reverse("conference_detail", args=[conference.pk])
    offered = verified_client(network.anna).get(page).text
    assert f'<option value="{network.ben.pk}">Ben Becker' in options(offered, "person")
    assert f'<option value="{network.jugendamt.pk}">' in options(offered, "responsible")
    # Clara's access ended (a revocation), Ben's ran out: neither they nor their agencies
    # are offered, and a form sent with them is refused.
    conference.invitations.filter(user=network.clara).update(access_ended_at=timezone.now())
    conference.invitations.filter(user=network.ben).update(
        access_until=timezone.localdate() - timedelta(days=1)
    )
    offered = verified_client(network.anna).get(page).text
    for gone in (network.ben, network.clara):
        assert f'<option value="{gone.pk}">' not in options(offered, "person")
    for gone in (network.jobcenter, network.jugendamt):
        assert f'<option value="{gone.pk}">' not in options(offered, "responsible")
    assert f'<option value="{network.project.pk}">' in options(offered, "responsible")
    refused = verified_client(network.anna).post(
        reverse("agreement_new", args=[conference.pk]),
        {
            "what": WHAT,
            "responsible": str(network.jobcenter.pk),
            "person": str(network.ben.pk),
            "due_on": (timezone.localdate() + timedelta(days=14)).isoformat(),
        },
    )
    assert refused.status_code == 200 and not Agreement.objects.exists()


def test_confirmation_is_signed_and_verifiable(
    network: Network, conference: Conference, tmp_path
) -> None:
    agreement = agree(conference, network)
    with pytest.raises(NotAllowed):
        actions.confirm_agreement(agreement, by=network.clara)
    confirmed = actions.confirm_agreement(agreement, by=network.ben)
    assert confirmed.state == Agreement.State.CONFIRMED
    receipt = json.loads(confirmed.receipt)
    assert receipt["confirmed_by_name"] == "Ben Becker"
    assert receipts.problem(receipt, what=WHAT) is None
    assert "Teilzeit" not in confirmed.receipt  # the text stays out, its checksum is in
    assert (
        receipts.problem(receipt, what=WHAT + " ")
        == "Der Text der Vereinbarung ist nicht der bestätigte"
    )
    forged = {**receipt, "due_on": "2099-01-01"}
    assert "Signatur ungültig" in (receipts.problem(forged) or "")
    with pytest.raises(ActionError):
        actions.confirm_agreement(agreement, by=network.ben)
    # The file as downloaded, checked by the command.
    response = verified_client(network.ben).get(
        reverse("agreement_receipt", args=[conference.pk, agreement.pk])
    )
    path = tmp_path / "bestaetigung.json"
    path.write_bytes(response.content)
    call_command("agreement_verify", str(path))
    path.write_text(json.dumps(forged))
    with pytest.raises(CommandError, match="Signatur ungültig"):
        call_command("agreement_verify", str(path))
    assert AuditEvent.objects.filter(action="agreement.receipt_downloaded").count() == 1


def test_the_family_and_the_project_confirm_nothing_for_an_agency(
    network: Network, conference: Conference
) -> None:
    own = agree(conference, network, agency=None, person=None)
    with pytest.raises(ActionError):
        actions.confirm_agreement(own, by=network.anna)
    project = agree(conference, network, agency=network.project, person=network.anna)
    assert actions.confirm_agreement(project, by=network.anna).state == Agreement.State.CONFIRMED


def test_close_as_not_possible_needs_a_gap_reason(network: Network, conference: Conference) -> None:
    agreement = agree(conference, network)
    with pytest.raises(ActionError):
        actions.close_agreement(agreement, done=False, reason="", by=network.ben)
    with pytest.raises(NotAllowed):
        actions.close_agreement(agreement, done=True, by=network.clara)
    closed = actions.close_agreement(
        agreement,
        done=False,
        reason=GapReason.NO_PLACE,
        note="Alle Stellen besetzt",
        by=network.ben,
    )
    assert closed.state == Agreement.State.NOT_POSSIBLE
    assert closed.gap_reason == "no_place"
    with pytest.raises(ActionError):
        actions.close_agreement(agreement, done=True, by=network.anna)
    event = AuditEvent.objects.get(action="agreement.closed")
    assert event.details["gap_reason"] == "no_place"
    assert "besetzt" not in json.dumps(event.details)


def test_revocation_stops_confirmation(
    network: Network, conference: Conference, coordination: Consent
) -> None:
    agreement = agree(conference, network)
    core.revoke_consent(coordination, note="", by=network.anna)
    with pytest.raises(ActionError, match="Einwilligung deckt"):
        actions.confirm_agreement(agreement, by=network.ben)
    agreement.refresh_from_db()
    assert agreement.state == Agreement.State.OPEN


def test_overdue_reminds_the_person_then_her_leads(
    network: Network, conference: Conference
) -> None:
    jana = make_staff("jana@example.org", "Jana Jansen", network.jobcenter, Membership.Role.LEAD)
    agreement = agree(conference, network)
    assert actions.remind_overdue_agreements() == (0, 0)
    Agreement.objects.filter(pk=agreement.pk).update(
        due_on=timezone.localdate() - timedelta(days=1)
    )
    assert actions.remind_overdue_agreements() == (1, 0)
    assert actions.remind_overdue_agreements() == (0, 0)
    assert [n.user for n in Notification.objects.filter(kind="agreement.overdue")] == [network.ben]
    Agreement.objects.filter(pk=agreement.pk).update(reminded_at=timezone.now() - timedelta(days=7))
    assert actions.remind_overdue_agreements() == (0, 1)
    assert [n.user for n in Notification.objects.filter(kind="agreement.escalated")] == [jana]
    assert actions.remind_overdue_agreements() == (0, 0)


def test_the_person_finds_it_on_her_start_page(
    network: Network, conference: Conference, coordination: Consent
) -> None:
    agreement = agree(conference, network)
    ben = verified_client(network.ben)
    page = ben.get("/").text
    assert "Ihre Vereinbarungen aus Familienkonferenzen" in page
    assert "Vereinbarung 1, bitte bestätigen" in page
    link = reverse("conference_detail", args=[conference.pk]) + "#vereinbarungen"
    assert f'href="{link}" class="reference">{conference.family.reference}</a>' in page
    assert worklist.queue_counts(network.ben)["conferences.agreements"] == 1
    assert "Vereinbarung 1" not in verified_client(network.clara).get("/").text

    actions.confirm_agreement(agreement, by=network.ben)
    assert "Vereinbarung 1, bestätigt" in ben.get("/").text
    # The consent ends: so do his access to the conference and its place on his page.
    core.revoke_consent(coordination, note="Widerruf", by=network.anna)  # type: ignore[arg-type]
    assert "Vereinbarung 1" not in ben.get("/").text
    assert worklist.queue_counts(network.ben)["conferences.agreements"] == 0


def test_pages_confirm_and_close_end_to_end(network: Network, conference: Conference) -> None:
    anna, ben = verified_client(network.anna), verified_client(network.ben)
    page = reverse("conference_detail", args=[conference.pk])
    refused = anna.post(
        reverse("agreement_new", args=[conference.pk]),
        {"what": "", "responsible": str(network.jobcenter.pk), "due_on": ""},
    )
    assert refused.status_code == 200 and not Agreement.objects.exists()
    # The page that came back showed the conference: recorded like any opening of it.
    assert AuditEvent.objects.filter(action="conference.viewed", actor_id=network.anna.pk).exists()
    made = anna.post(
        reverse("agreement_new", args=[conference.pk]),
        {
            "what": WHAT,
            "responsible": str(network.jobcenter.pk),
            "person": str(network.ben.pk),
            "due_on": (timezone.localdate() + timedelta(days=14)).isoformat(),
        },
    )
    assert made.status_code == 302
    agreement = Agreement.objects.get()
    assert "Verbindlich bestätigen" in ben.get(page).text
    assert "Verbindlich bestätigen" not in verified_client(network.clara).get(page).text
    confirm = reverse("agreement_confirm", args=[conference.pk, agreement.pk])
    assert "verbindlich bestätigen?" in ben.get(confirm).text
    agreement.refresh_from_db()
    assert agreement.state == Agreement.State.OPEN  # asking changes nothing
    assert ben.post(confirm).status_code == 302
    agreement.refresh_from_db()
    assert agreement.state == Agreement.State.CONFIRMED
    close = reverse("agreement_close", args=[conference.pk, agreement.pk])
    kept = ben.post(close, {"outcome": "not_possible", "reason": "", "note": "x"})
    assert kept.status_code == 200 and "warum es nicht möglich war" in kept.text
    assert ben.post(close, {"outcome": "done", "reason": "", "note": ""}).status_code == 302
    agreement.refresh_from_db()
    assert agreement.state == Agreement.State.DONE


def test_protocol_for_the_family(network: Network, conference: Conference) -> None:
    from io import BytesIO

    from pypdf import PdfReader

    agree(conference, network)
    agree(conference, network, agency=None, person=None, what="Frau Yılmaz meldet Emre an.")
    url = reverse("conference_protocol", args=[conference.pk])
    response = verified_client(network.anna).get(url)
    assert response["Content-Type"] == "application/pdf"
    text = " ".join(page.extract_text() for page in PdfReader(BytesIO(response.content)).pages)
    assert "Was wir gemeinsam vereinbart haben" in text
    assert "Teilzeitstelle" in text and "Yılmaz meldet Emre an" in text
    assert "Sie selbst (die Familie)" in text
    assert "Seite 1 von 1" in text
    assert verified_client(network.ben).get(url).status_code == 404
    assert AuditEvent.objects.filter(action="conference.protocol_downloaded").count() == 1


def test_outsiders_get_404_on_every_agreement_url(
    network: Network, conference: Conference, jonas: User
) -> None:
    agreement = agree(conference, network)
    actions.confirm_agreement(agreement, by=network.ben)
    urls = [
        reverse("agreement_new", args=[conference.pk]),
        reverse("agreement_confirm", args=[conference.pk, agreement.pk]),
        reverse("agreement_close", args=[conference.pk, agreement.pk]),
        reverse("agreement_receipt", args=[conference.pk, agreement.pk]),
        reverse("conference_protocol", args=[conference.pk]),
    ]
    for user in (network.dirk, network.dora, jonas):
        client = verified_client(user)
        for url in urls:
            assert client.get(url).status_code in {404, 405}, (user, url)
            assert client.post(url).status_code in {404, 405}, (user, url)
    agreement.refresh_from_db()
    assert agreement.state == Agreement.State.CONFIRMED


needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
)


@pytest.mark.postgres
@needs_postgresql
def test_confirmation_first_then_revocation_ends_access(
    committed, network: Network, conference: Conference, coordination: Consent
) -> None:
    agreement = agree(conference, network)
    confirming, commit_now = threading.Event(), threading.Event()
    moments: dict[str, float] = {}

    def confirmation() -> Agreement:
        with transaction.atomic():
            confirmed = actions.confirm_agreement(agreement, by=network.ben)  # holds the consent
            confirming.set()
            assert commit_now.wait(TIMEOUT)
            moments["commit"] = time.monotonic()
        return confirmed

    confirmer = Worker(confirmation)
    assert confirming.wait(TIMEOUT)
    revoker = Worker(lambda: core.revoke_consent(coordination, note="", by=network.anna))
    wait_for_lock_wait()
    assert not revoker.done.is_set()  # the revocation waits for the confirmation
    commit_now.set()
    confirmer.join()
    revoker.join()
    assert revoker.finished_at > moments["commit"]
    agreement.refresh_from_db()
    assert agreement.state == Agreement.State.CONFIRMED
    assert not conference.invitations.filter(access_ended_at__isnull=True).exists()


@pytest.mark.postgres
@needs_postgresql
def test_revocation_first_then_confirmation_is_refused(
    committed, network: Network, conference: Conference, coordination: Consent
) -> None:
    agreement = agree(conference, network)
    revoked, commit_now = threading.Event(), threading.Event()

    def revocation() -> None:
        with transaction.atomic():
            core.revoke_consent(coordination, note="", by=network.anna)
            revoked.set()
            assert commit_now.wait(TIMEOUT)

    revoker = Worker(revocation)
    assert revoked.wait(TIMEOUT)
    confirmer = Worker(lambda: actions.confirm_agreement(agreement, by=network.ben))
    wait_for_lock_wait()
    commit_now.set()
    revoker.join()
    with pytest.raises(ActionError, match="Einwilligung deckt"):
        confirmer.join()
    agreement.refresh_from_db()
    assert agreement.state == Agreement.State.OPEN
    assert not AuditEvent.objects.filter(action="agreement.confirmed").exists()


def test_the_page_asks_as_many_queries_with_agreements_as_without(
    network: Network, family: Family, coordination: Consent
) -> None:
    def queries(user: User, conference: Conference) -> int:
        client = verified_client(user)
        client.get("/")
        with CaptureQueriesContext(connection) as captured:
            url = reverse("conference_detail", args=[conference.pk])
            assert client.get(url).status_code == 200
        return len(captured)

    bare = actions.convene_conference(
        family, data=conference_data([network.ben, network.clara]), by=network.anna
    )
    empty = {user.pk: queries(user, bare) for user in (network.anna, network.ben)}
    full = actions.convene_conference(
        family, data=conference_data([network.ben, network.clara]), by=network.anna
    )
    assert full.follows == bare
    for earlier in range(3):  # open ones of the conference before, shown on the follow-up
        agree(bare, network, what=f"Früher {earlier}")
    agree(full, network)
    agree(full, network, agency=network.jugendamt, person=network.clara)
    agree(full, network, agency=None, person=None)
    done = agree(full, network, agency=network.project, person=network.anna)
    actions.close_agreement(done, done=True, by=network.anna)
    assert {user.pk: queries(user, full) for user in (network.anna, network.ben)} == empty
