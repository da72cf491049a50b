"""The socket's side of chat-like messaging: a reply over the socket quotes its message,
each message arrives rendered for its reader (the page's template), readers are named
with their agency, and a reply's quote changes live when the quoted message is deleted."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse

from messaging.models import Message, Thread
from tests.conftest import Network, verified_client
from tests.messaging.conftest import connected, frame, receive_type

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("committed")]
JOBCENTER = "Jobcenter Kreis Recklinghausen, Bezirksstelle Gladbeck"


@database_sync_to_async
def login(user) -> Client:
    return verified_client(user)


async def send(socket, thread: Thread, body: str, **extra) -> dict:
    await frame(
        socket,
        type="message.send",
        thread=str(thread.pk),
        client_id=str(uuid.uuid4()),
        body=body,
        **extra,
    )
    return (await receive_type(socket, "message.ack"))["message"]


async def test_a_reply_over_the_socket_quotes_and_follows_its_message(
    network: Network, thread: Thread
) -> None:
    anna = await connected(await login(network.anna))
    ben = await connected(await login(network.ben))
    asked = await send(anna, thread, "Kommt Frau Y. am Dienstag?")
    assert '<strong class="author">Sie</strong>' in asked["html"]
    seen = (await receive_type(ben, "message.new"))["message"]
    assert '<strong class="author">Anna Albers</strong>' in seen["html"]
    assert "Bearbeiten oder löschen" in asked["html"] and "Bearbeiten" not in seen["html"]
    # Ben reads: Anna's page learns who, with the agency.
    await frame(ben, type="read", thread=str(thread.pk), seq=seen["seq"])
    read = await receive_type(anna, "read.updated")
    assert read["label"] == f"Ben Becker ({JOBCENTER})"

    answer = await send(ben, thread, "Ja.", reply_to=asked["id"])
    assert answer["reply_to"]["body"] == "Kommt Frau Y. am Dienstag?"
    assert "Kommt Frau Y. am Dienstag?" in answer["html"]
    stored = await database_sync_to_async(Message.objects.get)(pk=answer["id"])
    assert str(stored.reply_to_id) == asked["id"]

    # Anna deletes her question: Ben's page gets the reply again, without the quote.
    await frame(anna, type="message.delete", message=asked["id"])
    changed = set()
    while answer["id"] not in changed:
        update = (await receive_type(ben, "message.updated"))["message"]
        changed.add(update["id"])
        if update["id"] == answer["id"]:
            assert update["reply_to"]["deleted"] and "Dienstag" not in update["html"]
    await frame(ben, type="sync", thread=str(thread.pk), after=0)
    synced = await receive_type(ben, "sync.result")
    assert synced["labels"][str(network.ben.pk)] == f"Ben Becker ({JOBCENTER})"
    assert all("html" in message for message in synced["messages"])
    for socket in (anna, ben):
        await socket.disconnect()


async def test_a_reply_to_a_message_of_another_thread_is_refused(
    network: Network, thread: Thread
) -> None:
    from messaging import actions

    direct = await database_sync_to_async(actions.open_direct_thread)(network.ben, by=network.anna)
    anna = await connected(await login(network.anna))
    private = await send(anna, direct, "nur unter uns")
    await frame(
        anna,
        type="message.send",
        thread=str(thread.pk),
        client_id=str(uuid.uuid4()),
        body="Antwort",
        reply_to=private["id"],
    )
    error = await receive_type(anna, "error")
    assert error["code"] == "refused"
    await frame(
        anna,
        type="message.send",
        thread=str(thread.pk),
        client_id=str(uuid.uuid4()),
        body="Antwort",
        reply_to="keine-id",
    )
    assert (await receive_type(anna, "error"))["code"] == "malformed"
    count = database_sync_to_async(Message.objects.filter(thread=thread).count)
    assert await count() == 0
    await anna.disconnect()


@database_sync_to_async
def login_in_english(user) -> Client:
    client = verified_client(user)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    return client


async def test_a_reader_of_english_gets_her_socket_in_english(
    network: Network, thread: Thread
) -> None:
    ben = await connected(await login_in_english(network.ben))
    anna = await connected(await login(network.anna))
    mine = await send(ben, thread, "Hello")
    assert '<strong class="author">You</strong>' in mine["html"]
    # Anna reads German on her socket at the same time, from the same process.
    seen = (await receive_type(anna, "message.new"))["message"]
    assert '<strong class="author">Ben Becker</strong>' in seen["html"]
    assert "Antworten" in seen["html"]
    assert '<strong class="author">Sie</strong>' in (await send(anna, thread, "Hallo"))["html"]
    theirs = (await receive_type(ben, "message.new"))["message"]
    assert "Reply" in theirs["html"] and "Antworten" not in theirs["html"]
    await frame(
        ben, type="message.send", thread=str(uuid.uuid4()), client_id=str(uuid.uuid4()), body="x"
    )
    refused = await receive_type(ben, "error")
    assert refused["message"] == "This conversation does not exist."
    for socket in (anna, ben):
        await socket.disconnect()
