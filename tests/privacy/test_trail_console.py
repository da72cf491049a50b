"""The trail on the console: only the DPO reaches it; search filters, pages and exports
the trail's metadata; every page view and export is itself recorded.

The search's own behaviour is tested as Vera, the network's DPO, who sees the whole trail;
what a DPO of one agency sees of it is tested in test_dpo_scope.py."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import datetime
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.db.models import QuerySet
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit import registry
from audit.models import AuditEvent
from audit.trail import record
from dienstweg.access import DpoScope
from dienstweg.models import Consent, Family, User
from tests.builders import build_tag
from tests.conftest import Network, verified_client

BERLIN = ZoneInfo("Europe/Berlin")


def record_at(moment: datetime, actor, action: str, **fields) -> AuditEvent:
    with mock.patch("django.utils.timezone.now", return_value=moment), transaction.atomic():
        return record(actor, action, **fields)


def lines(response) -> str:
    return b"".join(response.streaming_content).decode("utf-8-sig")


def test_home_shows_the_verification_status(dora_client: Client) -> None:
    response = dora_client.get(reverse("console:home"))
    assert response.status_code == 200
    assert "Prüfstatus des Protokolls" in response.text
    assert AuditEvent.objects.filter(action="console.viewed").count() == 1


@pytest.mark.parametrize("persona", ["anna", "ben", "clara", "dirk"])
@pytest.mark.parametrize(
    "url",
    [
        reverse("console:home"),
        reverse("console:search"),
        reverse("console:export", args=["csv"]),
        reverse("console:export", args=["json"]),
    ],
)
def test_other_roles_get_403_and_the_refusal_is_recorded(
    network: Network, persona: str, url: str
) -> None:
    user = getattr(network, persona)
    response = verified_client(user).get(url)
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="console.access_denied", actor_id=user.pk).exists()
    assert not AuditEvent.objects.filter(action__in=["console.searched", "console.exported"])


def test_search_filters_by_family_person_action_and_time(
    network: Network, family: Family, vera_client: Client
) -> None:
    march = datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN)
    may = datetime(2026, 5, 2, 10, 0, tzinfo=BERLIN)
    read = record_at(march, network.anna, "family.viewed", target=family, family=family)
    record_at(may, network.ben, "referral.viewed", family=family)
    record_at(may, network.anna, "auth.login")

    def found(**query: str) -> set[int]:
        response = vera_client.get(reverse("console:search"), query)
        assert response.status_code == 200, response.text
        return {row["event"].pk for row in response.context["rows"]}

    by_family = found(family=family.reference)
    assert read.pk in by_family
    assert all(AuditEvent.objects.get(pk=pk).family_id == str(family.pk) for pk in by_family)
    assert found(family=family.reference, actor=network.ben.email) == set(
        AuditEvent.objects.filter(actor_id=network.ben.pk, family_id=str(family.pk)).values_list(
            "pk", flat=True
        )
    )
    assert read.pk in found(action="family.viewed", date_from="2026-03-02", date_to="2026-03-02")
    assert found(action="family.viewed", date_from="2026-03-03") & {read.pk} == set()
    assert read.pk in found(action="family.", actor=str(network.anna.pk))
    assert read.pk in found(target_type="dienstweg.family", target_id=str(family.pk))
    assert read.pk not in found(agency=str(network.jobcenter.pk))


def test_search_is_recorded_with_its_filter(
    network: Network, family: Family, pia: User, pia_client: Client
) -> None:
    pia_client.get(
        reverse("console:search"), {"family": family.reference, "date_from": "2026-01-01"}
    )
    event = AuditEvent.objects.get(action="console.searched")
    assert event.actor_id == pia.pk
    assert event.agency_id == network.project.pk
    assert event.family_id == str(family.pk)
    assert event.details["family"] == family.reference
    assert event.details["date_from"] == "2026-01-01"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"date_from": "2026-05-01", "date_to": "2026-04-01"}, "vor seinem Anfang"),
        ({"family": "F-1999-9999"}, "Keine Familie mit der Kennung „F-1999-9999“"),
        ({"actor": "niemand@example.org"}, "Keine Person"),
        ({"action": "DROP TABLE"}, "Diese Aktion gibt es nicht"),
        ({"target_id": "Ayşe Yılmaz"}, "Nur Buchstaben"),
        ({"date_from": "gestern"}, "gültiges Datum"),
    ],
)
def test_bad_filter_gets_a_clear_error_and_searches_nothing(
    network: Network, dora_client: Client, query: dict[str, str], message: str
) -> None:
    for fmt in ("search", "csv"):
        url = (
            reverse("console:search") if fmt == "search" else reverse("console:export", args=[fmt])
        )
        response = dora_client.get(url, query)
        assert response.status_code == 400
        assert message in response.text
    assert not AuditEvent.objects.filter(action__in=["console.searched", "console.exported"])


def test_pages_walk_the_whole_trail_newest_first(network: Network, vera_client: Client, settings):
    settings.AUDIT_CONSOLE_PAGE_SIZE = 5
    base = datetime(2026, 4, 1, 9, 0, tzinfo=BERLIN)
    made = [
        record_at(base.replace(minute=minute), network.anna, "auth.login").pk
        for minute in range(12)
    ]
    seen: list[int] = []
    query = "action=auth.login"
    while True:
        response = vera_client.get(reverse("console:search") + "?" + query)
        seen += [row["event"].pk for row in response.context["rows"]]
        page = response.context["page"]
        if not page.next_query:
            break
        query = page.next_query
    assert seen == made[::-1]


@pytest.mark.parametrize("persona", ["dora", "vera"])
def test_search_page_costs_the_same_queries_for_few_and_many_events(
    network: Network, family: Family, vera: User, persona: str
) -> None:
    # Dora sees the Jugendamt's part (a third of the events below), Vera all of them.
    client = verified_client(vera if persona == "vera" else network.dora)

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("console:search")).status_code == 200
        return len(queries)

    # One event of each agency first, so that both pages name staff, agencies and a family.
    for agency in (network.project, network.jobcenter, network.jugendamt):
        record_at(
            datetime(2026, 3, 1, 9, 0, tzinfo=BERLIN),
            network.clara,
            "family.viewed",
            family=family,
            agency_id=agency.pk,
        )

    count_queries()  # the first request also stores the session's activity
    few = count_queries()
    for number in range(60):
        actor = [network.anna, network.ben, network.clara][number % 3]
        record_at(
            datetime(2026, 4, 1, 9, number % 60, tzinfo=BERLIN),
            actor,
            "family.viewed",
            family=family,
            agency_id=[network.project, network.jobcenter, network.jugendamt][number % 3].pk,
        )
    assert count_queries() == few


def test_csv_export_escapes_formulas_and_is_recorded(
    network: Network, family: Family, vera_client: Client
) -> None:
    record_at(
        datetime(2026, 4, 1, 9, 0, tzinfo=BERLIN),
        network.anna,
        "family.viewed",
        family=family,
        purpose='=HYPERLINK("http://evil.example","klick")',
    )
    record_at(
        datetime(2026, 4, 1, 9, 1, tzinfo=BERLIN),
        network.anna,
        "family.viewed",
        family=family,
        purpose="@SUM(1+1)",
    )
    response = vera_client.get(
        reverse("console:export", args=["csv"]), {"family": family.reference}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(lines(response))))
    purposes = {row["purpose"] for row in rows}
    assert '\'=HYPERLINK("http://evil.example","klick")' in purposes
    assert "'@SUM(1+1)" in purposes
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row.values())
    assert all(row["family_ref"] == family.reference for row in rows)
    exported = AuditEvent.objects.get(action="console.exported")
    assert exported.details["format"] == "csv"
    assert exported.details["rows"] == len(rows)
    assert exported.family_id == str(family.pk)


def test_json_export_holds_exactly_the_filtered_events(
    network: Network, family: Family, vera_client: Client
) -> None:
    for minute in range(3):
        record_at(datetime(2026, 4, 1, 9, minute, tzinfo=BERLIN), network.ben, "auth.login")
    response = vera_client.get(
        reverse("console:export", args=["json"]), {"actor": str(network.ben.pk)}
    )
    events = json.loads(lines(response))
    expected = AuditEvent.objects.filter(actor_id=network.ben.pk).count()
    assert len(events) == expected >= 3
    assert {event["actor_id"] for event in events} == {network.ben.pk}
    assert events[0]["occurred_at"] >= events[-1]["occurred_at"]


def test_unknown_export_format_is_404(dora_client: Client) -> None:
    assert dora_client.get(reverse("console:export", args=["xlsx"])).status_code == 404


def test_verify_now_records_the_result_shown_on_the_overview(dora_client: Client) -> None:
    assert dora_client.get(reverse("console:verify")).status_code == 405
    response = dora_client.post(reverse("console:verify"), follow=True)
    assert response.status_code == 200
    verified = AuditEvent.objects.get(action="audit.verified")
    assert verified.details["ok"] is True
    assert "bestanden" in response.text


def _ben_logins(monkeypatch, network: Network) -> tuple[QuerySet[AuditEvent], set[int]]:
    """Eight logins of Ben at the same moment, as the export's events, read three at a time:
    ties across chunk borders."""
    from privacy import export
    from privacy.search import TrailFilter, events_matching

    monkeypatch.setattr(export, "CHUNK", 3)
    moment = datetime(2026, 4, 1, 9, 0, tzinfo=BERLIN)
    made = {record_at(moment, network.ben, "auth.login").pk for _ in range(8)}
    everything = DpoScope(frozenset({1}), ("Verbund",), network_wide=True, acting_agency_id=1)
    events = events_matching(
        TrailFilter(actor_id=network.ben.pk, action="auth.login"), scope=everything
    )
    return events, made


def _exported(monkeypatch, network: Network, *, run_async: bool) -> list[dict]:
    from privacy import export

    events, made = _ben_logins(monkeypatch, network)
    form = export.Format("json")
    if run_async:

        async def collect() -> str:
            return "".join([piece async for piece in export.lines_async(events, form)])

        text = asyncio.run(collect())
    else:
        text = "".join(export.lines(events, form))
    rows = json.loads(text)
    assert {row["id"] for row in rows} == made
    return rows


def test_export_reads_in_chunks_across_ties_none_lost_none_twice(
    network: Network, monkeypatch
) -> None:
    rows = _exported(monkeypatch, network, run_async=False)
    assert len(rows) == 8
    assert [row["id"] for row in rows] == sorted((row["id"] for row in rows), reverse=True)


@pytest.mark.usefixtures("committed")
def test_export_under_daphne_reads_the_same_chunks_asynchronously(
    network: Network, monkeypatch
) -> None:
    # The ASGI path: each chunk is one query in a worker thread (a values_list() queryset
    # cannot be iterated asynchronously, and a server-side cursor would compute the whole
    # export first).
    assert len(_exported(monkeypatch, network, run_async=True)) == 8


@pytest.mark.usefixtures("committed")
def test_an_export_under_daphne_leaves_no_connection_checked_out(
    network: Network, monkeypatch
) -> None:
    """Each chunk's connection goes back to the pool, also when the reader stops after the
    first event: none stays open in the worker thread (asgiref's plain sync_to_async kept
    one there, and the test database could not be dropped at the end of the run)."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    from privacy import export

    events, _made = _ben_logins(monkeypatch, network)

    async def read_one_event_and_stop() -> bool:
        pieces = export.lines_async(events, export.Format("csv"))
        await anext(pieces)  # the header
        await anext(pieces)  # the first event
        await pieces.aclose()
        # Asked in the worker thread the chunks ran in.
        return await sync_to_async(lambda: connections["default"].connection is None)()

    assert asyncio.run(read_one_event_and_stop())


