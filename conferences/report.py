"""The Strukturkonferenz report: what the network's cases say about the gaps in what the
town provides, for the steering group (the whole network) and for leads (their own
agencies). Every figure is aggregated in the database and counts families; no reference,
no name, no free text leaves this module; every table goes through disclosure.protect()
(no cell of 1 to 4 families, none recoverable from the totals).

Tables:
- referred families by data category and Rechtskreis of the receiving agency;
- referred families by Rechtskreis and the referral's state;
- time to the first answer per receiving agency (median and 90th percentile, in days);
- agreements by the responsible side's Rechtskreis and state;
- agreements not possible, by gap reason and responsible agency;
- application tags by kind: with and without documents requested, and the days from
  submission to decision (median, 90th percentile);
- families reached per project in the year so far, with and without children, against
  the target (DIENSTWEG_FAMILIES_TARGET, Gladbeck's 48);
- the trend: headline figures of the period and of the one before it.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from functools import reduce
from itertools import product
from typing import Any

from django.conf import settings
from django.contrib.postgres.aggregates import BitOr
from django.contrib.postgres.fields import ArrayField
from django.db import connection, transaction
from django.db.models import (
    Aggregate,
    Case,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from applications.models import ApplicationTag, TagStatusChange
from conferences.disclosure import MINIMUM, Protected, protect
from conferences.models import Agreement, Conference, GapReason
from dienstweg.models import Agency, DataCategory, Family, HouseholdMember, category_bit
from referrals.models import Referral

FAMILY_SIDE = "family"


@dataclass(frozen=True)
class Period:
    """From START to END, both days included (local dates)."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length just before."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def bounds(self) -> tuple[datetime, datetime]:
        """The period as aware datetimes, the end exclusive."""
        start = timezone.make_aware(datetime.combine(self.start, time.min))
        end = timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))
        return start, end


@dataclass(frozen=True)
class Scope:
    """Whose cases: the whole network (AGENCY_IDS None: the steering group) or those of
    these agencies (a lead's own), as sender, receiver, owner or responsible."""

    agency_ids: tuple[int, ...] | None
    label: str

    @property
    def network(self) -> bool:
        return self.agency_ids is None


@dataclass(frozen=True)
class Table:
    """A protected table with its labels, ready to show."""

    key: str
    title: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    protected: Protected

    def lines(self) -> list[tuple[str, list[int | None]]]:
        """Each row (the totals row last, "Summe") with its shown values (None: hidden),
        each row's total last."""
        labels = [*self.rows, _("Summe")]
        return [
            (label, [self.protected.shown(r, c) for c in range(len(self.columns) + 1)])
            for r, label in enumerate(labels)
        ]

    @property
    def headers(self) -> list[str]:
        return [*self.columns, _("Summe")]


@dataclass(frozen=True)
class Timing:
    """Days to something (an answer, a decision) for one row: median and 90th percentile,
    hidden (None) for fewer than MINIMUM families."""

    label: str
    families: int | None
    median_days: float | None
    p90_days: float | None


@dataclass(frozen=True)
class Trend:
    label: str
    now: int | None
    before: int | None


@dataclass(frozen=True)
class StructureReport:
    period: Period
    scope: Scope
    tables: list[Table] = field(default_factory=list)
    answer_times: list[Timing] = field(default_factory=list)
    decision_times: list[Timing] = field(default_factory=list)
    trends: list[Trend] = field(default_factory=list)
    target: int = 48

    def table(self, key: str) -> Table:
        return next(table for table in self.tables if table.key == key)


class Percentiles(Aggregate):
    """PostgreSQL's percentile_cont(ARRAY[FRACTIONS]) over an expression (an interval
    here): one sort of the group for all of them."""

    function = "percentile_cont"
    template = "%(function)s(ARRAY[%(fractions)s]) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, fractions: Sequence[float], **extra: Any) -> None:
        if not all(0 <= fraction <= 1 for fraction in fractions):
            raise ValueError("fractions between 0 and 1")
        listed = ", ".join(str(float(fraction)) for fraction in fractions)
        super().__init__(expression, fractions=listed, **extra)


def _shown(value: int) -> int | None:
    return None if 0 < value < MINIMUM else value


