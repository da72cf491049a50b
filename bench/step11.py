"""Step 11 benchmark: the Strukturkonferenz report and the conference page at full size.

    DIENSTWEG_DEBUG=true DATABASE_URL=postgres://root@127.0.0.1:5432/dienstweg_bench11 \
        .venv/bin/python bench/step11.py [--families 100000 --referrals 500000 --tags 100000 \
        --conferences 60000 --agreements 200000] [--reuse | --keep-base]

1. Unless --reuse: drops and creates the database named in DATABASE_URL (its name must
   contain "bench") and builds the step-3 network with bench/step3.py's own generator (50
   agencies, 2,000 staff, FAMILIES families with one consent each, REFERRALS referrals,
   TAGS application tags with their status changes). On top, with COPY in batches of
   2,000 families: CONFERENCES Familienkonferenzen spread over the families and the last
   two years (and the next six weeks), 7 % cancelled, each convened by a coach or lead of
   the owning project, with 1-3 invitations of case-role members of the agencies the
   family's consent names (access_until in the future, 3 % ended), the invitees'
   view_conference rows (django-guardian) and the consent each rests on; AGREEMENTS
   agreements over the planned conferences that have taken place (open, confirmed with a
   real signed receipt, done, not possible with a GapReason; an invited agency, the
   project, or the family itself). Place, video link, agenda, the snapshot (the real
   convening code's identity and notes), each agreement's text and outcome note are real
   ciphertexts under the family's data key (Encrypted.encrypt_field), so every page
   decrypts them. A member of the steering group is added at the Jugendamt Gladbeck.
   Then VACUUM (ANALYZE). --keep-base keeps the step-3 rows and generates only the
   conferences again (for a changed generator).
2. Times, through django.test.Client in-process with verified sessions and DEBUG off:
   GET /strukturkonferenz/ for six months and for a year as the steering member (the whole
   network) and as a lead of the busy Jobcenter (her agency), interleaved round by round
   (--report-warmup untimed, --report-requests timed each), and the CSV export; the
   conference page /konferenzen/<id>/ of --page-conferences conferences (0-5 agreements)
   as their convening coach, and of as many as an invitee of the busy Jobcenter, each
   interleaved with the same page without its audit record and with a plain twin (the
   same view code and template on the conference fetched by its id, no access rule, no
   audit record).
3. Prints a table and writes bench/results/step11.json: the figures, the queries of one
   request of each page with EXPLAIN (ANALYZE, BUFFERS) of the slowest, the query count
   of a conference page by its number of agreements, the time the report spends in its
   disclosure control, the generated row counts and the conditions (calibration before
   and after the requests).

--reuse measures the database as it is (each run adds its audit events); --only report or
--only pages measures one half. Helpers come from bench/step3.py and, through it,
bench/step2.py, which read their own command lines on import: this script hands them theirs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import statistics
import subprocess
import sys
import time
import types
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlencode

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "step11.json"

# Targets of the issue.
TARGET_REPORT_P95_MS = 2000.0
TARGET_PAGE_P95_MS = 25.0

STEERING = "steering.0@bench.example.org"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--families", type=int, default=100_000)
    parser.add_argument("--referrals", type=int, default=500_000)
    parser.add_argument("--tags", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--conferences", type=int, default=60_000)
    parser.add_argument("--agreements", type=int, default=200_000)
    parser.add_argument("--report-requests", type=int, default=20, help="timed, per figure")
    parser.add_argument("--report-warmup", type=int, default=3, help="untimed, per figure")
    parser.add_argument("--csv-requests", type=int, default=5)
    parser.add_argument("--page-conferences", type=int, default=100)
    parser.add_argument("--requests", type=int, default=300, help="timed page requests")
    parser.add_argument("--warmup", type=int, default=30, help="untimed page requests")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--reuse", action="store_true", help="skip reset and generation")
    parser.add_argument(
        "--keep-base", action="store_true", help="keep the step-3 rows, generate conferences anew"
    )
    parser.add_argument(
        "--only", choices=("report", "pages"), help="measure only the report or only the pages"
    )
    parser.add_argument("--debug", action="store_true", help="keep DEBUG on while measuring")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    # Percentiles need two samples at least (a run with one failed only at its end).
    for name in ("report_requests", "csv_requests", "requests"):
        if getattr(args, name) < 2:
            parser.error(f"--{name.replace('_', '-')} must be 2 or more")
    return args


ARGS = parse_args()

# step3 (and through it step2) read their command line when imported (step2 sets Django up
# and turns DEBUG off unless --debug): hand them the volumes and the page request counts.
sys.path.insert(0, str(BENCH))
_argv, sys.argv = (
    sys.argv,
    [
        str(BENCH / "step3.py"),
        *("--families", str(ARGS.families), "--referrals", str(ARGS.referrals)),
        *("--tags", str(ARGS.tags), "--users", str(ARGS.users), "--seed", str(ARGS.seed)),
        *("--requests", str(ARGS.requests), "--warmup", str(ARGS.warmup)),
        *(["--debug"] if ARGS.debug else []),
    ],
)
try:
    import step3
finally:
    sys.argv = _argv
step2 = step3.step2

from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.auth.models import Permission  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Count, Q  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import clear_url_caches, include, path, reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from applications.models import ApplicationTag, TagStatusChange  # noqa: E402
from audit.models import AuditEvent  # noqa: E402
from conferences import receipts, views  # noqa: E402
from conferences import report as report_module  # noqa: E402
from conferences.access import side_of  # noqa: E402
from conferences.actions import ConferenceData  # noqa: E402
from conferences.actions.convening import _snapshot  # noqa: E402
from conferences.models import (  # noqa: E402
    Agreement,
    Conference,
    ConferenceUserPermission,
    GapReason,
    Invitation,
)
from dienstweg import actions as family_actions  # noqa: E402
from dienstweg.access import CASE_ROLES, REGISTERING_ROLES, Reach, reach_of, staff  # noqa: E402
from dienstweg.models import (  # noqa: E402
    Agency,
    Consent,
    DataCategory,
    Family,
    Membership,
    User,
)
from referrals.models import Referral  # noqa: E402

DAY = step2.DAY
State = Agreement.State

PLACES = [
    "Familienbüro Gladbeck, Besprechungsraum 2",
    "Stadtteilzentrum Butendorf, Gruppenraum",
    "Jobcenter Gladbeck, Raum 114",
    "Kita Regenbogen, Elternzimmer",
    "",
]
AGENDAS = [
    "1. Arbeitssuche der Mutter\n2. Kita-Platz für das jüngste Kind\n3. Nächste Schritte",
    "Was ist aus den Vereinbarungen der letzten Konferenz geworden?",
    "1. Mietrückstand und Schuldnerberatung\n2. Sprachkurs\n3. Anträge (BuT, Wohngeld)",
    "",
]
WHATS = [
    "Beratungstermin zur Teilzeitstelle im Jobcenter vereinbaren",
    "Kita-Platz für das jüngste Kind beim Jugendamt anfragen",
    "Unterlagen für den Kinderzuschlag zusammenstellen und einreichen",
    "Sprachkurs am Vormittag finden und anmelden",
    "Termin bei der Schuldnerberatung wahrnehmen",
    "Antrag auf Leistungen für Bildung und Teilhabe stellen",
    "Anerkennung des Berufsabschlusses beantragen",
    "Wohngeldantrag mit Mietbescheinigung abgeben",
]
OUTCOME_NOTES = [
    "Kurse nur mit Kinderbetreuung am Nachmittag.",
    "Wartezeit derzeit sechs Monate.",
    "Erledigt, Bescheid liegt vor.",
    "Familie hat sich umentschieden.",
]
GAP_WEIGHTS = {
    GapReason.NO_PLACE: 0.22,
    GapReason.WAITING_TIME: 0.20,
    GapReason.OFFER_MISSING: 0.10,
    GapReason.HURDLE_LANGUAGE: 0.12,
    GapReason.HURDLE_MOBILITY: 0.06,
    GapReason.HURDLE_CHILDCARE: 0.12,
    GapReason.HURDLE_HOURS: 0.06,
    GapReason.RESPONSIBILITY_UNCLEAR: 0.07,
    GapReason.FAMILY_DECLINED: 0.05,
}
# An agreement's state by whether its date has passed.
STATES_DUE_AHEAD = {State.OPEN: 0.50, State.CONFIRMED: 0.40, State.DONE: 0.10}
STATES_DUE_PAST = {
    State.DONE: 0.50,
    State.NOT_POSSIBLE: 0.22,
    State.OPEN: 0.14,
    State.CONFIRMED: 0.14,
}
CANCELLED_SHARE = 0.07
ENDED_INVITATION_SHARE = 0.03
PAST_DAYS, AHEAD_DAYS = 730, 45
BATCH = 2_000


# 1. Data


@dataclass
class Plan:
    """One conference of a family, before its rows are built."""

    starts_at: datetime
    cancelled: bool
    agreements: int = 0


@dataclass
class People:
    """Who may be invited (case roles per agency), who convenes (coaches and leads per
    project), and everyone's name (for the receipts)."""

    case: dict[int, list[int]]
    conveners: dict[int, list[int]]
    users: dict[int, User]
    agencies: dict[int, Agency]
    projects: set[int]


