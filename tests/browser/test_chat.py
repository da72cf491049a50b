"""Messaging as people know it from chat tools, in a real browser against real Daphne:
Enter sends and Shift+Enter breaks the line; own messages say "Sie"; a live message
offers the same actions as after a reload; a reply quotes its message; an @-mention
notifies; long texts fold; the thread list of a second tab clears its unread count when
the thread is read in another; the list and the conversation side by side from 1024 px,
one at a time on a phone; files dropped onto the composer are sent with the message."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Server
from tests.browser.test_layout import WCAG_21_AA, axe
from tests.browser.test_messaging import (
    BEN_LABEL,
    CASEWORKER,
    COACH,
    LIVE,
    WAIT,
    message,
    open_thread,
)
from tests.browser.test_referrals import log_in


@pytest.fixture(scope="module")
def signed_in(server: Server, browser: Browser) -> dict[str, Any]:
    """The coach's and the caseworker's browser state, each logged in once (as in
    test_messaging)."""
    states = {}
    for email in (COACH, CASEWORKER):
        context = browser.new_context()
        log_in(context.new_page(), server, email)
        states[email] = context.storage_state()
        context.close()
    return states


def actions_of(item: Any) -> list[str]:
    """The actions a message offers: its links, folds and buttons, by their text."""
    return [
        text.strip()
        for text in item.locator(
            ".message-actions a, .message-actions summary, button"
        ).all_text_contents()
    ]


def written(page: Page, text: str) -> Any:
    """The message whose own text (not a quote of it) contains TEXT."""
    return page.locator("#messages li.message").filter(has=page.locator(".body", has_text=text))


def send_with_enter(page: Page, *lines: str) -> None:
    box = page.get_by_label("Nachricht", exact=True)
    box.click()
    for n, line in enumerate(lines):
        if n:
            page.keyboard.press("Shift+Enter")
        page.keyboard.insert_text(line)
    page.keyboard.press("Enter")


def test_enter_reply_mention_fold_and_the_same_actions_live_and_after_reload(
    server: Server, browser: Browser, signed_in: dict[str, Any]
) -> None:
    coach = open_thread(browser, signed_in, COACH, server.url)
    caseworker = open_thread(browser, signed_in, CASEWORKER, server.url)

    # Enter sends, Shift+Enter is a line break within the message.
    send_with_enter(coach, "Termin am Dienstag?", "Frau Y. bringt die Unterlagen mit.")
    own = message(coach, "Termin am Dienstag?")
    expect(own).to_have_count(1, timeout=WAIT)
    expect(coach.get_by_label("Nachricht", exact=True)).to_have_value("")
    assert own.locator(".body").inner_text() == (
        "Termin am Dienstag?\nFrau Y. bringt die Unterlagen mit."
    )
    expect(own.locator(".author")).to_have_text("Sie")
    theirs = message(caseworker, "Termin am Dienstag?")
    expect(theirs).to_have_count(1, timeout=WAIT)
    expect(theirs.locator(".author")).to_have_text("Anna Albers")
    expect(own.locator(".read-by")).to_have_text(f" · gelesen von {BEN_LABEL}", timeout=WAIT)

    # The same actions live as after a reload, for the author and for the reader.
    live = (actions_of(own), actions_of(theirs))
    assert live[0] == ["Antworten", "Bearbeiten oder löschen", "Speichern", "Löschen"]
    assert live[1] == ["Antworten"]

    # Edited live through the message's own form: the reader sees it without reload.
    own.locator("summary", has_text="Bearbeiten oder löschen").click()
    own.get_by_label("Neuer Text").fill("Termin am Mittwoch?")
    own.get_by_role("button", name="Speichern").click()
    edited = message(caseworker, "Termin am Mittwoch?")
    expect(edited).to_contain_text("bearbeitet", timeout=WAIT)

    # Reply with a quote, sent with Enter.
    edited.get_by_role("link", name="Antworten").click()
    expect(caseworker.locator("#reply-preview")).to_be_visible()
    expect(caseworker.locator("#reply-excerpt")).to_have_text("Termin am Mittwoch?")
    send_with_enter(caseworker, "Mittwoch passt. @Anna Albers bitte bestätigen.")
    reply = message(coach, "Mittwoch passt.")
    expect(reply.locator("blockquote.quote")).to_contain_text("Termin am Mittwoch?", timeout=WAIT)
    expect(caseworker.locator("#reply-preview")).to_be_hidden()

    # Long texts fold; the rest unfolds on demand.
    long_text = " ".join(f"Absatz{n}" for n in range(150)) + " SCHLUSS"
    send_with_enter(coach, long_text)
    folded = message(caseworker, "Absatz0")
    expect(folded.locator("summary", has_text="Mehr anzeigen")).to_be_visible(timeout=WAIT)
    expect(folded.get_by_text("SCHLUSS")).to_be_hidden()
    folded.locator("summary", has_text="Mehr anzeigen").click()
    expect(folded.get_by_text(re.compile("SCHLUSS"))).to_be_visible()

    # After a reload: the same actions, the quote, the fold.
    for page in (coach, caseworker):
        page.reload()
        expect(page.locator("#live-status")).to_have_text(LIVE, timeout=WAIT)
    reloaded = (
        actions_of(written(coach, "Termin am Mittwoch?")),
        actions_of(written(caseworker, "Termin am Mittwoch?")),
    )
    assert reloaded == live
    expect(message(coach, "Mittwoch passt.").locator("blockquote.quote")).to_contain_text(
        "Termin am Mittwoch?"
    )

    # The mention reached Anna's notifications, without the text.
    coach.goto(f"{server.url}/benachrichtigungen/")
    expect(coach.get_by_text("Sie wurden in einer Unterhaltung erwähnt").first).to_be_visible()
    expect(coach.get_by_text("bitte bestätigen")).to_have_count(0)
    coach.context.close()
    caseworker.context.close()


def test_a_second_tab_clears_its_unread_count_when_the_thread_is_read_in_another(
    server: Server, browser: Browser, signed_in: dict[str, Any]
) -> None:
    coach = open_thread(browser, signed_in, COACH, server.url)
    thread_id = coach.locator("#thread").get_attribute("data-thread")
    context = browser.new_context(storage_state=signed_in[CASEWORKER])
    overview = context.new_page()
    overview.goto(f"{server.url}/nachrichten/")
    counter = overview.locator(f'[data-unread-thread="{thread_id}"]')
    expect(counter).to_have_text("0")
    overview.wait_for_function("() => !!document.querySelector('[data-unread-thread]')")

    coach.get_by_label("Nachricht", exact=True).fill("Neu für die Übersicht")
    coach.get_by_role("button", name="Senden").click()
    expect(counter).to_have_text("1", timeout=WAIT)

    reader = context.new_page()  # the second tab of the same person reads the thread
    reader.goto(f"{server.url}/nachrichten/{thread_id}/")
    expect(message(reader, "Neu für die Übersicht")).to_have_count(1)
    expect(counter).to_have_text("0", timeout=WAIT)
    assert overview.url.endswith("/nachrichten/")  # not reloaded: pushed over its socket
    coach.context.close()
    context.close()


def test_list_beside_the_conversation_on_wide_screens_and_one_at_a_time_on_phones(
    server: Server, browser: Browser, signed_in: dict[str, Any]
) -> None:
    page = open_thread(browser, signed_in, CASEWORKER, server.url)
    url = page.url
    shots = str(server.env["DIENSTWEG_DATA_DIR"])
    page.set_viewport_size({"width": 1280, "height": 800})
    threads, conversation = page.locator(".chat-threads"), page.locator(".chat-conversation")
    expect(threads).to_be_visible()
    expect(threads.locator("[aria-current=page]")).to_have_count(1)
    beside, main = threads.bounding_box(), conversation.bounding_box()
    assert beside and main
    assert beside["x"] + beside["width"] <= main["x"]  # side by side
    assert beside["y"] < main["y"] + main["height"] and main["y"] < beside["y"] + beside["height"]
    page.screenshot(path=f"{shots}/chat-1280.png", full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(url)
    expect(threads).to_be_hidden()
    expect(page.get_by_role("link", name="« Alle Unterhaltungen")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide"
    page.screenshot(path=f"{shots}/chat-390.png", full_page=True)
    page.context.close()


def test_a_file_dropped_onto_the_composer_is_sent_with_the_message(
    server: Server, browser: Browser, signed_in: dict[str, Any]
) -> None:
    page = open_thread(browser, signed_in, COACH, server.url)
    page.get_by_label("Nachricht", exact=True).fill("Der Bescheid anbei.")
    page.locator("#composer").evaluate(
        """composer => {
            const data = new DataTransfer();
            data.items.add(new File(["%PDF-1.4\\n%%EOF\\n"], "bescheid.pdf",
                                    {type: "application/pdf"}));
            for (const type of ["dragover", "drop"]) {
                composer.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true,
                                                            cancelable: true}));
            }
        }"""
    )
    expect(page.locator("#drop-status")).to_contain_text("bescheid.pdf")
    assert page.locator("#composer input[type=file]").evaluate("input => input.files.length") == 1
    page.get_by_role("button", name="Senden").click()
    sent = message(page, "Der Bescheid anbei.")
    expect(sent.get_by_role("link", name="bescheid.pdf")).to_be_visible(timeout=WAIT)
    page.context.close()


def test_typing_an_at_sign_offers_the_readers_of_the_thread(
    server: Server, browser: Browser, signed_in: dict[str, Any]
) -> None:
    page = open_thread(browser, signed_in, COACH, server.url)
    box = page.get_by_label("Nachricht", exact=True)
    box.click()
    page.keyboard.insert_text("Bitte prüfen, @be")
    offered = page.locator("#mention-suggestions")
    expect(offered).to_be_visible()
    expect(offered.get_by_role("button")).to_have_text([BEN_LABEL])
    offered.get_by_role("button", name=BEN_LABEL).click()
    expect(box).to_have_value("Bitte prüfen, @Ben Becker ")
    expect(offered).to_be_hidden()
    page.keyboard.insert_text("danke.")
    page.keyboard.press("Enter")
    expect(message(page, "Bitte prüfen, @Ben Becker danke.")).to_have_count(1, timeout=WAIT)
    page.context.close()


# A direct conversation of the coach that no other test reads, with more messages than a
# page shows (messaging.views.SHOWN), written through the real action.
LONG_THREAD = """
import uuid
from dienstweg.models import User
from messaging import actions
anna = User.objects.get(email="anna@demo.dienstweg.invalid")
other = User.objects.filter(is_active=True, memberships__isnull=False).exclude(
    email__in=["anna@demo.dienstweg.invalid", "ben@demo.dienstweg.invalid"]
).order_by("pk").first()
thread = actions.open_direct_thread(other, by=anna)
for n in range(1, 53):
    author = anna if n % 2 else other
    actions.post_message(thread, body=f"Absprache Nr. {n}", client_id=uuid.uuid4(), by=author)