def _protected(
    counts: Mapping[tuple[Any, Any], int], rows: Sequence[Any], columns: Sequence[Any]
) -> Protected:
    """The ROWS x COLUMNS table of COUNTS (0 where there is none), protected."""
    cells = [[counts.get((row, column), 0) for column in columns] for row in rows]
    return protect(cells, columns=len(columns))


def _scoped(rows: QuerySet[Any], scope: Scope, *fields: str) -> QuerySet[Any]:
    if scope.agency_ids is None:
        return rows
    condition = Q()
    for name in fields:
        condition |= Q(**{f"{name}__in": scope.agency_ids})
    return rows.filter(condition)


def _referrals(period: Period, scope: Scope) -> QuerySet[Referral]:
    start, end = period.bounds()
    sent = Referral.objects.filter(sent_at__gte=start, sent_at__lt=end)
    return _scoped(sent, scope, "to_agency_id", "from_agency_id")


def _agreements(period: Period, scope: Scope) -> QuerySet[Agreement]:
    start, end = period.bounds()
    made = Agreement.objects.filter(
        conference__starts_at__gte=start,
        conference__starts_at__lt=end,
        conference__state=Conference.State.PLANNED,
    )
    return _scoped(made, scope, "agency_id", "conference__project_id")


def _tags(period: Period, scope: Scope) -> QuerySet[ApplicationTag]:
    tags = ApplicationTag.objects.filter(
        submitted_on__gte=period.start, submitted_on__lte=period.end
    )
    return _scoped(tags, scope, "project_id", "processing_agency_id")


RECHTSKREISE = [value for value, _label in Agency.Rechtskreis.choices]


def _rechtskreis_label(value: str) -> str:
    if value == FAMILY_SIDE:
        return _("Familie selbst")
    return str(Agency.Rechtskreis(value).label)


REFERRAL_STATES = [
    Referral.State.SENT,
    Referral.State.ACCEPTED,
    Referral.State.COMPLETED,
    Referral.State.DECLINED,
    Referral.State.WITHDRAWN,
]


@dataclass(frozen=True)
class ReferralFigures:
    """The period's referred families: per data category and Rechtskreis, per Rechtskreis
    and state, and in all."""

    categories: dict[tuple[str, str], int]
    outcomes: dict[tuple[str, str], int]
    families: int


def _bit_or(expression: Any, bits: int) -> Any:
    """The bitwise OR of EXPRESSION (an integer of BITS bits) over a group: PostgreSQL's
    bit_or; SQLite has none, there the sum of each bit's MAX, the same number."""
    if connection.vendor == "postgresql":
        return BitOr(expression)
    return reduce(operator.add, (Max(expression.bitand(1 << n)) for n in range(bits)))


def _family_groups(per_family: QuerySet[Any], keys: Sequence[str]) -> tuple[list[Any], int]:
    """PER_FAMILY (a row a family, or a family and more, with KEYS) counted per KEYS: rows
    of the KEYS and their number; and the number of distinct families in all."""
    inner, params = per_family.query.sql_with_params()
    columns = ", ".join(keys)
    # Only the ORM's own SQL and this module's names are put together here; the values
    # travel as PARAMS.
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH per_family AS ({inner}) "  # noqa: S608
            f"SELECT {columns}, COUNT(*), "
            "(SELECT COUNT(*) FROM (SELECT DISTINCT family_id FROM per_family) AS families) "
            f"FROM per_family GROUP BY {columns}",
            params,
        )
        rows = cursor.fetchall()
    return [row[:-1] for row in rows], int(rows[0][-1]) if rows else 0


STATE_BITS = {state: 1 << n for n, state in enumerate(REFERRAL_STATES)}
CATEGORY_BITS = {category: category_bit(category) for category in DataCategory.values}


