"""The pages of the lead, the caseworker, the processing office and the data-protection
officer at 1280 × 800 and 390 × 844: no page wider than the screen, the menu and "Abmelden"
inside it, and no WCAG 2.1 A/AA violation that axe-core finds (as for the coach in
test_layout.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import Server
from tests.browser.test_layout import DESKTOP, PHONE, check_page
from tests.browser.test_referrals import log_in

# Each person with the pages of her day (the processing office is Jana's Jobcenter).
JOURNEYS: dict[str, list[str]] = {
    "anna": [],  # her pages: test_layout.py; the ones reached by a click below
    "jana": ["/", "/vermittlungen/eingang/", "/antraege/", "/team/"],
    "clara": [],  # her start page, with a referral to assign: below
    "ben": ["/", "/vermittlungen/eingang/", "/nachrichten/"],
    "dora": [
        "/datenschutz/",
        "/datenschutz/protokoll/",
        "/datenschutz/verzeichnis/",
        "/datenschutz/auffaelligkeiten/",
    ],
}


@pytest.fixture(scope="module")
def sessions(server: Server, browser: Browser) -> dict[str, Any]:
    """Each person logged in once (a TOTP code works once; other modules log in the same
    people), her session reused at both widths."""
    states = {}
    for person in JOURNEYS:
        context = browser.new_context()
        log_in(context.new_page(), server, f"{person}@demo.dienstweg.invalid")
        states[person] = context.storage_state()
        context.close()
    return states


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
@pytest.mark.parametrize("person", sorted(JOURNEYS))
def test_each_roles_pages_fit_the_screen_and_pass_axe(
    person: str, viewport: dict[str, int], server: Server, browser: Browser, sessions: Any
) -> None:
    page = browser.new_context(viewport=viewport, storage_state=sessions[person]).new_page()
    for path in JOURNEYS[person]:
        page.goto(f"{server.url}{path}")
        check_page(page, f"{person}{path.replace('/', '-')}")
    page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_a_leads_start_page_with_referrals_to_assign_fits_the_screen_and_passes_axe(
    viewport: dict[str, int], server: Server, browser: Browser, sessions: Any
) -> None:
    """Clara (the Jugendamt's lead) has the demo's referral nobody is assigned to: her start
    page lists it with a box to tick and the form to assign (nothing is assigned here);
    Jana's names her direct conversation by its other person."""
    page = browser.new_context(viewport=viewport, storage_state=sessions["clara"]).new_page()
    page.goto(f"{server.url}/")
    unassigned = page.locator('[data-queue="referrals.unassigned"]')
    expect(
        unassigned.get_by_role("checkbox", name=re.compile(r"F-\d{4}-\d{4} auswählen"))
    ).not_to_have_count(0)
    expect(unassigned.get_by_role("combobox", name="Zuweisen an")).to_be_visible()
    expect(unassigned.get_by_role("button", name="Zuweisen")).to_be_visible()
    check_page(page, "clara-start")
    page.context.close()
    page = browser.new_context(viewport=viewport, storage_state=sessions["jana"]).new_page()
    page.goto(f"{server.url}/")
    unread = page.locator('[data-queue="messaging.unread"]')
    expect(
        unread.get_by_role("link", name="Anna Albers (Familiencoaching Gladbeck)")
    ).to_be_visible()
    page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_a_case_from_both_sides_fits_the_screen_and_passes_axe(
    viewport: dict[str, int], server: Server, browser: Browser, sessions: Any
) -> None:
    """The pages reached by a click: the family's edit page and its consent read back in full,
    a tagged application, the confirmation before a withdrawal (the coach's side), and a
    referral as its receiving lead opens it."""
    coach = browser.new_context(viewport=viewport, storage_state=sessions["anna"]).new_page()
    coach.goto(f"{server.url}/familien/")
    coach.get_by_role("link", name=re.compile(r"F-\d{4}-0001")).click()
    family_url = coach.url
    coach.get_by_role("link", name="Familie bearbeiten").click()
    check_page(coach, "family-edit")
    coach.goto(family_url)
    coach.get_by_role("link", name=re.compile("im Einzelnen")).first.click()
    check_page(coach, "consent")
    coach.goto(f"{server.url}/antraege/")
    coach.locator("main table a").first.click()
    check_page(coach, "tag")
    coach.goto(f"{server.url}/vermittlungen/ausgang/")
    coach.locator("main table a").first.click()
    check_page(coach, "referral-sender")
    if coach.get_by_role("button", name="Zurückziehen").count():
        coach.get_by_role("button", name="Zurückziehen").click()  # asks first: nothing happens
        check_page(coach, "withdraw-confirmation")
    coach.context.close()

    lead = browser.new_context(viewport=viewport, storage_state=sessions["jana"]).new_page()
    lead.goto(f"{server.url}/vermittlungen/eingang/")
    lead.locator("main table a").first.click()
    check_page(lead, "referral-receiver")
    lead.context.close()
