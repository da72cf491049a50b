"""Stored script and event-handler markup in every free-text field a user fills reaches the
other side as text, live over the socket and after a reload: the project's lead (Paul)
registers a family, records its consent, refers it to the Jobcenter, tags an application
and writes (and edits) a message; the Jobcenter's lead (Jana) reads all of it, writes
back, declines the referral, completes a second one and asks for documents, which Paul
reads. An agency's name,
typed by an operator, shows in the directory alike.

The page's Content-Security-Policy would stop an injected inline script from running
anyway, so the test looks at the document itself: no element the markup would have made
(no <img src=x>, no element with an onerror attribute, no script mentioning __xss), the
markup's text on the page, and window.__xss undefined."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ROOT, Server
from tests.browser.test_referrals import log_in

SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=1">'
WAIT = 20_000  # ms for anything that crosses the socket
SENDER = "paul@demo.dienstweg.invalid"  # lead of the project (Familiencoaching Gladbeck)
RECEIVER = "jana@demo.dienstweg.invalid"  # lead of the Jobcenter
JOBCENTER = "Jobcenter Kreis Recklinghausen, Bezirksstelle Gladbeck"


def marked(field: str) -> str:
    """Markup of both kinds, named after the field it goes into."""
    return f"{field}: {SCRIPT} {IMG}"


def assert_inert(page: Page, *texts: str) -> None:
    """The markup is on the page as text, and nothing of it became an element."""
    injected = page.evaluate(
        """() => ({
            xss: typeof window.__xss,
            images: document.querySelectorAll('img[src="x"]').length,
            handlers: document.querySelectorAll("[onerror]").length,
            scripts: [...document.scripts].filter(s => s.textContent.includes("__xss")).length,
        })"""
    )
    assert injected == {"xss": "undefined", "images": 0, "handlers": 0, "scripts": 0}, page.url
    shown = page.locator("body").inner_text()
    for text in texts:
        assert text in shown, f"{text!r} not shown as text on {page.url}: {shown}"


def test_no_live_message_is_rendered_as_html() -> None:
    """The page's own scripts put text into the document with textContent, never as HTML.
    One exception, in one place: live.js places a message as the server rendered it for
    the reader (messaging/messages.html through Django's autoescaping, the very markup of
    the page after a reload), parsed in a <template> element, whose content runs nothing.
    That template marks nothing safe; the test below sends markup through it both ways."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\.html\(")
    scripts = [p for p in ROOT.glob("*/static/**/*.js") if ".venv" not in p.parts]
    live = ROOT / "messaging/static/messaging/live.js"
    assert live in scripts
    found = [
        (p, line.strip())
        for p in scripts
        for line in p.read_text().splitlines()
        if sinks.search(line)
    ]
    assert found == [
        (live, "holder.innerHTML = message.html; // rendered and escaped by Django's template")
    ]
    template = (ROOT / "messaging/templates/messaging/messages.html").read_text()
    assert "|safe" not in template and "autoescape" not in template
    assert "safe" not in (ROOT / "messaging/rendering.py").read_text()


def register_family(page: Page, server: Server) -> dict[str, str]:
    texts = {
        "first": "V " + SCRIPT,
        "last": "N " + IMG,
        "address": marked("Anschrift"),
        "phone": IMG,
        "notes": marked("Notizen"),
    }
    page.goto(f"{server.url}/familien/neu/")
    page.get_by_label("Anschrift").fill(texts["address"])
    page.get_by_label("Telefon").fill(texts["phone"])
    page.get_by_label("Notizen").fill(texts["notes"])
    first = page.locator("fieldset.member").nth(0)
    first.get_by_label("Art").select_option("adult")
    first.get_by_label("Vorname").fill(texts["first"])
    first.get_by_label("Nachname").fill(texts["last"])
    first.get_by_label("Geburtsdatum").fill("1985-02-03")
    page.get_by_role("button", name="Familie anlegen").click()
    expect(page.get_by_role("heading", name=re.compile(r"Familie F-\d{4}-\d{4}"))).to_be_visible()
    texts["reference"] = page.get_by_role("heading", level=1).inner_text().split()[-1]
    assert_inert(page, texts["address"], texts["notes"], texts["first"], texts["last"])
    return texts