def referral_figures(period: Period, scope: Scope) -> ReferralFigures:
    """One pass over the period's referrals: each family's referrals to a Rechtskreis become
    one row with the categories (Referral.category_mask) and the states they had as bits,
    which the database then counts per combination. (Counting distinct families per cell
    took a sort of the period's referrals per cell: bench/README, step 11.)"""
    state_bit = Case(
        *(When(state=state, then=Value(bit)) for state, bit in STATE_BITS.items()),
        default=Value(0),
        output_field=IntegerField(),
    )
    per_family = (
        _referrals(period, scope)
        .annotate(rechtskreis=F("to_agency__rechtskreis"))
        .order_by()
        .values("family_id", "rechtskreis")
        .annotate(
            category_bits=_bit_or(F("category_mask"), len(CATEGORY_BITS)),
            state_bits=_bit_or(state_bit, len(STATE_BITS)),
        )
    )
    groups, families = _family_groups(per_family, ["rechtskreis", "category_bits", "state_bits"])
    by_category: dict[tuple[str, str], int] = defaultdict(int)
    by_state: dict[tuple[str, str], int] = defaultdict(int)
    for rechtskreis, category_bits, state_bits, count in groups:
        for category, bit in CATEGORY_BITS.items():
            if category_bits & bit:
                by_category[(category, rechtskreis)] += count
        for state, bit in STATE_BITS.items():
            if state_bits & bit:
                by_state[(rechtskreis, state)] += count
    return ReferralFigures(dict(by_category), dict(by_state), families)


def categories_by_rechtskreis(figures: ReferralFigures) -> Table:
    return Table(
        "categories",
        _("Vermittelte Familien nach Datenkategorie und Rechtskreis der empfangenden Stelle"),
        tuple(str(DataCategory(c).label) for c in DataCategory.values),
        tuple(_rechtskreis_label(r) for r in RECHTSKREISE),
        _protected(figures.categories, DataCategory.values, RECHTSKREISE),
    )


def outcomes_by_rechtskreis(figures: ReferralFigures) -> Table:
    return Table(
        "outcomes",
        _("Vermittelte Familien nach Rechtskreis und Stand der Vermittlung"),
        tuple(_rechtskreis_label(r) for r in RECHTSKREISE),
        tuple(str(Referral.State(s).label) for s in REFERRAL_STATES),
        _protected(figures.outcomes, RECHTSKREISE, REFERRAL_STATES),
    )


