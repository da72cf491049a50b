"""No message text passes through the channel layer (Redis in production): an event names
the message by its id, and each receiving socket loads and decrypts it for its own user,
after checking that she may still read the thread. Shown by capturing everything the
layer is handed (any layer), and with Redis by watching the server itself (MONITOR)."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from dienstweg.uploads import Upload
from messaging import actions
from messaging.models import Thread
from tests.conftest import Network, verified_client
from tests.messaging.conftest import connected, frame, receive_type

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("committed")]

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"


def markers() -> dict[str, str]:
    """Unique texts for a new message, its edit and its attachment's name."""
    tag = uuid.uuid4().hex
    return {
        "posted": f"Klartext-{tag}-gesendet",
        "edited": f"Klartext-{tag}-bearbeitet",
        "file": f"Klartext-{tag}-datei",
    }


@pytest.fixture
def handed_to_layer(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Everything given to the channel layer's send and group_send (and production's
    group_send_many, config/channel_layer.py), as text."""
    layer = get_channel_layer()
    seen: list[str] = []
    for name in ("send", "group_send", "group_send_many"):
        if not hasattr(layer, name):
            continue
        original = getattr(layer, name)

        def capture(target: Any, message: dict[str, Any], original: Any = original) -> Any:
            seen.append(f"{target} {message!r}")
            return original(target, message)

        monkeypatch.setattr(layer, name, capture)
    return seen


async def exchange(network: Network, thread: Thread, text: dict[str, str]) -> None:
    """Anna posts through her socket, edits it, and posts a file through the action; Ben's
    socket shows all three with their text: the receiving side decrypted them itself."""
    anna = await connected(await database_sync_to_async(verified_client)(network.anna))
    ben = await connected(await database_sync_to_async(verified_client)(network.ben))
    client_id = str(uuid.uuid4())
    await frame(
        anna, type="message.send", thread=str(thread.pk), client_id=client_id, body=text["posted"]
    )
    ack = await receive_type(anna, "message.ack")
    new = await receive_type(ben, "message.new")
    assert new["message"]["body"] == text["posted"]
    assert new["message"]["author_name"] == "Anna Albers"
    await frame(anna, type="message.edit", message=ack["message"]["id"], body=text["edited"])
    updated = await receive_type(ben, "message.updated")
    assert (updated["message"]["body"], updated["message"]["edited"]) == (text["edited"], True)

    def post_file() -> None:
        actions.post_message(
            thread,
            body="Anbei",
            client_id=uuid.uuid4(),
            attachments=[Upload(name=f"{text['file']}.pdf", content=PDF)],
            by=network.anna,
        )

    await database_sync_to_async(post_file)()
    with_file = await receive_type(ben, "message.new")
    assert [f["name"] for f in with_file["message"]["attachments"]] == [f"{text['file']}.pdf"]
    await anna.disconnect()
    await ben.disconnect()


async def test_the_layer_is_handed_ids_never_text(
    network: Network, thread: Thread, handed_to_layer: list[str]
) -> None:
    text = markers()
    await exchange(network, thread, text)
    assert any("message.new" in sent for sent in handed_to_layer)  # the capture works
    leaked = [sent for sent in handed_to_layer for marker in text.values() if marker in sent]
    assert not leaked
    # Nor a name of the family (the thread's subject) or of the file.
    assert not [sent for sent in handed_to_layer if "Yılmaz" in sent or ".pdf" in sent]


async def test_a_reader_who_lost_the_thread_gets_nothing_of_a_later_message(
    network: Network, thread: Thread
) -> None:
    """The socket loads the message for its own user: one who may no longer read the thread
    gets no text even if an event reaches her sockets (a late or misdirected one)."""
    from dienstweg.events import send_now

    text = markers()
    dirk = await connected(await database_sync_to_async(verified_client)(network.dirk))
    posted = await database_sync_to_async(actions.post_message)(
        thread, body=text["posted"], client_id=uuid.uuid4(), by=network.anna
    )
    # Dirk (the outsider) is sent the event as if he were a reader.
    await database_sync_to_async(send_now)(
        [network.dirk.pk],
        actions.MessageChanged(type="message.new", message=str(posted.message.pk)),
    )
    # A socket handles the layer's events one after the other: once the next event shows,
    # the one before has been dealt with.
    await database_sync_to_async(send_now)(
        [network.dirk.pk], {"type": "typing", "thread": "-", "user": 0, "name": "Ende"}
    )
    assert (await receive_type(dirk, "typing", timeout=10))["name"] == "Ende"
    assert dirk.output_queue.empty()
    await dirk.disconnect()


@pytest.fixture
def redis_monitor() -> Iterator[list[str]]:
    """Every command the Redis server executes while the test runs (MONITOR, on a second
    connection): what anyone with access to Redis could read."""
    import redis

    url = os.environ["REDIS_URL"]
    watcher, control = redis.Redis.from_url(url), redis.Redis.from_url(url)
    start, stop = f"monitor-start-{uuid.uuid4().hex}", f"monitor-stop-{uuid.uuid4().hex}"
    seen: list[str] = []
    started = threading.Event()

    def watch() -> None:
        with watcher.monitor() as monitor:
            for command in monitor.listen():
                text = command["command"]
                if start in text:
                    started.set()
                elif stop in text:
                    return
                elif started.is_set():
                    seen.append(text)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    # MONITOR is on once the watcher sees a command sent after it.
    while not started.wait(0.05):
        control.echo(start)
    yield seen
    control.echo(stop)
    thread.join(timeout=30)
    assert not thread.is_alive()


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL=redis://)")
async def test_redis_carries_no_message_text(
    network: Network, thread: Thread, redis_monitor: list[str]
) -> None:
    text = markers()
    await exchange(network, thread, text)
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    published = [command for command in redis_monitor if command.upper().startswith("PUBLISH")]
    assert any(prefix in command for command in published)  # the events went through Redis
    assert not [c for c in redis_monitor for marker in text.values() if marker in c]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL=redis://)")
async def test_one_event_to_many_groups_reaches_each_group_once() -> None:
    """Production's group_send_many (config/channel_layer.py): one pipelined publication per
    group, each member of each named group gets the message once, a group not named gets
    nothing."""
    layer = get_channel_layer()
    assert hasattr(layer, "group_send_many")
    tag = uuid.uuid4().hex[:8]
    ben, ben_tab, clara, dirk = [await layer.new_channel() for _ in range(4)]
    for group, channel in (
        (f"t{tag}.ben", ben),
        (f"t{tag}.ben", ben_tab),
        (f"t{tag}.clara", clara),
        (f"t{tag}.dirk", dirk),
    ):
        await layer.group_add(group, channel)
    message = {"type": "deliver", "event": {"type": "read.updated", "seq": 3}}
    await layer.group_send_many([f"t{tag}.ben", f"t{tag}.clara"], message)
    for channel in (ben, ben_tab, clara):
        assert await asyncio.wait_for(layer.receive(channel), 30) == message
    await layer.group_send_many([f"t{tag}.dirk"], {"type": "deliver", "event": {"seq": 4}})
    # Dirk's next message is the one sent to him alone: nothing of the first reached him.
    assert (await asyncio.wait_for(layer.receive(dirk), 30))["event"] == {"seq": 4}
    for channel in (ben, ben_tab, clara):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 0.5)