def load_people() -> People:
    case: dict[int, list[int]] = {}
    conveners: dict[int, list[int]] = {}
    for agency, user, role in Membership.objects.order_by("agency_id", "user_id").values_list(
        "agency_id", "user_id", "role"
    ):
        if role in CASE_ROLES:
            case.setdefault(agency, []).append(user)
        if role in REGISTERING_ROLES:
            conveners.setdefault(agency, []).append(user)
    agencies = {agency.pk: agency for agency in Agency.objects.all()}
    return People(
        case=case,
        conveners=conveners,
        users={user.pk: user for user in User.objects.only("id", "full_name")},
        agencies=agencies,
        projects={pk for pk, agency in agencies.items() if agency.kind == Agency.Kind.PROJECT},
    )


def at_local(day: date, hour: int, minute: int) -> datetime:
    return timezone.make_aware(datetime.combine(day, clock(hour, minute)))


def plan_conferences(rng: random.Random, now: datetime) -> dict[uuid.UUID, list[Plan]]:
    """Which family has conferences when (in the last two years and the next weeks, after
    its registration), which are cancelled, and how many agreements each has: AGREEMENTS
    spread over the planned conferences that have taken place."""
    families = list(Family.objects.order_by("pk").values_list("pk", "registered_at"))
    counts = step3.spread(rng, ARGS.conferences, len(families))
    first, last = now - timedelta(days=PAST_DAYS), now + timedelta(days=AHEAD_DAYS)
    plans: dict[uuid.UUID, list[Plan]] = {}
    for (family, registered), count in zip(families, counts, strict=True):
        if not count:
            continue
        low = max(first, registered + timedelta(days=7))
        if low >= last:
            low = registered + timedelta(hours=2)
        moments = sorted(rng.uniform(low.timestamp(), last.timestamp()) for _i in range(count))
        plans[family] = [
            Plan(
                at_local(
                    timezone.localtime(datetime.fromtimestamp(moment, tz=UTC)).date(),
                    rng.randint(8, 15),
                    rng.choice((0, 30)),
                ),
                rng.random() < CANCELLED_SHARE,
            )
            for moment in moments
        ]
    held = [plan for family in plans.values() for plan in family if not plan.cancelled]
    held = [plan for plan in held if plan.starts_at < now]
    for plan, count in zip(held, step3.spread(rng, ARGS.agreements, len(held)), strict=True):
        plan.agreements = count
    return plans


