"""Nothing a user typed is lost, in a real browser against real Daphne: the text stays in
the box until the server acknowledges that very message and comes back with the reason
when it is refused; a rate-limited message is sent again on the open socket; a counter
warns before the limit and a text over it (20,000 pasted characters) is refused, never
cut; a refused attachment leaves the text in the box."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, WebSocketRoute, expect

from tests.browser.conftest import Server, serving
from tests.browser.test_messaging import CASEWORKER, COACH, LIVE, WAIT, message
from tests.browser.test_referrals import log_in

RATE_FRAMES = 5  # the rate-limited server's DIENSTWEG_WS_RATE_FRAMES
WS = re.compile(r"/ws/$")


class Wire:
    """The page's socket, routed through Playwright: every frame both ways is recorded;
    acks can be held back (HOLD_ACKS) and frames slipped in before the page's next send
    (BEFORE_SEND)."""

    def __init__(self) -> None:
        self.opened = 0
        self.sent: list[dict[str, Any]] = []  # page → server
        self.received: list[dict[str, Any]] = []  # server → page
        self.hold_acks = False
        self.held: list[str] = []
        self.before_send: list[str] = []
        self.page: WebSocketRoute | None = None

    def route(self, socket: WebSocketRoute) -> None:
        self.opened += 1
        self.page = socket
        upstream = socket.connect_to_server()

        def from_page(raw: str | bytes) -> None:
            frame = json.loads(raw)
            self.sent.append(frame)
            if frame["type"] == "message.send" and self.before_send:
                for extra in self.before_send:
                    upstream.send(extra)
                self.before_send = []
            upstream.send(raw)

        def from_server(raw: str | bytes) -> None:
            frame = json.loads(raw)
            self.received.append(frame)
            if frame["type"] == "message.ack" and self.hold_acks:
                self.held.append(str(raw))
            else:
                socket.send(raw)

        socket.on_message(from_page)
        upstream.on_message(from_server)

    def release(self) -> None:
        assert self.page is not None
        self.hold_acks = False
        for raw in self.held:
            self.page.send(raw)
        self.held = []

    def of_type(self, kind: str, frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [frame for frame in frames if frame["type"] == kind]


def sign_in(server: Server, browser: Browser, *emails: str) -> dict[str, Any]:
    states = {}
    for email in emails:
        context = browser.new_context()
        log_in(context.new_page(), server, email)
        states[email] = context.storage_state()
        context.close()
    return states


@pytest.fixture(scope="module")
def signed_in(server: Server, browser: Browser) -> dict[str, Any]:
    return sign_in(server, browser, COACH, CASEWORKER)


def open_thread(
    browser: Browser,
    state: dict[str, Any],
    server: Server,
    wire: Wire | None = None,
    prepare: Callable[[Page], None] | None = None,
) -> Page:
    """The coach's thread of the Yılmaz referral to the Jobcenter, opened from her outbox."""
    page = browser.new_context(storage_state=state).new_page()
    if wire is not None:
        page.route_web_socket(WS, wire.route)
    if prepare is not None:
        prepare(page)
    page.goto(f"{server.url}/vermittlungen/ausgang/")
    page.get_by_role("row").filter(has_text="Jobcenter").get_by_role(
        "link", name=re.compile(r"F-\d{4}-0001")
    ).click()
    page.get_by_role("link", name="Unterhaltung zu dieser Vermittlung öffnen").click()
    expect(page).to_have_url(re.compile(r"/nachrichten/[0-9a-f-]{36}/$"))
    expect(page.locator("#live-status")).to_have_text(LIVE, timeout=WAIT)
    page.evaluate("window.notReloaded = true")  # gone if the page reloads
    return page


def box(page: Page) -> Any:
    return page.get_by_label("Nachricht", exact=True)


def test_the_text_stays_until_its_ack_and_comes_back_with_the_reason(
    server: Server, browser: Browser, signed_in: dict[str, Any]
) -> None:
    wire = Wire()
    coach = open_thread(browser, signed_in[COACH], server, wire)
    text = "Termin beim Jobcenter: Donnerstag, 9 Uhr, Zimmer 214."
    box(coach).fill(text)
    wire.hold_acks = True
    coach.get_by_role("button", name="Senden").click()

    # Stored and on its way back, but the page has no ack yet: the text stays.
    [held] = _eventually(coach, lambda: wire.held)
    [sent] = wire.of_type("message.send", wire.sent)
    assert json.loads(held)["client_id"] == sent["client_id"]
    expect(box(coach)).to_have_value(text)
    expect(box(coach)).not_to_be_editable()  # no change that the ack would wipe out
    expect(coach.locator("#composer-status")).to_have_text("Wird gesendet …")

    wire.release()
    expect(box(coach)).to_have_value("", timeout=WAIT)
    expect(box(coach)).to_be_editable()
    expect(message(coach, text).and_(coach.locator(".own"))).to_have_count(1)
    expect(coach.locator("#composer-status")).to_have_text("")
    # The next message gets an id of its own.
    assert coach.locator("input[name=client_id]").input_value() != sent["client_id"]
    coach.context.close()


