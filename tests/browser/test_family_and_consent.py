"""A coach registers a family, records its consent with a scanned form, and revokes it."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from dienstweg.demo import DEMO_PASSWORD
from tests.browser.conftest import Server


def log_in(page: Page, server: Server, email: str) -> None:
    page.goto(f"{server.url}/anmelden/")
    page.get_by_label("E-Mail-Adresse").fill(email)
    page.get_by_label("Passwort").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.get_by_role("textbox", name="Code").fill(server.manage("demo_totp", email).strip())
    page.get_by_role("button", name="Bestätigen").click()
    expect(page.get_by_role("heading", name=re.compile("Guten Tag"))).to_be_visible()


def test_coach_registers_family_records_and_revokes_consent(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    page = browser.new_page()
    log_in(page, server, "anna@demo.dienstweg.invalid")
    page.get_by_role("link", name="Familien").first.click()
    page.get_by_role("link", name="Familie anlegen").click()
    page.get_by_label("Anschrift").fill("Rentforter Straße 8, 45964 Gladbeck")
    first = page.locator("fieldset.member").nth(0)
    first.get_by_label("Art").select_option("adult")
    first.get_by_label("Vorname").fill("Olena")
    first.get_by_label("Nachname").fill("Petrenko")
    first.get_by_label("Geburtsdatum").fill("1990-05-04")
    second = page.locator("fieldset.member").nth(1)
    second.get_by_label("Art").select_option("child")
    second.get_by_label("Vorname").fill("Dmytro")
    second.get_by_label("Nachname").fill("Petrenko")
    second.get_by_label("Geburtsdatum").fill("2017-03-15")
    page.get_by_role("button", name="Familie anlegen").click()

    heading = page.get_by_role("heading", name=re.compile(r"Familie F-\d{4}-\d{4}"))
    expect(heading).to_be_visible()
    expect(page.get_by_role("cell", name="Olena Petrenko")).to_be_visible()

    page.get_by_role("link", name="Einwilligung erfassen").click()
    page.get_by_label("Jobcenter Kreis Recklinghausen, Bezirksstelle Gladbeck").check()
    page.get_by_label("Identität und Kontakt").check()
    page.get_by_label("Haushalt und Einkommen").check()
    page.get_by_label("Vermittlung (Fallübergabe)").check()
    page.get_by_label("Gültig bis").fill("2027-11-30")
    page.get_by_label("Erteilt von").select_option(label="Olena Petrenko (Erwachsene/r)")
    page.get_by_label("Eigenschaft").select_option("adult_self")
    page.get_by_role("combobox", name="Form", exact=True).select_option("signed_form")
    scan = tmp_path / "einwilligung.pdf"
    scan.write_bytes(b"%PDF-1.4\n% Dienstweg-Test\n%%EOF\n")
    page.get_by_label("Nachweis (Scan, PDF/JPEG/PNG)").set_input_files(str(scan))
    page.get_by_role("button", name="Einwilligung speichern").click()

    expect(page.get_by_text("Einwilligung erfasst.")).to_be_visible()
    consent = page.locator("article.consent").first
    expect(consent.locator(".badge")).to_have_text("aktiv")
    with page.expect_download() as download:
        consent.get_by_role("link", name="Scan herunterladen").click()
    assert Path(download.value.path()).read_bytes() == scan.read_bytes()

    consent.get_by_label("Vermerk zum Widerruf").fill("Telefonisch widerrufen")
    consent.get_by_role("button", name="Widerrufen").click()
    # Asked first, with the note as typed; then revoked. The note's field is on both pages:
    # the question's own button tells that the page has changed.
    confirm = page.get_by_role("button", name="Ja, widerrufen")
    expect(confirm).to_be_visible()
    expect(page.get_by_label("Vermerk zum Widerruf")).to_have_value("Telefonisch widerrufen")
    page.wait_for_load_state()
    page.screenshot(
        path=str(server.env["DIENSTWEG_DATA_DIR"]) + "/consent-revoke.png", full_page=True
    )
    confirm.click()
    expect(page.get_by_text("Die Einwilligung ist widerrufen.")).to_be_visible()
    expect(page.locator("article.consent").first.locator(".badge")).to_have_text("widerrufen")
    page.screenshot(path=str(server.env["DIENSTWEG_DATA_DIR"]) + "/family.png", full_page=True)
    page.close()


def test_caseworker_of_another_agency_cannot_open_the_family(
    server: Server, browser: Browser
) -> None:
    page = browser.new_page()
    # Paul, the project's lead (a second login of Anna's within 30 s would replay her code).
    log_in(page, server, "paul@demo.dienstweg.invalid")
    page.goto(f"{server.url}/familien/")
    page.get_by_role("link", name=re.compile(r"F-\d{4}-\d{4}")).first.click()
    family_url = page.url
    page.close()

    outsider = browser.new_page()
    log_in(outsider, server, "dirk@demo.dienstweg.invalid")
    response = outsider.goto(family_url)
    assert response is not None and response.status == 404
    outsider.goto(f"{server.url}/familien/")
    expect(outsider.get_by_role("status")).to_contain_text("0 Familien")
    outsider.close()