def _days(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return round(value.total_seconds() / 86400, 1)
    return round(float(value), 1)


def _timings(
    rows: QuerySet[Any],
    group: str,
    start: str,
    end: str,
    label: Callable[[Any], str],
) -> list[Timing]:
    """Per GROUP: the families and the median and 90th percentile of END - START in days,
    hidden below MINIMUM families. On PostgreSQL in the database (percentile_cont); the
    embedded SQLite has no percentile, so there the values are read and computed here."""
    timed = rows.filter(**{f"{end}__isnull": False})
    duration = ExpressionWrapper(F(end) - F(start), output_field=DurationField())
    found: list[tuple[Any, int, Any, Any]]
    if connection.vendor == "postgresql":
        found = [
            (row[group], row["families"], *row["quantiles"])
            for row in timed.order_by()
            .values(group)
            .annotate(
                families=Count("family_id", distinct=True),
                quantiles=Percentiles(
                    duration, [0.5, 0.9], output_field=ArrayField(DurationField())
                ),
            )
        ]
    else:
        groups: dict[Any, tuple[set[Any], list[float]]] = {}
        for key, family, began, ended in timed.values_list(group, "family_id", start, end):
            families, spans = groups.setdefault(key, (set(), []))
            families.add(family)
            spans.append(_span_days(began, ended))
        found = [
            (key, len(families), _quantile(spans, 0.5), _quantile(spans, 0.9))
            for key, (families, spans) in groups.items()
        ]
    found.sort(key=lambda row: label(row[0]))
    return [
        Timing(label(key), families, _days(median), _days(p90))
        if families >= MINIMUM
        else Timing(label(key), None, None, None)
        for key, families, median, p90 in found
    ]


def _span_days(began: Any, ended: Any) -> float:
    """ENDED - BEGAN in days: two datetimes (an answer) or two dates (a decision)."""
    span: timedelta = ended - began
    return span.total_seconds() / 86400


def _quantile(values: list[float], fraction: float) -> float:
    """As percentile_cont: linear between the closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def answer_times(period: Period, scope: Scope) -> list[Timing]:
    """Per receiving agency, grouped by its id (no join, no sort by name in the database)."""
    names = dict(Agency.objects.values_list("pk", "name"))
    return _timings(
        _referrals(period, scope), "to_agency_id", "sent_at", "answered_at", names.__getitem__
    )


AGREEMENT_STATES = [
    Agreement.State.OPEN,
    Agreement.State.CONFIRMED,
    Agreement.State.DONE,
    Agreement.State.NOT_POSSIBLE,
]
SIDES = [*RECHTSKREISE, FAMILY_SIDE]


SIDE_STATE_BITS: dict[tuple[str, str], int] = {
    (side, str(state)): 1 << n for n, (side, state) in enumerate(product(SIDES, AGREEMENT_STATES))
}
# Any side's agreement done, or not possible.
KEPT_BITS = sum(SIDE_STATE_BITS[(side, Agreement.State.DONE)] for side in SIDES)
FAILED_BITS = sum(SIDE_STATE_BITS[(side, Agreement.State.NOT_POSSIBLE)] for side in SIDES)


@dataclass(frozen=True)
class AgreementFigures:
    """The period's families with agreements: per responsible side and state; in all; with
    one done; with one not possible."""

    sides: dict[tuple[str, str], int]
    made: int
    kept: int
    failed: int


def agreement_figures(period: Period, scope: Scope) -> AgreementFigures:
    """One pass over the period's agreements: a row a family, its agreements' sides and
    states as bits, counted per combination by the database (a distinct count per side and
    state sorted the period's agreements for each: bench/README, step 11)."""
    side_state_bit = Case(
        *(
            When(
                Q(state=state)
                & (Q(agency__isnull=True) if side == FAMILY_SIDE else Q(agency__rechtskreis=side)),
                then=Value(bit),
            )
            for (side, state), bit in SIDE_STATE_BITS.items()
        ),
        default=Value(0),
        output_field=IntegerField(),
    )
    per_family = (
        _agreements(period, scope)
        .order_by()
        .values(family_id=F("conference__family_id"))
        .annotate(bits=_bit_or(side_state_bit, len(SIDE_STATE_BITS)))
    )
    groups, made = _family_groups(per_family, ["bits"])
    sides: dict[tuple[str, str], int] = defaultdict(int)
    kept = failed = 0
    for bits, count in groups:
        for (side, state), bit in SIDE_STATE_BITS.items():
            if bits & bit:
                sides[(side, state)] += count
        kept += count if bits & KEPT_BITS else 0
        failed += count if bits & FAILED_BITS else 0
    return AgreementFigures(dict(sides), made, kept, failed)


def agreements_by_side(figures: AgreementFigures) -> Table:
    return Table(
        "agreements",
        _("Familien mit Vereinbarungen nach Zuständigkeit und Stand"),
        tuple(_rechtskreis_label(side) for side in SIDES),
        tuple(str(Agreement.State(s).label) for s in AGREEMENT_STATES),
        _protected(figures.sides, SIDES, AGREEMENT_STATES),
    )


def gaps_by_agency(period: Period, scope: Scope) -> Table:
    rows = (
        _agreements(period, scope)
        .filter(state=Agreement.State.NOT_POSSIBLE)
        .values("gap_reason", "agency__name")
        .annotate(families=Count("conference__family_id", distinct=True))
    )
    family = _("Familie selbst")
    counts = {(row["gap_reason"], row["agency__name"] or family): row["families"] for row in rows}
    agencies = sorted({agency for _gap, agency in counts}) or [family]
    return Table(
        "gaps",
        _("Nicht mögliche Vereinbarungen nach Lücke und zuständiger Stelle (Familien)"),
        tuple(str(label) for _value, label in GapReason.choices),
        tuple(agencies),
        _protected(counts, GapReason.values, agencies),
    )


TAG_KINDS = ApplicationTag.Kind.values


ASKED, NOT_ASKED = 1, 2


@dataclass(frozen=True)
class TagFigures:
    """The period's families with tagged applications: per kind, with and without
    documents requested; in all."""

    kinds: dict[tuple[str, int], int]
    families: int


def tag_figures(period: Period, scope: Scope) -> TagFigures:
    """One pass: a row a family and kind, whether documents were requested for its tags
    (ASKED), not (NOT_ASKED) or both as bits; the set of tags asked is built once."""
    asked = TagStatusChange.objects.filter(state=ApplicationTag.State.DOCUMENTS_REQUESTED).values(
        "tag_id"
    )
    bit = Case(When(pk__in=asked, then=Value(ASKED)), default=Value(NOT_ASKED))
    per_family = (
        _tags(period, scope).order_by().values("family_id", "kind").annotate(bits=_bit_or(bit, 2))
    )
    groups, families = _family_groups(per_family, ["kind", "bits"])
    kinds: dict[tuple[str, int], int] = defaultdict(int)
    for kind, bits, count in groups:
        for flag in (ASKED, NOT_ASKED):
            if bits & flag:
                kinds[(kind, flag)] += count
    return TagFigures(dict(kinds), families)


def tags_by_kind(figures: TagFigures) -> Table:
    with_docs, without = _("Unterlagen nachgefordert"), _("ohne Nachforderung")
    return Table(
        "tags",
        _("Familien mit markierten Anträgen nach Art und Nachforderung von Unterlagen"),
        tuple(str(ApplicationTag.Kind(k).label) for k in TAG_KINDS),
        (with_docs, without),
        _protected(figures.kinds, TAG_KINDS, [ASKED, NOT_ASKED]),
    )


def decision_times(period: Period, scope: Scope) -> list[Timing]:
    return _timings(
        _tags(period, scope),
        "kind",
        "submitted_on",
        "decided_on",
        lambda kind: str(ApplicationTag.Kind(kind).label),
    )


def reach_by_project(period: Period, scope: Scope) -> Table:
    """Families registered per project from the 1st of January of the period's last year to
    its end, with and without children."""
    start = timezone.make_aware(datetime.combine(period.end.replace(month=1, day=1), time.min))
    _start, end = period.bounds()
    # Tested once a family, in the partial index of children (HouseholdMember.Meta).
    with_children = Q(
        Exists(
            HouseholdMember.objects.filter(family=OuterRef("pk"), kind=HouseholdMember.Kind.CHILD)
        )
    )
    families = _scoped(
        Family.objects.filter(
            registered_at__gte=start, registered_at__lt=end, owner__kind=Agency.Kind.PROJECT
        ),
        scope,
        "owner_id",
    )
    # Each family is counted once: those without children are the rest.
    rows = families.values("owner__name").annotate(
        with_children=Count("pk", filter=with_children), families=Count("pk")
    )
    yes, no = _("mit Kindern"), _("ohne Kinder")
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        counts[(row["owner__name"], yes)] = row["with_children"]
        counts[(row["owner__name"], no)] = row["families"] - row["with_children"]
    projects = sorted({project for project, _column in counts})
    return Table(
        "reach",
        _("Erreichte Familien je Projekt im Jahr %(year)d") % {"year": period.end.year},
        tuple(projects),
        (yes, no),
        _protected(counts, projects, [yes, no]),
    )


def _families(rows: QuerySet[Any]) -> int:
    """How many distinct families ROWS have (a hashed DISTINCT, not a sort)."""
    return rows.order_by().values("family_id").distinct().count()


def _headline(referred: int, agreed: AgreementFigures, tagged: int) -> list[int]:
    """The trend's figures of a period, in the order of HEADLINES."""
    return [referred, agreed.made, agreed.kept, agreed.failed, tagged]


# Translated where shown (trends()); marked here so that makemessages finds them.
HEADLINES = [
    gettext_noop("Vermittelte Familien"),
    gettext_noop("Familien mit Vereinbarungen"),
    gettext_noop("… davon mit erledigter Vereinbarung"),
    gettext_noop("… davon mit nicht möglicher Vereinbarung"),
    gettext_noop("Familien mit markierten Anträgen"),
]


def trends(now: list[int], before: list[int]) -> list[Trend]:
    """The _headline figures of the period (NOW) and of the one before it, each hidden at
    1 to 4."""
    return [
        Trend(_(label), _shown(a), _shown(b))
        for label, a, b in zip(HEADLINES, now, before, strict=True)
    ]


def _enough_memory() -> None:
    """PostgreSQL, for this transaction: room for the report's hash tables (they spill to
    disk at the default 4 MB), and no JIT compiling, which its inflated cost estimates
    switch on and which took longer than it saved (bench/README, step 11)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute("SET LOCAL jit = off")


# Parallel readers of the report's one snapshot (PostgreSQL): this machine kind has two
# cores, and each of the report's passes runs on one.
READERS = 2


def _read_on(snapshot: str, language: str, zone: tzinfo, job: Callable[[], Any]) -> Any:
    """JOB in a transaction of this thread's own connection that reads SNAPSHOT, in the
    request's LANGUAGE and time ZONE (both are kept per thread)."""
    try:
        with translation.override(language), timezone.override(zone), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
            _enough_memory()
            return job()
    finally:
        connection.close()  # back to the pool: the thread ends with the report


def _on_one_snapshot(jobs: Sequence[Callable[[], Any]]) -> list[Any]:
    """The results of JOBS (reads only), all as of one moment. On PostgreSQL outside a
    transaction: on READERS connections at once, each importing the snapshot that this
    connection exports (pg_export_snapshot, as pg_dump's parallel jobs do), so that every
    figure counts the same rows; put the longest jobs first. Elsewhere, and inside a
    transaction (whose own writes no other connection could see: the tests), one by one
    in this connection's transaction."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        with transaction.atomic():
            _enough_memory()
            return [job() for job in jobs]
    language, zone = translation.get_language(), timezone.get_current_timezone()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            (snapshot,) = cursor.fetchone()
        # The snapshot lives as long as this transaction: until every reader is done.
        with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="report") as pool:
            futures = [pool.submit(_read_on, snapshot, language, zone, job) for job in jobs]
            return [future.result() for future in futures]


def build_report(period: Period, scope: Scope) -> StructureReport:
    previous = period.previous()
    # Longest first (bench/README, step 11), so that the two readers end close together.
    (
        referred,
        answered,
        agreed,
        tagged,
        agreed_before,
        gaps,
        reach,
        decided,
        referred_before,
        tagged_before,
    ) = _on_one_snapshot(
        [
            lambda: referral_figures(period, scope),
            lambda: answer_times(period, scope),
            lambda: agreement_figures(period, scope),
            lambda: tag_figures(period, scope),
            lambda: agreement_figures(previous, scope),
            lambda: gaps_by_agency(period, scope),
            lambda: reach_by_project(period, scope),
            lambda: decision_times(period, scope),
            lambda: _families(_referrals(previous, scope)),
            lambda: _families(_tags(previous, scope)),
        ]
    )
    return StructureReport(
        period=period,
        scope=scope,
        tables=[
            categories_by_rechtskreis(referred),
            outcomes_by_rechtskreis(referred),
            agreements_by_side(agreed),
            gaps,
            tags_by_kind(tagged),
            reach,
        ],
        answer_times=answered,
        decision_times=decided,
        trends=trends(
            _headline(referred.families, agreed, tagged.families),
            _headline(referred_before, agreed_before, tagged_before),
        ),
        target=settings.DIENSTWEG_FAMILIES_TARGET,
    )


def _csv(section: str, row: str, column: str, value: float | None) -> list[str]:
    hidden = value is None
    return [section, row, column, "" if hidden else str(value), _("gesperrt") if hidden else ""]


def csv_rows(report: StructureReport) -> Iterable[list[str]]:
    """The report as rows of a CSV file: table, row, column, value ("" where hidden) and a
    note ("gesperrt" where hidden)."""
    yield [_("Tabelle"), _("Zeile"), _("Spalte"), _("Wert"), _("Hinweis")]
    for table in report.tables:
        for label, values in table.lines():
            for column, value in zip(table.headers, values, strict=True):
                yield _csv(table.title, label, column, value)
    for title, timings in (
        (_("Tage bis zur ersten Antwort"), report.answer_times),
        (_("Tage von Einreichung bis Entscheidung"), report.decision_times),
    ):
        for timing in timings:
            yield _csv(title, timing.label, _("Familien"), timing.families)
            yield _csv(title, timing.label, _("Median"), timing.median_days)
            yield _csv(title, timing.label, _("90. Perzentil"), timing.p90_days)
    for trend in report.trends:
        yield _csv(_("Entwicklung"), trend.label, _("Zeitraum"), trend.now)
        yield _csv(_("Entwicklung"), trend.label, _("Vorzeitraum"), trend.before)