def test_a_message_the_server_refuses_comes_back_with_its_reason(
    server: Server, browser: Browser, signed_in: dict[str, Any]
) -> None:
    """A page whose limit disagrees with the server's (a tab left open across a change of
    MESSAGE_MAX_CHARS): the server's error frame brings the text back."""

    wire = Wire()
    coach = open_thread(browser, signed_in[COACH], server, wire)
    box(coach).evaluate("box => { box.dataset.maxChars = '9000'; }")
    text = "Zu lang für den Server. " * 200  # 4,800 characters
    box(coach).fill(text)
    coach.get_by_role("button", name="Senden").click()
    error = coach.locator("#composer-error")
    expect(error).to_be_visible(timeout=WAIT)
    expect(error).to_have_text(
        "Nicht gesendet: Die Nachricht ist zu lang (höchstens 4000 Zeichen). "
        "Ihr Text steht noch im Feld."
    )
    expect(box(coach)).to_have_value(text)
    expect(box(coach)).to_be_editable()
    [refusal] = wire.of_type("error", wire.received)
    assert refusal["client_id"] == wire.of_type("message.send", wire.sent)[0]["client_id"]
    expect(message(coach, "Zu lang für den Server.")).to_have_count(0)
    coach.context.close()


def test_the_counter_warns_and_twenty_thousand_pasted_characters_are_refused_whole(
    server: Server, browser: Browser, signed_in: dict[str, Any]
) -> None:
    wire = Wire()
    coach = open_thread(browser, signed_in[COACH], server, wire)
    counter = coach.locator("#body-counter")
    expect(counter).to_have_text("0 von 4.000 Zeichen")
    box(coach).click()
    coach.keyboard.insert_text("a" * 3700)  # typed or pasted, as the browser inserts it
    expect(counter).to_have_text("3.700 von 4.000 Zeichen – noch 300")
    expect(counter).to_have_class(re.compile(r"\bnear\b"))

    pasted = "".join(f"Zeile {n:05d} des Protokolls.\n" for n in range(800))[:20_000]
    coach.keyboard.press("Control+A")
    coach.keyboard.insert_text(pasted)
    expect(box(coach)).to_have_value(pasted)  # all of it: nothing cut at 4,000
    expect(counter).to_have_text(
        "20.000 von 4.000 Zeichen – 16.000 zu viel. Bitte kürzen Sie den Text, "
        "so kann er nicht gesendet werden."
    )
    expect(box(coach)).to_have_attribute("aria-invalid", "true")
    coach.get_by_role("button", name="Senden").click()
    expect(coach.locator("#composer-error")).to_have_text(
        "Nicht gesendet: Der Text ist 16.000 Zeichen zu lang (höchstens 4.000). "
        "Bitte kürzen Sie ihn, er steht noch im Feld."
    )
    expect(box(coach)).to_have_value(pasted)
    assert wire.of_type("message.send", wire.sent) == []
    assert coach.evaluate("window.notReloaded") is True  # no form sent either
    screenshots(coach, server)

    # Cut to the limit, it goes.
    fitting = pasted[:4000]
    box(coach).fill(fitting)
    expect(counter).to_have_text("4.000 von 4.000 Zeichen – noch 0")
    expect(coach.locator("#composer-error")).to_be_hidden()
    coach.get_by_role("button", name="Senden").click()
    expect(box(coach)).to_have_value("", timeout=WAIT)
    [ack] = wire.of_type("message.ack", wire.received)
    assert ack["message"]["body"] == fitting.strip()
    coach.context.close()


def screenshots(page: Page, server: Server, name: str = "composer") -> None:
    """The thread with the counter over the limit and the refusal, as wide and as narrow
    as a desk and a phone show it (looked at by a person; the test asserts the text)."""
    folder = Path(server.env["DIENSTWEG_DATA_DIR"])
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.locator("#composer").scroll_into_view_if_needed()
        page.screenshot(path=str(folder / f"{name}-{width}.png"))
    page.set_viewport_size({"width": 1280, "height": 900})


