"""Live messaging in a real browser: the project's coach and the Jobcenter's caseworker
write in the thread of the demo referral between them and see each other's messages,
read markers and typing without reload; when the caseworker's network drops, her page
catches up on what she missed, in order and none twice; and an event the channel layer
never delivered is repaired as soon as the gap shows."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Server
from tests.browser.test_referrals import log_in

COACH = "anna@demo.dienstweg.invalid"  # Familiencoaching: sent the Yılmaz referral
CASEWORKER = "ben@demo.dienstweg.invalid"  # Jobcenter: the referral is assigned to him
LIVE = "Live verbunden"
OFFLINE = re.compile("^Verbindung unterbrochen")
BEN_LABEL = "Ben Becker (Jobcenter Kreis Recklinghausen, Bezirksstelle Gladbeck)"
ANNA_LABEL = "Anna Albers (Familiencoaching Gladbeck)"
# ms for anything that crosses the socket, a reconnect's backoff included: a passing run on a
# quiet machine needs a few seconds at most, a busy one may need many more.
WAIT = 60_000


class Relay:
    """A TCP relay in front of the server for one browser context: cut() drops every
    connection through it and refuses new ones until restore(), as a lost network would.
    (context.set_offline(True), DevTools' offline emulation, cannot: Chromium keeps the
    WebSocket open and only holds its frames back until it is online again.)"""

    def __init__(self, target_port: int, port: int) -> None:
        self.target_port = target_port
        # On the port the server trusts as an origin (DIENSTWEG_CSRF_TRUSTED_ORIGINS).
        self.listener = socket.create_server(("127.0.0.1", port))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.open = threading.Event()
        self.open.set()
        self.refused_sockets = 0  # attempts to reopen /ws/ while cut
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return  # closed
            if not self.open.is_set():
                self._refuse(client)
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            upstream.settimeout(None)
            with self.lock:
                self.connections |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _refuse(self, client: socket.socket) -> None:
        client.settimeout(2)
        try:
            if client.recv(16).startswith(b"GET /ws/"):
                with self.lock:
                    self.refused_sockets += 1
        except OSError:
            pass
        _drop(client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                _drop(end)
                with self.lock:
                    self.connections.discard(end)

    def cut(self) -> None:
        self.open.clear()
        with self.lock:
            ends, self.connections = self.connections, set()
        for end in ends:
            _drop(end)

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.listener.close()
        self.cut()


def _drop(end: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the other side may have closed it first
        end.shutdown(socket.SHUT_RDWR)
    end.close()


@pytest.fixture
def relay(server: Server) -> Iterator[Relay]:
    relay = Relay(int(server.url.rsplit(":", 1)[1]), server.relay_port)
    yield relay
    relay.close()


@pytest.fixture(scope="module")
def signed_in(server: Server, browser: Browser) -> dict[str, Any]:
    """The browser state (session cookie) of the coach and the caseworker, each logged in
    once for the module's tests."""
    states = {}
    for email in (COACH, CASEWORKER):
        context = browser.new_context()
        log_in(context.new_page(), server, email)
        states[email] = context.storage_state()
        context.close()
    return states


def open_thread(browser: Browser, signed_in: dict[str, Any], email: str, base_url: str) -> Page:
    """Open the thread of the waiting Yılmaz referral to the Jobcenter from the referral's
    page, as a person would. BASE_URL is the server, or a relay in front of it (the
    session cookie is the host's, whatever the port)."""
    page = browser.new_context(storage_state=signed_in[email]).new_page()
    # The Yılmaz family is the first demo family. The project also referred it to the
    # Jugendamt, so the coach's outbox lists its reference twice.
    if email == COACH:
        page.goto(f"{base_url}/vermittlungen/ausgang/")
        rows = page.get_by_role("row").filter(has_text="Jobcenter")
    else:
        page.goto(f"{base_url}/vermittlungen/eingang/")
        rows = page.get_by_role("row")
    rows.get_by_role("link", name=re.compile(r"F-\d{4}-0001")).click()
    page.get_by_role("link", name="Unterhaltung zu dieser Vermittlung öffnen").click()
    expect(page).to_have_url(re.compile(r"/nachrichten/[0-9a-f-]{36}/$"))
    expect(page.locator("#live-status")).to_have_text(LIVE, timeout=WAIT)
    page.evaluate("window.notReloaded = true")  # gone if the page reloads
    return page


def message(page: Page, text: str) -> Any:
    return page.locator("#messages li.message").filter(has_text=text)


def write(page: Page, text: str) -> None:
    page.get_by_label("Nachricht", exact=True).fill(text)
    page.get_by_role("button", name="Senden").click()
    # Acknowledged over the socket: the page shows it as its own.
    expect(message(page, text).and_(page.locator(".own"))).to_have_count(1, timeout=WAIT)


def bodies(page: Page) -> list[str]:
    return page.locator("#messages li.message .body").all_inner_texts()


def seqs(page: Page) -> list[int]:
    return [
        int(seq)
        for seq in page.locator("#messages li.message").evaluate_all(
            "items => items.map(item => item.dataset.seq)"
        )
    ]


def assert_in_order_none_twice(page: Page) -> None:
    numbers = seqs(page)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def assert_not_reloaded(*pages: Page) -> None:
    for page in pages:
        assert page.evaluate("window.notReloaded") is True


