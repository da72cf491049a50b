"""The DPO reads the trail's metadata and nothing else: walking every URL of the project
with real ids of a family's record, consent, referrals (one to Dora's Jugendamt), tag,
thread, message and attachments, no page answers a DPO with case content: not Dora (the
Jugendamt's), not the project's DPO (whose console opens this family) and not the
network's. A page added later is walked too; a route whose parameters this test cannot fill
fails it, so that it is looked at. (Her socket gets no thread either:
tests/messaging/test_consumer.py, test_an_outsider_cannot_use_the_thread_and_is_audited.)"""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client

from applications.models import ApplicationTag
from conferences import actions as conference_actions
from dienstweg.models import (
    Consent,
    DataCategory,
    Family,
    Membership,
    MembershipProposal,
    Purpose,
    User,
)
from dienstweg.uploads import Upload
from messaging import actions as messaging_actions
from referrals.models import Referral
from tests.builders import build_referral, build_referral_thread, build_tag, conference_data
from tests.conftest import Network, consent_data, make_staff, verified_client
from tests.dienstweg.test_urls_protected import ROUTES, CannotBuild, Route, build_part

SECRET_PDF = b"%PDF-1.4\n% Lohnabrechnung-Geheim\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
# Plaintext of the family's record, the referrals, the tag and the messages.
CONTENT = [
    "Ayşe",
    "Leyla",
    "Emre",
    "Horster Stra",
    "02043 123456",
    "Teilzeitstelle",
    "Beratung zur Kinderbetreuung",
    "Frau Y. braucht einen Kita-Platz",
    "sucht 20 Stunden",
    "Belehrung durch A. Albers",
    "KITA-AZ-4711",
    "Die Mutter hat die Unterlagen",
    "Lohnabrechnung-Geheim",
    "lohn-yilmaz.pdf",
]
SESSION_ENDING = {"logout", "end_session"}
# Pages that open content of a family for those who may: the DPO must get none of them.
CASE_PAGES = {
    "family_detail",
    "consent_evidence",
    "referral_new",
    "referral_detail",
    "referral_attachment",
    "tag_new",
    "tag_detail",
    "tag_status",
    "tag_stamp",
    "tag_thread",
    "thread_detail",
    "thread_post",
    "message_edit",
    "message_delete",
    "message_attachment",
    "referral_thread",
    "conference_new",
    "conference_detail",
    "conference_calendar",
    "conference_cancel",
    "conference_protocol",
    "conference_thread",
    "agreement_new",
    "agreement_confirm",
    "agreement_close",
    "agreement_receipt",
    "consultation_new",
    "consultation_detail",
    "consultation_answer",
    "consultation_name",
}


@pytest.fixture
def world(network: Network, family: Family) -> dict[str, Any]:
    """A family with everything a DPO must not see, shared with the Jobcenter and with the
    DPO's own agency (the Jugendamt), so that her membership there is tested too."""
    from dienstweg import actions as core

    consent = core.grant_consent(
        family,
        data=consent_data(
            network,
            family,
            recipients=[network.jobcenter, network.jugendamt],
            categories=[DataCategory.IDENTITY, DataCategory.CHILDREN, DataCategory.EMPLOYMENT],
            purposes=[Purpose.REFERRAL, Purpose.APPLICATION_SUPPORT, Purpose.CASE_COORDINATION],
        ),
        by=network.anna,
    )
    # A Familienkonferenz with the Jobcenter and the DPO's own agency (Clara, its lead).
    conference = conference_actions.convene_conference(
        family,
        data=conference_data(
            [network.ben, network.clara],
            categories=[DataCategory.IDENTITY, DataCategory.CHILDREN],
            notes={DataCategory.CHILDREN: "sucht 20 Stunden Betreuung"},
        ),
        by=network.anna,
    )
    agreement = conference_actions.record_agreement(
        conference,
        data=conference_actions.AgreementData(
            "Jugendamt sucht einen Kita-Platz für Emre",
            network.jugendamt,
            network.clara,
            date.today() + timedelta(days=30),
        ),
        by=network.anna,
    )
    conference_actions.confirm_agreement(agreement, by=network.clara)
    # An anonymous consultation asked of the DPO's own agency.
    consultation = conference_actions.ask_network(
        family,
        question="Frau Y. braucht einen Kita-Platz, wer hat Erfahrung?",
        agencies=[network.jugendamt],
        by=network.anna,
    )
    referral = build_referral(
        network,
        family,
        to=network.jugendamt,
        need="Beratung zur Kinderbetreuung",
        summary="Frau Y. braucht einen Kita-Platz für Emre.",
        categories=[DataCategory.IDENTITY, DataCategory.CHILDREN],
        notes={DataCategory.CHILDREN: "sucht 20 Stunden Betreuung"},
        attachments=[Upload(name="lohn-yilmaz.pdf", content=SECRET_PDF)],
    )
    tag = build_tag(
        network,
        family,
        kind=ApplicationTag.Kind.CHILDCARE,
        office=network.jugendamt,
        submitted_on=date.today(),
        file_number="KITA-AZ-4711",
    )
    thread = build_referral_thread(referral)
    posted = messaging_actions.post_message(
        thread,
        body="Die Mutter hat die Unterlagen dabei.",
        client_id=uuid.uuid4(),
        attachments=[Upload(name="lohn-yilmaz.pdf", content=SECRET_PDF)],
        by=network.anna,
    )
    message = posted.message
    # An open enrolment link of a new colleague: its page holds no case content either.
    enrolment = core.create_account("nina@example.org", full_name="Nina Neu", by=None)
    return {
        "enrolment_token": enrolment.url.rstrip("/").rsplit("/", 1)[1],
        "family": family,
        "consent": consent,
        "referral": referral,
        "conference": conference,
        "agreement": agreement,
        "consultation": consultation,
        "tag": tag,
        "thread": thread,
        "message": message,
        "referral_attachment": referral.attachments.get(),
        "message_attachment": message.attachments.get(),
    }


