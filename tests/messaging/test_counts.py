"""The live counts over the tab's socket (dienstweg/worklist.py): told that her counts may
have changed (no number, no content), the page asks and gets numbers only."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from django.db import transaction
from django.test import Client

from dienstweg.notifications import notify
from tests.conftest import Network, verified_client
from tests.messaging.conftest import WAIT, connected, frame, receive_counts, receive_type

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("committed")]


@database_sync_to_async
def login(user) -> Client:
    return verified_client(user)


@database_sync_to_async
def notify_ben(network: Network) -> None:
    with transaction.atomic():
        notify([network.ben], kind="referral.received", title="Neue Vermittlung", url="/")


async def test_a_notification_tells_the_socket_and_the_page_asks_for_numbers(
    network: Network,
) -> None:
    ben = await connected(await login(network.ben))
    await notify_ben(network)
    # (receive_type passes over the counts' frames: read the socket itself.)
    assert json.loads(await ben.receive_from(timeout=WAIT)) == {"type": "counts.changed"}
    await frame(ben, type="counts", queue=True)
    counts = await receive_counts(ben)
    assert counts["notifications"] == 1
    assert counts["badges"] == {"messages": 0}
    # Only her own sections, and only numbers.
    assert "referrals.assigned" in counts["queue"]
    assert "referrals.unassigned" not in counts["queue"]  # she leads nothing
    assert all(isinstance(number, int) for number in counts["queue"].values())
    await frame(ben, type="counts", queue=False)
    assert (await receive_counts(ben))["queue"] == {}
    await frame(ben, type="counts", queue="ja")
    assert (await receive_type(ben, "error"))["code"] == "malformed"
    await ben.disconnect()
