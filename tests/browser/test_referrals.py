"""The closed loop in a real browser: the project's lead refers a family to the Jugendamt
with an attachment, the Jugendamt's lead assigns, accepts and completes it, and the
sender reads the outcome. Then a Jobcenter clerk opens a tagged application by its code
and asks for documents, which the project sees first in its list."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from dienstweg.demo import DEMO_PASSWORD
from tests.browser.conftest import Server


def log_in(page: Page, server: Server, email: str) -> None:
    """Log in with a TOTP code the demo account accepts now. Another test may have used
    this account's code of the current 30-second step (a code works once): demo_totp then
    gives the next step's, which the device's tolerance accepts, so nobody waits. The code
    is read right before it is sent; a step that ends in between is within the tolerance."""
    page.goto(f"{server.url}/anmelden/")
    page.get_by_label("E-Mail-Adresse").fill(email)
    page.get_by_label("Passwort").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.get_by_role("textbox", name="Code").fill(server.manage("demo_totp", email).strip())
    page.get_by_role("button", name="Bestätigen").click()
    expect(page.get_by_role("heading", name=re.compile("Guten Tag"))).to_be_visible()


def test_referral_closed_loop_between_project_and_jugendamt(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    sender = browser.new_context().new_page()
    log_in(sender, server, "paul@demo.dienstweg.invalid")
    sender.goto(f"{server.url}/familien/")
    # The Klein family: its consent names the Jugendamt for referrals.
    sender.get_by_role("link", name=re.compile(r"F-\d{4}-0003")).click()
    reference = sender.get_by_role("heading", level=1).inner_text().split()[-1]
    sender.get_by_role("link", name="Vermitteln").click()
    sender.get_by_role("combobox", name="An", exact=True).select_option(
        label="Stadt Gladbeck, Amt für Jugend und Familie"
    )
    sender.get_by_label("Bedarf").fill("Beratung zur Kita-Platzsuche")
    sender.get_by_role("checkbox", name="Identität und Kontakt").check()
    sender.get_by_role("checkbox", name="Kinder, Betreuung und Schule").check()
    sender.get_by_label("Angaben: Kinder, Betreuung und Schule").fill(
        "Mia (4) braucht ab März einen Platz."
    )
    letter = tmp_path / "anmeldung.pdf"
    letter.write_bytes(b"%PDF-1.4\n% Kita-Anmeldung\n%%EOF\n")
    sender.get_by_label("Anhänge (PDF, JPEG oder PNG)").set_input_files(str(letter))
    sender.get_by_role("button", name="Senden").click()
    expect(sender.get_by_text("Vermittlung gesendet.")).to_be_visible()
    referral_url = sender.url

    receiver = browser.new_context().new_page()
    log_in(receiver, server, "clara@demo.dienstweg.invalid")
    receiver.get_by_role("link", name="Vermittlungen").click()
    receiver.get_by_role("link", name=reference).first.click()
    assert receiver.url == referral_url
    expect(receiver.get_by_text("Mia (4) braucht ab März einen Platz.")).to_be_visible()
    expect(receiver.get_by_text("Sandra Klein")).to_be_visible()
    with receiver.expect_download() as download:
        receiver.get_by_role("link", name="anmeldung.pdf").click()
    assert Path(download.value.path()).read_bytes() == letter.read_bytes()
    receiver.get_by_label("Zuweisen an").select_option(label="Clara Czerny")
    receiver.get_by_role("button", name="Zuweisen").click()
    expect(receiver.get_by_text("Zugewiesen.")).to_be_visible()
    receiver.get_by_role("button", name="Annehmen").click()
    expect(receiver.get_by_text("Angenommen.")).to_be_visible()
    receiver.get_by_label("Ergebnis").fill("Platz in der Kita Brauck ab 1. März.")
    receiver.get_by_role("button", name="Abschließen").click()
    expect(receiver.get_by_text("Abgeschlossen.")).to_be_visible()

    sender.goto(f"{server.url}/vermittlungen/ausgang/")
    row = sender.get_by_role("row").filter(has_text=reference).filter(has_text="Jugend")
    expect(row.first).to_contain_text("abgeschlossen")
    sender.goto(referral_url)
    expect(sender.get_by_text("Platz in der Kita Brauck ab 1. März.")).to_be_visible()
    expect(
        sender.get_by_role("link", name=re.compile("Benachrichtigungen \\([1-9]"))
    ).to_be_visible()
    sender.context.close()
    receiver.context.close()


def test_clerk_opens_tag_by_code_and_requests_documents(server: Server, browser: Browser) -> None:
    coach = browser.new_context().new_page()
    log_in(coach, server, "anna@demo.dienstweg.invalid")
    coach.get_by_role("link", name="Anträge", exact=True).click()
    row = coach.get_by_role("row").filter(has_text="Bürgergeld")
    code = row.get_by_role("link").first.inner_text()
    assert re.fullmatch(r"[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}", code)
    row.get_by_role("link").first.click()
    with coach.expect_download() as download:
        coach.get_by_role("link", name="Stempel drucken (PDF)").click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF-")

    clerk = browser.new_context().new_page()
    log_in(clerk, server, "jana@demo.dienstweg.invalid")
    clerk.goto(f"{server.url}/antraege/code/")
    clerk.get_by_label("Code vom Antrag").fill(code.lower().replace("-", " "))
    clerk.get_by_role("button", name="Öffnen").click()
    expect(clerk.get_by_text("Anna Albers", exact=True)).to_be_visible()
    clerk.get_by_label("Neuer Stand").select_option(label="Unterlagen nachgefordert")
    clerk.get_by_label("Fehlende Unterlagen").fill("Kontoauszüge der letzten drei Monate")
    clerk.get_by_role("button", name="Eintragen").click()
    expect(clerk.get_by_text("Stand eingetragen")).to_be_visible()

    coach.get_by_role("link", name="Anträge", exact=True).click()
    first_row = coach.get_by_role("row").nth(1)
    expect(first_row).to_contain_text(code)
    expect(first_row).to_contain_text("bitte handeln")
    coach.context.close()
    clerk.context.close()
