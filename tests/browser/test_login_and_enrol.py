"""Access in Chromium: a new person sets up her access through her enrolment link and, after
confirming her login, renews her authenticator app and backup codes; a lead resets a lost
second factor and the colleague sets up a new one through the mailed link; an enrolled
person logs in with the keyboard alone. Screenshots at 1280 and 390 px go to the server's
data directory (screens/)."""

from __future__ import annotations

import base64
import re
import time
from email import message_from_string
from pathlib import Path
from urllib.parse import urlsplit

from django_otp.oath import TOTP
from playwright.sync_api import Browser, Page, expect

from dienstweg.demo import DEMO_PASSWORD
from tests.browser.conftest import Server
from tests.browser.test_referrals import log_in

NORA = "nora@demo.dienstweg.invalid"
NORAS_PASSWORD = "Wohngeld-Sachbearbeitung-2026"
WIDTHS = (1280, 390)
# Not "Neues Passwort wiederholen" (the label ends with the mark of a required field).
NEW_PASSWORD_LABEL = re.compile(r"^Neues Passwort\W*$")


def totp_now(secret_base32: str, steps_ahead: int = 0) -> str:
    key = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    totp = TOTP(key)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def screens(page: Page, server: Server, name: str) -> None:
    """The page as it is now, at the desktop and the phone width."""
    folder = Path(server.env["DIENSTWEG_DATA_DIR"]) / "screens"
    folder.mkdir(exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def printed_link(server: Server) -> str:
    [link] = re.findall(r"https?://\S+/zugang/\S+/", server.demo_output)
    return link


def mailed_links(server: Server, to: str) -> list[str]:
    """The enrolment links mailed to TO, oldest first (development mail: files in var/mail)."""
    server.manage("send_notifications")  # the outbox's sender, as its service does
    links = []
    for path in sorted(Path(server.env["DIENSTWEG_DATA_DIR"], "mail").glob("*.log")):
        for text in path.read_text().split("-" * 79):
            mail = message_from_string(text.strip())
            if mail["To"] == to:
                links += re.findall(r"https?://\S+/zugang/\S+/", mail.get_payload())
    return links


def set_up_authenticator(page: Page) -> str:
    """Read the secret off the page, as an authenticator app would from the QR code."""
    expect(page.locator("figure.qr svg")).to_be_visible()
    return page.locator("code.secret").inner_text().replace(" ", "")


def test_new_person_sets_up_her_access_through_her_link(server: Server, browser: Browser) -> None:
    link = printed_link(server)
    assert link.startswith(server.url)  # load_demo prints it for the address it serves
    page = browser.new_page()

    # The password login never enrols: it points to the link.
    page.goto(f"{server.url}/anmelden/")
    page.get_by_label("E-Mail-Adresse").fill(NORA)
    page.get_by_label("Passwort").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    expect(page.get_by_role("alert")).to_contain_text("E-Mail-Adresse oder Passwort ist falsch")

    page.goto(link)
    expect(page.get_by_role("heading", name="Zugang einrichten", level=1)).to_be_visible()
    expect(page.get_by_text(NORA)).to_be_visible()
    screens(page, server, "link-1-start")
    secret = set_up_authenticator(page)
    page.get_by_label(NEW_PASSWORD_LABEL).fill(NORAS_PASSWORD)
    page.get_by_label("Neues Passwort wiederholen").fill(NORAS_PASSWORD)
    page.get_by_label("Code aus der App").fill("000000" if totp_now(secret) != "000000" else "1")
    page.get_by_role("button", name="Zugang einrichten").click()
    expect(page.get_by_role("heading", name="Bitte prüfen Sie Ihre Eingaben")).to_be_visible()
    expect(page.locator(".error-summary")).to_contain_text("Der Code stimmt nicht")
    screens(page, server, "link-2-wrong-code")
    # After a wrong code django-otp wants a pause (one second at the first failure).
    page.wait_for_timeout(1500)
    page.get_by_label(NEW_PASSWORD_LABEL).fill(NORAS_PASSWORD)
    page.get_by_label("Neues Passwort wiederholen").fill(NORAS_PASSWORD)
    page.get_by_label("Code aus der App").fill(totp_now(secret))
    page.get_by_role("button", name="Zugang einrichten").click()

    expect(page.get_by_role("heading", name="Ihre Backup-Codes")).to_be_visible()
    codes = [code.inner_text() for code in page.locator("ul.codes code").all()]
    assert len(codes) == 10
    screens(page, server, "link-3-backup-codes")
    page.get_by_role("link", name=re.compile("weiter")).click()
    expect(page.get_by_role("heading", name="Guten Tag, Nora Neumann")).to_be_visible()

    # The link worked once: opened again, it says so and changes nothing.
    again = browser.new_page()
    again.goto(link)
    expect(again.get_by_role("heading", name="Link ungültig")).to_be_visible()
    expect(again.get_by_role("alert")).to_contain_text("Dieser Link gilt nicht (mehr).")
    screens(again, server, "link-4-used")
    again.close()

    # Signed in and verified: the directory, searchable.
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name="Verzeichnis"
    ).click()
    page.get_by_role("textbox", name="Suche").fill("Wohngeld")
    page.get_by_role("button", name="Suchen").click()
    expect(page.get_by_role("status")).to_contain_text("1 Einrichtung gefunden")

    # New backup codes only after confirming the login with password and a code.
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name="Mein Konto"
    ).click()
    page.get_by_role("link", name="Anmeldung bestätigen").click()
    expect(page.get_by_role("heading", name="Anmeldung bestätigen")).to_be_visible()
    screens(page, server, "reauth")
    page.get_by_label("Passwort").fill(NORAS_PASSWORD)
    page.get_by_label("Code").fill(codes[0])  # a backup code: the app's code was just used
    page.get_by_role("button", name="Bestätigen").click()
    expect(page.get_by_role("heading", name="Mein Konto")).to_be_visible()
    expect(page.get_by_text("Ihre Anmeldung ist bestätigt bis")).to_be_visible()
    screens(page, server, "account-confirmed")

    # A new phone: the new app replaces the old one once its first code is confirmed.
    page.get_by_role("link", name=re.compile("Neue Authenticator-App einrichten")).click()
    expect(page.get_by_role("heading", name="Neue Authenticator-App einrichten")).to_be_visible()
    screens(page, server, "renew-factor")
    new_secret = set_up_authenticator(page)
    assert new_secret != secret
    page.get_by_label("Code aus der App").fill(totp_now(new_secret))
    page.get_by_role("button", name="Neue App bestätigen").click()
    expect(page.get_by_role("heading", name="Ihre Backup-Codes")).to_be_visible()
    codes = [code.inner_text() for code in page.locator("ul.codes code").all()]
    page.get_by_role("link", name=re.compile("weiter")).click()

    # New backup codes, still within the confirmed minutes.
    page.get_by_role("button", name="Neue Backup-Codes erzeugen").click()
    expect(page.get_by_role("heading", name="Ihre Backup-Codes")).to_be_visible()
    assert codes[0] not in page.content()
    page.get_by_role("link", name=re.compile("weiter")).click()
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name=re.compile("Benachrichtigungen")
    ).click()
    expect(page.get_by_text("neue Authenticator-App eingerichtet")).to_be_visible()
    expect(page.get_by_text("neue Backup-Codes erzeugt")).to_be_visible()
    screens(page, server, "notices")

    # Her own new password, still within the confirmed minutes.
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name="Mein Konto"
    ).click()
    page.get_by_role("link", name="Passwort ändern").click()
    expect(page.get_by_role("heading", name="Passwort ändern")).to_be_visible()
    screens(page, server, "change-password")
    page.get_by_label(NEW_PASSWORD_LABEL).fill("Noch-ein-neues-Passwort-2026")
    page.get_by_label("Neues Passwort wiederholen").fill("Noch-ein-neues-Passwort-2026")
    page.get_by_role("button", name="Passwort ändern").click()
    expect(page.get_by_role("status")).to_contain_text("Ihr Passwort ist geändert")
    screens(page, server, "account-after-password")

    page.get_by_role("button", name="Abmelden").click()
    expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
    page.close()


