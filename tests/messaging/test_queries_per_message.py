"""What one message costs in queries on the socket's hot path (bench/step4.py): the
sender's message.send, each reader's delivery of message.new and each reader's read frame.
The counts stay the same however many messages the thread holds and however many readers
it has; what a socket keeps between frames (messaging/kept.py) saves reading the thread,
never asking the rules."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dienstweg import events
from dienstweg.models import Membership, User
from messaging import consumers
from messaging.kept import RECENT, ThreadRows
from messaging.models import Message, Thread
from tests.conftest import Network, make_staff

# The costs measured when this test was written (SQLite and PostgreSQL alike): a change
# that adds a query to the hot path must say why here.
SEND_QUERIES = 10  # the participants and the author's marker in one statement
DELIVERY_QUERIES = 1  # posted in this process, unchanged: the rule, asked with the message
DELIVERY_QUERIES_ELSEWHERE = 3  # posted in another process: and the message with its files
READ_QUERIES = 7  # the reader's label comes with her marker


@dataclass
class Cost:
    send: int
    deliveries: list[int]
    reads: list[int]


@pytest.fixture(autouse=True)
def no_kept_messages() -> None:
    RECENT.clear()


def add_readers(network: Network, count: int) -> list[User]:
    """COUNT more caseworkers at the Jobcenter: readers of its referrals' threads."""
    return [
        make_staff(f"cw{i}@example.org", f"Fallmanagerin {i}", network.jobcenter, "caseworker")
        for i in range(count)
    ]


def one_message(
    thread: Thread, author: User, readers: list[User], rows: dict[int, ThreadRows]
) -> Cost:
    """Send a message as the socket does, deliver it to each reader's socket, and let each
    reader report it read (the author's own report changes nothing and is left out)."""
    with CaptureQueriesContext(connection) as sent:
        shown = consumers._post(
            author, str(thread.pk), "Guten Tag", uuid.uuid4(), None, rows[author.pk]
        )
    deliveries, reads = [], []
    for reader in readers:
        with CaptureQueriesContext(connection) as delivered:
            live = consumers._readable(reader, shown["id"], rows[reader.pk], True)
        assert live is not None and live["body"] == "Guten Tag"
        deliveries.append(len(delivered))
    for reader in readers:
        if reader.pk == author.pk:
            continue
        with CaptureQueriesContext(connection) as read:
            consumers._read(reader, str(thread.pk), shown["seq"], rows[reader.pk])
        reads.append(len(read))
    return Cost(len(sent), deliveries, reads)


def test_queries_per_message_stay_constant_as_the_thread_grows(
    network: Network, thread: Thread
) -> None:
    readers = [network.anna, network.ben]
    rows = {user.pk: ThreadRows() for user in readers}
    one_message(thread, network.anna, readers, rows)  # the sockets read the thread's row once
    second = one_message(thread, network.anna, readers, rows)
    for _ in range(10):
        one_message(thread, network.ben, readers, rows)
    twelfth = one_message(thread, network.anna, readers, rows)
    more = readers + add_readers(network, 4)
    rows.update({user.pk: ThreadRows() for user in more if user.pk not in rows})
    one_message(thread, network.ben, more, rows)
    wider = one_message(thread, network.anna, more, rows)

    assert second == twelfth
    assert wider.send == second.send == SEND_QUERIES
    assert set(wider.deliveries) == set(second.deliveries) == {DELIVERY_QUERIES}
    assert set(wider.reads) == set(second.reads) == {READ_QUERIES}


