"""Restriction of processing (GDPR Art. 18, SGB X § 84): Pia, the project's DPO, restricts the
Yılmaz family's processing with a reason; the data stays, but nothing of it is shared or
shown beyond Anna's project until she lifts it.

Who may see what here: Anna (coach at the owning project) keeps the family's referral, tag
and threads throughout; Ben (caseworker at the Jobcenter, the referral's receiver and the
tag's processing office) loses them while the family is restricted and gets them back when
it is lifted; Anna, Ben and Dirk (the outsider) cannot restrict or lift (403)."""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import date, timedelta
from html import unescape
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse

from applications.access import tag_readers
from applications.models import ApplicationTag
from audit.models import AuditEvent
from dienstweg.actions import ActionError, lift_restriction, restrict_processing
from dienstweg.consent import ProcessingRestricted, has_consent, require_consent
from dienstweg.models import Consent, DataCategory, Family, Membership, Purpose, User
from dienstweg.uploads import Upload
from messaging import actions as messaging_actions
from messaging.access import may_use_thread, thread_readers, threads_of
from messaging.models import Thread
from referrals.access import referral_readers
from referrals.actions import steps as referral_actions
from referrals.models import Referral
from tests.builders import (
    build_referral,
    build_referral_thread,
    build_tag,
    build_tag_thread,
    project_dpo,
)
from tests.concurrency import TIMEOUT, Worker, wait_for_lock_wait
from tests.conftest import Network, make_staff, verified_client
from tests.messaging.conftest import connected, frame, receive, receive_type

REASON = "Frau Yılmaz bestreitet die Richtigkeit der Angaben zum Einkommen."
PDF = b"%PDF-1.4\n% Lebenslauf\n%%EOF\n"
CV = Upload("lebenslauf.pdf", PDF)
RESTRICTED = "eingeschränkt (Art. 18 DSGVO)"


@pytest.fixture
def referral(network: Network, family: Family, consent: Consent) -> Referral:
    """Anna's referral to the Jobcenter, sent, assigned to Ben by the Jobcenter's lead."""
    lead = make_staff("lea@example.org", "Lea Lange", network.jobcenter, Membership.Role.LEAD)
    sent = build_referral(network, family, attachments=[CV])
    return referral_actions.assign_referral(sent, assignee=network.ben, by=lead)


@pytest.fixture
def tag(network: Network, family: Family, consent: Consent) -> ApplicationTag:
    """Anna's Bürgergeld tag, processed by the Jobcenter (covered by the consent)."""
    return build_tag(network, family, submitted_on=date.today() - timedelta(days=3))


def restrict(network: Network, family: Family) -> Family:
    """Restricted by Pia, the DPO of the project that owns the family."""
    return restrict_processing(
        family, reason=REASON, by=project_dpo(network), agency_id=network.project.pk
    )


def fresh(family: Family) -> Family:
    return Family.objects.get(pk=family.pk)


