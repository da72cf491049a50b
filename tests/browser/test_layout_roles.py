"""The pages of the lead, the caseworker, the processing office and the data-protection
officer at 1280 × 800 and 390 × 844: no page wider than the screen, the menu and "Abmelden"
inside it, and no WCAG 2.1 A/AA violation that axe-core finds (as for the coach in
test_layout.py). Among them every page that asks before an irreversible step, and a
family's access report (Art. 15 DSGVO)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import Server
from tests.browser.test_layout import DESKTOP, PHONE, check_page
from tests.browser.test_referrals import log_in

# Each person with the pages of her day (the processing office is Jana's Jobcenter).
JOURNEYS: dict[str, list[str]] = {
    "anna": [],  # her pages: test_layout.py; the ones reached by a click below
    "jana": ["/", "/vermittlungen/eingang/", "/antraege/", "/team/"],
    "clara": [],  # her start page, with a referral to assign: below
    "ben": ["/", "/vermittlungen/eingang/", "/nachrichten/"],
    "dora": [
        "/datenschutz/",
        "/datenschutz/protokoll/",
        "/datenschutz/verzeichnis/",
        "/datenschutz/auffaelligkeiten/",
    ],
}


# Pia, the DPO of the project that owns the demo families, only for their report and erasure.
PEOPLE = [*JOURNEYS, "pia"]


@pytest.fixture(scope="module")
def sessions(server: Server, browser: Browser) -> dict[str, Any]:
    """Each person logged in once (a TOTP code works once; other modules log in the same
    people), her session reused at both widths."""
    states = {}
    for person in PEOPLE:
        context = browser.new_context()
        log_in(context.new_page(), server, f"{person}@demo.dienstweg.invalid")
        states[person] = context.storage_state()
        context.close()
    return states


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
@pytest.mark.parametrize("person", sorted(JOURNEYS))
def test_each_roles_pages_fit_the_screen_and_pass_axe(
    person: str, viewport: dict[str, int], server: Server, browser: Browser, sessions: Any
) -> None:
    page = browser.new_context(viewport=viewport, storage_state=sessions[person]).new_page()
    for path in JOURNEYS[person]:
        page.goto(f"{server.url}{path}")
        check_page(page, f"{person}{path.replace('/', '-')}")
    page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_a_leads_start_page_with_referrals_to_assign_fits_the_screen_and_passes_axe(
    viewport: dict[str, int], server: Server, browser: Browser, sessions: Any, case: Any
) -> None:
    """Jana (the Jobcenter's lead) has the case's referral nobody is assigned to (the demo's
    own ones other modules may have assigned): her start page lists it with a box to tick
    and the form to assign (nothing is assigned here), and names her direct conversation
    by its other person."""
    page = browser.new_context(viewport=viewport, storage_state=sessions["jana"]).new_page()
    page.goto(f"{server.url}/")
    unassigned = page.locator('[data-queue="referrals.unassigned"]')
    expect(
        unassigned.get_by_role("checkbox", name=re.compile(r"F-\d{4}-\d{4} auswählen"))
    ).not_to_have_count(0)
    expect(unassigned.get_by_role("combobox", name="Zuweisen an")).to_be_visible()
    expect(unassigned.get_by_role("button", name="Zuweisen")).to_be_visible()
    check_page(page, "jana-start")
    unread = page.locator('[data-queue="messaging.unread"]')
    expect(
        unread.get_by_role("link", name="Anna Albers (Familiencoaching Gladbeck)")
    ).to_be_visible()
    page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_a_case_from_both_sides_fits_the_screen_and_passes_axe(
    viewport: dict[str, int], server: Server, browser: Browser, sessions: Any
) -> None:
    """The pages reached by a click: the family's edit page and its consent read back in full,
    a tagged application, the confirmation before a withdrawal (the coach's side), and a
    referral as its receiving lead opens it."""
    coach = browser.new_context(viewport=viewport, storage_state=sessions["anna"]).new_page()
    coach.goto(f"{server.url}/familien/")
    coach.get_by_role("link", name=re.compile(r"F-\d{4}-0001")).click()
    family_url = coach.url
    coach.get_by_role("link", name="Familie bearbeiten").click()
    check_page(coach, "family-edit")
    coach.goto(family_url)
    coach.get_by_role("link", name=re.compile("im Einzelnen")).first.click()
    check_page(coach, "consent")
    coach.goto(f"{server.url}/antraege/")
    coach.locator("main table a").first.click()
    check_page(coach, "tag")
    coach.goto(f"{server.url}/vermittlungen/ausgang/")
    coach.locator("main table a").first.click()
    check_page(coach, "referral-sender")
    if coach.get_by_role("button", name="Zurückziehen").count():
        coach.get_by_role("button", name="Zurückziehen").click()  # asks first: nothing happens
        check_page(coach, "withdraw-confirmation")
    coach.context.close()

    lead = browser.new_context(viewport=viewport, storage_state=sessions["jana"]).new_page()
    lead.goto(f"{server.url}/vermittlungen/eingang/")
    lead.locator("main table a").first.click()
    check_page(lead, "referral-receiver")
    lead.context.close()


# A family and referral of their own for the pages that ask first: other modules withdraw,
# assign and decline the demo's referrals in an order this module cannot know, and look
# for the demo families' referrals by their reference (which must stay unique in a list).
NEW_CASE = """
import json
from datetime import date, timedelta
from dienstweg import actions
from dienstweg.models import Agency, Consent, DataCategory, Purpose, User
from referrals.actions import steps
demo = User.objects.filter(email__endswith="@demo.dienstweg.invalid")
user = {person.email.split("@")[0]: person for person in demo}
project = Agency.objects.get(memberships__user=user["anna"])
jobcenter = Agency.objects.get(memberships__user=user["ben"])
family = actions.register_family(
    owner=project, address="Bottroper Straße 1, 45964 Gladbeck", phone="", notes="",
    members=[actions.MemberData("adult", "Wiebke", "Wendt", date(1988, 4, 2))],
    by=user["anna"])
consent = actions.grant_consent(family, data=actions.ConsentData(
    recipients=[jobcenter], categories=[DataCategory.IDENTITY, DataCategory.HOUSEHOLD],
    purposes=[Purpose.REFERRAL, Purpose.APPLICATION_SUPPORT], valid_from=date.today(),
    valid_until=date.today() + timedelta(days=365), given_by=family.members.get(),
    capacity=Consent.Capacity.ADULT_SELF, method=Consent.Method.ORAL_RECORDED,
    witness_note="Belehrung durch A. Albers", text_version="2026-1"), by=user["anna"])
referral = steps.refer_family(family, data=steps.ReferralData(
    to_agency=jobcenter, need="Beratung", summary="Für die Seiten, die zuerst fragen.",
    categories=[DataCategory.IDENTITY]), send=True, by=user["anna"])
steps.assign_referral(referral, assignee=user["ben"], by=user["jana"])
# A second one nobody is assigned to yet, for Jana's start page.
steps.refer_family(family, data=steps.ReferralData(
    to_agency=jobcenter, need="Schuldnerberatung", summary="Noch niemandem zugewiesen.",
    categories=[DataCategory.IDENTITY]), send=True, by=user["anna"])
print(json.dumps({"family": str(family.pk), "reference": family.reference,
    "referral": str(referral.pk), "consent": str(consent.pk)}))
"""


@pytest.fixture(scope="module")
def case(server: Server) -> dict[str, str]:
    """A family of its own, registered by Anna with a consent for the Jobcenter, and its
    referral sent there and assigned to Ben (ids, and the family's reference)."""
    return json.loads(server.manage("shell", "-v", "0", "-c", NEW_CASE).splitlines()[-1])


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_the_pages_that_ask_first_and_the_access_report_fit_and_pass_axe(
    viewport: dict[str, int], server: Server, browser: Browser, sessions: Any, case: Any
) -> None:
    """Each is a GET that changes nothing: revoking the consent and withdrawing the referral
    (the coach), declining it (the assigned caseworker), the family's access report and its
    erasure (the DPO of the owning project)."""
    family, referral = case["family"], case["referral"]
    visits = {
        "anna": {
            "consent-revoke": f"/familien/{family}/einwilligung/{case['consent']}/widerruf/",
            "referral-withdraw": f"/vermittlungen/{referral}/zurueckziehen/",
        },
        "ben": {"referral-decline": f"/vermittlungen/{referral}/ablehnen/"},
        "pia": {
            "access-report": f"/datenschutz/familien/{case['reference']}/auskunft/",
            "erase": f"/datenschutz/familien/{case['reference']}/loeschen/",
        },
    }
    for person, pages in visits.items():
        page = browser.new_context(viewport=viewport, storage_state=sessions[person]).new_page()
        for name, path in pages.items():
            response = page.goto(f"{server.url}{path}")
            assert response is not None and response.status == 200, name
            expect(page.locator("main")).to_contain_text(case["reference"])
            check_page(page, name)
        page.context.close()
