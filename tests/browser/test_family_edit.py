"""A coach keeps a family record current in Chromium, with JavaScript off: a new phone,
one more person through "weitere Person hinzufügen", and the history naming the fields."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import Server
from tests.browser.test_family_and_consent import log_in


@pytest.fixture(scope="module")
def anna_session(server: Server, browser: Browser) -> dict:
    """Anna's signed-in session, once per module: her code is accepted once per 30 s."""
    context = browser.new_context()
    log_in(context.new_page(), server, "anna@demo.dienstweg.invalid")
    state = context.storage_state()
    context.close()
    return state


def test_coach_adds_a_person_and_sees_the_change_in_the_history(
    server: Server, browser: Browser, anna_session: dict
) -> None:
    # Without JavaScript: adding a row must work with the form alone.
    context = browser.new_context(java_script_enabled=False, storage_state=anna_session)
    page = context.new_page()
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
    changes = page.locator("ul.changes")
    expect(changes).to_contain_text("Telefon, 1 Person hinzugefügt")
    expect(changes).not_to_contain_text("0157")
    context.close()


def test_with_javascript_the_row_is_added_in_place(
    server: Server, browser: Browser, anna_session: dict
) -> None:
    page = browser.new_context(storage_state=anna_session).new_page()
    page.goto(f"{server.url}/familien/neu/")
    rows = page.locator("fieldset.member")
    before = rows.count()
    page.get_by_label("Anschrift").fill("Rentforter Straße 8, 45964 Gladbeck")
    page.evaluate("window.stayed = true")  # gone if the button submitted the page
    for _ in range(2):
        page.get_by_role("button", name="weitere Person hinzufügen").click()
    expect(rows).to_have_count(before + 2)
    assert page.evaluate("window.stayed") is True
    expect(rows.nth(before + 1).get_by_label("Art")).to_be_focused()
    expect(page.get_by_label("Anschrift")).to_have_value("Rentforter Straße 8, 45964 Gladbeck")
    expect(rows.nth(before + 1).locator("legend")).to_have_text(f"Person {before + 2}")
    people = [("adult", "Olga"), *[("child", f"Kind{n}") for n in range(before + 1)]]
    for row, (kind, first_name) in enumerate(people):
        fieldset = rows.nth(row)
        fieldset.get_by_label("Art").select_option(kind)
        fieldset.get_by_label("Vorname").fill(first_name)
        fieldset.get_by_label("Nachname").fill("Sommer")
        fieldset.get_by_label("Geburtsdatum").fill(f"{2000 + row}-03-01" if row else "1985-03-01")
    page.get_by_role("button", name="Familie anlegen").click()

    expect(page.get_by_role("heading", name=re.compile(r"Familie F-\d{4}-\d{4}"))).to_be_visible()
    expect(page.locator("table tbody tr")).to_have_count(before + 2)
    expect(page.get_by_text(f"Familie angelegt ({before + 2} Personen)")).to_be_visible()