def told(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def restrict_url(family: Family) -> str:
    return reverse("console:restrict", args=[family.reference])


def lift_url(family: Family) -> str:
    return reverse("console:lift_restriction", args=[family.reference])


# The console views


def test_dpo_restricts_and_is_sent_back_to_the_family_page(
    pia: User, network: Network, family: Family, pia_client: Client
) -> None:
    response = pia_client.post(restrict_url(family), {"reason": REASON})
    assert response.status_code == 302
    assert response["Location"] == reverse("console:subject", args=[family.reference])
    assert any("eingeschränkt" in text for text in told(response))
    restricted = fresh(family)
    assert restricted.is_restricted
    assert restricted.restricted_by == pia
    assert restricted.decrypt_field("restriction_reason") == REASON
    # Encrypted with the family's key: the reason's plaintext is not in the row.
    assert REASON.encode() not in bytes(restricted.restriction_reason_enc)


def test_dpo_lifts_with_a_note(network: Network, family: Family, pia_client: Client) -> None:
    restrict(network, family)
    response = pia_client.post(lift_url(family), {"note": "Familie am Telefon unterrichtet"})
    assert response.status_code == 302
    assert response["Location"] == reverse("console:subject", args=[family.reference])
    assert any("aufgehoben" in text for text in told(response))
    lifted = fresh(family)
    assert not lifted.is_restricted
    assert lifted.restricted_by is None
    # The encrypted record of the last restriction keeps the reason and the note.
    assert REASON in lifted.decrypt_field("restriction_reason")
    assert "Familie am Telefon unterrichtet" in lifted.decrypt_field("restriction_reason")


@pytest.mark.parametrize("who", ["anna", "ben", "dirk"])
@pytest.mark.parametrize("view", ["console:restrict", "console:lift_restriction"])
def test_non_dpo_gets_403_and_changes_nothing(
    network: Network, family: Family, who: str, view: str
) -> None:
    if view == "console:lift_restriction":
        restrict(network, family)
    before = fresh(family).restricted_at
    client = verified_client(getattr(network, who))
    response = client.post(reverse(view, args=[family.reference]), {"reason": REASON})
    assert response.status_code == 403
    assert fresh(family).restricted_at == before
    assert AuditEvent.objects.filter(
        actor_id=getattr(network, who).pk, action="console.access_denied"
    ).exists()


@pytest.mark.parametrize("view", ["console:restrict", "console:lift_restriction"])
def test_get_is_405(family: Family, pia_client: Client, view: str) -> None:
    assert pia_client.get(reverse(view, args=[family.reference])).status_code == 405
    assert not fresh(family).is_restricted


@pytest.mark.parametrize("reason", ["", "   \n  "])
def test_empty_reason_changes_nothing(
    network: Network, family: Family, pia_client: Client, reason: str
) -> None:
    response = pia_client.post(restrict_url(family), {"reason": reason})
    # The page comes back with the reason beside the box (and what was typed in it).
    assert response.status_code == 200
    assert "Bitte geben Sie den Grund der Einschränkung an." in response.content.decode()
    unchanged = fresh(family)
    assert not unchanged.is_restricted
    assert bytes(unchanged.restriction_reason_enc) == b""
    assert not AuditEvent.objects.filter(action="family.processing_restricted").exists()
    # The refused attempt is recorded, as every DPO action is.
    refused = AuditEvent.objects.get(action="console.restriction_refused")
    assert refused.family_ref == family.reference
    assert refused.details == {"verb": "restrict", "found": True}


def test_lifting_an_unrestricted_family_is_refused(family: Family, pia_client: Client) -> None:
    response = pia_client.post(lift_url(family), {"note": ""})
    assert response.status_code == 200
    assert "Die Verarbeitung dieser Familie ist nicht eingeschränkt." in response.content.decode()
    assert not AuditEvent.objects.filter(action="family.restriction_lifted").exists()


def test_a_reason_over_the_limit_comes_back_whole(family: Family, pia_client: Client) -> None:
    reason = "Die Familie bestreitet die Richtigkeit der Anschrift. " * 40  # 2,160 characters
    response = pia_client.post(restrict_url(family), {"reason": reason})
    assert response.status_code == 200
    page = response.content.decode()
    box = re.search(r'(<textarea id="restriction-reason"[^>]*>)(.*?)</textarea>', page, re.S)
    assert box and unescape(box.group(2)) == reason
    assert "maxlength" not in box.group(1)
    assert "höchstens 2000 Zeichen" in page
    assert not fresh(family).is_restricted


def test_restricting_twice_is_refused(network: Network, family: Family) -> None:
    first = restrict(network, family)
    with pytest.raises(ActionError, match="bereits eingeschränkt"):
        restrict(network, family)
    assert fresh(family).restricted_at == first.restricted_at
    assert AuditEvent.objects.filter(action="family.processing_restricted").count() == 1


def test_an_erased_family_can_be_neither_restricted_nor_lifted(
    pia: User, network: Network, family: Family
) -> None:
    Family.objects.filter(pk=family.pk).update(erased_at=family.registered_at)
    with pytest.raises(ActionError, match="gelöscht"):
        restrict(network, family)
    with pytest.raises(ActionError, match="gelöscht"):
        lift_restriction(family, by=pia)
    assert not fresh(family).is_restricted


@pytest.mark.parametrize("view", ["console:restrict", "console:lift_restriction"])
def test_unknown_family_is_404_with_a_clear_message(pia_client: Client, view: str) -> None:
    response = pia_client.post(reverse(view, args=["F-1999-0001"]), {"reason": REASON})
    assert response.status_code == 404
    assert "Keine Familie mit der Kennung „F-1999-0001“." in response.content.decode()
    assert AuditEvent.objects.filter(
        action="console.restriction_refused", details__found=False
    ).exists()


def test_records_audit_events_without_the_reason(
    pia: User, network: Network, family: Family, pia_client: Client
) -> None:
    pia_client.post(restrict_url(family), {"reason": REASON})
    pia_client.post(lift_url(family), {"note": "Familie unterrichtet"})
    restricted = AuditEvent.objects.get(action="family.processing_restricted")
    lifted = AuditEvent.objects.get(action="family.restriction_lifted")
    for event in (restricted, lifted):
        assert event.actor_id == pia.pk
        assert event.agency_id == network.project.pk  # the family's controller
        assert event.family_id == str(family.pk)
        assert event.family_ref == family.reference
        assert event.purpose == "Art. 18 DSGVO"
    assert restricted.details == {}
    assert lifted.details["with_note"] is True
    # Neither the reason nor the note is anywhere in the trail.
    for event in AuditEvent.objects.all():
        text = f"{event.purpose} {event.details} {event.target_id}"
        assert "Einkommen" not in text and "unterrichtet" not in text


# The panel on the console's family page


def panel(family: Family) -> str:
    return render_to_string("console/_restriction.html", {"family": fresh(family)})


def test_panel_offers_the_restriction_form(family: Family) -> None:
    html = panel(family)
    assert f'action="{restrict_url(family)}"' in html
    assert 'name="reason"' in html and "required" in html
    assert lift_url(family) not in html


def test_panel_shows_the_reason_and_the_lift_form(network: Network, family: Family) -> None:
    restrict(network, family)
    html = panel(family)
    assert "Eingeschränkt seit" in html
    assert "bestreitet die Richtigkeit" in html
    assert f'action="{lift_url(family)}"' in html
    assert restrict_url(family) not in html


def test_panel_of_an_erased_family_offers_nothing(network: Network, family: Family) -> None:
    restrict(network, family)
    Family.objects.filter(pk=family.pk).update(erased_at=family.registered_at)
    html = panel(family)
    assert "<form" not in html
    assert "gelöscht" in html


# What the restriction does


def test_restriction_hides_the_referral_from_the_receiver_but_not_from_the_project(
    network: Network, family: Family, referral: Referral
) -> None:
    attachment = referral.attachments.get()
    ben, anna = verified_client(network.ben), verified_client(network.anna)
    detail = reverse("referral_detail", args=[referral.pk])
    download = reverse("referral_attachment", args=[referral.pk, attachment.pk])
    assert family.reference in ben.get(reverse("referral_inbox")).content.decode()

    restrict(network, family)

    assert family.reference not in ben.get(reverse("referral_inbox")).content.decode()
    assert ben.get(detail).status_code == 404
    assert ben.get(download).status_code == 404
    assert network.ben.pk not in referral_readers(referral)
    page = anna.get(detail)
    assert page.status_code == 200
    assert "Verarbeitung eingeschränkt (Art. 18 DSGVO)" in page.content.decode()
    assert anna.get(download).status_code == 200
    assert family.reference in anna.get(reverse("referral_outbox")).content.decode()
    assert network.anna.pk in referral_readers(referral)
    # Ben's steps are refused too, not only hidden.
    with pytest.raises(ActionError):
        referral_actions.accept_referral(referral, by=network.ben)


def test_processing_office_cannot_open_the_tag(
    network: Network, family: Family, tag: ApplicationTag
) -> None:
    restrict(network, family)
    response = verified_client(network.ben).get(reverse("tag_detail", args=[tag.code]))
    assert response.status_code == 403
    assert "derzeit nicht öffnen" in response.content.decode()
    refusal = AuditEvent.objects.filter(action="application_tag.access_restricted").get()
    assert refusal.actor_id == network.ben.pk and refusal.family_ref == family.reference
    assert network.ben.pk not in tag_readers(ApplicationTag.objects.get(pk=tag.pk))
    status = verified_client(network.ben).post(
        reverse("tag_status", args=[tag.code]), {"state": "received"}
    )
    assert status.status_code == 403
    assert ApplicationTag.objects.get(pk=tag.pk).state == ApplicationTag.State.SUBMITTED
    # The project keeps its tag, and is told why the office cannot open it.
    page = verified_client(network.anna).get(reverse("tag_detail", args=[tag.code]))
    assert page.status_code == 200
    assert "Verarbeitung eingeschränkt (Art. 18 DSGVO)" in page.content.decode()


def test_receiver_can_no_longer_use_the_threads(
    network: Network, family: Family, referral: Referral, tag: ApplicationTag
) -> None:
    threads = [build_referral_thread(referral), build_tag_thread(tag)]
    for thread in threads:
        messaging_actions.post_message(
            thread, body="Termin am Montag?", client_id=uuid.uuid4(), by=network.ben
        )
    ben = verified_client(network.ben)

    restrict(network, family)

    for thread in threads:
        loaded = Thread.objects.get(pk=thread.pk)
        assert not may_use_thread(network.ben, loaded)
        assert may_use_thread(network.anna, loaded)
        assert network.ben.pk not in thread_readers(loaded)
        assert ben.get(reverse("thread_detail", args=[thread.pk])).status_code == 404
        post = ben.post(
            reverse("thread_post", args=[thread.pk]),
            {"body": "Noch da?", "client_id": str(uuid.uuid4())},
        )
        assert post.status_code == 404
        assert (
            verified_client(network.anna)
            .get(reverse("thread_detail", args=[thread.pk]))
            .status_code
            == 200
        )
    assert not threads_of(network.ben).exists()
    assert threads_of(network.anna).count() == 2


def test_sending_is_refused_with_a_clear_message(
    network: Network, family: Family, consent: Consent
) -> None:
    draft = build_referral(network, family, attachments=[CV], send=False)
    restrict(network, family)
    anna = verified_client(network.anna)

    response = anna.post(reverse("referral_send", args=[draft.pk]))
    assert response.status_code == 302
    assert any(RESTRICTED in text and "nichts gesendet" in text for text in told(response))
    assert Referral.objects.get(pk=draft.pk).state == Referral.State.DRAFT
    page = anna.get(reverse("referral_detail", args=[draft.pk])).content.decode()
    assert 'disabled aria-describedby="send-restricted"' in page

    # A new referral sent at once stores nothing; tagging an application is refused.
    before = Referral.objects.count()
    with pytest.raises(ActionError, match="eingeschränkt"):
        build_referral(network, family, attachments=[CV])
    assert Referral.objects.count() == before
    with pytest.raises(ActionError, match="eingeschränkt"):
        build_tag(network, family, submitted_on=date.today() - timedelta(days=3))
    family_page = anna.get(reverse("family_detail", args=[family.pk])).content.decode()
    assert "Verarbeitung eingeschränkt (Art. 18 DSGVO)" in family_page
    assert "Weitergabe gesperrt" in family_page
    assert reverse("referral_new", args=[family.pk]) not in family_page
    assert reverse("tag_new", args=[family.pk]) not in family_page


def test_a_referral_on_a_legal_basis_is_not_submitted_either(
    network: Network, family: Family
) -> None:
    draft = build_referral(
        network,
        family,
        to=network.jugendamt,
        need="Prüfung nach § 8a SGB VIII",
        summary="",
        categories=[DataCategory.CHILDREN],
        basis=Referral.Basis.CHILD_PROTECTION,
        basis_reason="Gewichtige Anhaltspunkte",
        send=False,
    )
    restrict(network, family)
    with pytest.raises(ActionError, match="eingeschränkt"):
        referral_actions.send_referral(draft, by=network.anna)
    assert Referral.objects.get(pk=draft.pk).state == Referral.State.DRAFT


def test_the_consent_gate_refuses_a_restricted_family(
    network: Network, family: Family, consent: Consent
) -> None:
    categories = [DataCategory.IDENTITY]
    restricted = restrict(network, family)
    assert not has_consent(
        restricted, to_agency=network.jobcenter, categories=categories, purpose=Purpose.REFERRAL
    )
    # Even with the family loaded before the restriction: the gate reads the row.
    with transaction.atomic(), pytest.raises(ProcessingRestricted):
        require_consent(
            family, to_agency=network.jobcenter, categories=categories, purpose=Purpose.REFERRAL
        )


def test_lifting_restores_access(
    pia: User, network: Network, family: Family, referral: Referral, tag: ApplicationTag
) -> None:
    thread = build_referral_thread(referral)
    restrict(network, family)
    lift_restriction(family, by=pia, agency_id=network.project.pk)

    ben = verified_client(network.ben)
    assert family.reference in ben.get(reverse("referral_inbox")).content.decode()
    assert ben.get(reverse("referral_detail", args=[referral.pk])).status_code == 200
    assert ben.get(reverse("tag_detail", args=[tag.code])).status_code == 200
    assert ben.get(reverse("thread_detail", args=[thread.pk])).status_code == 200
    assert network.ben.pk in referral_readers(referral)
    # And sending works again.
    assert build_referral(network, family, attachments=[CV]).state == Referral.State.SENT


# Open sockets


@database_sync_to_async
def login(user: Any) -> Client:
    return verified_client(user)


async def following(user: Any, thread: Thread) -> Any:
    socket = await connected(await login(user))
    await frame(socket, type="sync", thread=str(thread.pk), after=0)
    await receive_type(socket, "sync.result")
    return socket


@pytest.mark.asyncio
@pytest.mark.usefixtures("committed")
async def test_the_receivers_socket_loses_the_thread_and_the_projects_keeps_it(
    network: Network, family: Family, referral: Referral
) -> None:
    thread = await database_sync_to_async(build_referral_thread)(referral)
    ben = await following(network.ben, thread)
    anna = await following(network.anna, thread)

    await database_sync_to_async(restrict)(network, family)

    assert await receive(ben) == {"type": "access.revoked", "thread": str(thread.pk)}
    await database_sync_to_async(messaging_actions.post_message)(
        thread, body="Nach der Einschränkung", client_id=uuid.uuid4(), by=network.anna
    )
    assert await ben.receive_nothing(timeout=0.5)
    assert (await receive_type(anna, "message.new"))["message"]["body"] == (
        "Nach der Einschränkung"
    )
    await ben.disconnect()
    await anna.disconnect()


@pytest.mark.asyncio
@pytest.mark.usefixtures("committed")
async def test_the_processing_offices_socket_loses_the_tag_thread(
    network: Network, family: Family, tag: ApplicationTag
) -> None:
    thread = await database_sync_to_async(build_tag_thread)(tag)
    ben = await following(network.ben, thread)
    await database_sync_to_async(restrict)(network, family)
    assert await receive(ben) == {"type": "access.revoked", "thread": str(thread.pk)}
    await ben.disconnect()


# Races (PostgreSQL): the family row is the lock restriction and transmission share

postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
)