def record_consent(page: Page, texts: dict[str, str]) -> None:
    page.get_by_role("link", name="Einwilligung erfassen").click()
    page.get_by_label(JOBCENTER).check()
    for category in ("Identität und Kontakt", "Haushalt und Einkommen"):
        page.get_by_label(category).check()
    page.get_by_label("Vermittlung (Fallübergabe)").check()
    page.get_by_label("Unterstützung bei Anträgen").check()
    page.get_by_label("Gültig bis").fill("2030-11-30")
    page.get_by_label("Erteilt von").select_option(index=1)
    page.get_by_label("Eigenschaft").select_option("adult_self")
    page.get_by_role("combobox", name="Form", exact=True).select_option("oral_recorded")
    texts["witness"] = marked("Zeugenvermerk")
    page.get_by_label("Zeugenvermerk").fill(texts["witness"])
    page.get_by_role("button", name="Einwilligung speichern").click()
    expect(page.get_by_text("Einwilligung erfasst.")).to_be_visible()
    assert_inert(page)  # the witness note is stored, and shown on no page


def refer(page: Page, texts: dict[str, str]) -> str:
    page.get_by_role("link", name="Vermitteln").click()
    page.get_by_role("combobox", name="An", exact=True).select_option(label=JOBCENTER)
    texts["need"] = "Bedarf " + IMG
    texts["summary"] = marked("Zusammenfassung")
    texts["household"] = marked("Haushalt")
    page.get_by_label("Bedarf").fill(texts["need"])
    page.get_by_label("Zusammenfassung").fill(texts["summary"])
    page.get_by_role("checkbox", name="Identität und Kontakt").check()
    page.get_by_role("checkbox", name="Haushalt und Einkommen").check()
    page.get_by_label("Angaben: Haushalt und Einkommen").fill(texts["household"])
    page.get_by_role("button", name="Senden").click()
    expect(page.get_by_text("Vermittlung gesendet.")).to_be_visible()
    assert_inert(page, texts["need"], texts["summary"], texts["household"])
    return page.url


def open_thread(page: Page, referral_url: str) -> str:
    page.goto(referral_url)
    page.get_by_role("link", name="Unterhaltung zu dieser Vermittlung öffnen").click()
    expect(page).to_have_url(re.compile(r"/nachrichten/([0-9a-f-]{36}/)?$"))
    if "/vermittlungen/" in page.url:  # not opened yet: opening it is a step of its own
        page.get_by_role("button", name="Unterhaltung eröffnen").click()
    expect(page).to_have_url(re.compile(r"/nachrichten/[0-9a-f-]{36}/$"))
    expect(page.locator("#live-status")).to_have_text("Live verbunden", timeout=WAIT)
    return page.url


def messages(page: Page, text: str) -> Any:
    return page.locator("#messages li.message .body").filter(has_text=text)


def edit_message(page: Page, message_id: str, body: str) -> None:
    """Edit through the page's own endpoint (the page offers no edit box yet): the readers'
    sockets get the edit live."""
    token = page.locator("#composer input[name=csrfmiddlewaretoken]").input_value()
    response = page.request.post(
        f"{page.url.split('/nachrichten/')[0]}/nachrichten/nachricht/{message_id}/aendern/",
        form={"body": body, "csrfmiddlewaretoken": token},
        headers={"Origin": page.url.split("/nachrichten/")[0], "Referer": page.url},
        max_redirects=0,
    )
    assert response.status == 302, response.status


