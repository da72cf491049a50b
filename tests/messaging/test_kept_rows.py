"""What a socket keeps between frames (the threads' rows, the payloads of messages posted in
its process: messaging/kept.py) is never a right. A socket that has sent and received in a
thread, and so keeps its row and its messages, can neither send nor receive there once the
right has ended: whether or not access.revoked has reached it (a consent that expires, or
a permission removed by a plain delete, tells no socket), every send and every delivery
asks the database."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from dienstweg import actions as core
from dienstweg.models import Consent, Membership
from messaging.models import Message, Thread
from referrals.models import Referral, ReferralGroupPermission
from tests.conftest import Network
from tests.messaging.conftest import frame, receive, receive_type
from tests.messaging.test_revocation import anna_posts, following, nothing_arrives

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("committed")]


async def send(socket: Any, thread: Thread, body: str) -> dict[str, Any]:
    """A message.send on the socket: the ack, or the error frame."""
    await frame(
        socket, type="message.send", thread=str(thread.pk), client_id=str(uuid.uuid4()), body=body
    )
    while True:
        answer = await receive(socket)
        if answer["type"] in ("message.ack", "error"):
            return answer


async def arrives(socket: Any, body: str) -> bool:
    """Whether a message.new with BODY arrives (passing over the others)."""
    while True:
        if (await receive_type(socket, "message.new"))["message"]["body"] == body:
            return True


async def busy_in_the_thread(network: Network, thread: Thread) -> tuple[Any, Any]:
    """Anna's and Ben's sockets, each having sent in the thread and received the other's
    message: their sockets keep the thread's row and the messages of this process."""
    anna = await following(network.anna, thread)
    ben = await following(network.ben, thread)
    assert (await send(ben, thread, "Von Ben"))["type"] == "message.ack"
    assert await arrives(anna, "Von Ben")
    assert (await send(anna, thread, "Von Anna"))["type"] == "message.ack"
    assert await arrives(ben, "Von Anna")
    return anna, ben


async def stored(thread: Thread, body: str) -> bool:
    return await database_sync_to_async(
        Message.objects.filter(thread=thread, body_enc__isnull=False).count
    )() > 0 and body in await database_sync_to_async(_bodies)(thread)


def _bodies(thread: Thread) -> list[str]:
    rows = Message.objects.filter(thread=thread).select_related("thread__family__data_key")
    return [message.decrypt_field("body") for message in rows]


async def refused_both_ways(network: Network, thread: Thread, anna: Any, ben: Any) -> None:
    """Ben's send is refused and stores nothing; Anna's next message reaches Anna, not Ben."""
    answer = await send(ben, thread, "Nach dem Ende")
    assert answer["type"] == "error" and answer["code"] == "unknown_thread"
    assert not await stored(thread, "Nach dem Ende")
    await anna_posts(thread, network, body="Nur noch für Anna")
    assert await arrives(anna, "Nur noch für Anna")
    assert await nothing_arrives(ben)
    await anna.disconnect()
    await ben.disconnect()


async def test_an_expired_consent_stops_sending_and_receiving_without_any_event(
    network: Network, thread: Thread, referral: Referral
) -> None:
    anna, ben = await busy_in_the_thread(network, thread)
    yesterday = timezone.localdate() - timedelta(days=1)
    # The consent's end passing: no action, no signal, no access.revoked.
    await database_sync_to_async(Referral.objects.filter(pk=referral.pk).update)(
        access_until=yesterday
    )
    await refused_both_ways(network, thread, anna, ben)


async def test_a_permission_removed_by_a_plain_delete_stops_sending_and_receiving(
    network: Network, thread: Thread, referral: Referral
) -> None:
    anna, ben = await busy_in_the_thread(network, thread)
    # A queryset delete sends no signal: the socket is told nothing.
    await database_sync_to_async(
        ReferralGroupPermission.objects.filter(
            content_object=referral, group=network.jobcenter.group
        ).delete
    )()
    await refused_both_ways(network, thread, anna, ben)


async def test_a_revoked_consent_stops_sending_and_receiving_on_the_open_socket(
    network: Network, thread: Thread, consent: Consent
) -> None:
    anna, ben = await busy_in_the_thread(network, thread)
    await database_sync_to_async(core.revoke_consent)(
        consent, note="Widerruf per Telefon", by=network.anna
    )
    assert await receive(ben) == {"type": "access.revoked", "thread": str(thread.pk)}
    await refused_both_ways(network, thread, anna, ben)


async def test_a_removed_membership_stops_sending_and_receiving_on_the_open_socket(
    network: Network, thread: Thread
) -> None:
    anna, ben = await busy_in_the_thread(network, thread)
    membership = await database_sync_to_async(Membership.objects.get)(
        user=network.ben, agency=network.jobcenter
    )
    await database_sync_to_async(core.remove_membership)(membership, by=None)
    assert await receive(ben) == {"type": "access.revoked", "thread": str(thread.pk)}
    await refused_both_ways(network, thread, anna, ben)
