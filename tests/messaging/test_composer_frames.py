"""What the page needs to keep a message's text until the server has it: the ack and every
refusal of a message.send name its client id; a rate-limited send says when to try again,
and the retry on the same socket goes through, stored once."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async

from messaging import consumers
from messaging.models import Message, Thread
from tests.conftest import Network, verified_client
from tests.messaging.conftest import connected, frame, receive_type

socket_test = pytest.mark.usefixtures("committed")

login = database_sync_to_async(verified_client)
stored = database_sync_to_async(lambda: Message.objects.count())


@pytest.mark.asyncio
@socket_test
async def test_a_refused_send_names_its_client_id_and_the_reason(
    network: Network, thread: Thread, settings
) -> None:
    anna = await connected(await login(network.anna))
    client_id = str(uuid.uuid4())
    too_long = "x" * (settings.MESSAGE_MAX_CHARS + 1)
    await frame(
        anna, type="message.send", thread=str(thread.pk), client_id=client_id, body=too_long
    )
    error = await receive_type(anna, "error")
    assert error["client_id"] == client_id and error["code"] == "refused"
    assert "zu lang" in error["message"]
    assert "retry_after" not in error
    assert await stored() == 0
    await anna.disconnect()


@pytest.mark.asyncio
@socket_test
async def test_an_error_that_is_not_about_a_send_names_no_client_id(
    network: Network, thread: Thread
) -> None:
    anna = await connected(await login(network.anna))
    await frame(anna, type="read", thread=str(thread.pk), seq="eins")
    error = await receive_type(anna, "error")
    assert error["code"] == "malformed" and "client_id" not in error
    await anna.disconnect()


@pytest.mark.asyncio
@socket_test
async def test_a_rate_limited_send_says_when_and_its_retry_on_the_same_socket_is_stored_once(
    network: Network, thread: Thread, settings
) -> None:
    # No frame at all within the limit: the refusal does not hang on where the window
    # boundary falls.
    settings.WS_RATE_FRAMES = 0
    anna = await connected(await login(network.anna))
    client_id = str(uuid.uuid4())
    send = {
        "type": "message.send",
        "thread": str(thread.pk),
        "client_id": client_id,
        "body": "Hallo",
    }
    await frame(anna, **send)
    error = await receive_type(anna, "error")
    assert error["code"] == "rate_limited" and error["client_id"] == client_id
    assert 1 <= error["retry_after"] <= settings.WS_RATE_WINDOW_SECONDS
    assert await stored() == 0

    settings.WS_RATE_FRAMES = 100  # the window has passed
    for _attempt in range(2):  # the page's retry, and one more (a retry racing a reconnect)
        await frame(anna, **send)
        ack = await receive_type(anna, "message.ack")
        assert ack["client_id"] == client_id and ack["message"]["body"] == "Hallo"
    assert await stored() == 1
    await anna.disconnect()


@pytest.mark.parametrize(("now", "seconds"), [(20.0, 10), (25.5, 5), (29.99, 1), (29.0001, 1)])
def test_retry_after_is_the_rest_of_the_window_in_whole_seconds(
    now: float, seconds: int, settings
) -> None:
    settings.WS_RATE_WINDOW_SECONDS = 10
    assert consumers.retry_after(now) == seconds