def transmit(network: Network, family: Family) -> None:
    require_consent(
        family,
        to_agency=network.jobcenter,
        categories=[DataCategory.IDENTITY],
        purpose=Purpose.REFERRAL,
    )


@pytest.mark.postgres
@postgres
def test_a_transmission_waits_for_a_restriction_in_progress_and_is_refused(
    committed: None, network: Network, family: Family, consent: Consent
) -> None:
    restricted, commit_now = threading.Event(), threading.Event()
    moments: dict[str, float] = {}

    def restriction() -> None:
        with transaction.atomic():
            restrict(network, family)
            restricted.set()
            assert commit_now.wait(TIMEOUT)
            moments["commit"] = time.monotonic()

    def transmission() -> None:
        with transaction.atomic():
            transmit(network, family)

    restrictor = Worker(restriction)
    assert restricted.wait(TIMEOUT)
    sender = Worker(transmission)
    wait_for_lock_wait()
    assert not sender.done.is_set()  # blocked behind the restriction's lock
    commit_now.set()
    restrictor.join()
    with pytest.raises(ProcessingRestricted):
        sender.join()
    assert sender.finished_at is not None and sender.finished_at > moments["commit"]


@pytest.mark.postgres
@postgres
def test_a_restriction_waits_for_a_transmission_in_progress(
    committed: None, network: Network, family: Family, consent: Consent
) -> None:
    locked, commit_now = threading.Event(), threading.Event()
    moments: dict[str, float] = {}

    def transmission() -> None:
        with transaction.atomic():
            transmit(network, family)
            locked.set()
            assert commit_now.wait(TIMEOUT)
            moments["commit"] = time.monotonic()

    sender = Worker(transmission)
    assert locked.wait(TIMEOUT)
    restrictor = Worker(lambda: restrict(network, family))
    wait_for_lock_wait()
    assert not restrictor.done.is_set()
    commit_now.set()
    sender.join()
    restrictor.join()
    assert restrictor.finished_at is not None and restrictor.finished_at > moments["commit"]
    assert fresh(family).is_restricted
