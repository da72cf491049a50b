"""A right that ends takes the socket with it at once: logout, an ended session and
deactivation close the affected sockets; removal from the agency, a withdrawn referral and
a revoked consent take the thread from the sockets that followed it, and later messages
no longer reach them."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from dienstweg import actions as core
from dienstweg.models import Consent, Membership
from messaging.models import Thread
from referrals.actions import steps as referral_actions
from referrals.models import Referral
from tests.conftest import Clock, Network, verified_client
from tests.messaging.conftest import COUNTS, connected, frame, receive, receive_type

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("committed")]


@database_sync_to_async
def login(user: Any) -> Client:
    return verified_client(user)


async def closed(socket: Any) -> int:
    """The close code the server sent."""
    output = await socket.receive_output()
    assert output["type"] == "websocket.close", output
    return int(output.get("code", 1000))


async def following(user: Any, thread: Thread) -> Any:
    socket = await connected(await login(user))
    await frame(socket, type="sync", thread=str(thread.pk), after=0)
    await receive_type(socket, "sync.result")
    return socket


async def anna_posts(thread: Thread, network: Network, body: str = "Neu") -> None:
    from messaging import actions

    await database_sync_to_async(actions.post_message)(
        thread, body=body, client_id=uuid.uuid4(), by=network.anna
    )


async def nothing_arrives(socket: Any) -> bool:
    """Nothing but the live counts' frames (numbers only) within half a second."""
    while not await socket.receive_nothing(timeout=0.5):
        if json.loads(await socket.receive_from())["type"] not in COUNTS:
            return False
    return True


async def test_logout_closes_the_sockets_of_that_session(network: Network, thread: Thread) -> None:
    client = await login(network.ben)
    same_session = await connected(client)
    other_session = await connected(await login(network.ben))
    response = await database_sync_to_async(client.post)("/abmelden/")
    assert response.status_code == 302
    assert await closed(same_session) == 4401
    # The other browser's session lives on, and still gets the thread's messages.
    await frame(other_session, type="sync", thread=str(thread.pk), after=0)
    await receive_type(other_session, "sync.result")
    await anna_posts(thread, network)
    assert (await receive_type(other_session, "message.new"))["message"]["body"] == "Neu"
    await other_session.disconnect()


async def test_deactivation_closes_every_socket_of_the_account(
    network: Network, thread: Thread
) -> None:
    sockets = [await connected(await login(network.ben)) for _n in range(2)]
    await database_sync_to_async(core.deactivate_staff)(network.ben, by=None)
    for socket in sockets:
        assert await closed(socket) == 4401


async def test_an_ended_session_closes_its_socket_and_a_new_one_is_refused(
    network: Network,
) -> None:
    client = await login(network.ben)
    socket = await connected(client)
    await database_sync_to_async(core.end_all_sessions)(network.ben, by=None)
    assert await closed(socket) == 4401
    from tests.messaging.conftest import communicator

    ok, _code = await communicator(client).connect()
    assert not ok


async def test_removal_from_the_agency_takes_the_thread_away(
    network: Network, thread: Thread
) -> None:
    ben = await following(network.ben, thread)
    membership = await database_sync_to_async(Membership.objects.get)(
        user=network.ben, agency=network.jobcenter
    )
    await database_sync_to_async(core.remove_membership)(membership, by=None)
    assert await receive(ben) == {"type": "access.revoked", "thread": str(thread.pk)}
    await anna_posts(thread, network)
    assert await nothing_arrives(ben)
    await frame(ben, type="sync", thread=str(thread.pk), after=0)
    assert (await receive(ben))["code"] == "unknown_thread"
    await ben.disconnect()


async def test_consent_revocation_takes_the_thread_from_the_receiver_only(
    network: Network, thread: Thread, consent: Consent
) -> None:
    ben = await following(network.ben, thread)
    anna = await following(network.anna, thread)
    await database_sync_to_async(core.revoke_consent)(
        consent, note="Widerruf per Telefon", by=network.anna
    )
    assert await receive(ben) == {"type": "access.revoked", "thread": str(thread.pk)}
    await anna_posts(thread, network, body="Nach dem Widerruf")
    assert await nothing_arrives(ben)
    # The sending project keeps its thread.
    assert (await receive_type(anna, "message.new"))["message"]["body"] == "Nach dem Widerruf"
    await ben.disconnect()
    await anna.disconnect()


