"""Every main page of a coach's day at 1280 × 800 and on a phone at 390 × 844: the menu and
"Abmelden" inside the screen, the menu folded behind a button on the phone (mouse and
keyboard), no page wider than the screen, and no WCAG 2.1 A/AA violation that axe-core finds
(axe ships inside the axe-playwright-python package: nothing is fetched at run time)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Server
from tests.browser.test_referrals import log_in

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# Screenshots for a person to look at: DIENSTWEG_SCREENSHOTS=some/dir pytest tests/browser/...
SCREENSHOTS = os.environ.get("DIENSTWEG_SCREENSHOTS")

axe = Axe()


@pytest.fixture(scope="module")
def signed_in(server: Server, browser: Browser) -> dict[str, Any]:
    """Anna's session, logged in once (a TOTP code works once) and reused by each context."""
    context = browser.new_context()
    log_in(context.new_page(), server, "anna@demo.dienstweg.invalid")
    state = context.storage_state()
    context.close()
    return state


def open_page(browser: Browser, state: dict[str, Any], server: Server, **options: Any) -> Page:
    page = browser.new_context(storage_state=state, **options).new_page()
    page.goto(f"{server.url}/")
    return page


@pytest.fixture(params=[DESKTOP, PHONE], ids=["1280", "390"])
def coach(
    request: pytest.FixtureRequest, server: Server, browser: Browser, signed_in: dict[str, Any]
) -> Iterator[Page]:
    page = open_page(browser, signed_in, server, viewport=request.param)
    yield page
    page.context.close()


def overflow(page: Page) -> list[str]:
    """The elements that reach past the right edge (empty if the page fits the screen)."""
    if page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"):
        return []
    return page.evaluate(
        """() => [...document.querySelectorAll("body *")]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth)
            .map(e => `${e.tagName.toLowerCase()}.${e.className}`)"""
    )


def is_phone(page: Page) -> bool:
    return page.viewport_size == PHONE


# The names of the menu and the logout button in the page's language (<html lang>).
CHROME = {
    "de": {"navigation": "Hauptnavigation", "logout": "Abmelden"},
    "en": {"navigation": "Main navigation", "logout": "Log out"},
}


def chrome(page: Page) -> dict[str, str]:
    return CHROME[page.locator("html").get_attribute("lang") or "de"]


def open_menu(page: Page) -> None:
    """On the phone the menu is folded behind its button; on the desktop there is none."""
    button = page.locator("#site-menu > summary")
    nav = page.get_by_role("navigation", name=chrome(page)["navigation"])
    if is_phone(page):
        expect(button).to_be_visible()
        expect(nav).to_be_hidden()
        button.click()
    else:
        expect(button).to_be_hidden()
    expect(nav).to_be_visible()


def check_page(page: Page, name: str) -> None:
    width = page.viewport_size["width"]  # type: ignore[index]
    assert overflow(page) == [], name
    names = chrome(page)
    logout = page.get_by_role("button", name=names["logout"])
    expect(logout).to_be_visible()
    open_menu(page)
    boxes = [logout.bounding_box()] + [
        link.bounding_box()
        for link in page.get_by_role("navigation", name=names["navigation"])
        .get_by_role("link")
        .all()
    ]
    for box in boxes:
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, name
    assert overflow(page) == [], name
    results = axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_21_AA}})
    assert results.violations_count == 0, f"{name}:\n{results.generate_report()}"
    if SCREENSHOTS:
        if is_phone(page):
            page.locator("#site-menu > summary").click()  # as a person sees it: folded
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SCREENSHOTS}/{name}-{width}.png", full_page=True)


def test_a_coachs_pages_fit_the_screen_and_pass_axe(coach: Page, server: Server) -> None:
    page = coach
    check_page(page, "start")
    page.goto(f"{server.url}/familien/")
    check_page(page, "families")
    page.locator("main table a").first.click()
    expect(page.get_by_role("heading", name=re.compile(r"Familie F-"))).to_be_visible()
    check_page(page, "family")
    page.goto(f"{server.url}/vermittlungen/eingang/")
    check_page(page, "inbox")
    page.goto(f"{server.url}/vermittlungen/ausgang/")
    check_page(page, "outbox")
    page.goto(f"{server.url}/nachrichten/")
    check_page(page, "threads")
    page.locator("main table a").first.click()
    expect(page.locator("#messages")).to_be_attached()
    check_page(page, "thread")
    page.goto(f"{server.url}/konto/")
    check_page(page, "account")


def test_the_phone_menu_opens_and_closes_with_the_keyboard(
    server: Server, browser: Browser, signed_in: dict[str, Any]
) -> None:
    page = open_page(browser, signed_in, server, viewport=PHONE)
    nav = page.get_by_role("navigation", name="Hauptnavigation")
    expect(nav).to_be_hidden()
    page.locator("#site-menu > summary").focus()
    page.keyboard.press("Enter")
    expect(nav).to_be_visible()
    page.keyboard.press("Tab")
    expect(nav.get_by_role("link", name="Übersicht")).to_be_focused()
    page.keyboard.press("Escape")
    expect(nav).to_be_hidden()
    expect(page.locator("#site-menu > summary")).to_be_focused()
    page.context.close()


def test_without_javascript_the_phone_menu_is_open_and_tables_scroll(
    server: Server, browser: Browser, signed_in: dict[str, Any]
) -> None:
    page = open_page(browser, signed_in, server, viewport=PHONE, java_script_enabled=False)
    expect(page.get_by_role("navigation", name="Hauptnavigation")).to_be_visible()
    page.goto(f"{server.url}/konto/")
    # The sessions table is not made into cards without the script, but it scrolls inside
    # its own box: the page itself stays as wide as the screen.
    assert overflow(page) == [], " ".join(overflow(page))
    page.context.close()


def test_a_system_in_dark_mode_still_gets_dark_text_on_white(
    server: Server, browser: Browser, signed_in: dict[str, Any]
) -> None:
    # KERN follows prefers-color-scheme; our colours are light only, so the page fixes the
    # light theme: nothing may turn white on white (or dark on dark).
    page = open_page(browser, signed_in, server, viewport=PHONE, color_scheme="dark")
    # Computed colours as RGB (the browser may report KERN's oklch() values as they are).
    colours = page.evaluate(
        """() => {
            const paint = document.createElement("canvas").getContext("2d");
            const rgb = colour => {
                paint.fillStyle = colour;
                paint.fillRect(0, 0, 1, 1);
                return [...paint.getImageData(0, 0, 1, 1).data].slice(0, 3);
            };
            const style = selector => getComputedStyle(document.querySelector(selector));
            return {
                background: rgb(style("body").backgroundColor),
                texts: ["body", "main h1", ".brand", ".site-menu__button"]
                    .map(selector => rgb(style(selector).color)),
            };
        }"""
    )
    assert colours["background"] == [255, 255, 255]
    assert all(sum(text) < 3 * 128 for text in colours["texts"]), colours  # dark on white
    results = axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_21_AA}})
    assert results.violations_count == 0, results.generate_report()
    page.context.close()
