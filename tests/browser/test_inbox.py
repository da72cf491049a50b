"""The lead's inbox and the confirmations in a real browser, at 1280 and 390 px: Jana
(lead at the Jobcenter) reads the inbox's need, due date and marks, ticks a referral and
assigns it from the list; Paul (the project's lead) withdraws a referral after the page
that asks first. Nothing of it needs JavaScript."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Server
from tests.browser.test_referrals import log_in

WIDTHS = (1280, 390)


def no_sideways_scroll(page: Page) -> None:
    """The page's content fits its width: no table or form pushes it wider."""
    wider = page.evaluate(
        """() => {
            const main = document.querySelector('main').getBoundingClientRect();
            // Clipped away (a stacked table's header row, hidden labels): not seen.
            const clipped = e => {
                for (; e; e = e.parentElement) {
                    if (getComputedStyle(e).clip !== 'auto') return true;
                }
                return false;
            };
            return [...document.querySelectorAll('main *')]
                .filter(e => e.getBoundingClientRect().right > main.right + 1 && !clipped(e))
                .map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right);
        }"""
    )
    assert wider == [], wider


def shoot(page: Page, server: Server, name: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 844 if width < 800 else 800})
        no_sideways_scroll(page)
        page.screenshot(
            path=f"{server.env['DIENSTWEG_DATA_DIR']}/{name}-{width}.png", full_page=True
        )
    page.set_viewport_size({"width": 1280, "height": 800})


def test_a_lead_triages_and_assigns_from_the_inbox(server: Server, browser: Browser) -> None:
    page = browser.new_context(java_script_enabled=False).new_page()
    log_in(page, server, "jana@demo.dienstweg.invalid")
    page.goto(f"{server.url}/vermittlungen/eingang/")
    table = page.locator("table.referrals")
    expect(table.get_by_role("columnheader", name="Bedarf")).to_be_visible()
    expect(table.get_by_role("columnheader", name="Antwort fällig")).to_be_visible()
    expect(table.get_by_text("Arbeit und Ausbildung").first).to_be_visible()
    expect(page.get_by_text("Fälligkeit")).to_be_visible()  # the current order
    shoot(page, server, "inbox")
    page.locator("table.referrals tbody tr").first.get_by_role("checkbox").check()
    page.get_by_label("Zuweisen an").select_option(label="Jana Jansen")
    page.get_by_role("button", name="Zuweisen").click()
    expect(page.get_by_text("1 Vermittlung an Jana Jansen zugewiesen.")).to_be_visible()
    page.get_by_role("link", name="Eingang, neueste zuerst").click()
    expect(page.get_by_text("Eingang, neueste zuerst")).to_have_attribute("aria-current", "true")
    page.close()


def test_withdrawing_asks_first_without_javascript(server: Server, browser: Browser) -> None:
    page = browser.new_context(java_script_enabled=False).new_page()
    log_in(page, server, "paul@demo.dienstweg.invalid")  # the project's lead
    page.goto(f"{server.url}/vermittlungen/ausgang/?state=sent")
    # The Kita referral to the Jugendamt, still unanswered.
    page.locator("table.referrals tbody tr", has_text="Jugend").first.get_by_role(
        "link"
    ).first.click()
    page.get_by_role("button", name="Zurückziehen").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("zurückziehen?")
    expect(page.get_by_text("verliert den Zugriff")).to_be_visible()
    shoot(page, server, "withdraw-confirm")
    page.get_by_role("link", name="Abbrechen").click()
    expect(page.get_by_role("button", name="Zurückziehen")).to_be_visible()
    page.get_by_role("button", name="Zurückziehen").click()
    page.get_by_role("button", name="Ja, zurückziehen").click()
    expect(page.get_by_text("Zurückgezogen.")).to_be_visible()
    page.close()
