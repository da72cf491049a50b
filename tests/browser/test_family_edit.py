"""A coach keeps a family record current in Chromium, with JavaScript off: a new phone,
one more person through "weitere Person hinzufügen", and the history naming the fields."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from tests.browser.conftest import Server
from tests.browser.test_family_and_consent import log_in


def test_coach_adds_a_person_and_sees_the_change_in_the_history(
    server: Server, browser: Browser
) -> None:
    # Without JavaScript: adding a row must work with the form alone.
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    log_in(page, server, "anna@demo.dienstweg.invalid")
    page.goto(f"{server.url}/familien/")
    page.locator("table a").first.click()
    expect(page.get_by_role("heading", name=re.compile(r"Familie F-\d{4}-\d{4}"))).to_be_visible()
    page.get_by_role("link", name="Familie bearbeiten").click()

    page.get_by_label("Telefon").fill("0157 9990001")
    before = page.locator("fieldset.member").count()
    page.get_by_role("button", name="weitere Person hinzufügen").click()
    expect(page.locator("fieldset.member")).to_have_count(before + 1)
    expect(page.get_by_label("Telefon")).to_have_value("0157 9990001")  # typed input kept
    for row in (before - 1, before):  # the form's empty row and the added one
        fieldset = page.locator("fieldset.member").nth(row)
        expect(fieldset.get_by_label("Vorname")).to_have_value("")
    new = page.locator("fieldset.member").nth(before)
    new.get_by_label("Art").select_option("child")
    new.get_by_label("Vorname").fill("Deniz")
    new.get_by_label("Nachname").fill("Neumann")
    new.get_by_label("Geburtsdatum").fill("2024-05-02")
    page.get_by_role("button", name="Änderungen speichern").click()

    expect(page.get_by_text("Änderungen gespeichert.")).to_be_visible()
    expect(page.get_by_role("cell", name="Deniz Neumann")).to_be_visible()
    changes = page.locator("ol.changes")
    expect(changes).to_contain_text("Telefon, 1 Person hinzugefügt")
    expect(changes).not_to_contain_text("0157")
    context.close()
