"""Four eyes in a real browser: Tom (the operator) proposes Ida as caseworker at the Amt für
Migration in the admin; the role grants nothing until Mira, the Amt's lead, confirms it on
her start page; Dora, the DPO, finds the grant with both names on the console. Screenshots
at 1280 and 390 px go to the server's data directory (proposal-*.png, grants-*.png)."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Server
from tests.browser.test_referrals import log_in

MIGRATION = "Stadt Gladbeck, Amt für Migration und Zusammenleben"
# The work queue's section (its heading ends with the number waiting).
WAITING = re.compile("^Rollen, die auf Ihre Bestätigung warten")


def choose(page: Page, field: str, text: str) -> None:
    """Pick TEXT in the admin's autocomplete FIELD (select2) as a person would: open, type,
    click the result."""
    page.locator(f"#id_{field} + .select2 .select2-selection").click()
    page.locator(".select2-search__field").fill(text)
    page.locator(".select2-results__option", has_text=text).first.click()


def test_a_lead_confirms_a_proposed_role_on_her_start_page(
    server: Server, browser: Browser
) -> None:
    shots = server.env["DIENSTWEG_DATA_DIR"]
    admin = browser.new_context().new_page()
    log_in(admin, server, "tom@demo.dienstweg.invalid")
    admin.goto(f"{server.url}/admin/dienstweg/membershipproposal/add/")
    choose(admin, "user", "Ida Iske")
    choose(admin, "agency", "Migration")
    admin.get_by_label("Rolle").select_option(label="Fallbearbeitung")
    admin.get_by_role("button", name="Sichern", exact=True).click()
    expect(admin.get_by_text("erfolgreich hinzugefügt")).to_be_visible()
    expect(admin.get_by_role("row", name="Ida Iske")).to_contain_text("Leitung der Einrichtung")
    # Tom cannot confirm his own proposal in the admin either.
    admin.get_by_role("row", name="Ida Iske").get_by_role("checkbox").check()
    admin.get_by_role("combobox", name="Aktion").select_option(
        label="Bestätigen (als zweite Administration)"
    )
    admin.get_by_role("button", name="Ausführen").click()
    expect(admin.get_by_text("Den eigenen Vorschlag bestätigt eine zweite Person.")).to_be_visible()
    admin.context.close()

    lead = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(lead, server, "mira@demo.dienstweg.invalid")
    section = lead.get_by_role("region", name=WAITING)
    expect(section).to_be_visible()
    card = section.get_by_role("article", name="Ida Iske als Fallbearbeitung")
    expect(card).to_contain_text(MIGRATION)
    expect(card).to_contain_text("Tom Technik")
    # Nothing is granted yet: the Amt's page lists no Ida among its colleagues.
    lead.goto(f"{server.url}/verzeichnis/")
    lead.get_by_role("link", name=MIGRATION).first.click()
    expect(lead.get_by_text("Ida Iske")).to_have_count(0)
    lead.goto(f"{server.url}/")
    lead.screenshot(path=f"{shots}/proposal-1280.png", full_page=True)
    lead.set_viewport_size({"width": 390, "height": 844})
    lead.screenshot(path=f"{shots}/proposal-390.png", full_page=True)

    card.get_by_role("button", name="Bestätigen").click()
    expect(
        lead.get_by_text(f"Bestätigt: Ida Iske ist jetzt Fallbearbeitung in {MIGRATION}.")
    ).to_be_visible()
    expect(lead.get_by_role("region", name=WAITING)).to_have_count(0)
    lead.screenshot(path=f"{shots}/proposal-confirmed.png", full_page=True)
    lead.goto(f"{server.url}/verzeichnis/")
    lead.get_by_role("link", name=MIGRATION).first.click()
    expect(lead.get_by_text("Ida Iske").first).to_be_visible()
    lead.context.close()

    dpo = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(dpo, server, "dora@demo.dienstweg.invalid")
    dpo.goto(f"{server.url}/datenschutz/")
    dpo.get_by_role("navigation", name="Datenschutz-Konsole").get_by_role(
        "link", name="Rollenvergaben"
    ).click()
    grant = dpo.get_by_role("row", name="Ida Iske")
    expect(grant).to_contain_text("Tom Technik")
    expect(grant).to_contain_text("Mira Mahler")
    expect(grant).to_contain_text(MIGRATION)
    # The demo's own roles were given directly, as demo data: listed as such.
    expect(dpo.get_by_text("Rollen ohne Bestätigung").last).to_be_visible()
    dpo.screenshot(path=f"{shots}/grants-1280.png", full_page=True)
    dpo.set_viewport_size({"width": 390, "height": 844})
    dpo.screenshot(path=f"{shots}/grants-390.png", full_page=True)
    dpo.context.close()
