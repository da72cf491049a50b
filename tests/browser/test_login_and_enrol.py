"""A person's first login, second-factor enrolment and a directory search, in Chromium."""

from __future__ import annotations

import re

from django_otp.oath import TOTP
from playwright.sync_api import Browser, expect

from dienstweg.demo import DEMO_PASSWORD
from tests.browser.conftest import Server


def totp_now(secret_base32: str) -> str:
    import base64

    key = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    return f"{TOTP(key).token():06d}"


def test_first_login_enrols_second_factor_then_searches_directory(
    server: Server, browser: Browser
) -> None:
    page = browser.new_page()
    page.goto(f"{server.url}/verzeichnis/")
    # Not logged in: the directory sends her to the login page.
    expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
    page.get_by_label("E-Mail-Adresse").fill("nora@demo.dienstweg.invalid")
    page.get_by_label("Passwort").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()

    expect(page.get_by_role("heading", name="Zweiten Faktor einrichten")).to_be_visible()
    expect(page.locator("figure.qr svg")).to_be_visible()
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    page.get_by_role("textbox", name="Code").fill(
        "000000" if totp_now(secret) != "000000" else "111111"
    )
    page.get_by_role("button", name="Bestätigen").click()
    expect(page.get_by_role("alert")).to_contain_text("Der Code stimmt nicht")
    # After a wrong code django-otp wants a pause (one second at the first failure).
    page.wait_for_timeout(1500)

    page.get_by_role("textbox", name="Code").fill(totp_now(secret))
    page.get_by_role("button", name="Bestätigen").click()
    expect(page.get_by_role("heading", name="Ihre Backup-Codes")).to_be_visible()
    assert page.locator("ul.codes li").count() == 10
    page.get_by_role("link", name=re.compile("weiter")).click()

    # Back where she wanted to go, verified: the directory, searchable.
    expect(page.get_by_role("heading", name="Netzwerkverzeichnis")).to_be_visible()
    page.get_by_role("textbox", name="Suche").fill("Wohngeld")
    page.get_by_role("button", name="Suchen").click()
    expect(page.get_by_role("status")).to_contain_text("1 Einrichtung gefunden")
    expect(
        page.get_by_role("heading", name="Stadt Gladbeck, Amt für Soziales und Wohnen")
    ).to_be_visible()

    page.get_by_role("button", name="Abmelden").click()
    expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
    page.goto(f"{server.url}/")
    expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
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