print(thread.pk)
"""


def test_older_messages_are_one_link_away_on_a_desktop_and_a_phone(
    server: Server, browser: Browser, signed_in: dict[str, Any]
) -> None:
    thread_id = server.manage("shell", "-c", LONG_THREAD).strip().splitlines()[-1]
    shots = str(server.env["DIENSTWEG_DATA_DIR"])
    for width, height in ((1280, 800), (390, 844)):
        page = browser.new_context(
            storage_state=signed_in[COACH], viewport={"width": width, "height": height}
        ).new_page()
        page.goto(f"{server.url}/nachrichten/{thread_id}/")
        expect(page.locator("#live-status")).to_have_text(LIVE, timeout=WAIT)
        shown = page.locator("#messages li.message")
        expect(shown).to_have_count(50)
        expect(shown.first).to_have_attribute("data-seq", "3")
        page.get_by_role("link", name="Ältere Nachrichten anzeigen").click()
        expect(page.get_by_role("heading", name="Ältere Nachrichten (Nr. 1 bis 2)")).to_be_visible()
        expect(shown).to_have_count(2)
        expect(shown.first).to_contain_text("Absprache Nr. 1")
        # A reply quotes a message of the composer's page: not offered back here.
        expect(page.get_by_role("link", name="Antworten")).to_have_count(0)
        results = axe.run(page, options={"runOnly": WCAG_21_AA})
        assert not results.response["violations"], results.generate_report()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=f"{shots}/older-{width}.png", full_page=True)
        page.get_by_role("link", name="Zu den neuesten Nachrichten und zum Schreiben").click()
        expect(page.get_by_label("Nachricht", exact=True)).to_be_visible()
        page.context.close()
