"""The data-protection officer in a real browser: Pia, the DPO of the project that owns the
demo families, finds a family through the trail, opens its access report, restricts its
processing and lifts it again, exports the family's events as CSV, and gets a clear error
for a date range the wrong way round. The console names her scope on every page."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.browser.conftest import Server
from tests.browser.test_referrals import log_in

DEMO_NAMES = ("Yılmaz", "Nowak", "Klein", "Ayşe", "Horster")


def test_dpo_reviews_a_family_in_the_console(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    page = browser.new_context(accept_downloads=True).new_page()
    log_in(page, server, "pia@demo.dienstweg.invalid")
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name="Datenschutz"
    ).click()
    expect(page.get_by_role("heading", name="Datenschutz-Konsole", level=1)).to_be_visible()
    expect(page.get_by_text("Prüfstatus des Protokolls")).to_be_visible()
    expect(page.locator("#console-scope")).to_contain_text(
        "Ansicht: Verantwortlicher „Familiencoaching Gladbeck (rebeq GmbH)“"
    )

    # The trail: who registered which family; the family column leads to its page.
    page.get_by_role("link", name="Protokoll", exact=True).click()
    page.get_by_label("Aktion").select_option("family.registered")
    page.get_by_role("button", name="Suchen").click()
    first = page.get_by_role("row").nth(1)
    family_link = first.get_by_role("link", name=re.compile(r"F-\d{4}-\d{4}"))
    reference = family_link.inner_text()
    family_link.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(reference)

    # The access report names recipients and consultations, never the household.
    page.get_by_role("row", name=re.compile("ohne Namen")).get_by_role(
        "link", name="anzeigen"
    ).click()
    expect(page.get_by_role("heading", name="Auskunft nach Art. 15 DSGVO")).to_be_visible()
    report = page.content()
    assert reference in report
    assert not [name for name in DEMO_NAMES if name in report]
    page.go_back()

    # Restriction with a reason, then lifted.
    page.get_by_label("Grund der Einschränkung").fill("Die Familie bestreitet die Angaben.")
    page.get_by_role("button", name="Verarbeitung einschränken").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("eingeschränkt")
    page.get_by_role("button", name="Einschränkung aufheben").click()
    expect(page.get_by_text("Die Verarbeitung ist nicht eingeschränkt.")).to_be_visible()

    # The family's events as CSV: one file, every row about that family.
    page.get_by_role("link", name="Protokoll", exact=True).click()
    page.get_by_label("Familien-Kennung").fill(reference)
    page.get_by_role("button", name="Suchen").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    path = tmp_path / "export.csv"
    download.value.save_as(path)
    rows = list(csv.DictReader(path.open(encoding="utf-8-sig")))
    assert rows
    assert {row["family_ref"] for row in rows} == {reference}
    assert {"family.processing_restricted", "family.restriction_lifted"} <= {
        row["action"] for row in rows
    }

    # A range the wrong way round is refused with a clear message.
    page.get_by_label("von (Tag)").fill("2026-05-01")
    page.get_by_label("bis (Tag, einschließlich)").fill("2026-04-01")
    page.get_by_role("button", name="Suchen").click()
    expect(page.get_by_text("Das Ende des Zeitraums liegt vor seinem Anfang.")).to_be_visible()


def test_dpo_keeps_a_receipt_of_the_trails_head(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    server.manage("audit_seal")  # what the sealer beside Daphne does every 10 seconds
    context = browser.new_context(accept_downloads=True, viewport={"width": 390, "height": 844})
    page = context.new_page()
    log_in(page, server, "dora@demo.dienstweg.invalid")
    page.goto(f"{server.url}/datenschutz/")
    button = page.get_by_role("button", name="Prüfquittung herunterladen")
    expect(button).to_be_visible()
    data = Path(server.env["DIENSTWEG_DATA_DIR"])
    page.screenshot(path=str(data / "console-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(data / "console-1280.png"), full_page=True)
    with page.expect_download() as download:
        button.click()
    assert download.value.suggested_filename.startswith("pruefquittung-siegel-")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    # Kept outside Dienstweg, it checks out against the trail.
    assert server.manage("audit_verify", "--expect-head", str(path)).startswith("Prüfung bestanden")