def test_coach_and_caseworker_talk_live_and_a_cut_socket_catches_up(
    server: Server, browser: Browser, signed_in: dict[str, Any], relay: Relay
) -> None:
    coach = open_thread(browser, signed_in, COACH, server.url)
    caseworker = open_thread(browser, signed_in, CASEWORKER, relay.url)
    assert caseworker.url.removeprefix(relay.url) == coach.url.removeprefix(server.url)

    # The coach types: the caseworker sees it, then the message, without reload.
    coach.get_by_label("Nachricht", exact=True).fill("Frau Y. kann am Dienstag um 10 Uhr.")
    expect(caseworker.locator("#typing")).to_have_text("Anna Albers schreibt …", timeout=WAIT)
    coach.get_by_role("button", name="Senden").click()
    first = message(caseworker, "Frau Y. kann am Dienstag um 10 Uhr.")
    expect(first).to_have_count(1, timeout=WAIT)
    expect(first).to_contain_text("Anna Albers")
    # The caseworker's page has read it: the coach's page says so on her message.
    own = message(coach, "Frau Y. kann am Dienstag um 10 Uhr.")
    expect(own).to_have_class(re.compile(r"\bown\b"))
    # Named, with the agency: who read it, not only that someone did.
    expect(own.locator(".read-by")).to_have_text(f" · gelesen von {BEN_LABEL}", timeout=WAIT)

    # And the other way round.
    caseworker.get_by_label("Nachricht", exact=True).fill("Passt, ich lade sie ein.")
    expect(coach.locator("#typing")).to_have_text("Ben Becker schreibt …", timeout=WAIT)
    caseworker.get_by_role("button", name="Senden").click()
    reply = message(coach, "Passt, ich lade sie ein.")
    expect(reply).to_have_count(1, timeout=WAIT)
    expect(reply).not_to_have_class(re.compile(r"\bown\b"))
    expect(message(caseworker, "Passt, ich lade sie ein.").locator(".read-by")).to_have_text(
        f" · gelesen von {ANNA_LABEL}", timeout=WAIT
    )
    assert_not_reloaded(coach, caseworker)

    # The caseworker's network drops: her socket closes, and she tries again in vain.
    before = len(bodies(caseworker))
    relay.cut()
    expect(caseworker.locator("#live-status")).to_have_text(OFFLINE, timeout=WAIT)
    missed = [f"Nachtrag {n}: Unterlagen bitte mitbringen." for n in (1, 2, 3)]
    for text in missed:
        write(coach, text)
    deadline = time.monotonic() + WAIT / 1000
    while relay.refused_sockets < 1:
        assert time.monotonic() < deadline, "the page did not try to reconnect"
        time.sleep(0.1)
    assert len(bodies(caseworker)) == before  # nothing reached the cut page

    # Back online: all three, in order, none twice.
    relay.restore()
    expect(caseworker.locator("#live-status")).to_have_text(LIVE, timeout=WAIT)
    expect(caseworker.locator("#messages li.message")).to_have_count(before + 3, timeout=WAIT)
    assert bodies(caseworker)[-3:] == missed
    assert_in_order_none_twice(caseworker)
    assert bodies(caseworker) == bodies(coach)
    # Having caught up, the caseworker's page marks them read.
    expect(message(coach, missed[-1]).locator(".read-by")).to_have_text(
        f" · gelesen von {BEN_LABEL}", timeout=WAIT
    )
    assert_not_reloaded(coach, caseworker)
    caseworker.screenshot(
        path=str(server.env["DIENSTWEG_DATA_DIR"]) + "/thread.png", full_page=True
    )
    coach.context.close()
    caseworker.context.close()


def post_without_event(server: Server, thread_id: str, body: str) -> None:
    """Store a message through the real action in another process: its in-memory channel
    layer reaches no socket of the server, as when the at-most-once layer drops an event."""
    server.manage(
        "shell",
        "-c",
        "import uuid; "
        "from dienstweg.models import User; from messaging import actions; "
        "from messaging.models import Thread; "
        f"actions.post_message(Thread.objects.get(pk={thread_id!r}), body={body!r}, "
        f"client_id=uuid.uuid4(), by=User.objects.get(email={COACH!r}))",
    )


def test_a_message_whose_event_was_lost_appears_with_the_next(
    server: Server, browser: Browser, signed_in: dict[str, Any]
) -> None:
    coach = open_thread(browser, signed_in, COACH, server.url)
    caseworker = open_thread(browser, signed_in, CASEWORKER, server.url)
    write(coach, "Ich schicke gleich noch die Adresse.")
    expect(message(caseworker, "Ich schicke gleich noch die Adresse.")).to_have_count(
        1, timeout=WAIT
    )
    before = len(bodies(caseworker))

    thread_id = coach.locator("#thread").get_attribute("data-thread")
    assert thread_id
    post_without_event(server, thread_id, "Horster Straße 130, 2. Stock.")
    write(coach, "Das war die Adresse.")
    expect(message(caseworker, "Das war die Adresse.")).to_have_count(1, timeout=WAIT)
    expect(caseworker.locator("#messages li.message")).to_have_count(before + 2, timeout=WAIT)
    assert bodies(caseworker)[-2:] == ["Horster Straße 130, 2. Stock.", "Das war die Adresse."]
    assert_in_order_none_twice(caseworker)
    # The sender's page finds the gap too, when its own message comes back numbered one
    # beyond: its catch-up runs after the acknowledgement, so wait for it as well.
    expect(coach.locator("#messages li.message")).to_have_count(before + 2, timeout=WAIT)
    assert_in_order_none_twice(coach)
    assert bodies(coach) == bodies(caseworker)
    assert_not_reloaded(coach, caseworker)
    coach.context.close()
    caseworker.context.close()