def parameter_value(route: Route, parameter: str, world: dict[str, Any], network: Network) -> str:
    family: Family = world["family"]
    consent: Consent = world["consent"]
    referral: Referral = world["referral"]
    attachment = (
        world["message_attachment"]
        if (route.url_name or "").startswith("message")
        else world["referral_attachment"]
    )
    values = {
        "family_id": family.pk,
        "consent_id": consent.pk,
        "referral_id": referral.pk,
        "conference_id": world["conference"].pk,
        "agreement_id": world["agreement"].pk,
        "consultation_id": world["consultation"].pk,
        "attachment_id": attachment.pk,
        "code": world["tag"].code,
        "thread_id": world["thread"].pk,
        "message_id": world["message"].pk,
        "agency_id": network.project.pk,
        "user_id": network.anna.pk,
        "reference": family.reference,
        "fmt": "json",
        "flag_id": 1,
        "token": world["enrolment_token"],
        # The first proposal: nobody walking here may decide it (404, nothing changes).
        "proposal_id": MembershipProposal.objects.order_by("pk")
        .values_list("pk", flat=True)
        .first()
        or 1,
    }
    if parameter not in values:
        raise CannotBuild(f"{route.name}: no value for <{parameter}>; add it to this test")
    return str(values[parameter])


def url_of(route: Route, world: dict[str, Any], network: Network) -> str:
    from tests.dienstweg.test_urls_protected import ROUTE_PARAMETER

    url = ""
    for part in route.chain:
        pattern = part.pattern
        text = str(pattern)
        if ROUTE_PARAMETER.search(text):
            text = ROUTE_PARAMETER.sub(
                lambda match: parameter_value(route, match["parameter"], world, network), text
            )
            url += text
        else:
            url += build_part(pattern, {"int": "1", "path": "x", "str": "x", "uuid": "x"})[0]
    return "/" + url


# A form's CSRF token is 64 random letters and digits, masked anew on each page: on one
# page in about 250,000 it holds "Emre" by chance (a CI run once found it there).
CSRF_TOKEN = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]*"')


def body_of(response: Any) -> str:
    """The page as the walk searches it: without its random CSRF tokens."""
    if getattr(response, "streaming", False):
        body = b"".join(response.streaming_content).decode("utf-8", "replace")
    else:
        body = response.content.decode("utf-8", "replace")
    return CSRF_TOKEN.sub(r'\1"', body)