class ConferenceGenerator:
    """Builds one family's conferences, invitations, permissions and agreements, unsaved,
    encrypted with the family's data key, and COPYs them per batch."""

    def __init__(self, rng: random.Random, people: People, now: datetime) -> None:
        self.rng = rng
        self.people = people
        self.now = now
        self.today = timezone.localdate()
        self.view = Permission.objects.get(
            content_type__app_label="conferences", codename="view_conference"
        ).pk
        self.authorities = sorted(agency for agency in people.case if agency not in people.projects)
        with connection.cursor() as cursor:
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM conferences_invitation")
            self.invitation_id = cursor.fetchone()[0]
        self.conferences: list[Conference] = []
        self.invitations: list[tuple] = []
        self.invitation_consents: list[tuple] = []
        self.permissions: list[tuple] = []
        self.agreements: list[Agreement] = []
        self.totals: Counter[str] = Counter()

    def family(self, family: Family, consent: Consent | None, plans: list[Plan]) -> None:
        owner = family.owner_id
        offered = sorted({*(consent.categories if consent else [])} | {DataCategory.IDENTITY.value})
        covered = [
            agency
            for agency in (consent.recipient_ids if consent else [])
            if agency != owner and self.people.case.get(agency)
        ] or self.authorities
        previous: Conference | None = None
        for plan in plans:
            conference = self.conference(family, plan, offered, previous)
            invited = self.invite(conference, consent, covered, plan)
            for number in range(1, plan.agreements + 1):
                self.agreement(conference, number, invited)
            if not plan.cancelled:
                previous = conference

    def conference(
        self, family: Family, plan: Plan, offered: list[str], previous: Conference | None
    ) -> Conference:
        rng = self.rng
        created = max(family.registered_at, plan.starts_at - timedelta(days=rng.uniform(5, 28)))
        created = min(created, self.now - timedelta(minutes=5))
        others = [category for category in offered if category != DataCategory.IDENTITY]
        categories = sorted(rng.sample(others, min(len(others), rng.randint(1, 3))))
        if rng.random() < 0.9 or not categories:
            categories = sorted([DataCategory.IDENTITY.value, *categories])
        conference = Conference(
            id=uuid.uuid4(),
            family=family,
            project_id=family.owner_id,
            convened_by_id=rng.choice(self.people.conveners[family.owner_id]),
            state=Conference.State.CANCELLED if plan.cancelled else Conference.State.PLANNED,
            starts_at=plan.starts_at,
            duration_minutes=rng.choice((60, 90, 90, 120)),
            categories=categories,
            created_at=created,
            follows=previous,
        )
        if plan.cancelled:
            cancelled = plan.starts_at - timedelta(days=rng.uniform(0.2, 4))
            conference.cancelled_at = min(max(cancelled, created), self.now - timedelta(minutes=1))
        video = rng.random() < 0.3
        place = rng.choice(PLACES if video else PLACES[:-1])
        data = ConferenceData(
            starts_at=plan.starts_at,
            duration_minutes=conference.duration_minutes,
            place=place,
            video_link=f"https://video.example.org/fk-{rng.randrange(10**6):06d}" if video else "",
            agenda=rng.choice(AGENDAS),
            categories=categories,
            invitees=[],
            notes={
                category: step3.CATEGORY_NOTES[category]
                for category in categories
                if category in step3.CATEGORY_NOTES
                and category != DataCategory.IDENTITY
                and rng.random() < 0.7
            },
        )
        # What convene_conference stores: the same fields, the real snapshot.
        conference.encrypt_field("place", data.place)
        conference.encrypt_field("video_link", data.video_link)
        conference.encrypt_field("agenda", data.agenda)
        conference.encrypt_field("snapshot", json.dumps(_snapshot(family, data)))
        self.conferences.append(conference)
        return conference

    def invite(
        self, conference: Conference, consent: Consent | None, covered: list[int], plan: Plan
    ) -> list[tuple[int, int]]:
        """1-3 invitations of case-role members of the covered agencies; the (agency,
        user) pairs whose access is open."""
        rng = self.rng
        invited: list[tuple[int, int]] = []
        seen: set[int] = set()
        for _index in range(rng.choices((1, 2, 3), weights=(0.4, 0.4, 0.2))[0]):
            agency = rng.choice(covered)
            user = rng.choice(self.people.case[agency])
            if user in seen:
                continue
            seen.add(user)
            self.invitation_id += 1
            ended = None
            if rng.random() < ENDED_INVITATION_SHARE:
                moment = rng.uniform(conference.created_at.timestamp(), self.now.timestamp())
                ended = datetime.fromtimestamp(moment, tz=UTC)
            self.invitations.append(
                (
                    self.invitation_id,
                    conference.id,
                    user,
                    agency,
                    self.today + timedelta(days=rng.randint(30, 700)),
                    ended,
                    conference.created_at,
                )
            )
            if consent is not None:
                self.invitation_consents.append((self.invitation_id, consent.id))
            if ended is None:
                self.permissions.append((self.view, user, conference.id))
                invited.append((agency, user))
        return invited

    def agreement(
        self, conference: Conference, number: int, invited: list[tuple[int, int]]
    ) -> None:
        rng, now = self.rng, self.now
        convener = conference.convened_by_id
        draw = rng.random()
        person: int | None = None
        if draw < 0.6 and invited:
            agency, invitee = rng.choice(invited)
            person = invitee if rng.random() < 0.7 else None
        elif draw < 0.8:  # the project (or no one is invited)
            agency = conference.project_id
            person = convener if rng.random() < 0.5 else None
        else:
            agency = None
        day = timezone.localtime(conference.starts_at).date()
        due_on = day + timedelta(days=rng.randint(7, 120))
        weights = STATES_DUE_AHEAD if due_on >= self.today else STATES_DUE_PAST
        state = rng.choices(list(weights), weights=list(weights.values()))[0]
        if agency is None and state == State.CONFIRMED:
            state = State.OPEN
        created = conference.starts_at + timedelta(minutes=rng.uniform(10, 80))
        agreement = Agreement(
            id=uuid.uuid4(),
            conference=conference,
            number=number,
            agency_id=agency,
            person_id=person,
            due_on=due_on,
            state=state,
            created_by_id=convener,
            created_at=min(created, now - timedelta(minutes=1)),
        )
        what = rng.choice(WHATS)
        agreement.encrypt_field("what", what)
        confirmed = state == State.CONFIRMED or (
            agency is not None and state == State.DONE and rng.random() < 0.7
        )
        if confirmed and agency is not None:
            by = person or rng.choice(
                [user for member_of, user in invited if member_of == agency] or [convener]
            )
            moment = agreement.created_at + timedelta(hours=rng.uniform(1, 240))
            agreement.confirmed_at = min(moment, now - timedelta(minutes=1))
            agreement.confirmed_by_id = by
            receipt = receipts.issue(
                agreement_id=str(agreement.id),
                conference_id=str(conference.id),
                number=number,
                family_reference=conference.family.reference,
                agency=self.people.agencies[agency],
                by=self.people.users[by],
                at=agreement.confirmed_at,
                due_on=due_on.isoformat(),
                what=what,
            )
            agreement.receipt = json.dumps(receipt, ensure_ascii=False)
            agreement.signature = receipt["signature"]
        if state in (State.DONE, State.NOT_POSSIBLE):
            if state == State.NOT_POSSIBLE:
                agreement.gap_reason = rng.choices(
                    list(GAP_WEIGHTS), weights=list(GAP_WEIGHTS.values())
                )[0]
            end = datetime.combine(due_on, clock(16), tzinfo=UTC).timestamp()
            moment = rng.uniform(agreement.created_at.timestamp(), max(end, now.timestamp()))
            agreement.closed_at = datetime.fromtimestamp(min(moment, now.timestamp() - 60), tz=UTC)
            agreement.closed_by_id = agreement.confirmed_by_id or person or convener
            if rng.random() < 0.4:
                agreement.encrypt_field("outcome_note", rng.choice(OUTCOME_NOTES))
        elif agency is not None and due_on < self.today:
            reminded = datetime.combine(due_on + timedelta(days=1), clock(6), tzinfo=UTC)
            agreement.reminded_at = reminded
            if reminded + timedelta(days=7) < now:
                agreement.escalated_at = reminded + timedelta(days=7)
        self.agreements.append(agreement)

    def flush(self) -> None:
        """COPY what has been built (inside the caller's transaction) and start afresh."""
        for name, count in (
            ("conferences", step3.copy_objects(Conference, self.conferences)),
            (
                "invitations",
                step3.copy_rows(
                    Invitation._meta.db_table,
                    (
                        "id",
                        "conference_id",
                        "user_id",
                        "agency_id",
                        "access_until",
                        "access_ended_at",
                        "invited_at",
                    ),
                    self.invitations,
                ),
            ),
            (
                "invitation_consents",
                step3.copy_rows(
                    Invitation.consents.through._meta.db_table,
                    ("invitation_id", "consent_id"),
                    self.invitation_consents,
                ),
            ),
            (
                "conference_permissions",
                step3.copy_rows(
                    ConferenceUserPermission._meta.db_table,
                    ("permission_id", "user_id", "content_object_id"),
                    self.permissions,
                ),
            ),
            ("agreements", step3.copy_objects(Agreement, self.agreements)),
        ):
            self.totals[name] += count
        self.conferences, self.invitations, self.invitation_consents = [], [], []
        self.permissions, self.agreements = [], []