def test_a_delivery_of_a_message_posted_elsewhere_costs_the_same_for_every_reader(
    network: Network, thread: Thread
) -> None:
    more = [network.anna, network.ben, *add_readers(network, 3)]
    rows = {user.pk: ThreadRows() for user in more}
    counts = []
    for _ in range(3):
        shown = consumers._post(network.anna, str(thread.pk), "Hallo", uuid.uuid4(), None)
        RECENT.clear()  # as in a process where it was not posted
        for reader in more:
            with CaptureQueriesContext(connection) as delivered:
                live = consumers._readable(reader, shown["id"], rows[reader.pk], True)
            assert live is not None and live["body"] == "Hallo"
            counts.append(len(delivered))
    # The first delivery to each socket reads the thread's row; later ones do not.
    assert set(counts[len(more) :]) == {DELIVERY_QUERIES_ELSEWHERE}


def test_a_reader_who_lost_the_thread_gets_nothing_even_from_the_kept_message(
    network: Network, thread: Thread
) -> None:
    rows = {user.pk: ThreadRows() for user in (network.anna, network.ben)}
    shown = consumers._post(network.anna, str(thread.pk), "Hallo", uuid.uuid4(), None)
    Membership.objects.filter(user=network.ben).delete()
    assert consumers._readable(network.ben, shown["id"], rows[network.ben.pk], True) is None
    assert consumers._readable(network.anna, shown["id"], rows[network.anna.pk], True)


def test_a_message_is_kept_before_its_readers_are_told(
    committed: None, network: Network, thread: Thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The readers' sockets in the sender's process are told after the commit; the message
    must be kept by then, or each of them loads it again (3 queries instead of 1)."""
    kept_when_told: list[bool] = []

    def told(user_ids: list[int], event: dict[str, str]) -> None:
        if event["type"] == "message.new":
            kept_when_told.append(RECENT.shown(event["message"], me=network.ben.pk) is not None)

    monkeypatch.setattr(events, "send_now", told)
    consumers._post(network.anna, str(thread.pk), "Hallo", uuid.uuid4(), None)
    assert kept_when_told == [True]


def test_a_frames_events_are_sent_from_the_loop_after_its_work(
    committed: None, network: Network, thread: Thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frame's worker thread keeps the events its writes committed (it does not block on
    the event loop for each one); in_thread sends them afterwards, in commit order."""
    sent: list[tuple[str, list[int]]] = []

    async def send(user_ids: list[int], event: dict[str, Any]) -> None:
        sent.append((event["type"], user_ids))

    def blocked(*args: Any) -> None:
        raise AssertionError("a worker thread waited on the event loop")

    monkeypatch.setattr(events, "_send", send)
    monkeypatch.setattr(events, "async_to_sync", blocked)

    def work() -> None:
        shown = consumers._post(network.anna, str(thread.pk), "Hallo", uuid.uuid4(), None)
        consumers._read(network.ben, str(thread.pk), shown["seq"])

    async_to_sync(consumers.in_thread)(work)
    readers = sorted([network.anna.pk, network.ben.pk])
    assert sent == [("message.new", readers), ("read.updated", readers)]


def test_a_frame_whose_socket_went_away_still_sends_its_events(
    committed: None, network: Network, thread: Thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A socket closed while its frame's work runs stops waiting for it; the work goes on,
    commits, and the readers are told all the same."""
    sent: list[str] = []

    async def send(user_ids: list[int], event: dict[str, Any]) -> None:
        sent.append(event["type"])

    monkeypatch.setattr(events, "_send", send)
    started, release = threading.Event(), threading.Event()

    def work() -> None:
        started.set()
        assert release.wait(30)
        consumers._post(network.anna, str(thread.pk), "Hallo", uuid.uuid4(), None)

    async def closed_meanwhile() -> None:
        frame = asyncio.ensure_future(consumers.in_thread(work))
        assert await asyncio.to_thread(started.wait, 30)
        frame.cancel()
        with pytest.raises(asyncio.CancelledError):
            await frame
        release.set()
        deadline = time.monotonic() + 30  # a busy machine may stall the worker thread
        while not sent and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async_to_sync(closed_meanwhile)()
    assert sent == ["message.new"]
    assert Message.objects.filter(thread=thread, seq=1).exists()