def test_a_refused_attachment_leaves_the_text_in_the_box(
    server: Server, browser: Browser, signed_in: dict[str, Any], tmp_path: Path
) -> None:
    coach = open_thread(browser, signed_in[COACH], server)
    text = "Anbei der Bescheid, bitte prüfen Sie die Höhe der Leistungen."
    box(coach).fill(text)
    fake = tmp_path / "bescheid.pdf"
    fake.write_text("Das ist kein PDF.")
    coach.get_by_label("Anhänge (PDF, JPEG oder PNG)").set_input_files(str(fake))
    coach.get_by_role("button", name="Senden").click()
    error = coach.locator("#composer-error")
    expect(error).to_contain_text(
        "Nicht gesendet: „bescheid.pdf“: nur PDF, JPEG oder PNG mit passender Dateiendung."
    )
    expect(error).to_contain_text("Ihr Text steht noch im Feld.")
    expect(coach.get_by_text("Bitte wählen Sie die Dateien erneut aus")).to_be_visible()
    screenshots(coach, server, "attachment-refused")
    expect(box(coach)).to_have_value(text)
    expect(message(coach, text)).to_have_count(0)
    # Sent again without the file, over the socket of the page that came back.
    expect(coach.locator("#live-status")).to_have_text(LIVE, timeout=WAIT)
    coach.get_by_role("button", name="Senden").click()
    expect(box(coach)).to_have_value("", timeout=WAIT)
    expect(message(coach, text).and_(coach.locator(".own"))).to_have_count(1)
    coach.context.close()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own that allows RATE_FRAMES frames per user and window."""
    with serving(
        tmp_path_factory.mktemp("limited"), DIENSTWEG_WS_RATE_FRAMES=str(RATE_FRAMES)
    ) as server:
        yield server


def test_a_rate_limited_message_is_sent_again_on_the_open_socket(
    limited: Server, browser: Browser
) -> None:
    state = sign_in(limited, browser, COACH)[COACH]
    wire = Wire()
    coach = open_thread(browser, state, limited, wire)
    # Every page opens the tab's socket (the live counts): the outbox and the referral's
    # page did too. From here on, none may open again.
    opened = wire.opened
    # Another tab of hers floods the socket just before she sends: twice the limit of
    # frames, so the window is used up whichever frame its boundary falls on.
    typing = json.dumps(
        {"type": "typing", "thread": coach.locator("#thread").get_attribute("data-thread")}
    )
    for attempt in range(3):
        text = f"Bitte rufen Sie Frau Y. heute noch an ({attempt + 1})."
        wire.before_send = [typing] * (2 * RATE_FRAMES)
        box(coach).fill(text)
        coach.get_by_role("button", name="Senden").click()
        [send] = _eventually(coach, lambda n=attempt: wire.of_type("message.send", wire.sent)[n:])
        answer = _eventually(coach, partial(answers, wire, send["client_id"]))[0]
        if answer["type"] == "error":
            break
        # The window turned between the flood and her frame: it went through; again.
        expect(box(coach)).to_have_value("", timeout=WAIT)
    else:
        pytest.fail("the server never limited the send")
    client_id = send["client_id"]
    assert answer["code"] == "rate_limited" and answer["retry_after"] >= 1
    expect(coach.locator("#composer-status")).to_contain_text("Neuer Versuch in", timeout=WAIT)
    expect(box(coach)).to_have_value(text)
    # Eventually acknowledged on the same socket: no reconnect, no reload.
    expect(box(coach)).to_have_value("", timeout=WAIT + 60_000)
    expect(message(coach, text).and_(coach.locator(".own"))).to_have_count(1)
    acks = [f for f in wire.of_type("message.ack", wire.received) if f["client_id"] == client_id]
    assert len(acks) == 1
    assert wire.opened == opened
    assert coach.evaluate("window.notReloaded") is True
    expect(coach.locator("#live-status")).to_have_text(LIVE)
    coach.context.close()


def answers(wire: Wire, client_id: str) -> list[dict[str, Any]]:
    """What the server answered to the send with CLIENT_ID: acks and error frames."""
    return [
        frame
        for frame in wire.received
        if frame["type"] in ("error", "message.ack") and frame.get("client_id") == client_id
    ]


def _eventually(page: Page, found: Callable[[], list[Any]]) -> list[Any]:
    """FOUND once it is not empty, within WAIT. The routed socket's callbacks run only
    while Playwright is waiting, hence its wait between looks, not time.sleep."""
    for _look in range(WAIT // 50):
        if result := found():
            return result
        page.wait_for_timeout(50)
    raise AssertionError("not within the wait")
