"""Each data-protection officer sees her own controller's part (dienstweg.access.DpoScope):
the events in which her agencies acted and the families they own; access reports,
restriction and erasure only for those; the network's DPO sees everything; every console
page says which scope it shows.

Who is who: the Yılmaz family belongs to Anna's project. Dora is DPO of the Jugendamt: she
sees the Jugendamt's events (Clara's reads) and no family's page. Pia is DPO of the project:
the family is hers. Vera is the network's DPO (network_dpo): she sees all of it."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from audit.trail import record
from dienstweg import actions
from dienstweg.models import Agency, Family, User
from privacy import erasure
from privacy.flags import review_flag
from privacy.models import AccessFlag
from tests.conftest import YILMAZ, Network, make_staff, verified_client
from tests.privacy.test_console_gate import PATTERNS, url_of

BERLIN = ZoneInfo("Europe/Berlin")
REASON = "Antrag auf Löschung nach Art. 17 DSGVO vom 02.03.2026"
JUGENDAMT_LABEL = "Ansicht: Verantwortlicher „Stadt Gladbeck, Amt für Jugend und Familie“"
NETWORK_LABEL = "Ansicht: gesamter Verbund (gemeinsam Verantwortliche, Art. 26 DSGVO)"


def event(
    actor: User, action: str, agency: Agency | None, family: Family | None = None, minute: int = 0
) -> AuditEvent:
    moment = datetime(2026, 4, 1, 9, minute, tzinfo=BERLIN)
    with mock.patch("django.utils.timezone.now", return_value=moment), transaction.atomic():
        return record(
            actor,
            action,
            family=family,
            target=family,
            agency_id=None if agency is None else agency.pk,
        )


@pytest.fixture
def trail(network: Network, family: Family) -> dict[str, AuditEvent]:
    """One read of the Yılmaz family by each agency, and a login that names no agency."""
    return {
        "project": event(network.anna, "family.viewed", network.project, family, 1),
        "jobcenter": event(network.ben, "referral.viewed", network.jobcenter, family, 2),
        "jugendamt": event(network.clara, "referral.viewed", network.jugendamt, family, 3),
        "none": event(network.ben, "auth.login", None, None, 4),
    }


def found(client: Client, **query: str) -> set[int]:
    response = client.get(reverse("console:search"), query)
    assert response.status_code == 200, response.content.decode()
    return {row["event"].pk for row in response.context["rows"]}


def exported(client: Client, **query: str) -> list[dict]:
    response = client.get(reverse("console:export", args=["json"]), query)
    assert response.status_code == 200
    return json.loads(b"".join(response.streaming_content))


def ids(trail: dict[str, AuditEvent], *names: str) -> set[int]:
    return {trail[name].pk for name in names}


# The trail: search and exports


def test_a_dpo_sees_only_the_events_her_agency_acted_in(
    network: Network, trail: dict[str, AuditEvent], dora_client: Client
) -> None:
    shown = found(dora_client)
    assert ids(trail, "jugendamt") <= shown
    assert not shown & ids(trail, "project", "jobcenter", "none")
    agencies = set(AuditEvent.objects.filter(pk__in=shown).values_list("agency_id", flat=True))
    assert agencies == {network.jugendamt.pk}
    # Asked by person or action, still only her agency's part.
    assert not found(dora_client, actor=str(network.ben.pk))
    assert found(dora_client, action="referral.viewed") == ids(trail, "jugendamt")


def test_her_exports_hold_only_her_agencys_events(
    network: Network, trail: dict[str, AuditEvent], dora_client: Client
) -> None:
    rows = exported(dora_client)
    assert trail["jugendamt"].pk in {row["id"] for row in rows}
    assert {row["agency_id"] for row in rows} == {network.jugendamt.pk}
    csv = b"".join(
        dora_client.get(reverse("console:export", args=["csv"])).streaming_content
    ).decode()
    assert f"\r\n{trail['jugendamt'].pk}," in csv
    assert f"\r\n{trail['jobcenter'].pk}," not in csv
    [export] = AuditEvent.objects.filter(action="console.exported", details__format="json")
    assert export.details["rows"] == len(rows)


def test_the_agency_filter_offers_only_her_agencies(
    network: Network, trail: dict[str, AuditEvent], dora_client: Client
) -> None:
    page = dora_client.get(reverse("console:search")).content.decode()
    assert f'<option value="{network.jugendamt.pk}">' in page
    assert f'<option value="{network.jobcenter.pk}">' not in page
    searched = AuditEvent.objects.filter(action__in=["console.searched", "console.exported"])
    before = searched.count()
    response = dora_client.get(reverse("console:search"), {"agency": network.jobcenter.pk})
    assert response.status_code == 400
    response = dora_client.get(
        reverse("console:export", args=["json"]), {"agency": network.jobcenter.pk}
    )
    assert response.status_code == 400
    assert searched.count() == before


def test_a_family_her_agency_acted_on_may_be_searched_but_is_not_linked(
    network: Network, family: Family, trail: dict[str, AuditEvent], dora_client: Client
) -> None:
    response = dora_client.get(reverse("console:search"), {"family": family.reference})
    assert response.status_code == 200
    assert {row["event"].pk for row in response.context["rows"]} == ids(trail, "jugendamt")
    page = response.content.decode()
    assert family.reference in page
    # Its page would answer as for a missing family: no link leads there.
    assert reverse("console:subject", args=[family.reference]) not in page


def test_a_family_her_agency_never_touched_is_unknown_to_her_search(
    network: Network, trail: dict[str, AuditEvent], dora_client: Client
) -> None:
    other = actions.register_family(
        owner=network.project, members=YILMAZ[:1], address="", phone="", notes="", by=network.anna
    )
    for fmt in ("search", "json"):
        url = (
            reverse("console:search") if fmt == "search" else reverse("console:export", args=[fmt])
        )
        known = dora_client.get(url, {"family": other.reference})
        missing = dora_client.get(url, {"family": "F-1999-9999"})
        assert known.status_code == missing.status_code == 400
        assert f"Keine Familie mit der Kennung „{other.reference}“." in known.content.decode()


def test_the_owning_projects_dpo_sees_its_events_and_opens_its_families(
    network: Network, family: Family, trail: dict[str, AuditEvent], pia_client: Client
) -> None:
    shown = found(pia_client)
    assert ids(trail, "project") <= shown
    assert not shown & ids(trail, "jobcenter", "jugendamt", "none")
    page = pia_client.get(reverse("console:search")).content.decode()
    assert f'href="{reverse("console:subject", args=[family.reference])}"' in page
    assert pia_client.get(reverse("console:subject", args=[family.reference])).status_code == 200


# Families of another controller: answered as missing ones, and recorded


FAMILY_PAGES = [
    ("console:subject", ()),
    ("console:access_report", ()),
    ("console:access_report_download", ("pdf",)),
    ("console:access_report_download", ("json",)),
    ("console:erase", ()),
]


def normalized(response, *references: str) -> str:
    """The page's text with every reference written alike and without the form tokens,
    which differ on every answer."""
    text = response.content.decode()
    for reference in references:
        text = text.replace(reference, "F-REF")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", text)


@pytest.mark.parametrize(("name", "extra"), FAMILY_PAGES)
def test_another_controllers_family_answers_like_a_missing_one(
    network: Network, family: Family, dora_client: Client, name: str, extra: tuple[str, ...]
) -> None:
    theirs = dora_client.get(reverse(name, args=[family.reference, *extra]))
    missing = dora_client.get(reverse(name, args=["F-1999-0001", *extra]))
    assert theirs.status_code == missing.status_code == 404
    references = (family.reference, "F-1999-0001")
    assert normalized(theirs, *references) == normalized(missing, *references)
    [refusal] = AuditEvent.objects.filter(action="console.family_out_of_scope")
    assert (refusal.actor_id, refusal.agency_id) == (network.dora.pk, network.jugendamt.pk)
    assert (refusal.family_id, refusal.target_id) == (str(family.pk), str(family.pk))
    assert refusal.details == {"page": name.split(":")[1]}
    assert not AuditEvent.objects.filter(
        action__in=["console.subject_viewed", "console.access_report", "console.erasure_prepared"]
    )


def test_the_lookup_of_another_controllers_family_answers_like_a_missing_one(
    family: Family, dora_client: Client
) -> None:
    lookup = reverse("console:subject_lookup")
    theirs = dora_client.get(lookup, {"reference": family.reference})
    missing = dora_client.get(lookup, {"reference": "F-1999-0001"})
    assert theirs.status_code == missing.status_code == 404
    assert theirs.context["error"] == f"Keine Familie mit der Kennung „{family.reference}“."
    assert AuditEvent.objects.filter(action="console.family_out_of_scope").count() == 1


def test_she_cannot_restrict_lift_or_erase_another_controllers_family(
    network: Network, family: Family, pia: User, dora_client: Client
) -> None:
    response = dora_client.post(
        reverse("console:restrict", args=[family.reference]), {"reason": "Art. 18 Abs. 1 lit. a"}
    )
    assert response.status_code == 404
    family.refresh_from_db()
    assert family.restricted_at is None
    response = dora_client.post(
        reverse("console:erase", args=[family.reference]),
        {"reference": family.reference, "reason": REASON, "confirm": "on"},
    )
    assert response.status_code == 404
    family.refresh_from_db()
    assert family.erased_at is None and family.data_key_id is not None
    actions.restrict_processing(family, reason="Art. 18 Abs. 1 lit. a", by=pia)
    response = dora_client.post(reverse("console:lift_restriction", args=[family.reference]))
    assert response.status_code == 404
    family.refresh_from_db()
    assert family.restricted_by == pia
    refusals = AuditEvent.objects.filter(action="console.family_out_of_scope")
    assert sorted(refusals.values_list("details__page", flat=True)) == [
        "erase",
        "lift_restriction",
        "restrict",
    ]
    assert not AuditEvent.objects.filter(
        actor_id=network.dora.pk,
        action__in=["family.processing_restricted", "family.restriction_lifted", "family.erased"],
    )


def test_erase_family_refuses_a_dpo_of_another_controller(network: Network, family: Family) -> None:
    with pytest.raises(actions.NotAllowed):
        erasure.erase_family(family, by=network.dora, reason=REASON)
    family.refresh_from_db()
    assert family.erased_at is None and family.data_key_id is not None
    assert not AuditEvent.objects.filter(action="family.erased").exists()
    [refusal] = AuditEvent.objects.filter(action="family.access_denied")
    assert (refusal.actor_id, refusal.family_id) == (network.dora.pk, str(family.pk))


def test_her_steps_on_a_family_are_recorded_under_its_controller(
    network: Network, dora_client: Client
) -> None:
    # Dora is DPO of the Jugendamt and of a second project (a higher id): reading and
    # restricting that project's family, she acts for the project, not for the Jugendamt.
    second = actions.create_agency(
        name="Familienprojekt Butendorf", kind="project", rechtskreis="other"
    )
    actions.add_membership(network.dora, agency=second, role="dpo", by=None)
    coach = make_staff("carla@example.org", "Carla Conrad", second, "coach")
    theirs = actions.register_family(
        owner=second, members=YILMAZ[:1], address="", phone="", notes="", by=coach
    )
    assert network.jugendamt.pk < second.pk
    dora_client.get(reverse("console:subject", args=[theirs.reference]))
    dora_client.post(
        reverse("console:restrict", args=[theirs.reference]), {"reason": "Art. 18 Abs. 1 lit. a"}
    )
    dora_client.get(reverse("console:home"))
    recorded = dict(
        AuditEvent.objects.filter(actor_id=network.dora.pk).values_list("action", "agency_id")
    )
    assert recorded["console.subject_viewed"] == second.pk
    assert recorded["family.processing_restricted"] == second.pk
    assert recorded["console.viewed"] == network.jugendamt.pk  # no family: her first agency


# Flags


def flag(actor: User, agency: Agency | None) -> AccessFlag:
    return AccessFlag.objects.create(
        kind=AccessFlag.Kind.OUTSIDE_HOURS,
        actor_id=actor.pk,
        agency_id=None if agency is None else agency.pk,
        day=date(2026, 3, 4),
        event_count=1,
        family_count=1,
        first_event_id=1,
        last_event_id=1,
    )


@pytest.fixture
def flags(network: Network) -> dict[str, AccessFlag]:
    return {
        "project": flag(network.anna, network.project),
        "jobcenter": flag(network.ben, network.jobcenter),
        "jugendamt": flag(network.clara, network.jugendamt),
        "none": flag(network.dirk, None),
    }


def listed(client: Client) -> set[int]:
    response = client.get(reverse("console:flags"))
    assert response.status_code == 200
    return {row["flag"].pk for row in response.context["rows"]}


def test_a_dpo_sees_and_reviews_only_the_flags_of_her_agency(
    network: Network, flags: dict[str, AccessFlag], dora_client: Client
) -> None:
    assert listed(dora_client) == {flags["jugendamt"].pk}
    assert dora_client.get(reverse("console:home")).context["open_flags"] == 1
    theirs = flags["jobcenter"]
    assert dora_client.get(reverse("console:flag_review", args=[theirs.pk])).status_code == 404
    response = dora_client.post(
        reverse("console:flag_review", args=[theirs.pk]), {"note": "geprüft"}
    )
    assert response.status_code == 404
    with pytest.raises(actions.ActionError):
        review_flag(theirs, by=network.dora, note="geprüft")
    theirs.refresh_from_db()
    assert not theirs.is_reviewed
    ours = flags["jugendamt"]
    dora_client.post(reverse("console:flag_review", args=[ours.pk]), {"note": "Vertretung"})
    ours.refresh_from_db()
    assert ours.reviewed_by == network.dora


def test_the_flag_list_costs_the_same_for_one_and_many_flags_of_her_agency(
    network: Network, dora_client: Client
) -> None:
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert dora_client.get(reverse("console:flags")).status_code == 200
        return len(queries)

    flag(network.clara, network.jugendamt)
    count()  # warm-up: per-process caches
    one = count()
    people = [network.anna, network.ben, network.dirk, network.clara]
    for day in range(1, 9):
        for agency in (network.jugendamt, network.jobcenter):
            AccessFlag.objects.create(
                kind=AccessFlag.Kind.MANY_FAMILIES,
                actor_id=people[day % 4].pk,
                agency_id=agency.pk,
                day=date(2026, 2, day) if agency == network.jugendamt else date(2026, 1, day),
                event_count=1,
                first_event_id=1,
                last_event_id=1,
                reviewed_by=network.dora if day % 2 else None,
            )
    assert len(listed(dora_client)) == 9
    assert count() == one


# Two agencies, and the network


def test_a_dpo_of_two_agencies_sees_the_union(
    network: Network,
    family: Family,
    trail: dict[str, AuditEvent],
    flags: dict[str, AccessFlag],
    dora_client: Client,
) -> None:
    actions.add_membership(network.dora, agency=network.project, role="dpo", by=None)
    shown = found(dora_client)
    assert ids(trail, "project", "jugendamt") <= shown
    assert not shown & ids(trail, "jobcenter", "none")
    assert {row["id"] for row in exported(dora_client)} >= ids(trail, "project", "jugendamt")
    assert listed(dora_client) == {flags["project"].pk, flags["jugendamt"].pk}
    page = dora_client.get(reverse("console:subject", args=[family.reference]))
    assert page.status_code == 200
    text = page.content.decode()
    assert f"Ansicht: Verantwortliche „{network.project.name}“, „{network.jugendamt.name}“" in text


def test_the_networks_dpo_sees_everything_and_the_label_says_so(
    network: Network,
    family: Family,
    trail: dict[str, AuditEvent],
    flags: dict[str, AccessFlag],
    vera_client: Client,
) -> None:
    assert ids(trail, "project", "jobcenter", "jugendamt", "none") <= found(vera_client)
    assert {row["id"] for row in exported(vera_client)} >= set(ids(trail, *trail))
    assert listed(vera_client) == {f.pk for f in flags.values()}
    page = vera_client.get(reverse("console:subject", args=[family.reference]))
    assert page.status_code == 200
    assert NETWORK_LABEL in page.content.decode()
    response = vera_client.post(
        reverse("console:restrict", args=[family.reference]), {"reason": "Art. 18 Abs. 1 lit. a"}
    )
    assert response.status_code == 302
    family.refresh_from_db()
    assert family.is_restricted


# The label, on every page


@pytest.mark.parametrize("who", ["dora", "vera"])
def test_every_console_page_says_which_scope_it_shows(
    network: Network, family: Family, vera: User, who: str
) -> None:
    user = vera if who == "vera" else network.dora
    label = NETWORK_LABEL if who == "vera" else JUGENDAMT_LABEL
    client = verified_client(user)
    own_flag = flag(network.clara, network.jugendamt)
    pages = 0
    for pattern in PATTERNS:
        url = url_of(pattern, family.reference).replace("/1/", f"/{own_flag.pk}/")
        response = client.get(url)
        if response.status_code in {302, 405} or not response["Content-Type"].startswith(
            "text/html"
        ):
            continue  # a form's target, a download (the receipt: none before the first seal)
        assert label in response.content.decode(), (url, response.status_code)
        pages += 1
    assert pages >= 8