def batches(ids: list[uuid.UUID], size: int) -> Iterator[list[uuid.UUID]]:
    for offset in range(0, len(ids), size):
        yield ids[offset : offset + size]


def generate_conferences(rng: random.Random) -> dict[str, int]:
    now = timezone.now()
    people = load_people()
    plans = plan_conferences(rng, now)
    generator = ConferenceGenerator(rng, people, now)
    ids = sorted(plans)
    started = time.perf_counter()
    done = 0
    for chunk in batches(ids, BATCH):
        families = {
            family.pk: family
            for family in Family.objects.filter(pk__in=chunk)
            .select_related("data_key")
            .prefetch_related("members")
        }
        consents: dict[uuid.UUID, Consent] = {}
        for consent in Consent.objects.filter(family_id__in=chunk).order_by("recorded_at"):
            consents[consent.family_id] = consent  # the latest
        for family_id in chunk:
            generator.family(families[family_id], consents.get(family_id), plans[family_id])
        with transaction.atomic():
            generator.flush()
        done += len(chunk)
        elapsed = time.perf_counter() - started
        print(
            f"  families {done:>7,} / {len(ids):,}  conferences "
            f"{generator.totals['conferences']:>7,}  agreements "
            f"{generator.totals['agreements']:>8,}  {elapsed:6.1f} s",
            flush=True,
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('conferences_invitation', 'id'), "
            "(SELECT COALESCE(MAX(id), 1) FROM conferences_invitation))"
        )
    return dict(generator.totals)


def clear_conferences() -> None:
    """For --keep-base: the step-3 rows stay, the conferences go."""
    tables = [
        Agreement._meta.db_table,
        Invitation.consents.through._meta.db_table,
        Invitation._meta.db_table,
        ConferenceUserPermission._meta.db_table,
        Conference._meta.db_table,
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)}")


def add_steering_member() -> User:
    """A member of the steering group (at the Jugendamt Gladbeck): the whole network."""
    user, _created = User.objects.get_or_create(
        email=STEERING,
        defaults={
            "full_name": "Steuerungsgruppe Koordination",
            "password": make_password("bench-" + uuid.uuid4().hex),
        },
    )
    jugendamt = Agency.objects.filter(kind="jugendamt").order_by("pk").first()
    assert jugendamt is not None, "no Jugendamt in the network"
    family_actions.add_membership(user, agency=jugendamt, role=Membership.Role.STEERING, by=None)
    return user