async def test_a_withdrawn_referral_takes_the_thread_from_the_receiver(
    network: Network, thread: Thread, referral: Referral
) -> None:
    ben = await following(network.ben, thread)
    await database_sync_to_async(referral_actions.withdraw_referral)(referral, by=network.anna)
    assert await receive(ben) == {"type": "access.revoked", "thread": str(thread.pk)}
    await anna_posts(thread, network)
    assert await nothing_arrives(ben)
    await ben.disconnect()


async def test_a_rolled_back_post_reaches_no_socket(network: Network, thread: Thread) -> None:
    from django.db import transaction

    from messaging import actions

    ben = await following(network.ben, thread)

    def post_then_fail() -> None:
        with transaction.atomic():
            actions.post_message(thread, body="verworfen", client_id=uuid.uuid4(), by=network.anna)
            raise RuntimeError("the surrounding action failed")

    with pytest.raises(RuntimeError):
        await database_sync_to_async(post_then_fail)()
    assert await nothing_arrives(ben)
    await asyncio.sleep(0)
    await ben.disconnect()


async def test_an_idle_session_closes_its_socket_instead_of_delivering(
    network: Network, thread: Thread, settings, clock: Clock
) -> None:
    ben = await following(network.ben, thread)
    # No frame from Ben's socket, no request from his browser for longer than the idle time.
    clock.advance(settings.SESSION_IDLE_TIMEOUT.total_seconds() + 1)
    await anna_posts(thread, network, body="Nach der Pause")
    assert await closed(ben) == 4401


async def test_frames_keep_the_session_alive(
    network: Network, thread: Thread, settings, clock: Clock
) -> None:
    ben = await following(network.ben, thread)
    idle = settings.SESSION_IDLE_TIMEOUT.total_seconds()
    for _n in range(3):  # twice the idle time in all, a frame after every two thirds of it
        clock.advance(idle * 2 / 3)
        await frame(ben, type="sync", thread=str(thread.pk), after=0)
        await receive_type(ben, "sync.result")  # handled at this moment, not later
    await anna_posts(thread, network, body="Noch da?")
    assert (await receive_type(ben, "message.new"))["message"]["body"] == "Noch da?"
    await ben.disconnect()


async def test_a_role_changed_by_a_plain_save_takes_the_thread_away(
    network: Network, thread: Thread
) -> None:
    # Whichever way a right changes (here a save outside every action, as a shell or a
    # script would), the socket re-checks at once.
    ben = await following(network.ben, thread)

    def make_ben_dpo() -> None:
        membership = Membership.objects.get(user=network.ben, agency=network.jobcenter)
        membership.role = Membership.Role.DPO
        membership.save()

    await database_sync_to_async(make_ben_dpo)()
    assert await receive(ben) == {"type": "access.revoked", "thread": str(thread.pk)}
    await anna_posts(thread, network)
    assert await nothing_arrives(ben)
    await ben.disconnect()


async def test_a_membership_deleted_by_a_plain_delete_takes_the_thread_away(
    network: Network, thread: Thread
) -> None:
    ben = await following(network.ben, thread)
    await database_sync_to_async(
        Membership.objects.filter(user=network.ben, agency=network.jobcenter).delete
    )()
    assert await receive(ben) == {"type": "access.revoked", "thread": str(thread.pk)}
    await anna_posts(thread, network)
    assert await nothing_arrives(ben)
    await ben.disconnect()


async def test_an_account_deactivated_by_a_plain_save_closes_its_sockets(
    network: Network, thread: Thread
) -> None:
    socket = await connected(await login(network.ben))

    def deactivate() -> None:
        network.ben.is_active = False
        network.ben.save()

    await database_sync_to_async(deactivate)()
    assert await closed(socket) == 4401