def test_overview_counts_a_long_unsealed_tail_only_up_to_its_limit(
    network: Network, dora_client: Client, monkeypatch
) -> None:
    from privacy import status

    monkeypatch.setattr(status, "UNSEALED_COUNT_LIMIT", 3)
    for _ in range(5):
        record_at(datetime(2026, 4, 1, 9, 0, tzinfo=BERLIN), network.ben, "auth.login")
    response = dora_client.get(reverse("console:home"))
    assert response.context["status"].unsealed == 4
    assert "Läuft der Versiegelungsdienst?" in response.text


def test_action_list_offers_every_declared_action_by_its_german_label_grouped_by_kind(
    dora_client: Client,
) -> None:
    page = dora_client.get(reverse("console:search")).content.decode()
    for item in registry.declared():
        if not item.declared_in.startswith("tests"):
            assert f'<option value="{item.name}">{item.label}</option>' in page
    assert '<optgroup label="Vermittlungen"><option value="referral.">alle: Vermittlungen' in page
    assert '<optgroup label="Anträge">' in page
    assert "(application_tag." not in page  # no developer codes in the labels


def test_trail_shows_references_instead_of_uuids_and_labels_instead_of_codes(
    vera_client: Client, network: Network, family: Family, consent: Consent
) -> None:
    tag = build_tag(network, family)
    record(network.ben, "application_tag.access_denied", target=tag, family=family)
    record(network.dora, "account.deactivated", target=network.dirk)

    page = vera_client.get(reverse("console:search")).content.decode()

    assert f'Antrag <span class="nowrap">{tag.code}</span>' in page  # whole on one line
    assert str(tag.pk) not in page
    assert "Zugriff auf Antragsmarker verweigert" in page
    assert "<code>application_tag.access_denied</code>" not in page
    assert "Dirk Dahl" in page  # the account by name, not "dienstweg.user 4"
    assert "dienstweg.user" not in page


def test_naming_the_targets_costs_the_same_queries_for_few_and_many(
    vera_client: Client, network: Network, family: Family, consent: Consent
) -> None:
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert vera_client.get(reverse("console:search")).status_code == 200
        return len(queries)

    def add_events() -> None:
        tag = build_tag(network, family)
        record(network.ben, "application_tag.access_denied", target=tag, family=family)
        record(network.dora, "account.deactivated", target=network.dirk)

    add_events()
    count_queries()  # the first request also stores the session's activity
    few = count_queries()
    for _ in range(15):
        add_events()
    assert count_queries() == few
