"""Messaging personas and sockets. Who may use which thread here:
- the referral thread (Anna's referral of the Yılmaz family to the Jobcenter): Anna (coach
  at the sending project) and Ben (caseworker at the receiving Jobcenter);
- Dirk (caseworker at an unrelated agency) and Dora (DPO) may use none of them.
Sockets are real Channels WebsocketCommunicators on the project's ASGI application, with
the session cookie of a verified login and the site's own Origin (DIENSTWEG_BASE_URL)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core.cache import cache
from django.test import Client

from config.asgi import application
from dienstweg.models import Consent, DataCategory, Family
from messaging import consumers
from messaging.models import Thread
from referrals.models import Referral
from tests.builders import build_referral, build_referral_thread
from tests.conftest import Network, verified_client

CLIENT_ADDRESS = "192.0.2.7"
# Seconds a step of a socket (connect, a frame, the close) may take before the test fails:
# a passing run needs a fraction of one, but a busy machine may stall the worker threads.
# Checks that nothing arrives (receive_nothing) keep their short waits: slowness can only
# make them pass, never fail.
WAIT = 30.0


class Communicator(WebsocketCommunicator):
    """Channels' test socket, with WAIT instead of its default of one second."""

    async def connect(self, timeout: float = WAIT) -> Any:
        return await super().connect(timeout)

    async def receive_from(self, timeout: float = WAIT) -> Any:
        return await super().receive_from(timeout)

    async def receive_output(self, timeout: float = WAIT) -> Any:
        return await super().receive_output(timeout)

    async def disconnect(self, code: int = 1000, timeout: float = WAIT) -> None:
        await super().disconnect(code, timeout)


@pytest.fixture(autouse=True)
def fresh_counters() -> None:
    consumers._frames.clear()  # the frame counters of the rate limit
    cache.clear()


@pytest.fixture
def referral(network: Network, family: Family, consent: Consent) -> Referral:
    return build_referral(network, family, notes={DataCategory.EMPLOYMENT: "sucht 20 Stunden"})


@pytest.fixture
def thread(referral: Referral) -> Thread:
    return build_referral_thread(referral)


def cookie_of(client: Client) -> tuple[bytes, bytes]:
    """The client's cookies, as a browser sends them with the socket's handshake: the
    session's and, once chosen, the language's."""
    assert settings.SESSION_COOKIE_NAME in client.cookies
    pairs = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
    return (b"cookie", pairs.encode())


def site_origin() -> tuple[bytes, bytes]:
    """The Origin header of the site's own pages (DIENSTWEG_BASE_URL, as settings have it now)."""
    return (b"origin", settings.DIENSTWEG_BASE_URL.encode())


def communicator(client: Client | None, *, origin: tuple[bytes, bytes] | None = None) -> Any:
    headers = [origin or site_origin()] + ([cookie_of(client)] if client is not None else [])
    socket = Communicator(application, "/ws/", headers=headers)
    socket.scope["client"] = [CLIENT_ADDRESS, 50000]  # as Daphne names the peer
    return socket


async def connected(client: Client) -> Any:
    socket = communicator(client)
    ok, code = await socket.connect()
    assert ok, f"refused with {code}"
    return socket


async def frame(socket: Any, **data: Any) -> None:
    await socket.send_to(text_data=json.dumps(data))


# The live counts' frames (numbers only, dienstweg/worklist.py) arrive beside the events most
# of these tests are about; receive() passes over them.
COUNTS = ("counts", "counts.changed")


async def receive(socket: Any, timeout: float = WAIT) -> dict[str, Any]:
    """The next frame that is not about the live counts."""
    while True:
        data = json.loads(await socket.receive_from(timeout=timeout))
        if data.get("type") not in COUNTS:
            return data


async def receive_counts(socket: Any, timeout: float = WAIT) -> dict[str, Any]:
    """The next frame with the live counts, passing over everything else."""
    while True:
        data = json.loads(await socket.receive_from(timeout=timeout))
        if data.get("type") == "counts":
            return data


async def receive_type(socket: Any, kind: str, timeout: float = WAIT) -> dict[str, Any]:
    """The next frame of type KIND (skipping others, such as typing)."""
    while True:
        data = await receive(socket, timeout)
        if data["type"] == kind:
            return data


def client_for(user: Any) -> Client:
    return verified_client(user)