def tag_facts() -> dict[str, int]:
    """What the report's tag table and decision times read (step 3 generates both)."""
    requested = TagStatusChange.objects.filter(state="documents_requested")
    return {
        "tags": ApplicationTag.objects.count(),
        "tags_decided_with_decided_on": ApplicationTag.objects.filter(
            decided_on__isnull=False
        ).count(),
        "tags_with_documents_requested": requested.values("tag_id").distinct().count(),
        "status_changes_documents_requested": requested.count(),
    }


# 2. The plain conference page: the same view code and template, no rule, no audit.

TARGET: dict[str, Any] = {"reach": {}}  # each measured user's Reach, read once


def plain_conference(request: HttpRequest, conference_id: str) -> HttpResponse:
    """conference_detail with the conference fetched by its id (no access rule), her
    memberships read once before the run, and no audit record."""
    user = staff(request)
    reach: Reach = TARGET["reach"][user.pk]
    conference = Conference.objects.select_related(
        "family__data_key", "project", "convened_by", "follows"
    ).get(pk=conference_id)
    side = side_of(conference, reach)
    return views._page(request, conference, user=user, reach=reach, side=side)


URLCONF = types.ModuleType("bench_step11_urls")
URLCONF.urlpatterns = [  # type: ignore[attr-defined]
    path(
        "bench/plain/konferenzen/<uuid:conference_id>/", plain_conference, name="plain_conference"
    ),
    path("", include(settings.ROOT_URLCONF)),
]
sys.modules[URLCONF.__name__] = URLCONF


# 3. Requests

TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK"}


