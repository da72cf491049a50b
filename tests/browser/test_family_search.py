"""A coach finds a demo family by part of its name or a birth date, on a desktop and on a
phone, where the list becomes one card per family."""

from __future__ import annotations

import os

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Server
from tests.browser.test_family_and_consent import log_in

# Where the screenshots go, to be looked at (a directory of the caller's choosing).
SHOTS = os.environ.get("DIENSTWEG_SCREENSHOTS", "")


def test_coach_finds_a_family_by_part_of_a_name_and_a_birth_date(
    server: Server, browser: Browser
) -> None:
    # One sign-in for both sizes: a second one in the same 30 s would reuse the TOTP code.
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    log_in(page, server, "anna@demo.dienstweg.invalid")
    for width, height in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        find_the_demo_families(page, server, width)
    page.close()


def find_the_demo_families(page: Page, server: Server, width: int) -> None:
    page.goto(f"{server.url}/familien/")
    table = page.locator("table.family-list")
    expect(table.get_by_role("link", name="Ayşe Yılmaz")).to_be_visible()
    expect(table.get_by_text("mit Leyla, Emre")).to_be_visible()
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/family-list-{width}.png", full_page=True)

    page.get_by_label("Name, Kennung oder Geburtsdatum").fill("yilm")
    page.get_by_role("button", name="Suchen").click()
    expect(page.get_by_role("status")).to_have_text("1 Familie gefunden")
    expect(table.get_by_role("link", name="Ayşe Yılmaz")).to_be_visible()
    assert "yilm" not in page.url.lower()
    # On a phone each family is a card: nothing reaches past the screen's edge.
    box = table.bounding_box()
    assert box is not None and box["x"] + box["width"] <= width
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/family-search-{width}.png", full_page=True)

    page.get_by_label("Name, Kennung oder Geburtsdatum").fill("11.1979")
    page.get_by_role("button", name="Suchen").click()
    expect(page.get_by_role("status")).to_have_text("1 Familie gefunden")
    expect(table.get_by_role("link", name="Marek Nowak")).to_be_visible()
