"""The Strukturkonferenz report's figures against a count in Python over the same rows: a
network of families with referrals in every state, sent in the period, before it and not
at all, application tags with and without documents requested, conferences held and
cancelled with agreements in every state and for every side. Whatever the queries do to be
fast, each cell must be the number of distinct families this plain reading gives, for the
whole network and for a lead's agency."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from applications.models import ApplicationTag, TagStatusChange
from conferences import actions
from conferences import report as report_module
from conferences.models import Agreement, Conference, GapReason
from conferences.report import (
    AGREEMENT_STATES,
    FAMILY_SIDE,
    RECHTSKREISE,
    REFERRAL_STATES,
    SIDES,
    TAG_KINDS,
    Period,
    Scope,
    build_report,
)
from dienstweg.models import DataCategory, Family, HouseholdMember, Membership
from referrals.models import Referral
from tests.builders import (
    CONSENTED,
    build_consenting_family,
    build_referral,
    build_tag,
    conference_data,
)
from tests.concurrency import Worker
from tests.conftest import Network, make_staff, verified_client

PERIOD = 40  # days


def some_day(rng: random.Random) -> int:
    """Days back from today: in the period, in the one before, or earlier still."""
    return rng.randrange(0, 3 * PERIOD)


@pytest.fixture
def cases(network: Network) -> None:
    rng = random.Random(20261207)  # noqa: S311 (test data, not secrets)
    now = timezone.now()
    families = [build_consenting_family(network, n, children=n % 3 != 0) for n in range(1, 21)]
    for family in families:
        for _ in range(rng.randrange(0, 5)):
            to = rng.choice([network.jobcenter, network.jugendamt])
            chosen = rng.sample(CONSENTED, rng.randrange(1, 4))
            referral = build_referral(network, family, to=to, categories=chosen)
            sent = now - timedelta(days=some_day(rng), hours=rng.randrange(24))
            state = rng.choice([*REFERRAL_STATES, "draft"])
            Referral.objects.filter(pk=referral.pk).update(
                state=state,
                sent_at=None if state == "draft" else sent,
                answered_at=sent + timedelta(days=rng.randrange(1, 9))
                if state not in ("sent", "draft")
                else None,
            )
        for _ in range(rng.randrange(0, 3)):
            office = rng.choice([network.jobcenter, network.jugendamt])
            tag = build_tag(network, family, kind=rng.choice(TAG_KINDS), office=office)
            ApplicationTag.objects.filter(pk=tag.pk).update(
                submitted_on=timezone.localdate() - timedelta(days=some_day(rng))
            )
            if rng.random() < 0.5:
                TagStatusChange.objects.create(
                    tag=tag, state=ApplicationTag.State.DOCUMENTS_REQUESTED
                )
        for _ in range(rng.randrange(0, 3)):
            conference = actions.convene_conference(
                family, data=conference_data([network.ben, network.clara]), by=network.anna
            )
            for number in range(rng.randrange(0, 7)):
                agency = rng.choice([network.jobcenter, network.jugendamt, network.project, None])
                agreement = actions.record_agreement(
                    conference,
                    data=actions.AgreementData(
                        f"Vereinbarung {number}", agency, None, timezone.localdate()
                    ),
                    by=network.anna,
                )
                state = rng.choice(AGREEMENT_STATES)
                Agreement.objects.filter(pk=agreement.pk).update(
                    state=state,
                    gap_reason=rng.choice(GapReason.values) if state == "not_possible" else "",
                )
            Conference.objects.filter(pk=conference.pk).update(
                starts_at=now - timedelta(days=some_day(rng)),
                state=rng.choice([Conference.State.PLANNED] * 4 + [Conference.State.CANCELLED]),
            )


def period() -> Period:
    today = timezone.localdate()
    return Period(today - timedelta(days=PERIOD - 1), today)


def within(moment: object, span: Period) -> bool:
    start, end = span.bounds()
    return moment is not None and start <= moment < end  # type: ignore[operator]


def scoped(scope: Scope, *agencies: int | None) -> bool:
    return scope.agency_ids is None or any(a in scope.agency_ids for a in agencies)


def families_per(
    rows: Iterable[tuple], keys: Callable[[tuple], Iterable[tuple]]
) -> dict[tuple, int]:
    """For rows whose first value is a family: how many families each key has."""
    found: dict[tuple, set[int]] = {}
    for row in rows:
        for key in keys(row):
            found.setdefault(key, set()).add(row[0])
    return {key: len(families) for key, families in found.items()}


def cells(counts: dict[tuple, int], rows: list, columns: list) -> list[list[int]]:
    return [[counts.get((row, column), 0) for column in columns] for row in rows]


def shown(value: int) -> int | None:
    return None if 0 < value < 5 else value


def referrals(span: Period, scope: Scope) -> list[tuple]:
    return [
        row
        for row in Referral.objects.values_list(
            "family_id",
            "to_agency__rechtskreis",
            "state",
            "categories",
            "sent_at",
            "to_agency_id",
            "from_agency_id",
        )
        if within(row[4], span) and scoped(scope, row[5], row[6])
    ]


def agreements(span: Period, scope: Scope) -> list[tuple]:
    return [
        row
        for row in Agreement.objects.values_list(
            "conference__family_id",
            "agency__rechtskreis",
            "state",
            "gap_reason",
            "agency__name",
            "conference__starts_at",
            "conference__state",
            "agency_id",
            "conference__project_id",
        )
        if within(row[5], span) and row[6] == "planned" and scoped(scope, row[7], row[8])
    ]


def tags(span: Period, scope: Scope) -> list[tuple]:
    asked = set(
        TagStatusChange.objects.filter(state="documents_requested").values_list("tag_id", flat=True)
    )
    return [
        (family, kind, pk in asked)
        for family, kind, pk, submitted, project, office in ApplicationTag.objects.values_list(
            "family_id", "kind", "pk", "submitted_on", "project_id", "processing_agency_id"
        )
        if span.start <= submitted <= span.end and scoped(scope, project, office)
    ]


@pytest.mark.parametrize("lead", [False, True], ids=["network", "lead of the Jobcenter"])
def test_every_cell_counts_the_families_of_a_plain_reading(
    network: Network, cases: None, lead: bool
) -> None:
    scope = Scope((network.jobcenter.pk,), "Jobcenter") if lead else Scope(None, "Netzwerk")
    span = period()
    report = build_report(span, scope)

    def raw(key: str) -> list[list[int]]:
        values = report.table(key).protected.values
        return [list(row[:-1]) for row in values[:-1]]

    sent = referrals(span, scope)
    assert sent, "the data must have referrals in the period"
    categories = families_per(
        sent, lambda r: [(category, r[1]) for category in DataCategory.values if category in r[3]]
    )
    assert raw("categories") == cells(categories, DataCategory.values, RECHTSKREISE)
    outcomes = families_per(sent, lambda r: [(r[1], r[2])])
    assert raw("outcomes") == cells(outcomes, RECHTSKREISE, REFERRAL_STATES)

    made = agreements(span, scope)
    assert made, "the data must have agreements in the period"
    sides = families_per(made, lambda a: [(a[1] or FAMILY_SIDE, a[2])])
    assert raw("agreements") == cells(sides, SIDES, AGREEMENT_STATES)
    failed = [a for a in made if a[2] == "not_possible"]
    gaps = families_per(failed, lambda a: [(a[3], a[4] or "Familie selbst")])
    gap_table = report.table("gaps")
    assert raw("gaps") == cells(gaps, GapReason.values, list(gap_table.columns))

    tagged = tags(span, scope)
    with_docs, without = report.table("tags").columns
    asked = families_per(tagged, lambda t: [(t[1], with_docs if t[2] else without)])
    assert raw("tags") == cells(asked, TAG_KINDS, [with_docs, without])

    year_start = span.end.replace(month=1, day=1)
    children = set(HouseholdMember.objects.filter(kind="child").values_list("family_id", flat=True))
    reached = families_per(
        [
            (family.pk, family.owner.name, family.pk in children)
            for family in Family.objects.select_related("owner")
            if year_start <= timezone.localdate(family.registered_at) <= span.end
            and scoped(scope, family.owner_id)
        ],
        lambda f: [(f[1], "mit Kindern" if f[2] else "ohne Kinder")],
    )
    reach = report.table("reach")
    assert raw("reach") == cells(reached, list(reach.rows), ["mit Kindern", "ohne Kinder"])

    def headline(span: Period) -> list[int]:
        made = agreements(span, scope)
        return [
            len({r[0] for r in referrals(span, scope)}),
            len({a[0] for a in made}),
            len({a[0] for a in made if a[2] == "done"}),
            len({a[0] for a in made if a[2] == "not_possible"}),
            len({t[0] for t in tags(span, scope)}),
        ]

    expected = zip(headline(span), headline(span.previous()), strict=True)
    assert [(t.now, t.before) for t in report.trends] == [
        (shown(now), shown(before)) for now, before in expected
    ]


def figures(report: report_module.StructureReport) -> tuple:
    """Everything the report counts: each table's cells before disclosure, the timings and
    the trend."""
    return (
        [(table.key, table.rows, table.protected.values) for table in report.tables],
        report.answer_times,
        report.decision_times,
        report.trends,
    )


NETWORK = Scope(None, "Netzwerk")


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The names of the threads the report's passes run on (filled as they run)."""
    names: set[str] = set()
    read_on = report_module._read_on

    def spied(*args: object) -> object:
        names.add(threading.current_thread().name)
        return read_on(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(report_module, "_read_on", spied)
    return names


# The readers share a snapshot only on PostgreSQL; elsewhere the report reads one by one.
@pytest.mark.postgres
def test_readers_on_one_snapshot_count_what_one_transaction_counts(
    committed, network: Network, cases: None, threads: set[str]
) -> None:
    shared = build_report(period(), NETWORK)
    with transaction.atomic():
        alone = build_report(period(), NETWORK)

    assert threads and all(name.startswith("report") for name in threads)
    assert figures(shared) == figures(alone)


@pytest.mark.postgres
def test_a_referral_sent_while_the_report_reads_is_in_none_of_its_figures(
    committed, network: Network, cases: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def send() -> None:
        family = build_consenting_family(network, 28)
        referral = build_referral(network, family, to=network.jobcenter)
        yesterday = timezone.now() - timedelta(days=1)
        Referral.objects.filter(pk=referral.pk).update(sent_at=yesterday)

    before = build_report(period(), NETWORK)
    referral_figures = report_module.referral_figures

    def sent_meanwhile(span: Period, scope: Scope) -> report_module.ReferralFigures:
        # Committed by another connection after the snapshot, before this pass reads.
        Worker(send).join()
        return referral_figures(span, scope)

    monkeypatch.setattr(report_module, "referral_figures", sent_meanwhile)
    during = build_report(period(), NETWORK)
    monkeypatch.undo()
    after = build_report(period(), NETWORK)

    assert figures(during) == figures(before)
    assert figures(after) != figures(before)


@pytest.mark.postgres
def test_the_page_read_by_the_readers_speaks_the_requests_language(
    committed, network: Network, cases: None, threads: set[str]
) -> None:
    sofia = make_staff(
        "sofia@example.org", "Sofia Steuer", network.jugendamt, Membership.Role.STEERING
    )
    client = verified_client(sofia)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    page = client.get(reverse("structure_report")).content.decode()

    assert threads and all(name.startswith("report") for name in threads)
    # Both titles are written inside a reader's pass, on its own thread.
    assert "Agreements not possible, by gap and responsible agency (families)" in page
    assert f"Families reached per project in {timezone.localdate().year}" in page
    assert "Families referred" in page and "Vermittelte Familien" not in page
