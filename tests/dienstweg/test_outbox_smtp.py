"""Against a real SMTP server on 127.0.0.1 (aiosmtpd) that hangs: the request that notifies
never touches it, the sender times out and keeps the mail for a retry, and once the server
answers again the mail arrives exactly once.

Anna (coach at the project) sends a referral to the Jobcenter through the page; Jana, lead
there, is notified by e-mail."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.urls import reverse
from django.utils import timezone

from dienstweg import outbox
from dienstweg.models import DataCategory, Membership, OutboxMail
from dienstweg.outbox import FIRST_RETRY
from referrals.models import Referral
from tests.concurrency import TIMEOUT
from tests.conftest import make_staff


class HangingServer:
    """The SMTP server's handler: counts connections, keeps the mails it accepted and,
    while HANGING is set, holds each mail's DATA unanswered until RELEASED."""

    def __init__(self) -> None:
        self.connections = 0
        self.connected = threading.Event()
        self.received: list[Envelope] = []
        self.hanging = threading.Event()
        self.holding = threading.Event()  # a mail is being held right now
        self.released = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.hanging.is_set():
            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.released.wait, TIMEOUT)
            # The sender has long given up on this one: it is not delivered.
            return "451 4.3.0 Bitte später noch einmal"
        self.received.append(envelope)
        return "250 OK"


class CountingSMTP(SMTP):
    def connection_made(self, transport: Any) -> None:
        handler: HangingServer = self.event_handler
        handler.connections += 1
        handler.connected.set()
        super().connection_made(transport)


class CountingController(Controller):
    def factory(self) -> SMTP:
        return CountingSMTP(self.handler, **self.SMTP_kwargs)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server(settings) -> Iterator[HangingServer]:
    """A real SMTP server in a thread, and the mail settings pointed at it."""
    handler = HangingServer()
    controller = CountingController(
        handler, hostname="127.0.0.1", port=free_port(), ready_timeout=TIMEOUT
    )
    controller.start()
    # start() connects once to see the server up: not a connection of ours.
    assert handler.connected.wait(TIMEOUT)
    handler.connections = 0
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    # Short, so that the test does not wait long for the hanging server; the answering
    # server gets a wide one (below). No step depends on how long anything takes.
    settings.EMAIL_TIMEOUT = 2
    try:
        yield handler
    finally:
        handler.released.set()
        controller.stop()


class Clock:
    def __init__(self) -> None:
        self.now = timezone.now()

    def __call__(self) -> datetime:
        return self.now


def test_a_hanging_mail_server_holds_up_no_request_and_gets_the_mail_once_it_answers(
    committed, network, family, consent, anna_client, smtp_server: HangingServer, settings
) -> None:
    # Real commits, as in production: whatever waited for the commit would run here.
    jana = make_staff("jana@example.org", "Jana Jansen", network.jobcenter, Membership.Role.LEAD)
    smtp_server.hanging.set()

    response = anna_client.post(
        reverse("referral_new", args=[family.pk]),
        {
            "to_agency": network.jobcenter.pk,
            "need": "Unterstützung bei der Arbeitssuche",
            "categories": [DataCategory.IDENTITY],
            "send": "",
        },
    )

    assert response.status_code == 302
    referral = Referral.objects.get()
    assert referral.state == Referral.State.SENT
    # The request is done and the mail server has not even been connected to.
    assert smtp_server.connections == 0
    queued = OutboxMail.objects.get(user=jana)
    assert queued.sent_at is None and queued.attempts == 0

    # The sender meets the hanging server: it gives up after EMAIL_TIMEOUT and keeps the
    # mail for a retry.
    clock = Clock()
    done = outbox.send_due(clock=clock)
    assert (done.sent, done.retried) == (0, 1)
    assert smtp_server.holding.is_set()
    assert smtp_server.connections == 1
    queued.refresh_from_db()
    assert queued.sent_at is None and queued.given_up_at is None
    assert queued.attempts == 1
    assert queued.due_at == clock.now + FIRST_RETRY
    assert queued.claimed_until is None
    assert outbox.send_due(clock=clock).sent == 0  # not due before its retry time
    assert smtp_server.connections == 1

    # The server answers again; the retry delivers the mail, exactly once.
    smtp_server.hanging.clear()
    smtp_server.released.set()
    settings.EMAIL_TIMEOUT = 30  # wide: a busy machine must not make the answer look late
    clock.now += FIRST_RETRY
    assert outbox.send_due(clock=clock).sent == 1
    clock.now += timedelta(days=1)
    assert outbox.send_due(clock=clock).sent == 0
    [delivered] = smtp_server.received
    assert delivered.rcpt_tos == [jana.email]
    content = delivered.original_content or b""
    assert family.reference.encode() in content
    assert reverse("referral_detail", args=[referral.pk]).encode() in content
    queued.refresh_from_db()
    assert queued.sent_at == clock.now - timedelta(days=1)
