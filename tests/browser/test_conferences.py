"""A Familienkonferenz in a real browser, on the desktop and on a phone: Anna (coach)
convenes one for the Yılmaz family with Ben (Jobcenter), records an agreement for him; Ben
finds it on his start page, confirms it bindingly and later ends it as not possible with
the gap it revealed. Every page fits the screen and passes axe-core."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Server
from tests.browser.test_layout import DESKTOP, PHONE, check_page
from tests.browser.test_referrals import log_in


def open_as(browser: Browser, server: Server, email: str, viewport: dict[str, int]) -> Page:
    page = browser.new_context(viewport=viewport).new_page()  # type: ignore[arg-type]
    log_in(page, server, email)
    return page


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_convene_agree_confirm_and_follow_up(
    server: Server, browser: Browser, viewport: dict[str, Any]
) -> None:
    width = viewport["width"]
    anna = open_as(browser, server, "anna@demo.dienstweg.invalid", viewport)
    anna.goto(f"{server.url}/familien/")
    # The Yılmaz family (the first registered): its consent covers case coordination.
    anna.get_by_role("link", name=re.compile(r"F-\d{4}-0001")).first.click()
    anna.get_by_role("link", name="Familienkonferenz einberufen").click()
    check_page(anna, "conference-form")
    day = date.today() + timedelta(days=9 if width == 1280 else 10)
    anna.get_by_label("Datum").fill(day.isoformat())
    anna.get_by_label("Beginn").fill("09:30")
    anna.get_by_label("Ort").fill("Familienbüro Gladbeck")
    anna.get_by_role("checkbox", name="Ben Becker").check()
    anna.get_by_role("checkbox", name="Identität und Kontakt").check()
    anna.get_by_label("Tagesordnung").fill("Arbeitssuche")
    anna.get_by_role("button", name="Einladen").click()
    expect(anna.get_by_text("Familienkonferenz einberufen; die Eingeladenen")).to_be_visible()
    what = f"Ben klärt die Teilzeitstelle ({width})"
    anna.get_by_label("Was wird vereinbart?").fill(what)
    anna.get_by_label("Wer ist zuständig?").select_option(
        label="Jobcenter Kreis Recklinghausen, Bezirksstelle Gladbeck"
    )
    anna.get_by_label("Person (freiwillig)").select_option(
        label="Ben Becker (Jobcenter Kreis Recklinghausen, Bezirksstelle Gladbeck)"
    )
    anna.get_by_label("Bis wann?").fill((day + timedelta(days=14)).isoformat())
    anna.get_by_role("button", name="Festhalten").click()
    expect(anna.get_by_text(what)).to_be_visible()
    check_page(anna, "conference")
    conference_url = anna.url.split("#")[0]
    anna.get_by_role("button", name="Unterhaltung zur Konferenz").click()
    expect(
        anna.get_by_role("heading", name=re.compile("Unterhaltung: Familienkonferenz"))
    ).to_be_visible()
    # live.js is deferred: an Enter before it runs is a line break in the box, not a send.
    expect(anna.locator("#live-status")).to_have_text("Live verbunden", timeout=60_000)
    anna.get_by_label("Nachricht", exact=True).fill(f"Bis nächste Woche ({width})")
    anna.get_by_label("Nachricht", exact=True).press("Enter")
    expect(
        anna.locator("#messages p.body").get_by_text(f"Bis nächste Woche ({width})")
    ).to_be_visible()

    ben = open_as(browser, server, "ben@demo.dienstweg.invalid", viewport)
    section = ben.get_by_role("region", name="Ihre Vereinbarungen aus Familienkonferenzen")
    expect(section).to_be_visible()
    ben.goto(conference_url)
    expect(ben.get_by_text("Familienbüro Gladbeck")).to_be_visible()
    ben.get_by_role("button", name="Unterhaltung zur Konferenz").click()
    expect(
        ben.locator("#messages p.body").get_by_text(f"Bis nächste Woche ({width})")
    ).to_be_visible()
    ben.goto(conference_url)
    item = ben.locator("li.agreement").filter(has_text=what)
    item.get_by_role("link", name="Verbindlich bestätigen").click()
    check_page(ben, "agreement-confirm")
    ben.get_by_role("button", name="Ja, verbindlich bestätigen").click()
    item = ben.locator("li.agreement").filter(has_text=what)
    expect(item).to_contain_text("bestätigt von Ben Becker")
    expect(item.get_by_role("link", name="Signierte Bestätigung (JSON)")).to_be_visible()
    item.get_by_role("link", name="Erledigt oder nicht möglich").click()
    ben.get_by_role("radio", name="nicht möglich").check()
    ben.get_by_label("Warum nicht möglich?").select_option(label="Wartezeit zu lang")
    check_page(ben, "agreement-close")
    ben.get_by_role("button", name="Beenden").click()
    item = ben.locator("li.agreement").filter(has_text=what)
    expect(item).to_contain_text("nicht möglich – Wartezeit zu lang")
    ben.goto(f"{server.url}/konferenzen/")
    check_page(ben, "conference-list")
    for page in (anna, ben):
        page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_the_steering_group_reads_the_report(
    server: Server, browser: Browser, viewport: dict[str, Any]
) -> None:
    sven = open_as(browser, server, "sven@demo.dienstweg.invalid", viewport)
    sven.goto(f"{server.url}/konferenzen/")
    sven.get_by_role("link", name="Strukturkonferenz: Bericht").click()
    expect(sven.get_by_role("heading", name="Strukturkonferenz: Bericht")).to_be_visible()
    expect(sven.get_by_role("heading", name="Entwicklung")).to_be_visible()
    check_page(sven, "structure-report")
    with sven.expect_download() as download:
        sven.get_by_role("link", name="Als CSV").click()
    assert download.value.suggested_filename.endswith(".csv")
    sven.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_an_anonymous_consultation_is_checked_before_it_leaves(
    server: Server, browser: Browser, viewport: dict[str, Any]
) -> None:
    anna = open_as(browser, server, "anna@demo.dienstweg.invalid", viewport)
    anna.goto(f"{server.url}/familien/")
    anna.get_by_role("link", name=re.compile(r"F-\d{4}-0001")).first.click()
    anna.get_by_role("link", name="Anonyme Fallberatung").click()
    anna.get_by_role("checkbox", name="Stadt Gladbeck, Amt für Migration und Zusammenleben").check()
    anna.get_by_label("Fall und Frage, ohne die Familie zu nennen").fill(
        "Familie Yılmaz braucht einen Sprachkurs mit Kinderbetreuung."
    )
    anna.get_by_role("button", name="Prüfen und senden").click()
    expect(
        anna.get_by_text("Der Text nennt die Familie (Name aus dem Haushalt)").first
    ).to_be_visible()
    check_page(anna, "consultation-form")
    anna.get_by_label("Fall und Frage, ohne die Familie zu nennen").fill(
        "Mutter mit zwei Kindern sucht einen Sprachkurs mit Kinderbetreuung am Vormittag."
    )
    anna.get_by_role("button", name="Prüfen und senden").click()
    expect(anna.get_by_text(re.compile("Gesendet als „Fallberatung"))).to_be_visible()
    check_page(anna, "consultation")
    anna.context.close()


def in_english(page: Page, server: Server) -> Page:
    """As after choosing English in the language menu: its cookie."""
    page.context.add_cookies([{"name": "dienstweg_language", "value": "en", "url": server.url}])
    return page


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_the_conference_pages_in_english(
    server: Server, browser: Browser, viewport: dict[str, Any]
) -> None:
    anna = in_english(open_as(browser, server, "anna@demo.dienstweg.invalid", viewport), server)
    anna.goto(f"{server.url}/konferenzen/")
    expect(anna).to_have_title("Family conferences – Dienstweg")
    expect(anna.get_by_role("heading", name="Past family conferences")).to_be_visible()
    check_page(anna, "conferences-en")
    # The Yılmaz conference of last week (the demo's), with its agreements.
    anna.get_by_role("main").get_by_role("link", name=re.compile(r"F-\d{4}-0001")).first.click()
    expect(anna.get_by_role("heading", name=re.compile(r"Family conference F-"))).to_be_visible()
    expect(anna.get_by_role("heading", name="Agreements")).to_be_visible()
    check_page(anna, "conference-en")
    anna.context.close()
    sven = in_english(open_as(browser, server, "sven@demo.dienstweg.invalid", viewport), server)
    sven.goto(f"{server.url}/strukturkonferenz/")
    expect(sven.get_by_role("heading", name="Structural conference: report")).to_be_visible()
    expect(sven.get_by_role("heading", name="Trend")).to_be_visible()
    expect(sven.get_by_text("Families referred").first).to_be_visible()
    check_page(sven, "structure-report-en")
    sven.context.close()
