"""The start page and the live badges in a real browser: the caseworker has two tabs open
(the start page and her thread list); a message from the coach raises the unread badge in
both without reload, and reading the thread in one tab brings the other tab's badge and its
thread list back down. Screenshots of the start page at 1280 and 390 px per role."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Server
from tests.browser.test_messaging import (
    CASEWORKER,
    WAIT,
    open_thread,
    signed_in,  # noqa: F401 (the fixture)
    write,
)
from tests.browser.test_referrals import log_in

# The visible badge (its number is also in the link's spoken text; both are updated).
MESSAGES_BADGE = 'nav .nav-count [data-count="messages"]'


def badge(page: Page) -> int:
    return int(page.locator(MESSAGES_BADGE).inner_text())


def test_unread_badge_is_right_in_every_tab(
    server: Server,
    browser: Browser,
    signed_in: dict[str, Any],  # noqa: F811
) -> None:
    coach = open_thread(browser, signed_in, "anna@demo.dienstweg.invalid", server.url)
    thread_path = coach.url.removeprefix(server.url)
    thread_id = thread_path.strip("/").split("/")[-1]

    tabs = browser.new_context(storage_state=signed_in[CASEWORKER])
    start = tabs.new_page()  # the start page: counts.js holds the tab's socket
    start.goto(f"{server.url}/")
    threads = tabs.new_page()  # the thread list: live.js holds it, counts.js shares it
    threads.goto(f"{server.url}/nachrichten/")
    for page in (start, threads):
        page.evaluate("window.notReloaded = true")
    before = badge(start)
    assert badge(threads) == before
    # The sockets are open once the live status of the thread list says so; the start page
    # has no status line: its first count after the message below shows it listened.

    write(coach, "Können Sie Frau Y. heute noch zurückrufen?")
    for page in (start, threads):
        expect(page.locator(MESSAGES_BADGE)).not_to_have_text(str(before), timeout=WAIT)
    raised = badge(start)
    assert raised > before
    expect(threads.locator(MESSAGES_BADGE)).to_have_text(str(raised), timeout=WAIT)
    row = threads.locator(f'[data-unread-thread="{thread_id}"]')
    expect(row).not_to_have_text("0", timeout=WAIT)
    unread_here = int(row.inner_text())

    # Read in the start page's tab: the thread list's tab follows, without reload.
    start.goto(f"{server.url}{thread_path}")
    expect(start.locator("#live-status")).to_have_text("Live verbunden", timeout=WAIT)
    expect(row).to_have_text("0", timeout=WAIT)
    expect(threads.locator(MESSAGES_BADGE)).to_have_text(str(raised - unread_here), timeout=WAIT)
    expect(start.locator(MESSAGES_BADGE)).to_have_text(str(raised - unread_here), timeout=WAIT)
    assert threads.evaluate("window.notReloaded") is True
    tabs.close()
    coach.context.close()


def test_start_page_per_role_at_desktop_and_phone_width(
    server: Server,
    browser: Browser,
    signed_in: dict[str, Any],  # noqa: F811
) -> None:
    """The start page of coach, lead and caseworker on the demo network, wide and narrow
    (screenshots in the server's data directory, for a person to look at)."""
    states = dict(signed_in)
    lead = browser.new_context()
    log_in(lead.new_page(), server, "jana@demo.dienstweg.invalid")
    states["jana"] = lead.storage_state()
    lead.close()
    for name, state in states.items():
        for width, height in ((1280, 800), (390, 844)):
            context = browser.new_context(
                viewport={"width": width, "height": height}, storage_state=state
            )
            page = context.new_page()
            page.goto(f"{server.url}/")
            expect(page.get_by_role("heading", name="Was auf Sie wartet")).to_be_visible()
            # Dates in the German format only.
            text = page.inner_text("main")
            assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4}", text)
            local = name.split("@")[0]
            page.screenshot(
                path=f"{server.env['DIENSTWEG_DATA_DIR']}/home-{local}-{width}.png",
                full_page=True,
            )
            context.close()