def test_her_lead_resets_a_lost_second_factor(server: Server, browser: Browser) -> None:
    """Mira leads the Amt für Migration und Zusammenleben; Dirk works there and lost his
    phone. Mira resets his second factor; he keeps his password and sets up a new app
    through the link he gets by e-mail."""
    dirk = "dirk@demo.dienstweg.invalid"
    lead = browser.new_page()
    log_in(lead, server, "mira@demo.dienstweg.invalid")
    lead.get_by_role("link", name=re.compile("Team")).click()
    expect(lead.get_by_role("heading", name="Team", level=1)).to_be_visible()
    screens(lead, server, "team")
    lead.get_by_role("link", name="Zweiten Faktor zurücksetzen – Dirk Dahl").click()
    expect(lead.get_by_role("heading", name="Zweiten Faktor zurücksetzen")).to_be_visible()
    screens(lead, server, "team-reset-confirm")
    before = mailed_links(server, dirk)
    lead.get_by_role("button", name="Zweiten Faktor zurücksetzen").click()
    expect(lead.get_by_role("status")).to_contain_text("ist zurückgesetzt")
    expect(lead.get_by_text("Einrichtung ausstehend, Link gültig bis")).to_be_visible()
    screens(lead, server, "team-after-reset")
    lead.close()

    # His password alone no longer leads anywhere but to the hint.
    page = browser.new_page()
    page.goto(f"{server.url}/anmelden/")
    page.get_by_label("E-Mail-Adresse").fill(dirk)
    page.get_by_label("Passwort").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    expect(page.get_by_role("heading", name="Zugang noch nicht eingerichtet")).to_be_visible()
    screens(page, server, "not-enrolled")

    links = mailed_links(server, dirk)
    assert len(links) == len(before) + 1
    page.goto(links[-1])
    expect(page.get_by_role("heading", name="Neuen zweiten Faktor einrichten")).to_be_visible()
    screens(page, server, "link-lost-factor")
    secret = set_up_authenticator(page)
    page.get_by_label("Ihr bisheriges Passwort").fill(DEMO_PASSWORD)
    page.get_by_label("Code aus der App").fill(totp_now(secret))
    page.get_by_role("button", name="Zugang einrichten").click()
    expect(page.get_by_role("heading", name="Ihre Backup-Codes")).to_be_visible()
    page.get_by_role("link", name=re.compile("weiter")).click()
    expect(page.get_by_role("heading", name="Guten Tag, Dirk Dahl")).to_be_visible()
    assert urlsplit(page.url).path == "/"
    page.close()


def test_enrolled_user_logs_in_with_code_and_keyboard_only(
    server: Server, browser: Browser
) -> None:
    page = browser.new_page()
    page.goto(f"{server.url}/anmelden/")
    # The email field has the focus: type, tab, type, enter.
    expect(page.get_by_label("E-Mail-Adresse")).to_be_focused()
    # Emil logs in nowhere else: another test's login in the same 30 s would replay his code.
    page.keyboard.type("emil@demo.dienstweg.invalid")
    page.keyboard.press("Tab")
    page.keyboard.type(DEMO_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Code eingeben")).to_be_visible()
    code = server.manage("demo_totp", "emil@demo.dienstweg.invalid").strip()
    page.get_by_role("textbox", name="Code").fill(code)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Guten Tag, Emil Engel")).to_be_visible()
    # From the top of a page, the skip link is the first stop and jumps to the content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Zum Inhalt springen")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.screenshot(path=str(server.env["DIENSTWEG_DATA_DIR"]) + "/home.png", full_page=True)
    page.close()
