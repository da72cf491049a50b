"""The socket at /ws/: only verified sessions from allowed origins; the protocol's frames
and its refusals (the socket survives bad input)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from audit.models import AuditEvent
from messaging.models import Message, Thread
from tests.conftest import Clock, Network, verified_client
from tests.messaging.conftest import (
    CLIENT_ADDRESS,
    communicator,
    connected,
    frame,
    receive,
    receive_type,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("committed")]


@database_sync_to_async
def login(user) -> Client:
    return verified_client(user)


@database_sync_to_async
def unverified_login(user) -> Client:
    client = Client()
    client.force_login(user)  # password only: no second factor in this session
    return client


async def test_anonymous_socket_is_refused(network: Network) -> None:
    ok, _code = await communicator(None).connect()
    assert not ok


async def test_session_without_second_factor_is_refused(network: Network) -> None:
    ok, _code = await communicator(await unverified_login(network.anna)).connect()
    assert not ok


async def test_foreign_origin_is_refused(network: Network) -> None:
    client = await login(network.anna)
    socket = communicator(client, origin=(b"origin", b"https://evil.example"))
    ok, _code = await socket.connect()
    assert not ok


async def test_message_is_acknowledged_and_reaches_the_other_side(
    network: Network, thread: Thread
) -> None:
    anna = await connected(await login(network.anna))
    ben = await connected(await login(network.ben))
    client_id = str(uuid.uuid4())
    await frame(anna, type="message.send", thread=str(thread.pk), client_id=client_id, body="Hallo")
    ack = await receive_type(anna, "message.ack")
    assert ack["client_id"] == client_id and ack["message"]["body"] == "Hallo"
    new = await receive_type(ben, "message.new")
    assert new["message"]["id"] == ack["message"]["id"] and new["message"]["seq"] == 1
    assert new["message"]["author_name"] == "Anna Albers"
    await anna.disconnect()
    await ben.disconnect()


async def test_a_resend_with_the_same_client_id_is_stored_once(
    network: Network, thread: Thread
) -> None:
    anna = await connected(await login(network.anna))
    client_id = str(uuid.uuid4())
    for _attempt in range(2):
        await frame(anna, type="message.send", thread=str(thread.pk), client_id=client_id, body="x")
        ack = await receive_type(anna, "message.ack")
    assert await database_sync_to_async(Message.objects.filter(thread=thread).count)() == 1
    assert ack["message"]["seq"] == 1
    await anna.disconnect()


@pytest.mark.parametrize(
    "raw",
    [
        "kein json",
        "[1, 2]",
        '{"type": 5}',
        '{"type": "message.send", "thread": "x", "client_id": "y", "body": "z"}',
        '{"type": "message.send", "thread": null, "client_id": null}',
        '{"type": "gibt.es.nicht"}',
        '{"type": "read", "thread": "00000000-0000-0000-0000-000000000000", "seq": "1"}',
        '{"type": "sync", "thread": "00000000-0000-0000-0000-000000000000", "after": 0}',
        '{"type": "message.edit", "message": "1", "body": "x"}',
    ],
)
async def test_bad_frames_get_an_error_and_change_nothing(
    network: Network, thread: Thread, raw: str
) -> None:
    anna = await connected(await login(network.anna))
    await anna.send_to(text_data=raw)
    error = await receive(anna)
    assert error["type"] == "error" and error["message"]
    assert await database_sync_to_async(Message.objects.count)() == 0
    # The socket survives: a good frame still works.
    await frame(anna, type="sync", thread=str(thread.pk), after=0)
    assert (await receive(anna))["type"] == "sync.result"
    await anna.disconnect()


async def test_an_oversized_frame_is_refused(network: Network, thread: Thread) -> None:
    anna = await connected(await login(network.anna))
    await frame(
        anna,
        type="message.send",
        thread=str(thread.pk),
        client_id=str(uuid.uuid4()),
        body="x" * 20_000,
    )
    assert (await receive(anna))["code"] == "too_large"
    await frame(
        anna,
        type="message.send",
        thread=str(thread.pk),
        client_id=str(uuid.uuid4()),
        body="x" * 4001,
    )
    assert (await receive(anna))["code"] == "refused"
    assert await database_sync_to_async(Message.objects.count)() == 0
    await anna.disconnect()


async def test_an_outsider_cannot_use_the_thread_and_is_audited(
    network: Network, thread: Thread
) -> None:
    for outsider in (network.dirk, network.dora):
        socket = await connected(await login(outsider))
        await frame(
            socket,
            type="message.send",
            thread=str(thread.pk),
            client_id=str(uuid.uuid4()),
            body="?",
        )
        assert (await receive(socket))["code"] == "unknown_thread"
        await frame(socket, type="sync", thread=str(thread.pk), after=0)
        assert (await receive(socket))["code"] == "unknown_thread"
        await socket.disconnect()
    denied = database_sync_to_async(
        AuditEvent.objects.filter(action="thread.access_denied", target_id=str(thread.pk)).count
    )
    assert await denied() == 4
    assert await database_sync_to_async(Message.objects.count)() == 0


async def test_a_flood_is_rate_limited(
    network: Network, thread: Thread, settings, clock: Clock
) -> None:
    settings.WS_RATE_FRAMES = 5
    # The clock stands still: the eight frames fall into one window, however slow the machine.
    anna = await connected(await login(network.anna))
    codes = []
    for _n in range(8):
        await frame(anna, type="typing", thread=str(thread.pk))
    for _n in range(3):
        codes.append((await receive_type(anna, "error"))["code"])
    assert codes == ["rate_limited"] * 3
    # The next window counts afresh.
    clock.advance(settings.WS_RATE_WINDOW_SECONDS)
    await frame(anna, type="sync", thread=str(thread.pk), after=0)
    assert (await receive_type(anna, "sync.result"))["thread"] == str(thread.pk)
    await anna.disconnect()


async def test_sync_returns_what_was_missed_in_order(network: Network, thread: Thread) -> None:
    anna = await connected(await login(network.anna))
    for n in range(5):
        await frame(
            anna,
            type="message.send",
            thread=str(thread.pk),
            client_id=str(uuid.uuid4()),
            body=f"m{n}",
        )
        await receive_type(anna, "message.ack")
    ben = await connected(await login(network.ben))
    await frame(ben, type="sync", thread=str(thread.pk), after=2)
    result = await receive_type(ben, "sync.result")
    assert [m["body"] for m in result["messages"]] == ["m2", "m3", "m4"]
    assert [m["seq"] for m in result["messages"]] == [3, 4, 5]
    await anna.disconnect()
    await ben.disconnect()


async def test_read_marker_and_typing_reach_the_other_side(
    network: Network, thread: Thread
) -> None:
    anna = await connected(await login(network.anna))
    ben = await connected(await login(network.ben))
    await frame(
        anna, type="message.send", thread=str(thread.pk), client_id=str(uuid.uuid4()), body="a"
    )
    await receive_type(anna, "message.ack")
    await receive_type(ben, "message.new")
    await frame(ben, type="typing", thread=str(thread.pk))
    typing = await receive_type(anna, "typing")
    assert typing["name"] == "Ben Becker"
    await frame(ben, type="read", thread=str(thread.pk), seq=1)
    read = await receive_type(anna, "read.updated")
    assert (read["user"], read["seq"]) == (network.ben.pk, 1)
    await anna.disconnect()
    await ben.disconnect()


async def until(socket: Any, kind: str, **match: Any) -> list[dict[str, Any]]:
    """The frames SOCKET receives up to and including the first of KIND matching MATCH."""
    seen = []
    while True:
        data = await receive(socket)
        seen.append(data)
        if data["type"] == kind and all(data.get(k) == v for k, v in match.items()):
            return seen


async def test_a_socket_is_not_sent_back_what_its_tab_did_but_the_users_other_tab_is(
    network: Network, thread: Thread
) -> None:
    # The events reach each user's group in the order they were published, and a socket
    # handles them in that order: an echo would arrive before the event read up to.
    anna, anna_other = [await connected(await login(network.anna)) for _ in range(2)]
    ben, ben_other = [await connected(await login(network.ben)) for _ in range(2)]
    await frame(
        anna, type="message.send", thread=str(thread.pk), client_id=str(uuid.uuid4()), body="a"
    )
    first = (await until(ben, "message.new"))[-1]["message"]
    await frame(ben, type="read", thread=str(thread.pk), seq=first["seq"])

    anna_saw = await until(anna, "read.updated", user=network.ben.pk)
    assert [f["message"]["id"] for f in anna_saw if f["type"] == "message.ack"] == [first["id"]]
    assert not [f for f in anna_saw if f["type"] == "message.new"]  # the ack carried it
    assert (await until(anna_other, "message.new"))[-1]["message"]["id"] == first["id"]

    await frame(
        anna, type="message.send", thread=str(thread.pk), client_id=str(uuid.uuid4()), body="b"
    )
    ben_saw = await until(ben, "message.new")
    assert ben_saw[-1]["message"]["seq"] == first["seq"] + 1
    assert not [f for f in ben_saw if f["type"] == "read.updated"]  # his tab moved it
    other_saw = await until(ben_other, "read.updated", user=network.ben.pk)
    assert other_saw[-1]["seq"] == first["seq"]  # his other tab clears its unread count
    for socket in (anna, anna_other, ben, ben_other):
        await socket.disconnect()


async def test_events_of_a_socket_carry_its_address_and_a_request_id(
    network: Network, thread: Thread
) -> None:
    anna = await connected(await login(network.anna))
    for _n in range(2):
        await frame(
            anna, type="message.send", thread=str(thread.pk), client_id=str(uuid.uuid4()), body="a"
        )
        await receive_type(anna, "message.ack")
    await anna.disconnect()
    events = await database_sync_to_async(
        lambda: list(AuditEvent.objects.filter(action="message.posted").order_by("id"))
    )()
    assert [event.ip for event in events] == [CLIENT_ADDRESS] * 2
    first, second = (event.request_id for event in events)
    assert first.startswith("ws-") and second.startswith("ws-") and first != second


async def test_only_the_author_changes_a_message_and_outsiders_are_audited(
    network: Network, thread: Thread
) -> None:
    anna = await connected(await login(network.anna))
    await frame(
        anna, type="message.send", thread=str(thread.pk), client_id=str(uuid.uuid4()), body="a"
    )
    message_id = (await receive_type(anna, "message.ack"))["message"]["id"]
    ben = await connected(await login(network.ben))  # a reader, not the author
    await frame(ben, type="message.edit", message=message_id, body="von Ben")
    assert (await receive_type(ben, "error"))["code"] == "refused"
    dirk = await connected(await login(network.dirk))  # an outsider
    await frame(dirk, type="message.delete", message=message_id)
    assert (await receive_type(dirk, "error"))["code"] == "unknown_message"
    for socket in (anna, ben, dirk):
        await socket.disconnect()
    message = await database_sync_to_async(Message.objects.get)(pk=message_id)
    assert message.deleted_at is None and message.edited_at is None
    denied = database_sync_to_async(
        AuditEvent.objects.filter(action="thread.access_denied", target_id=str(thread.pk)).count
    )
    assert await denied() == 1


async def test_a_fault_of_ours_gets_an_error_frame_and_the_socket_goes_on(
    network: Network, thread: Thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    from messaging import actions

    anna = await connected(await login(network.anna))
    with monkeypatch.context() as patch:
        patch.setattr(actions, "messages_after", lambda *args, **kwargs: 1 / 0)
        await frame(anna, type="sync", thread=str(thread.pk), after=0)
        assert (await receive(anna))["code"] == "internal"
    await frame(anna, type="sync", thread=str(thread.pk), after=0)
    assert (await receive(anna))["type"] == "sync.result"
    await anna.disconnect()


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:9999",  # another port of the same host
        "https://127.0.0.1:8000",  # another scheme
        "http://127.0.0.1",  # the default port is another port
        "http://localhost:8000",  # another host
        "null",
        "",
    ],
)
async def test_an_origin_other_than_the_site_exactly_is_refused(
    network: Network, settings, origin: str
) -> None:
    settings.DIENSTWEG_BASE_URL = "http://127.0.0.1:8000"
    settings.CSRF_TRUSTED_ORIGINS = []
    socket = communicator(await login(network.anna), origin=(b"origin", origin.encode()))
    ok, _code = await socket.connect()
    assert not ok


@pytest.mark.parametrize(
    ("base_url", "trusted", "origin"),
    [
        ("http://127.0.0.1:8000", [], "http://127.0.0.1:8000"),
        ("https://dienstweg.example.org", [], "https://dienstweg.example.org:443"),
        ("https://dienstweg.example.org", [], "HTTPS://Dienstweg.Example.org"),
        ("http://127.0.0.1:8000", ["https://alt.example.org:8443"], "https://alt.example.org:8443"),
    ],
)
async def test_the_site_own_origin_is_accepted(
    network: Network, settings, base_url: str, trusted: list[str], origin: str
) -> None:
    settings.DIENSTWEG_BASE_URL = base_url
    settings.CSRF_TRUSTED_ORIGINS = trusted
    socket = communicator(await login(network.anna), origin=(b"origin", origin.encode()))
    ok, code = await socket.connect()
    assert ok, f"refused with {code}"
    await socket.disconnect()


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 8_000 + "]" * 8_000,  # under the size limit, deeper than the decoder's stack
        '{"type": "sync", "thread": ' + "[" * 7_000 + "]" * 7_000 + "}",
        '{"type": "read", "thread": "00000000-0000-0000-0000-000000000000", "seq": '
        + "9" * 5_000
        + "}",
        '{"type": "read", "thread": "00000000-0000-0000-0000-000000000000", "seq": '
        + "9" * 40
        + "}",
        '{"type": "sync", "thread": "00000000-0000-0000-0000-000000000000", "after": 1e999}',
        '{"type": "read", "thread": "00000000-0000-0000-0000-000000000000", "seq": true}',
        '{"type": "read", "thread": "00000000-0000-0000-0000-000000000000", "seq": -1}',
        '{"type": ["sync"]}',
        '{"type": "message.send", "thread": {"a": 1}, "client_id": [1], "body": 5}',
        '"nur ein Text"',
        "null",
    ],
)
async def test_any_frame_content_gets_an_error_and_the_socket_goes_on(
    network: Network, thread: Thread, raw: str
) -> None:
    assert len(raw) <= 16_000
    anna = await connected(await login(network.anna))
    await anna.send_to(text_data=raw)
    error = await receive(anna)
    assert error["type"] == "error" and error["code"] in {"malformed", "unknown_type"}
    assert error["ref"] is None or isinstance(error["ref"], str)
    await frame(anna, type="sync", thread=str(thread.pk), after=0)
    assert (await receive(anna))["type"] == "sync.result"
    assert await database_sync_to_async(Message.objects.count)() == 0
    await anna.disconnect()


async def test_a_socket_beyond_the_limit_closes_the_users_oldest(
    network: Network, thread: Thread, settings
) -> None:
    settings.WS_MAX_SOCKETS_PER_USER = 2
    client = await login(network.anna)
    first = await connected(client)
    second = await connected(client)
    ben = await connected(await login(network.ben))  # another user counts on his own
    third = await connected(client)
    assert await first.receive_output() == {"type": "websocket.close", "code": 4409}
    # The two newest stay open and work, as does Ben's.
    for socket in (second, third, ben):
        await frame(socket, type="sync", thread=str(thread.pk), after=0)
        assert (await receive(socket))["type"] == "sync.result"
    # A closed socket leaves the count: one more closes the second, not the third.
    await third.disconnect()
    fourth = await connected(client)
    fifth = await connected(client)
    assert await second.receive_output() == {"type": "websocket.close", "code": 4409}
    for socket in (fourth, fifth):
        await frame(socket, type="sync", thread=str(thread.pk), after=0)
        assert (await receive(socket))["type"] == "sync.result"
    for socket in (fourth, fifth, ben):
        await socket.disconnect()
