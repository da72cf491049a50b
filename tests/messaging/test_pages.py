"""Every messaging URL, walked by every role of the sending project, the receiving agency
(the Jobcenter) and a foreign agency: the case roles of both sides use the referral's and
the tag's thread, a direct thread only its two participants, everybody else (DPO and admin
roles included) gets 404, audited. The pages cost the same number of queries for one
message as for fifty, and the form sends a message once however often it is submitted."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

import messaging.urls
from applications.models import ApplicationTag
from audit.models import AuditEvent
from dienstweg.models import Consent, Membership, User
from messaging import actions
from messaging.models import Message, Thread
from referrals.models import Referral
from tests.builders import build_referral_thread, build_tag, build_tag_thread
from tests.conftest import Network, make_staff, prepared_while, verified_client

SIDES = ("project", "jobcenter", "migration")
ROLES = tuple(Membership.Role.values)
CASE = {
    f"{side}-{role}"
    for side in ("project", "jobcenter")
    for role in ("coach", "caseworker", "lead")
}


@pytest.fixture
def staff(network: Network) -> dict[str, User]:
    agencies = {
        "project": network.project,
        "jobcenter": network.jobcenter,
        "migration": network.migration,
    }
    return {
        f"{side}-{role}": make_staff(
            f"{side}-{role}@example.org", f"{side} {role}", agencies[side], role
        )
        for side in SIDES
        for role in ROLES
    }


@pytest.fixture
def tag(network: Network, family: Any, consent: Consent) -> ApplicationTag:
    return build_tag(network, family)


def denied_count() -> int:
    return AuditEvent.objects.filter(action="thread.access_denied").count()


def test_every_url_has_expectations() -> None:
    covered = {
        "thread_list",
        "thread_detail",
        "thread_post",
        "message_delete",
        "message_edit",
        "message_attachment",
        "direct_thread",
        "referral_thread",
        "tag_thread",
    }
    assert {pattern.name for pattern in messaging.urls.urlpatterns} == covered


@pytest.mark.parametrize("who", [f"{side}-{role}" for side in SIDES for role in ROLES])
def test_referral_and_tag_threads_open_to_the_case_roles_of_both_sides_only(
    network: Network, staff: dict[str, User], referral: Referral, tag: ApplicationTag, who: str
) -> None:
    thread = build_referral_thread(referral)
    message = actions.post_message(
        thread, body="Termin am Montag?", client_id=uuid.uuid4(), by=network.anna
    ).message
    tag_thread = build_tag_thread(tag)
    client = verified_client(staff[who])
    pages = {
        "thread_detail": reverse("thread_detail", args=[thread.pk]),
        "tag_thread_detail": reverse("thread_detail", args=[tag_thread.pk]),
        "referral_thread": reverse("referral_thread", args=[referral.pk]),
    }
    before = denied_count()
    for name, url in pages.items():
        response = client.get(url)
        if who in CASE:
            assert response.status_code in (200, 302), (name, response.status_code)
        else:
            assert response.status_code == 404, (name, response.status_code)
    posted = client.post(
        reverse("thread_post", args=[thread.pk]), {"body": "Hallo", "client_id": str(uuid.uuid4())}
    )
    edit = client.post(reverse("message_edit", args=[message.pk]), {"body": "geändert"})
    delete = client.post(reverse("message_delete", args=[message.pk]))
    message.refresh_from_db()
    if who in CASE:
        assert posted.status_code == 302 and Message.objects.filter(author=staff[who]).exists()
        assert message.deleted_at is None  # only Anna, the author, may delete it
        assert denied_count() == before
    else:
        assert (posted.status_code, edit.status_code, delete.status_code) == (404, 404, 404)
        assert not Message.objects.filter(author=staff[who]).exists()
        assert message.deleted_at is None and message.decrypt_field("body") == "Termin am Montag?"
        assert denied_count() >= before + 4


def test_a_direct_thread_is_open_to_its_two_participants_only(
    network: Network, staff: dict[str, User]
) -> None:
    anna = verified_client(network.anna)
    response = anna.post(reverse("direct_thread", args=[network.ben.pk]))
    thread = Thread.objects.get(kind=Thread.Kind.DIRECT)
    assert response.url == reverse("thread_detail", args=[thread.pk])
    page = anna.get(response.url).content.decode()
    assert "keine Angaben zu Familien" in page
    assert verified_client(network.ben).get(response.url).status_code == 200
    for outsider in (network.dirk, network.dora, staff["project-lead"], staff["jobcenter-lead"]):
        assert verified_client(outsider).get(response.url).status_code == 404


def test_the_form_stores_a_message_once_however_often_it_is_sent(
    network: Network, referral: Referral
) -> None:
    thread = build_referral_thread(referral)
    anna = verified_client(network.anna)
    data = {"body": "Unterlagen sind da", "client_id": str(uuid.uuid4())}
    for _attempt in range(3):
        assert anna.post(reverse("thread_post", args=[thread.pk]), data).status_code == 302
    assert Message.objects.filter(thread=thread).count() == 1
    page = verified_client(network.ben).get(reverse("thread_detail", args=[thread.pk]))
    assert "Unterlagen sind da" in page.content.decode()


def queries_of(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_thread_page_and_list_cost_the_same_for_one_and_fifty_messages(
    network: Network, referral: Referral, family: Any
) -> None:
    thread = build_referral_thread(referral)
    ben = verified_client(network.ben)
    page, overview = reverse("thread_detail", args=[thread.pk]), reverse("thread_list")
    ben.get(page)  # warm-up: per-process caches
    # Each measurement reads one new message at least: the marker moves, is audited.
    actions.post_message(thread, body="eins", client_id=uuid.uuid4(), by=network.anna)
    # A direct conversation with a message he has not read, in both measurements: the
    # navigation's badge asks the rule of which threads he may still reach only then.
    direct = actions.open_direct_thread(network.anna, by=network.ben)
    actions.post_message(direct, body="direkt", client_id=uuid.uuid4(), by=network.anna)
    few = (queries_of(ben, page), queries_of(ben, overview))
    for n in range(50):
        author = network.anna if n % 2 else network.ben  # the last one by Anna
        actions.post_message(thread, body=f"Nachricht {n}", client_id=uuid.uuid4(), by=author)
        actions.post_message(direct, body=f"direkt {n}", client_id=uuid.uuid4(), by=network.anna)
    many = (queries_of(ben, page), queries_of(ben, overview))
    assert many == few
    # 25, and the navigation's unread-messages badge on every page (with something unread,
    # four queries: dienstweg/worklist.py, messaging/queue.py).
    assert max(many) <= 29


@pytest.mark.postgres
def test_the_thread_page_plans_its_queries_once(network: Network, referral: Referral) -> None:
    """Its rules and joins took PostgreSQL longer to plan than to run (bench/pages.py)."""
    thread = build_referral_thread(referral)
    ben = verified_client(network.ben)
    prepared = prepared_while(ben, reverse("thread_detail", args=[thread.pk]))
    assert any('FROM "messaging_message"' in statement for statement in prepared)


def test_opening_a_thread_records_one_read_and_moves_the_marker(
    network: Network, referral: Referral
) -> None:
    thread = build_referral_thread(referral)
    for n in range(3):
        actions.post_message(thread, body=f"m{n}", client_id=uuid.uuid4(), by=network.anna)
    ben = verified_client(network.ben)
    assert ben.get(reverse("thread_detail", args=[thread.pk])).status_code == 200
    [read] = AuditEvent.objects.filter(action="message.read", actor_id=network.ben.pk)
    assert read.details == {"thread": str(thread.pk), "from": 1, "to": 3}
    assert actions.read_markers(thread)[network.ben.pk] == 3