def profile(
    client: Client,
    name: str,
    url: str,
    *,
    repeat: int = 5,
    plans: int = 1,
    one_connection: bool = False,
) -> dict:
    """Every query of one request in order (timed with perf_counter), the median time in
    SQL over REPEAT requests after a warm one, and EXPLAIN (ANALYZE, BUFFERS) of the PLANS
    slowest SELECTs (as bench/step3.py's profile, with more than one plan). ONE_CONNECTION:
    inside a transaction, where the report reads on this connection alone, one pass after
    the other (its readers' own connections would go uncounted)."""
    totals: list[float] = []
    queries: list[dict] = []
    timings: list[float] = []

    def timed_query(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timings.append((time.perf_counter() - started) * 1000)

    client.get(url)
    for _round in range(repeat):
        timings.clear()
        with (
            transaction.atomic() if one_connection else contextlib.nullcontext(),
            CaptureQueriesContext(connection) as captured,
            connection.execute_wrapper(timed_query),
        ):
            response = client.get(url)
        assert response.status_code == 200, f"{url}: {response.status_code}"
        measured = iter(timings)
        queries = [
            {
                "ms": round(
                    float(query["time"]) * 1000
                    if query["sql"] in TRANSACTION_CONTROL
                    else next(measured),
                    3,
                ),
                "sql": query["sql"],
            }
            for query in captured.captured_queries
        ]
        assert next(measured, None) is None, "queries and timings do not match"
        totals.append(sum(query["ms"] for query in queries))
    selects = [query for query in queries if query["sql"].lstrip().upper().startswith("SELECT")]
    slowest = sorted(selects, key=lambda query: -query["ms"])[:plans]
    explained = []
    for query in slowest:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            explained.append(
                {
                    "ms": query["ms"],
                    "sql": query["sql"][:6000],
                    "plan": [row[0] for row in cursor.fetchall()],
                }
            )
    total = statistics.median(totals)
    print(
        f"  {name}: {len(queries)} queries, {total:.1f} ms in SQL (median of {repeat}); "
        f"slowest SELECT {slowest[0]['ms'] if slowest else 0:.1f} ms",
        flush=True,
    )
    return {
        "url": url,
        "queries": len(queries),
        "sql_ms": round(total, 2),
        "all": [{**query, "sql": query["sql"][:3000]} for query in queries],
        "slowest": explained,
    }


def disclosure_ms(client: Client, url: str) -> float:
    """The time one report request spends in disclosure.protect() (pure Python)."""
    spent: list[float] = []
    original = report_module.protect

    def timed_protect(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append((time.perf_counter() - started) * 1000)

    with mock.patch.object(report_module, "protect", timed_protect):
        assert client.get(url).status_code == 200
    return round(sum(spent), 2)


def report_url(days: int, fmt: str | None = None) -> str:
    end = timezone.localdate()
    query = urlencode({"start": (end - timedelta(days=days)).isoformat(), "end": end.isoformat()})
    if fmt is None:
        return reverse("structure_report") + "?" + query
    return reverse("structure_report_export", args=[fmt]) + "?" + query


def report_benchmarks(steering: User, lead: User) -> dict:
    """The report for six months and a year, as the steering member and as the lead,
    interleaved round by round (which goes first rotates); then the CSV export."""
    clients = {"steering": step2.verified_client(steering), "lead": step2.verified_client(lead)}
    figures = {
        f"{who}_{label}": (clients[who], report_url(days))
        for who in ("steering", "lead")
        for label, days in (("6_months", 182), ("1_year", 365))
    }
    keys = list(figures)
    samples: dict[str, list[float]] = {key: [] for key in keys}
    rounds = ARGS.report_warmup + ARGS.report_requests
    for round_ in range(rounds):
        shift = round_ % len(keys)
        for key in keys[shift:] + keys[:shift]:
            client, url = figures[key]
            elapsed = step2.timed(lambda client=client, url=url: client.get(url), 200)
            if round_ >= ARGS.report_warmup:
                samples[key].append(elapsed)
        print(f"  round {round_ + 1}/{rounds}", flush=True)
    results: dict[str, Any] = {}
    for key in keys:
        client, url = figures[key]
        results[key] = step2.percentiles(samples[key])
        print(
            f"  report {key:<18} p50 {results[key]['p50']:8.1f}  p95 {results[key]['p95']:8.1f}"
            f"  max {results[key]['max']:8.1f} ms",
            flush=True,
        )
        results[key]["disclosure_ms"] = disclosure_ms(client, url)
        results[key]["profile"] = profile(
            client, f"report {key}", url, repeat=2, plans=3, one_connection=True
        )
    csv_client, csv_url = clients["steering"], report_url(365, "csv")
    results["csv_steering_1_year"] = step2.measure(
        "CSV export, steering, 1 year",
        [lambda: csv_client.get(csv_url)] * (1 + ARGS.csv_requests),
        warmup=1,
    )
    response = csv_client.get(csv_url)
    results["csv_steering_1_year"]["rows"] = response.content.decode().count("\n")
    results["csv_steering_1_year"]["url"] = csv_url
    return results


MAIN = re.compile(r"<main\b.*</main>", re.DOTALL)


def pick_conferences(rng: random.Random, visible: Q, count: int) -> list[tuple[str, int]]:
    """COUNT planned conferences matching VISIBLE with 0-5 agreements, as many of each
    number as there are (id, number of agreements)."""
    rows = list(
        Conference.objects.filter(visible, state=Conference.State.PLANNED)
        .annotate(n=Count("agreements"))
        .filter(n__lte=5)
        .values_list("pk", "n")
    )
    by_number: dict[int, list[str]] = {}
    for pk, number in rows:
        by_number.setdefault(number, []).append(str(pk))
    chosen: list[tuple[str, int]] = []
    numbers = sorted(by_number)
    for number in numbers:
        rng.shuffle(by_number[number])
    while len(chosen) < count and any(by_number.values()):
        for number in numbers:
            if by_number[number] and len(chosen) < count:
                chosen.append((by_number[number].pop(), number))
    return chosen


def query_counts(client: Client, chosen: list[tuple[str, int]]) -> dict:
    """The queries of one request of the page of each CHOSEN conference, with what the page
    shows: its agreements, those open or confirmed with an agency responsible (whether the
    user may confirm or close them: acts_for), and the open agreements of the conference
    it follows. The count should depend on none of them. The SQL that the page with the
    most queries has and the empty page with the fewest has not."""
    pks = [pk for pk, _number in chosen]
    of_agency = Q(agreements__agency__isnull=False)
    facts = {
        str(row["pk"]): row
        for row in Conference.objects.filter(pk__in=pks)
        .annotate(
            agreements_n=Count("agreements"),
            open_n=Count("agreements", filter=of_agency & Q(agreements__state=State.OPEN)),
            confirmed_n=Count(
                "agreements", filter=of_agency & Q(agreements__state=State.CONFIRMED)
            ),
        )
        .values("pk", "agreements_n", "open_n", "confirmed_n", "follows_id")
    }
    previous_open = dict(
        Agreement.objects.filter(
            conference_id__in=[row["follows_id"] for row in facts.values() if row["follows_id"]],
            state__in=[State.OPEN, State.CONFIRMED],
        )
        .values("conference_id")
        .annotate(n=Count("id"))
        .values_list("conference_id", "n")
    )
    rows: list[dict[str, Any]] = []
    sql: dict[str, list[str]] = {}
    for pk in pks:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("conference_detail", args=[pk])).status_code == 200
        sql[pk] = [query["sql"] for query in captured.captured_queries]
        row = facts[pk]
        rows.append(
            {
                "conference": pk,
                "queries": len(sql[pk]),
                "agreements": row["agreements_n"],
                "open_of_an_agency": row["open_n"],
                "confirmed_of_an_agency": row["confirmed_n"],
                "previous_open": previous_open.get(row["follows_id"], 0),
            }
        )
    by_number: dict[int, list[int]] = {}
    for row in rows:
        by_number.setdefault(row["agreements"], []).append(row["queries"])
    empty = min(
        (row for row in rows if row["agreements"] == 0),
        key=lambda row: row["queries"],
        default=min(rows, key=lambda row: row["queries"]),
    )
    most = max(rows, key=lambda row: (row["agreements"], row["queries"]))
    shape = re.compile(r"'[^']*'|\b\d+\b")
    extra = Counter(shape.sub("?", text) for text in sql[most["conference"]]) - Counter(
        shape.sub("?", text) for text in sql[empty["conference"]]
    )
    return {
        "constant": len({row["queries"] for row in rows}) == 1,
        "by_agreements": {
            str(number): {"conferences": len(counts), "min": min(counts), "max": max(counts)}
            for number, counts in sorted(by_number.items())
        },
        "empty": empty,
        "most": most,
        "extra_queries_of_most": [
            {"times": times, "sql": text[:1500]} for text, times in extra.most_common()
        ],
        "conferences": rows,
    }


def page_benchmarks(label: str, user: User, chosen: list[tuple[str, int]]) -> dict:
    """The conference page of the CHOSEN conferences in turn, as USER: the real page, the
    real page without its audit record and the plain twin, interleaved."""
    client = step2.verified_client(user)
    TARGET["reach"][user.pk] = reach_of(user)
    total = ARGS.warmup + ARGS.requests
    order = [chosen[index % len(chosen)][0] for index in range(total)]
    real = [reverse("conference_detail", args=[pk]) for pk in order]
    plain = [reverse("plain_conference", args=[pk]) for pk in order]
    for real_url, plain_url in list(zip(real, plain, strict=True))[:10]:
        assert step3.main_part(client.get(real_url)) == step3.main_part(client.get(plain_url)), (
            f"{real_url}: the plain page differs"
        )

    def without_audit(url: str) -> Any:
        with mock.patch("conferences.actions.record_conference_read", lambda *a, **k: None):
            return client.get(url)

    events_before = AuditEvent.objects.filter(action="conference.viewed").count()
    results = step3.measure_variants(
        label,
        {
            "real": [lambda url=url: client.get(url) for url in real],
            "real_without_audit": [lambda url=url: without_audit(url) for url in real],
            "plain": [lambda url=url: client.get(url) for url in plain],
        },
    )
    written = AuditEvent.objects.filter(action="conference.viewed").count() - events_before
    assert written == total, f"{written} audit events for {total} audited page requests"
    results["conferences"] = len(chosen)
    results["agreements_shown"] = dict(sorted(Counter(number for _pk, number in chosen).items()))
    results["query_counts"] = query_counts(client, chosen)
    five = max(chosen, key=lambda row: row[1])[0]
    results["profile"] = profile(client, label, reverse("conference_detail", args=[five]))
    results["profile_plain"] = profile(
        client, label + " (plain)", reverse("plain_conference", args=[five])
    )
    return results


def busiest_invitee(busy: Agency) -> User:
    """The case-role member of the busy Jobcenter with the most open invitations."""
    today = timezone.localdate()
    top = (
        Invitation.objects.filter(
            agency=busy,
            access_ended_at__isnull=True,
            access_until__gte=today,
            conference__state=Conference.State.PLANNED,
        )
        .values("user_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    assert top is not None, "nobody of the busy Jobcenter is invited"
    return User.objects.get(pk=top["user_id"])


def invited_to(user: User) -> Q:
    """The conferences USER may open as an invitee (the rule's columns, for picking)."""
    return Q(
        invitations__user=user,
        invitations__access_ended_at__isnull=True,
        invitations__access_until__gte=timezone.localdate(),
        family__restricted_at__isnull=True,
    )


# 4. Report

CODE_MEASURED = [
    "conferences/report.py",
    "conferences/disclosure.py",
    "conferences/views.py",
    "conferences/access.py",
    "conferences/forms.py",
    "conferences/models.py",
    "conferences/actions/agreements.py",
    "conferences/actions/convening.py",
    "conferences/templates/conferences/structure_report.html",
    "conferences/templates/conferences/conference_detail.html",
    "dienstweg/access.py",
    "audit/trail.py",
]


def code_fingerprint() -> dict[str, str]:
    return step2.code_fingerprint(CODE_MEASURED)


def git_state() -> dict[str, Any]:
    """The commit measured, and which of the measured files differed from it."""

    def git(*args: str) -> str:
        done = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=BENCH.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_measured": git("status", "--porcelain", "--", *CODE_MEASURED).splitlines(),
    }


def conditions() -> dict:
    result = step2.conditions()
    result["code"] = code_fingerprint()
    result["git"] = git_state()
    with connection.cursor() as cursor:
        for name in (
            "synchronous_commit",
            "work_mem",
            "random_page_cost",
            "effective_cache_size",
            "jit",
            "max_parallel_workers_per_gather",
        ):
            cursor.execute(f"SHOW {name}")
            result[name] = cursor.fetchone()[0]
        sizes = {}
        for model in (Referral, ApplicationTag, TagStatusChange, Conference, Agreement, Invitation):
            table = model._meta.db_table
            cursor.execute("SELECT pg_total_relation_size(%s), pg_relation_size(%s)", [table] * 2)
            total, heap = cursor.fetchone()
            sizes[table] = {"total_mb": round(total / 2**20), "heap_mb": round(heap / 2**20)}
        result["table_sizes"] = sizes
    today = timezone.localdate()
    result["dataset"].update(
        {
            "referrals": Referral.objects.count(),
            "referrals_sent": Referral.objects.filter(sent_at__isnull=False).count(),
            "memberships": Membership.objects.count(),
            **tag_facts(),
            "conferences": Conference.objects.count(),
            "conference_states": dict(
                Conference.objects.order_by().values_list("state").annotate(n=Count("id"))
            ),
            "conferences_ahead": Conference.objects.filter(starts_at__gte=timezone.now()).count(),
            "invitations": Invitation.objects.count(),
            "invitations_open": Invitation.objects.filter(
                access_ended_at__isnull=True, access_until__gte=today
            ).count(),
            "conference_permissions": ConferenceUserPermission.objects.count(),
            "agreements": Agreement.objects.count(),
            "agreement_states": dict(
                Agreement.objects.order_by().values_list("state").annotate(n=Count("id"))
            ),
            "agreements_of_the_family": Agreement.objects.filter(agency__isnull=True).count(),
            "agreements_with_receipt": Agreement.objects.exclude(receipt="").count(),
            "gap_reasons": dict(
                Agreement.objects.exclude(gap_reason="")
                .order_by()
                .values_list("gap_reason")
                .annotate(n=Count("id"))
            ),
            "agreements_per_conference_max": Conference.objects.annotate(n=Count("agreements"))
            .order_by("-n")
            .values_list("n", flat=True)
            .first(),
        }
    )
    return result


@dataclass
class Row:
    figure: str
    n: int
    p50: float
    p95: float
    p99: float
    queries: int | str
    sql_ms: float
    target: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return self.p95 <= self.target


def summary(reports: dict, pages: dict[str, dict]) -> list[Row]:
    rows = []
    for key, label in (
        ()
        if not reports
        else (
            ("steering_6_months", "report, steering (network), 6 months"),
            ("steering_1_year", "report, steering (network), 1 year"),
            ("lead_6_months", "report, lead of the busy Jobcenter, 6 months"),
            ("lead_1_year", "report, lead of the busy Jobcenter, 1 year"),
        )
    ):
        figures = reports[key]
        rows.append(
            Row(
                label,
                figures["n"],
                figures["p50"],
                figures["p95"],
                figures["p99"],
                figures["profile"]["queries"],
                figures["profile"]["sql_ms"],
                TARGET_REPORT_P95_MS,
                {"disclosure_ms": figures["disclosure_ms"]},
            )
        )
    if reports:
        csv_figures = reports["csv_steering_1_year"]
        rows.append(
            Row(
                "CSV export, steering, 1 year",
                csv_figures["n"],
                csv_figures["p50"],
                csv_figures["p95"],
                csv_figures["p99"],
                "-",
                0.0,
                TARGET_REPORT_P95_MS,
            )
        )
    for label, figures in pages.items():
        counts = figures["query_counts"]
        queries = f"{counts['empty']['queries']} vs {counts['most']['queries']}"
        for variant, suffix in (("real", ""), ("real_without_audit", ", no audit"), ("plain", "")):
            numbers = figures[variant]
            rows.append(
                Row(
                    label + suffix + (" (plain twin)" if variant == "plain" else ""),
                    numbers["n"],
                    numbers["p50"],
                    numbers["p95"],
                    numbers["p99"],
                    queries if variant == "real" else "-",
                    figures["profile_plain" if variant == "plain" else "profile"]["sql_ms"],
                    TARGET_PAGE_P95_MS,
                    {"ratio_p50": figures["ratio_p50"], "ratio_p95": figures["ratio_p95"]}
                    if variant == "real"
                    else {},
                )
            )
    return rows


def print_table(rows: list[Row]) -> None:
    width = max(len(row.figure) for row in rows)
    print(
        f"\n{'ms':<{width}}  {'n':>4} {'p50':>8} {'p95':>8} {'p99':>8}  {'queries':>11}"
        f" {'SQL':>7}  {'target':>6}  met"
    )
    for row in rows:
        print(
            f"{row.figure:<{width}}  {row.n:>4} {row.p50:8.1f} {row.p95:8.1f} {row.p99:8.1f}"
            f"  {row.queries!s:>11} {row.sql_ms:7.1f}  {row.target:6.0f}"
            f"  {'yes' if row.met else 'NO'}"
            + "".join(f"  {key} {value}" for key, value in row.extra.items())
        )


def main() -> None:
    rng = random.Random(ARGS.seed)
    code_at_start = code_fingerprint()
    generated: dict[str, Any] = {"reused": ARGS.reuse, "kept_base": ARGS.keep_base}
    if not ARGS.reuse:
        if not ARGS.keep_base:
            with step2.phase("reset and migrate"):
                step2.reset_database()
                call_command("migrate", verbosity=0)
            with step2.phase("step 3: network, families, referrals and tags"):
                network = step3.create_network(rng, ARGS.users)
                generated.update(step3.generate(rng, network))
        else:
            call_command("migrate", verbosity=0)
            clear_conferences()
        with step2.phase("conferences, invitations and agreements"):
            generated.update(generate_conferences(rng))
            add_steering_member()
        with step2.phase("vacuum analyze"):
            step2.vacuum_analyze()
    settings.ROOT_URLCONF = URLCONF.__name__
    clear_url_caches()
    steering = User.objects.get(email=STEERING)
    lead = User.objects.get(email=step3.BENCH_LEAD)
    coach = User.objects.get(email=step3.BENCH_COACH)
    busy = Agency.objects.get(memberships__user=lead)
    invitee = busiest_invitee(busy)
    print(
        f"\nsteering {steering.email}; lead {lead.email} of {busy.name}; coach {coach.email}; "
        f"invitee {invitee.email}"
    )
    step2.CALIBRATION["before_requests"] = step2.calibration_ms()
    reports: dict[str, Any] = {}
    pages: dict[str, dict] = {}
    if ARGS.only != "pages":
        with step2.phase("report requests"):
            reports = report_benchmarks(steering, lead)
    if ARGS.only != "report":
        with step2.phase("conference page requests"):
            chosen = pick_conferences(rng, Q(convened_by=coach), ARGS.page_conferences)
            pages["conference page, convening coach"] = page_benchmarks(
                "conference page, convening coach", coach, chosen
            )
            chosen = pick_conferences(rng, invited_to(invitee), ARGS.page_conferences)
            pages["conference page, invitee"] = page_benchmarks(
                "conference page, invitee", invitee, chosen
            )
    step2.CALIBRATION["after_requests"] = step2.calibration_ms()
    changed = sorted(
        name for name, digest in code_fingerprint().items() if code_at_start.get(name) != digest
    )
    if changed:
        print(f"\nWARNING: measured code changed during the run: {', '.join(changed)}")
    rows = summary(reports, pages)
    print_table(rows)
    for label, figures in pages.items():
        counts = figures["query_counts"]
        empty, most = counts["empty"], counts["most"]
        print(
            f"\n{label}: {empty['queries']} queries with {empty['agreements']} agreements, "
            f"{most['queries']} with {most['agreements']} ({most['open_of_an_agency']} open and "
            f"{most['confirmed_of_an_agency']} confirmed of an agency, {most['previous_open']} "
            "open of the conference before); by number of agreements: "
            + ", ".join(
                f"{number}: {value['min']}-{value['max']}"
                for number, value in counts["by_agreements"].items()
            )
            + ("  constant" if counts["constant"] else "  NOT constant")
        )
    result = {
        "summary": [{**vars(row), "met": row.met} for row in rows],
        "targets": {"report_p95_ms": TARGET_REPORT_P95_MS, "page_p95_ms": TARGET_PAGE_P95_MS},
        "conditions": conditions(),
        "generated": generated,
        "arguments": {key: str(value) for key, value in vars(ARGS).items()},
        "code_changed_during_run": changed,
        "phases_s": step2.PHASES,
        "load_average_after_phase": step2.LOAD,
        "users": {
            "steering": steering.email,
            "lead": lead.email,
            "coach": coach.email,
            "invitee": invitee.email,
        },
        "report_ms": reports,
        "pages_ms": pages,
    }
    ARGS.output.parent.mkdir(parents=True, exist_ok=True)
    ARGS.output.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"\nwritten to {ARGS.output}")


if __name__ == "__main__":
    main()