def test_markup_in_every_free_text_field_reaches_the_other_side_as_text(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    sender = browser.new_context().new_page()
    log_in(sender, server, SENDER)
    texts = register_family(sender, server)
    record_consent(sender, texts)
    referral_url = refer(sender, texts)

    receiver = browser.new_context().new_page()
    log_in(receiver, server, RECEIVER)
    receiver.goto(f"{server.url}/vermittlungen/eingang/")
    assert_inert(receiver, texts["reference"])
    receiver.goto(referral_url)
    # What the referral shares of the record (names), and what the sender wrote.
    assert_inert(
        receiver, texts["need"], texts["summary"], texts["household"], texts["first"], texts["last"]
    )

    # Messages, live both ways and after a reload.
    thread_url = open_thread(sender, referral_url)
    assert open_thread(receiver, referral_url) == thread_url
    written = marked("Nachricht")
    sender.get_by_label("Nachricht", exact=True).fill(written)
    sender.get_by_role("button", name="Senden").click()
    expect(messages(receiver, written)).to_have_count(1, timeout=WAIT)
    expect(messages(receiver, written)).to_have_text(written)
    assert_inert(receiver, written)
    assert_inert(sender, written)
    message_id = sender.locator("#messages li.message.own").last.get_attribute("data-id") or ""
    assert re.fullmatch(r"[0-9a-f-]{36}", message_id), message_id
    edited = marked("Bearbeitet")
    edit_message(sender, message_id, edited)
    expect(messages(receiver, edited)).to_have_count(1, timeout=WAIT)
    expect(messages(receiver, edited)).to_have_text(edited)
    assert_inert(receiver, edited)
    answer = marked("Antwort")
    receiver.get_by_label("Nachricht", exact=True).fill(answer)
    receiver.get_by_role("button", name="Senden").click()
    expect(messages(sender, answer)).to_have_count(1, timeout=WAIT)
    assert_inert(sender, answer)
    for page in (receiver, sender):
        page.reload()
        expect(messages(page, edited)).to_have_count(1)
        assert_inert(page, edited, answer)
    receiver.goto(f"{server.url}/nachrichten/")
    assert_inert(receiver)

    # The receiver declines; the sender reads the reason.
    receiver.goto(referral_url)
    receiver.get_by_label("Zuweisen an").select_option(label="Jana Jansen")
    receiver.get_by_role("button", name="Zuweisen").click()
    expect(receiver.get_by_text("Zugewiesen.")).to_be_visible()
    reason = marked("Ablehnung")
    receiver.get_by_label("Grund der Ablehnung").fill(reason)
    receiver.get_by_role("button", name="Ablehnen").click()
    # The page that asks first keeps the reason in its box.
    expect(receiver.get_by_label("Grund der Ablehnung")).to_have_value(reason)
    assert_inert(receiver)
    receiver.get_by_role("button", name="Ja, ablehnen").click()
    expect(receiver.get_by_text("Abgelehnt.")).to_be_visible()
    assert_inert(receiver, reason)
    sender.goto(referral_url)
    assert_inert(sender, reason)
    sender.goto(f"{server.url}/benachrichtigungen/")
    assert_inert(sender)

    # Referred again: accepted and completed, the sender reads the outcome.
    sender.goto(f"{server.url}/familien/")
    sender.get_by_role("link", name=texts["reference"]).click()
    second_url = refer(sender, texts)
    receiver.goto(second_url)
    receiver.get_by_label("Zuweisen an").select_option(label="Jana Jansen")
    receiver.get_by_role("button", name="Zuweisen").click()
    receiver.get_by_role("button", name="Annehmen").click()
    expect(receiver.get_by_text("Angenommen.")).to_be_visible()
    outcome = marked("Ergebnis")
    receiver.get_by_label("Ergebnis").fill(outcome)
    receiver.get_by_role("button", name="Abschließen").click()
    expect(receiver.get_by_text("Abgeschlossen.")).to_be_visible()
    assert_inert(receiver, outcome)
    sender.goto(second_url)
    assert_inert(sender, outcome)
    sender.goto(f"{server.url}/vermittlungen/ausgang/")
    assert_inert(sender, texts["reference"])

    # An application tag: the file number typed by the project, the missing documents
    # typed by the office.
    sender.goto(f"{server.url}/familien/")
    sender.get_by_role("link", name=texts["reference"]).click()
    sender.get_by_role("link", name="Antrag markieren").click()
    # Not the demo's Bürgergeld: test_referrals.py picks that row by its kind.
    sender.locator("select[name=kind]").select_option(label="Sonstiger Antrag")
    sender.get_by_label("Bearbeitende Stelle").select_option(label=JOBCENTER)
    file_number = "AZ " + IMG
    sender.get_by_label("Aktenzeichen der Stelle").fill(file_number)
    sender.get_by_role("button", name="Markieren").click()
    expect(sender).to_have_url(re.compile(r"/antraege/[2-9A-Z-]+/$"))
    assert_inert(sender, file_number)
    tag_url = sender.url
    receiver.goto(tag_url)
    assert_inert(receiver, file_number)
    missing = marked("Unterlagen")
    receiver.get_by_label("Neuer Stand").select_option(label="Unterlagen nachgefordert")
    receiver.get_by_label("Fehlende Unterlagen").fill(missing)
    receiver.get_by_role("button", name="Eintragen").click()
    expect(receiver.get_by_text("Stand eingetragen")).to_be_visible()
    assert_inert(receiver, missing)
    sender.goto(tag_url)
    assert_inert(sender, missing)
    sender.goto(f"{server.url}/antraege/")
    assert_inert(sender)

    # An agency named with markup, as an operator could type it: every member's directory.
    agency = "Beratung " + IMG
    server.manage(
        "shell",
        "-c",
        "from dienstweg import actions; "
        f"actions.create_agency(name={agency!r}, kind='partner', rechtskreis='other')",
    )
    receiver.goto(f"{server.url}/verzeichnis/")
    assert_inert(receiver, agency)
    receiver.get_by_role("link", name=agency).click()
    assert_inert(receiver, agency)
    receiver.screenshot(path=str(tmp_path / "markup.png"), full_page=True)
    sender.context.close()
    receiver.context.close()
