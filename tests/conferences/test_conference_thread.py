"""A Familienkonferenz's live thread (messaging/subjects.py): the project and the invitees
read and write in it, nobody else; when the consent ends, the invitees lose it at once,
open sockets included."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse

from conferences.models import Conference
from dienstweg import actions as core
from dienstweg.models import Consent, User
from messaging import actions as messaging_actions
from messaging.access import message_seen_by, thread_readers, threads_of
from messaging.actions import NoAccess
from messaging.models import Thread
from tests.conftest import Network, verified_client
from tests.messaging.conftest import connected, frame, receive, receive_type


def open_thread(client: Client, conference: Conference) -> Thread:
    response = client.post(reverse("conference_thread", args=[conference.pk]))
    assert response.status_code == 302
    thread = Thread.objects.get(kind="conference", subject_id=conference.pk)
    assert response["Location"] == reverse("thread_detail", args=[thread.pk])
    return thread


def post(thread: Thread, by: User, body: str = "Ich bringe die Unterlagen mit.") -> None:
    messaging_actions.post_message(thread, body=body, client_id=uuid.uuid4(), by=by)


@pytest.mark.django_db
def test_project_and_invitees_talk_nobody_else(
    network: Network, conference: Conference, jonas: User
) -> None:
    thread = open_thread(verified_client(network.anna), conference)
    assert open_thread(verified_client(network.ben), conference) == thread  # found, not made
    post(thread, network.ben)
    assert set(thread_readers(thread)) == {network.anna.pk, network.ben.pk, network.clara.pk}
    url = reverse("thread_detail", args=[thread.pk])
    page = verified_client(network.clara).get(url)
    assert "Ich bringe die Unterlagen mit." in page.text
    assert reverse("conference_detail", args=[conference.pk]) in page.text  # back to it
    for outsider in (jonas, network.dirk, network.dora):
        assert verified_client(outsider).get(url).status_code == 404
        with pytest.raises(NoAccess):
            post(thread, outsider)
        assert (
            verified_client(outsider)
            .post(reverse("conference_thread", args=[conference.pk]))
            .status_code
            == 404
        )
    listed = [p.thread_id for p in threads_of(network.clara)]
    assert thread.pk in listed
    assert thread.pk not in [p.thread_id for p in threads_of(jonas)]


@pytest.mark.django_db
def test_revocation_takes_the_thread_from_the_invitees(
    network: Network, conference: Conference, coordination: Consent
) -> None:
    thread = open_thread(verified_client(network.anna), conference)
    post(thread, network.ben)
    message = thread.messages.get()
    assert message_seen_by(network.ben, message.pk) is not None
    core.revoke_consent(coordination, note="", by=network.anna)
    assert set(thread_readers(thread)) == {network.anna.pk}
    assert message_seen_by(network.ben, message.pk) is None
    assert (
        verified_client(network.ben).get(reverse("thread_detail", args=[thread.pk])).status_code
        == 404
    )
    with pytest.raises(NoAccess):
        post(thread, network.ben)
    assert thread.pk not in [p.thread_id for p in threads_of(network.ben)]
    post(thread, network.anna, "Für das Projekt geht es weiter.")


@database_sync_to_async
def login(user: Any) -> Client:
    return verified_client(user)


@pytest.mark.asyncio
@pytest.mark.usefixtures("committed")
async def test_an_open_socket_loses_the_thread_at_revocation(
    network: Network, conference: Conference, coordination: Consent
) -> None:
    anna_client = await login(network.anna)
    thread = await database_sync_to_async(open_thread)(anna_client, conference)
    ben = await connected(await login(network.ben))
    await frame(ben, type="sync", thread=str(thread.pk), after=0)
    await receive_type(ben, "sync.result")
    await database_sync_to_async(post)(thread, network.anna, "Bis Montag")
    assert (await receive_type(ben, "message.new"))["message"]["body"] == "Bis Montag"
    await database_sync_to_async(core.revoke_consent)(coordination, note="", by=network.anna)
    assert await receive(ben) == {"type": "access.revoked", "thread": str(thread.pk)}
    await frame(ben, type="sync", thread=str(thread.pk), after=0)
    assert (await receive(ben))["code"] == "unknown_thread"
    await ben.disconnect()