def walk_every_url(
    client: Client, world: dict[str, Any], network: Network
) -> tuple[set[str], list[str], list[str], dict[str, int]]:
    """GET and POST every named URL of the project (the admin's aside) as CLIENT: the
    names walked, the content markers found, the case pages that opened, and each console
    page's status."""
    walked: set[str] = set()
    leaks: list[str] = []
    opened: list[str] = []
    console: dict[str, int] = {}
    for route in ROUTES:
        if route.name.startswith(("admin:", "otpadmin:")) or route.url_name is None:
            continue
        url = url_of(route, world, network)
        walked.add(route.url_name)
        for method in ("GET", "POST"):
            if route.url_name in SESSION_ENDING and method == "POST":
                continue  # would end the walk's own session
            response = client.get(url) if method == "GET" else client.post(url)
            body = body_of(response)
            leaks += [f"{method} {url}: {text!r}" for text in CONTENT if text in body]
            if route.url_name in CASE_PAGES and response.status_code not in {403, 404, 405}:
                opened.append(f"{method} {url}: {response.status_code}")
            if route.name.startswith("console:"):
                console[f"{method} {route.name}"] = response.status_code
    return walked, leaks, opened, console


def a_dpo(network: Network, which: str) -> User:
    """Dora (the Jugendamt's DPO), the project's DPO (whose console opens this family's
    pages) or the network's DPO (whose console opens everything)."""
    if which == "dora":
        return network.dora
    if which == "project":
        return make_staff("pia@example.org", "Pia Pohl", network.project, Membership.Role.DPO)
    return make_staff(
        "vera@example.org", "Vera Vogt", network.jobcenter, Membership.Role.NETWORK_DPO
    )


@pytest.mark.parametrize("which", ["dora", "project", "network"])
def test_no_page_shows_the_dpo_case_content(
    network: Network, world: dict[str, Any], which: str
) -> None:
    dora = verified_client(a_dpo(network, which))
    anna = verified_client(network.anna)
    # The owning coach does see the content: the markers are real, not misspelt.
    assert "Ayşe" in anna.get(f"/familien/{world['family'].pk}/").text
    assert "Frau Y. braucht" in anna.get(f"/vermittlungen/{world['referral'].pk}/").text

    walked, leaks, opened, _console = walk_every_url(dora, world, network)
    assert not leaks
    assert not opened
    # Every case page named above exists, and the console's pages were walked too.
    assert walked >= CASE_PAGES
    assert {"console:home", "console:search", "console:subject"} <= {route.name for route in ROUTES}


def test_a_pending_proposal_grants_nothing_on_any_page(
    network: Network, world: dict[str, Any]
) -> None:
    """Pia is proposed for a case role wherever the family's data is (coach at the owning
    project, lead at the Jugendamt that received the referral and processes the tag,
    caseworker at the Jobcenter) and as the network's DPO, and nobody has confirmed yet:
    every page answers her as it answers a stranger."""
    from dienstweg import actions as core

    ada = User.objects.create_superuser("ada@example.org", "x" * 20, full_name="Ada Admin")
    pia = core.create_staff("pia@example.org", full_name="Pia Pohl", password="x" * 20)
    for agency, role in (
        (network.project, Membership.Role.COACH),
        (network.jugendamt, Membership.Role.LEAD),
        (network.jobcenter, Membership.Role.CASEWORKER),
        (network.migration, Membership.Role.NETWORK_DPO),
    ):
        core.propose_membership(pia, agency=agency, role=role, by=ada)

    walked, leaks, opened, console = walk_every_url(verified_client(pia), world, network)
    assert not leaks
    assert not opened
    assert walked >= CASE_PAGES
    # The console too: a proposed DPO is no DPO.
    assert console and set(console.values()) == {403}, console
    # Nothing was granted on the way: no membership, no agency group, all still pending.
    assert not pia.memberships.exists()
    assert not pia.groups.exists()
    assert set(pia.membership_proposals.values_list("state", flat=True)) == {"pending"}


def test_admin_site_is_closed_to_the_dpo(network: Network, world: dict[str, Any]) -> None:
    response = verified_client(network.dora).get("/admin/dienstweg/family/", follow=True)
    assert not [text for text in CONTENT if text in response.content.decode()]
    assert "Ayşe" not in response.content.decode()


@pytest.mark.parametrize("which", ["dora", "project", "network"])
def test_the_dpos_are_not_the_owning_coach(network: Network, which: str) -> None:
    # The test above would prove nothing if a DPO held a case role somewhere.
    dpo = a_dpo(network, which)
    assert not dpo.memberships.exclude(role__in=["dpo", "network_dpo"]).exists()
