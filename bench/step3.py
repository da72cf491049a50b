"""Step 3 benchmark: referral inbox, referral detail and the tag list at 500k referrals.

    DIENSTWEG_DEBUG=true DATABASE_URL=postgres://root@127.0.0.1:5432/dienstweg_bench3 \
        .venv/bin/python bench/step3.py [--families 100000 --referrals 500000 --tags 100000]

1. Drops and creates the database named in DATABASE_URL (its name must contain "bench"),
   migrates it and generates 50 agencies (20 projects, 30 authorities), USERS staff with
   memberships, FAMILIES families (as step 2 builds them: real vault, encrypted fields, one
   consent each, here covering every agency the family is referred to or has an
   application tagged at), REFERRALS referrals (10 % of them to one busy Jobcenter) with
   encrypted need, summary, notes and snapshot, their timeline, their django-guardian
   permission rows, and TAGS application tags with their status changes. Families go in
   with bulk_create, everything of the referrals and tags with COPY.
2. Times, through django.test.Client in-process, the inbox of the busy Jobcenter (page 1,
   filtered by state, a deep page) and referral detail pages as one of its leads, and the
   tag list as a coach of the biggest project; each against a plain page of the same rows
   rendered by the same template without permission checks, interleaved in the same run.
3. Prints a table and writes bench/results/step3.json (figures, queries of one request of
   each page with the plan of the slowest, conditions).

--reuse skips step 1 and measures the database as it is. Measurements run with DEBUG off,
as in production; DIENSTWEG_DEBUG=true only supplies the generated development secrets
(pass --debug to keep DEBUG on). Helpers shared with step 2 are imported from step2.py.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import statistics
import sys
import time
import types
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlencode

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "step3.json"

# Targets of the issue.
TARGET_P95_MS = 25.0
TARGET_RATIO = 1.5

PROJECTS = 20
MAIN_SHARE = 0.08  # the measured coach's project is the biggest: ~8,000 of 100,000 families
BUSY_SHARE = 0.10  # the busy Jobcenter receives 10 % of all referrals
PROJECT_SHARE = 0.06  # referrals from one project to another
CITIES = ["Gladbeck", "Bottrop", "Dorsten", "Marl", "Herten", "Recklinghausen"]
KINDS = [  # 6 cities x 5 kinds = 30 authorities; the first one is the busy Jobcenter
    ("jobcenter", "sgb_ii", "Jobcenter {city}"),
    ("jugendamt", "sgb_viii", "Stadt {city}, Amt für Jugend und Familie"),
    ("sozialamt", "sgb_xii", "Stadt {city}, Sozialamt"),
    ("familienkasse", "other", "Familienkasse {city}"),
    ("but_office", "sgb_ii", "Stadt {city}, BuT-Stelle"),
]
BENCH_LEAD = "lead.a0.0@bench.example.org"  # a lead of the busy Jobcenter
BENCH_COACH = "coach.0.0@bench.example.org"  # a coach of the biggest project

NEEDS = [
    "Arbeitsvermittlung",
    "Kita-Platz",
    "Schuldnerberatung",
    "Sprachkurs B1/B2",
    "Wohnungssuche",
    "Leistungen für Bildung und Teilhabe",
    "Erziehungsberatung",
    "Kinderzuschlag prüfen",
    "Wohngeldantrag",
    "Anerkennung des Berufsabschlusses",
]
SUMMARIES = [
    "Familie seit einem Jahr im Coaching. Mutter möchte in Teilzeit arbeiten, sobald die "
    "Betreuung der jüngsten Tochter gesichert ist. Unterlagen liegen vollständig vor.",
    "Vater hat eine Ausbildung als Elektriker im Herkunftsland; Anerkennung ist beantragt. "
    "Bitte um Termin für eine Beratung zu Umschulung oder Anpassungsqualifizierung.",
    "Mietrückstand von drei Monaten, Räumungsklage angekündigt. Termin bei der "
    "Schuldnerberatung ist vereinbart; die Familie bittet um schnelle Rückmeldung.",
    "",
]
CATEGORY_NOTES = {
    "identity": "Erreichbar vormittags; Dolmetscherin für Türkisch erwünscht.",
    "household": "Fünf Personen, Einkommen aus Minijob und Kindergeld.",
    "employment": "Zuletzt Lagerhelfer, seit acht Monaten arbeitssuchend.",
    "children": "Zwei Kinder in der Grundschule, eines ohne Kita-Platz.",
    "housing": "Dreizimmerwohnung, Mietvertrag läuft, Nebenkostennachzahlung offen.",
    "debts": "Verbindlichkeiten gegenüber Energieversorger und Vermieter.",
}
SHAREABLE = list(CATEGORY_NOTES)
BASIS_REASONS = [
    "Gewichtige Anhaltspunkte: Kind wiederholt unversorgt, Eltern nicht erreichbar.",
    "Übermittlung zur Erfüllung der gesetzlichen Aufgabe nach § 69 Abs. 1 Nr. 1 SGB X.",
]
DECLINE_REASONS = ["Nicht zuständig: Wohnort außerhalb des Kreises.", "Bedarf bereits gedeckt."]
OUTCOMES = [
    "Vermittlung in Teilzeitstelle gelungen.",
    "Beratung begonnen, Termine vereinbart.",
    "Leistung bewilligt.",
]
CONSENT_STATES = {
    "draft": 0.04,
    "sent": 0.16,
    "accepted": 0.20,
    "declined": 0.10,
    "completed": 0.42,
    "withdrawn": 0.08,
}
LEGAL_STATES = {
    "pending_approval": 0.08,
    "refused": 0.07,
    "sent": 0.15,
    "accepted": 0.20,
    "declined": 0.10,
    "completed": 0.35,
    "withdrawn": 0.05,
}
TAG_KIND_OFFICE = {  # kind of application: kind of agency that processes it
    "but": "but_office",
    "kita": "jugendamt",
    "wohngeld": "sozialamt",
    "kinderzuschlag": "familienkasse",
    "buergergeld": "jobcenter",
    "other": None,  # any public agency
}
TAG_STATES = {"submitted": 0.20, "received": 0.25, "documents_requested": 0.10, "decided": 0.45}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--families", type=int, default=100_000)
    parser.add_argument("--referrals", type=int, default=500_000)
    parser.add_argument("--tags", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per figure")
    parser.add_argument("--warmup", type=int, default=30, help="untimed requests before each")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="skip reset and generation")
    parser.add_argument("--debug", action="store_true", help="keep DEBUG on while measuring")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


ARGS = parse_args()

# step2 reads its own command line when imported (and sets Django up, and turns DEBUG
# off unless --debug): hand it only what it understands.
sys.path.insert(0, str(BENCH))
_argv, sys.argv = sys.argv, [str(BENCH / "step2.py"), *(["--debug"] if ARGS.debug else [])]
try:
    import step2
finally:
    sys.argv = _argv

from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.auth.models import Permission  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, models, transaction  # noqa: E402
from django.db.models import Count, Q  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import clear_url_caches, include, path, reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from applications import actions as application_actions  # noqa: E402
from applications import views as application_views  # noqa: E402
from applications.access import TAG_CATEGORY  # noqa: E402
from applications.models import ApplicationTag, TagStatusChange  # noqa: E402
from audit.models import AuditEvent  # noqa: E402
from dienstweg import actions as family_actions  # noqa: E402
from dienstweg.models import (  # noqa: E402
    Agency,
    Consent,
    DataKey,
    Family,
    HouseholdMember,
    Membership,
    User,
)
from dienstweg.paging import NumberedPage  # noqa: E402
from referrals import views  # noqa: E402
from referrals.access import inbox_of, referrals_visible_to, side_of  # noqa: E402
from referrals.actions import transitions as referral_transitions  # noqa: E402
from referrals.forms import AssignManyForm  # noqa: E402
from referrals.models import (  # noqa: E402
    Referral,
    ReferralEvent,
    ReferralGroupPermission,
    ReferralUserPermission,
)

DAY = step2.DAY
State = Referral.State


# 1. Data


def create_network(rng: random.Random, users_total: int) -> dict[str, Any]:
    """50 agencies through the real action; staff in bulk (one password hash for all),
    memberships through the real action (which also puts them into the agency's group)."""
    projects = [
        family_actions.create_agency(
            name=f"Familiencoaching Projekt {number + 1:02d}",
            kind=Agency.Kind.PROJECT,
            rechtskreis=Agency.Rechtskreis.OTHER,
        )
        for number in range(PROJECTS)
    ]
    authorities = [
        family_actions.create_agency(
            name=template.format(city=city), kind=kind, rechtskreis=rechtskreis
        )
        for city in CITIES
        for kind, rechtskreis, template in KINDS
    ]
    busy = authorities[0]
    people: list[tuple[str, str, Agency, str]] = []
    for number, project in enumerate(projects):
        coaches, leads, caseworkers = (20, 3, 2) if number == 0 else (10, 2, 1)
        people += [(f"coach.{number}.{i}", "Coach", project, "coach") for i in range(coaches)]
        people += [(f"lead.p{number}.{i}", "Leitung", project, "lead") for i in range(leads)]
        people += [
            (f"case.p{number}.{i}", "Fallbearbeitung", project, "caseworker")
            for i in range(caseworkers)
        ]
    for number, authority in enumerate(authorities):
        leads = 5 if authority == busy else 2
        people += [(f"lead.a{number}.{i}", "Leitung", authority, "lead") for i in range(leads)]
    for number, authority in enumerate(authorities[: len(KINDS)]):
        people.append((f"dpo.{number}", "Datenschutz", authority, "dpo"))
    # The rest are caseworkers of the authorities; the busy Jobcenter has about 7 % of them.
    remaining = max(users_total - len(people), len(authorities))
    busy_caseworkers = max(1, round(remaining * 0.072))
    others = authorities[1:]
    for index in range(remaining):
        if index < busy_caseworkers:
            number, authority = 0, busy
        else:
            number = 1 + (index - busy_caseworkers) % len(others)
            authority = authorities[number]
        people.append((f"case.a{number}.{index}", "Fallbearbeitung", authority, "caseworker"))
    password = make_password("bench-" + uuid.uuid4().hex)
    users = User.objects.bulk_create(
        User(
            email=f"{login}@bench.example.org",
            full_name=f"{title} {rng.choice(step2.LAST)}",
            password=password,
        )
        for login, title, _agency, _role in people
    )
    coaches: dict[int, list[int]] = {project.pk: [] for project in projects}
    referrers: dict[int, list[int]] = {project.pk: [] for project in projects}
    leads_of: dict[int, list[int]] = {}
    assignees: dict[int, list[int]] = {}
    for user, (_login, _title, agency, role) in zip(users, people, strict=True):
        family_actions.add_membership(user, agency=agency, role=role, by=None)
        if role == "coach":
            coaches[agency.pk].append(user.pk)
        if role in ("coach", "lead") and agency.pk in referrers:
            referrers[agency.pk].append(user.pk)
        if role == "lead":
            leads_of.setdefault(agency.pk, []).append(user.pk)
        if role in ("caseworker", "lead"):
            assignees.setdefault(agency.pk, []).append(user.pk)
    print(f"{len(projects)} projects, {len(authorities)} authorities, {len(users)} staff")
    return {
        "projects": projects,
        "authorities": authorities,
        "busy": busy,
        "coaches": coaches,
        "referrers": referrers,
        "leads": leads_of,
        "assignees": assignees,
        "by_kind": {
            kind: [agency for agency in authorities if agency.kind == kind] for kind, *_ in KINDS
        },
        "other_authorities": authorities[1:],
        "authority_weights": [rng.uniform(0.4, 1.6) for _agency in authorities[1:]],
    }


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """COPY rows into TABLE (inside the caller's transaction)."""
    count = 0
    with connection.cursor() as cursor:
        raw: Any = cursor.cursor
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
    return count


def copy_objects(model: type[models.Model], objects: Sequence[models.Model]) -> int:
    """COPY unsaved model instances with all their concrete fields (ids preset), but the
    columns the database computes itself (GeneratedField, e.g. Referral.category_mask)."""
    fields = [field for field in model._meta.concrete_fields if not field.generated]
    as_json = [isinstance(field, models.JSONField) for field in fields]
    names = [field.attname for field in fields]

    def rows() -> Iterable[tuple]:
        for obj in objects:
            yield tuple(
                json.dumps(getattr(obj, name)) if is_json else getattr(obj, name)
                for name, is_json in zip(names, as_json, strict=True)
            )

    return copy_rows(model._meta.db_table, [field.column for field in fields], rows())


def local_date(moment: float) -> date:
    return timezone.localtime(datetime.fromtimestamp(moment, tz=UTC)).date()


def end_of(day: date) -> float:
    return datetime.combine(day, clock(23, 59), tzinfo=timezone.get_current_timezone()).timestamp()


class Generator:
    """Builds one family's referrals and tags, unsaved, encrypted with the family's key."""

    def __init__(self, rng: random.Random, network: dict[str, Any], now: float) -> None:
        self.rng = rng
        self.net = network
        self.now = now
        self.today = timezone.localdate()
        self.view = Permission.objects.get(
            content_type__app_label="referrals", codename="view_referral"
        ).pk
        self.change = Permission.objects.get(
            content_type__app_label="referrals", codename="change_referral"
        ).pk
        self.group_of = {
            agency.pk: agency.group_id for agency in network["projects"] + network["authorities"]
        }
        self.kind_of = {
            agency.pk: agency.kind for agency in network["projects"] + network["authorities"]
        }
        self.referrals: list[Referral] = []
        self.consent_links: list[tuple] = []
        self.group_perms: list[tuple] = []
        self.user_perms: list[tuple] = []
        self.events: list[tuple] = []
        self.tags: list[ApplicationTag] = []
        self.changes: list[TagStatusChange] = []
        self.totals: dict[str, int] = {}

    def at(self, moment: float) -> datetime:
        return datetime.fromtimestamp(min(moment, self.now - 60), tz=UTC)

    def receiver(self, owner: int) -> int:
        rng, net = self.rng, self.net
        draw = rng.random()
        if draw < BUSY_SHARE:
            return net["busy"].pk
        if draw < BUSY_SHARE + PROJECT_SHARE:
            return rng.choice([p.pk for p in net["projects"] if p.pk != owner])
        return rng.choices(net["other_authorities"], weights=net["authority_weights"])[0].pk

    def plan(self, owner: int, count: int) -> list[tuple[int, str]]:
        """(receiving agency, basis) of the family's referrals."""
        planned = []
        for _index in range(count):
            to = self.receiver(owner)
            basis = Referral.Basis.CONSENT
            if self.kind_of[to] != "project" and self.rng.random() < 0.03:
                jugendamt = self.kind_of[to] == "jugendamt" and self.rng.random() < 0.5
                basis = Referral.Basis.CHILD_PROTECTION if jugendamt else Referral.Basis.STATUTORY
            planned.append((to, basis))
        return planned

    def tag_plan(self, count: int) -> list[tuple[str, int]]:
        """(kind, processing agency) of the family's tags."""
        planned = []
        for _index in range(count):
            kind = self.rng.choice(list(TAG_KIND_OFFICE))
            office_kind = TAG_KIND_OFFICE[kind]
            offices = self.net["by_kind"][office_kind] if office_kind else self.net["authorities"]
            planned.append((kind, self.rng.choice(offices).pk))
        return planned

    def family(
        self,
        family: Family,
        members: list[HouseholdMember],
        consent: Consent,
        referrals: list[tuple[int, str]],
        tags: list[tuple[str, int]],
    ) -> None:
        identity = None
        categories_needed = {
            "identity",
            *(TAG_CATEGORY[ApplicationTag.Kind(kind)] for kind, _office in tags),
        }
        for to, basis in referrals:
            identity = identity or self.identity(family, members)
            self.referral(family, consent, to, basis, identity, categories_needed)
        for kind, office in tags:
            self.tag(family, kind, office)
        consent.categories = sorted(set(consent.categories) | categories_needed)

    def identity(self, family: Family, members: list[HouseholdMember]) -> dict[str, Any]:
        return {
            "members": [
                {
                    "kind": member.kind,
                    "name": member.display_name,
                    "birth_date": member.birth_date.isoformat(),
                }
                for member in members
            ],
            "address": family.decrypt_field("address"),
            "phone": family.decrypt_field("phone"),
        }

    def referral(
        self,
        family: Family,
        consent: Consent,
        to: int,
        basis: str,
        identity: dict[str, Any],
        categories_needed: set[str],
    ) -> None:
        rng, net, now = self.rng, self.net, self.now
        owner = family.owner_id
        legal = basis != Referral.Basis.CONSENT
        revoked = consent.revoked_at.timestamp() if consent.revoked_at else math.inf
        end = now if legal else min(now, revoked, end_of(consent.valid_until))
        low, high = consent.recorded_at.timestamp() + 600, end - 6 * 3600
        weights = LEGAL_STATES if legal else CONSENT_STATES
        state = rng.choices(list(weights), weights=list(weights.values()))[0]
        if high <= low:
            state, high = State.DRAFT, low + 60
        if state == State.SENT:
            created = rng.uniform(max(low, high - 60 * DAY), high)
        else:
            created = rng.uniform(low, high)
        creator = rng.choice(net["referrers"][owner])
        categories = sorted(
            {"identity", *rng.sample(SHAREABLE, rng.randint(1, 3))}
            if rng.random() < 0.85
            else set(rng.sample(SHAREABLE, rng.randint(1, 3)))
        )
        categories_needed.update(categories)
        referral = Referral(
            id=uuid.uuid4(),
            family=family,
            from_agency_id=owner,
            to_agency_id=to,
            created_by_id=creator,
            state=state,
            basis=basis,
            categories=categories,
            created_at=self.at(created),
        )
        notes = {c: CATEGORY_NOTES[c] for c in categories if c != "identity" or rng.random() < 0.3}
        referral.encrypt_field("need", rng.choice(NEEDS))
        referral.encrypt_field("summary", rng.choice(SUMMARIES))
        referral.encrypt_field("category_notes", json.dumps(notes, ensure_ascii=False))
        referral.encrypt_field("basis_reason", BASIS_REASONS[basis == "statutory"] if legal else "")
        events = [("drafted", State.DRAFT, creator, created)]
        last = created
        withdrawn_unsent = state == State.WITHDRAWN and rng.random() < 0.3
        sent = None
        if legal and state != State.DRAFT and not withdrawn_unsent:
            submitted = created + rng.uniform(60, 3600)
            events.append(("submitted", State.PENDING_APPROVAL, creator, submitted))
            last = submitted
            approver = rng.choice([u for u in net["leads"][owner] if u != creator])
            if state == State.REFUSED:
                last = submitted + rng.uniform(600, DAY)
                events.append(("refused", State.REFUSED, approver, last))
                referral.approved_by_id = None
                referral.encrypt_field("decision_note", "Keine ausreichende Begründung.")
            elif state != State.PENDING_APPROVAL:
                sent = last = submitted + rng.uniform(600, 3600)
                referral.approved_by_id = approver
                events.append(("approved", State.SENT, approver, sent))
        elif state != State.DRAFT and not withdrawn_unsent:
            sent = last = created + rng.uniform(120, 4 * 3600)
            events.append(("sent", State.SENT, creator, sent))
        receiver_access = sent is not None and state != State.WITHDRAWN
        if sent is not None:
            referral.sent_at = self.at(sent)
            referral.dpo_review = legal
            snapshot: dict[str, Any] = {"notes": notes}
            if "identity" in categories:
                snapshot["identity"] = identity
            referral.encrypt_field("snapshot", json.dumps(snapshot, ensure_ascii=False))
            if not legal:
                referral.access_until = consent.valid_until
                self.consent_links.append((referral.id, consent.id))
            assigned = rng.random() < 0.5 if state == State.SENT else state != State.WITHDRAWN
            if assigned:
                referral.assignee_id = rng.choice(net["assignees"][to])
                last = sent + rng.uniform(600, DAY)
                events.append(("assigned", State.SENT, rng.choice(net["leads"][to]), last))
            if state in (State.ACCEPTED, State.DECLINED, State.COMPLETED):
                last = last + rng.uniform(3600, 4 * DAY)
                referral.answered_at = self.at(last)
                if state == State.DECLINED:
                    events.append(("declined", State.DECLINED, referral.assignee_id, last))
                    referral.encrypt_field("decision_note", rng.choice(DECLINE_REASONS))
                else:
                    events.append(("accepted", State.ACCEPTED, referral.assignee_id, last))
            if state == State.COMPLETED:
                last = last + rng.uniform(3 * DAY, 90 * DAY)
                referral.closed_at = self.at(last)
                referral.encrypt_field("outcome", rng.choice(OUTCOMES))
                events.append(("completed", State.COMPLETED, referral.assignee_id, last))
            if state == State.SENT and now - sent > 6 * DAY:
                referral.escalated_at = self.at(sent + 6 * DAY)
        if state == State.WITHDRAWN:
            last = last + rng.uniform(3600, 3 * DAY)
            referral.closed_at = self.at(last)
            events.append(("withdrawn", State.WITHDRAWN, creator, last))
        if receiver_access and not legal:
            # What withdraw_access_after_revocation and end_expired_access would have done.
            ended = None
            if consent.revoked_at is not None:
                ended = revoked
            elif consent.valid_until < self.today:
                ended = end_of(consent.valid_until) + 4 * 3600
            if ended is not None:
                referral.access_ended_at = self.at(ended)
                receiver_access = False
                last = max(last, ended)
                events.append(("access_ended", state, None, ended))
        referral.updated_at = self.at(last)
        self.group_perms.append((self.view, self.group_of[owner], referral.id))
        if receiver_access:
            self.group_perms.append((self.view, self.group_of[to], referral.id))
            if referral.assignee_id is not None:
                self.user_perms.append((self.change, referral.assignee_id, referral.id))
        self.events += [
            (referral.id, verb, event_state, by, self.at(moment))
            for verb, event_state, by, moment in events
        ]
        self.referrals.append(referral)

    def tag(self, family: Family, kind: str, office: int) -> None:
        rng, now = self.rng, self.now
        owner = family.owner_id
        submitted = rng.uniform(family.registered_at.timestamp(), now - 3600)
        submitted_on = local_date(submitted)
        state = rng.choices(list(TAG_STATES), weights=list(TAG_STATES.values()))[0]
        coach = rng.choice(self.net["referrers"][owner])
        clerk = rng.choice(self.net["assignees"][office])
        decided_on = None
        if state == "decided":
            decided_on = submitted_on + timedelta(days=rng.randint(5, 120))
            if decided_on > self.today:
                state, decided_on = "received", None
        tag = ApplicationTag(
            id=uuid.uuid4(),
            code=application_actions.new_tag_code(),
            family=family,
            project_id=owner,
            processing_agency_id=office,
            kind=kind,
            submitted_on=submitted_on,
            coach_id=coach,
            state=state,
            priority=application_actions.TAG_PRIORITY[state],
            decided_on=decided_on,
            days_to_decision=(decided_on - submitted_on).days if decided_on else None,
            created_at=self.at(submitted),
        )
        file_number = f"{rng.randint(100, 999)}.{rng.randint(10000, 99999)}/{submitted_on.year}"
        tag.encrypt_field("file_number", file_number if rng.random() < 0.7 else "")
        steps = [("submitted", coach, submitted, None, "")]
        last = submitted
        if state != "submitted":
            last += rng.uniform(DAY, 10 * DAY)
            steps.append(("received", clerk, last, None, ""))
        if state == "documents_requested":
            last += rng.uniform(DAY, 20 * DAY)
            missing = "Kontoauszüge der letzten drei Monate, Mietbescheinigung"
            steps.append(("documents_requested", clerk, last, None, missing))
            tag.encrypt_field("missing_documents", missing)
        if decided_on is not None:
            last = max(last, end_of(decided_on) - 8 * 3600)
            steps.append(("decided", clerk, last, decided_on, ""))
        tag.updated_at = self.at(last)
        for step_state, by, moment, decided, note in steps:
            change = TagStatusChange(
                id=uuid.uuid4(),
                tag=tag,
                state=step_state,
                by_id=by,
                at=self.at(moment),
                decided_on=decided,
            )
            change.encrypt_field("note", note)
            self.changes.append(change)
        self.tags.append(tag)

    def flush(self) -> None:
        """COPY what has been built (inside the caller's transaction) and start afresh."""
        through = Referral.consents.through._meta.db_table
        for name, count in (
            ("referrals", copy_objects(Referral, self.referrals)),
            (
                "referral_consents",
                copy_rows(through, ("referral_id", "consent_id"), self.consent_links),
            ),
            (
                "group_permissions",
                copy_rows(
                    ReferralGroupPermission._meta.db_table,
                    ("permission_id", "group_id", "content_object_id"),
                    self.group_perms,
                ),
            ),
            (
                "user_permissions",
                copy_rows(
                    ReferralUserPermission._meta.db_table,
                    ("permission_id", "user_id", "content_object_id"),
                    self.user_perms,
                ),
            ),
            (
                "referral_events",
                copy_rows(
                    ReferralEvent._meta.db_table,
                    ("referral_id", "verb", "state", "by_id", "at"),
                    self.events,
                ),
            ),
            ("tags", copy_objects(ApplicationTag, self.tags)),
            ("tag_changes", copy_objects(TagStatusChange, self.changes)),
        ):
            self.totals[name] = self.totals.get(name, 0) + count
        self.referrals, self.consent_links, self.group_perms, self.user_perms = [], [], [], []
        self.events, self.tags, self.changes = [], [], []


def spread(rng: random.Random, total: int, slots: int) -> list[int]:
    """TOTAL items over SLOTS at random (about TOTAL/SLOTS each)."""
    counts = [0] * slots
    for slot in rng.choices(range(slots), k=total):
        counts[slot] += 1
    return counts


def generate(rng: random.Random, network: dict[str, Any]) -> dict[str, int]:
    """Families (as step 2 builds them), each with its referrals and tags, in batches."""
    count = ARGS.families
    projects: list[Agency] = network["projects"]
    main = round(count * MAIN_SHARE)
    weights = [rng.uniform(0.4, 1.6) for _project in projects[1:]]
    owners = [projects[0].pk] * main + rng.choices(
        [project.pk for project in projects[1:]], weights=weights, k=count - main
    )
    rng.shuffle(owners)
    now = time.time()
    start = now - 3 * 365 * DAY
    registered = sorted(rng.uniform(start, now - 3600) for _index in range(count))
    referral_counts = spread(rng, ARGS.referrals, count)
    tag_counts = spread(rng, ARGS.tags, count)
    generator = Generator(rng, network, now)
    numbers: dict[int, int] = {}
    batch = 1_000
    started = time.perf_counter()
    for offset in range(0, count, batch):
        built = []
        with step2.keys_unsaved():
            for index in range(offset, min(offset + batch, count)):
                year = local_date(registered[index]).year
                numbers[year] = numbers.get(year, 0) + 1
                reference = f"F-{year}-{numbers[year]:04d}"
                family, members, consent, recipients, _info = step2.build_family(
                    rng, network, owners[index], registered[index], reference, now
                )
                planned = generator.plan(family.owner_id, referral_counts[index])
                tags = generator.tag_plan(tag_counts[index])
                # One consent per family, covering every agency it is referred to (on
                # consent) or has an application processed at, for both purposes.
                consent.purposes = sorted({*consent.purposes, "referral", "application_support"})
                consent.valid_until = consent.valid_from + timedelta(days=rng.choice((730, 1095)))
                agencies = {row.agency_id for row in recipients}
                agencies |= {to for to, basis in planned if basis == Referral.Basis.CONSENT}
                agencies |= {office for _kind, office in tags}
                consent.recipient_ids = sorted(agencies)  # sealed with the row (0010)
                recipients = [
                    Consent.recipients.through(consent_id=consent.id, agency_id=agency)
                    for agency in sorted(agencies)
                ]
                generator.family(family, members, consent, planned, tags)
                built.append((family, members, consent, recipients))
        with transaction.atomic():
            DataKey.objects.bulk_create(family.data_key for family, *_rest in built)
            Family.objects.bulk_create(family for family, *_rest in built)
            HouseholdMember.objects.bulk_create(m for _f, members, *_r in built for m in members)
            Consent.objects.bulk_create(consent for _f, _m, consent, _r in built)
            Consent.recipients.through.objects.bulk_create(
                row for *_first, rows in built for row in rows
            )
            generator.flush()
        done = min(offset + batch, count)
        if done % 10_000 == 0 or done == count:
            elapsed = time.perf_counter() - started
            print(
                f"  families {done:>7,} / {count:,}  referrals "
                f"{generator.totals['referrals']:>8,}  tags {generator.totals['tags']:>7,}  "
                f"{elapsed:6.1f} s  ({done / elapsed:,.0f} families/s)",
                flush=True,
            )
    return {"families": count, **generator.totals}


# 2. The plain pages: the same rows and the same template, no permission checks.

TARGET: dict[str, Any] = {}  # the busy agency, the biggest project, what the lead may do


def plain_inbox_rows() -> Any:
    """The rows the busy agency's inbox shows, by their columns alone: sent, neither
    withdrawn nor cut off by the end of the consent."""
    return (
        Referral.objects.filter(to_agency_id=TARGET["busy"], sent_at__isnull=False)
        .exclude(state=State.WITHDRAWN)
        .filter(access_ended_at__isnull=True)
        .filter(Q(access_until__isnull=True) | Q(access_until__gte=timezone.localdate()))
    )


def plain_inbox(request: HttpRequest) -> HttpResponse:
    # The real inbox's own list code (filters, columns, page, overdue flag, template), with
    # the form a lead assigns ticked rows by (step 9), its staff those of the agency by id.
    form = AssignManyForm(agency_ids=[TARGET["busy"]])
    return views._list(request, plain_inbox_rows(), inbox=True, extra={"assign_form": form})


def plain_detail(request: HttpRequest, referral_id: str) -> HttpResponse:
    """referral_detail without the access check, the audit record and the rules (what the
    user may do was worked out before the run, so that the page is the same)."""
    referral = Referral.objects.select_related(
        "family__data_key", "from_agency", "to_agency", "assignee", "created_by"
    ).get(pk=referral_id)
    side, may = TARGET["may"][referral.pk]
    return views.referral_page(request, referral, side=side, may=may)


def plain_page(queryset: Any, request: HttpRequest, size: int) -> NumberedPage:
    """A page the ordinary Django way: one query with OFFSET."""
    number = int(request.GET.get("page", "1"))
    rows = list(queryset[(number - 1) * size : number * size + 1])
    query = request.GET.copy()
    query.pop("page", None)
    return NumberedPage(rows[:size], number, len(rows) > size, query)


def plain_tag_list(request: HttpRequest) -> HttpResponse:
    """tag_list with the project's tags by its id instead of the user's memberships, paged
    the ordinary Django way."""
    tags = ApplicationTag.objects.filter(project_id=TARGET["project"]).order_by(
        "priority", "-submitted_on", "-id"
    )
    return application_views.tag_list_of(request, tags, plain_page)


# The plain pages are served through the same middleware as the real ones: while
# measuring, settings.ROOT_URLCONF names this URLconf (the platform's and these three).
URLCONF = types.ModuleType("bench_step3_urls")
URLCONF.urlpatterns = [  # type: ignore[attr-defined]
    path("bench/plain/eingang/", plain_inbox, name="plain_inbox"),
    path("bench/plain/vermittlungen/<uuid:referral_id>/", plain_detail, name="plain_detail"),
    path("bench/plain/antraege/", plain_tag_list, name="plain_tag_list"),
    path("", include(settings.ROOT_URLCONF)),
]
sys.modules[URLCONF.__name__] = URLCONF


# 3. Requests

REFERRAL_LINK = re.compile(r'href="/vermittlungen/([0-9a-f-]{36})/"')
TAG_LINK = re.compile(r'href="/antraege/([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})/"')
MAIN = re.compile(r"<main\b.*</main>", re.DOTALL)
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


def main_part(response: Any) -> str:
    """The page's <main>, without the (per-response) CSRF tokens."""
    found = MAIN.search(response.content.decode())
    assert found, "no <main> in the page"
    return CSRF.sub("", found.group(0))


def measure_variants(name: str, variants: dict[str, list[Callable[[], Any]]]) -> dict:
    """Each variant's requests, interleaved round by round; which variant goes first
    rotates, so that drift and warm caches fall on all alike."""
    keys = list(variants)
    rounds = len(variants[keys[0]])
    samples: dict[str, list[float]] = {key: [] for key in keys}
    for round_ in range(rounds):
        shift = round_ % len(keys)
        for key in keys[shift:] + keys[:shift]:
            elapsed = step2.timed(variants[key][round_], 200)
            if round_ >= ARGS.warmup:
                samples[key].append(elapsed)
    figures = {key: step2.percentiles(values) for key, values in samples.items()}
    real, plain = figures["real"], figures["plain"]
    figures["ratio_p50"] = round(real["p50"] / plain["p50"], 3)
    figures["ratio_p95"] = round(real["p95"] / plain["p95"], 3)
    line = "  ".join(
        f"{key} p50 {value['p50']:6.2f} p95 {value['p95']:6.2f}"
        for key, value in figures.items()
        if isinstance(value, dict)
    )
    print(f"  {name:<28} {line}  ratio p95 {figures['ratio_p95']:.2f}", flush=True)
    return figures


TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK"}


def profile(client: Client, name: str, url: str, repeat: int = 5) -> dict:
    """Every query of one request in order (timed with perf_counter: Django's own query
    log rounds to whole milliseconds), the median time in SQL over REPEAT requests after
    a warm one, and the plan of the slowest SELECT."""
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
        with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timed_query):
            response = client.get(url)
        assert response.status_code == 200, f"{url}: {response.status_code}"
        # BEGIN and COMMIT are in Django's log (with its whole milliseconds) but do not
        # pass through the execute wrapper.
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
    slowest = max(selects, key=lambda query: query["ms"]) if selects else None
    plan: list[str] = []
    if slowest is not None:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest["sql"])
            plan = [row[0] for row in cursor.fetchall()]
    # Kept whole for the EXPLAIN above (a rule's query runs past 4,000 characters), cut
    # for the results file.
    queries = [{**query, "sql": query["sql"][:4000]} for query in queries]
    total = statistics.median(totals)
    print(
        f"  {name}: {len(queries)} queries, {total:.2f} ms in SQL (median of {repeat}); "
        f"slowest SELECT {slowest['ms'] if slowest else 0:.2f} ms"
    )
    return {
        "url": url,
        "queries": len(queries),
        "sql_ms": round(total, 2),
        "all": queries,
        "slowest_select": {**slowest, "sql": slowest["sql"][:4000]} if slowest else None,
        "slowest_plan": plan,
    }


def inbox_benchmarks(lead: User) -> dict:
    client = step2.verified_client(lead)
    total = ARGS.warmup + ARGS.requests
    size = settings.REFERRAL_PAGE_SIZE
    visible = inbox_of(lead).count()
    sent = inbox_of(lead).filter(state=State.SENT).count()
    pages = -(-visible // size)
    deep = max(1, round(pages * 0.9))
    print(f"  lead {lead.email}: {visible:,} referrals in the inbox ({sent:,} sent), {pages} pages")
    real_url, plain_url = reverse("referral_inbox"), reverse("plain_inbox")
    # The deep page as its "weiter" link names it: after the last row of the page before.
    at, pk = (
        inbox_of(lead)
        .order_by("-sent_at", "-pk")
        .values_list("sent_at", "pk")[(deep - 1) * size - 1]
    )
    # Received, newest first (keyset), as the inbox was ordered before issue 15; and its
    # default since then, by due date (paged by number).
    cases = {
        "inbox_first": ("inbox, page 1", "?sortierung=eingang"),
        "inbox_sent": ("inbox, state=sent, page 1", "?state=sent&sortierung=eingang"),
        "inbox_deep": (
            f"inbox, page {deep}",
            "?"
            + urlencode({"nach": f"{at.isoformat()}~{pk}", "page": deep, "sortierung": "eingang"}),
        ),
        "inbox_due": ("inbox by due date, page 1", ""),
        "inbox_need": ("inbox by need, page 1", "?sortierung=bedarf"),
    }
    results: dict[str, Any] = {"inbox_referrals": visible, "sent": sent, "deep_page": deep}
    for key, (label, query) in cases.items():
        shown, plainly = client.get(real_url + query), client.get(plain_url + query)
        real = REFERRAL_LINK.findall(shown.content.decode())
        assert real, f"{label}: empty page"
        # The whole list as the lead sees it, its assign form and links included.
        assert main_part(shown) == main_part(plainly), f"{label}: the plain page differs"
        results[key] = measure_variants(
            label,
            {
                "real": [lambda url=real_url + query: client.get(url)] * total,
                "plain": [lambda url=plain_url + query: client.get(url)] * total,
            },
        )
        results[key]["rows"] = len(real)
        results[key]["profile"] = profile(client, label, real_url + query)
        results[key]["profile_plain"] = profile(client, label + " (plain)", plain_url + query)
    return results


def detail_benchmarks(rng: random.Random, lead: User) -> dict:
    client = step2.verified_client(lead)
    total = ARGS.warmup + ARGS.requests
    ids = list(inbox_of(lead).values_list("pk", flat=True))
    chosen = [rng.choice(ids) for _index in range(total)]
    # What the lead may do on each page, worked out once with the real rules.
    TARGET["may"] = {}
    for referral in referrals_visible_to(lead).filter(pk__in=set(chosen)):
        TARGET["may"][referral.pk] = (
            side_of(lead, referral),
            {
                verb: rule.permits(lead, referral, referral_transitions.roles_in(lead, referral))
                for verb, rule in referral_transitions.RULES.items()
            },
        )
    real_urls = [reverse("referral_detail", args=[pk]) for pk in chosen]
    plain_urls = [reverse("plain_detail", args=[pk]) for pk in chosen]

    def without_audit(url: str) -> Any:
        with mock.patch(
            "referrals.actions.steps.record_referral_read", lambda *args, **kwargs: None
        ):
            return client.get(url)

    for real, plain in list(zip(real_urls, plain_urls, strict=True))[:10]:
        assert main_part(client.get(real)) == main_part(client.get(plain)), f"{real} differs"
    events_before = AuditEvent.objects.filter(action="referral.viewed").count()
    results = measure_variants(
        "referral detail",
        {
            "real": [lambda url=url: client.get(url) for url in real_urls],
            "real_without_audit": [lambda url=url: without_audit(url) for url in real_urls],
            "plain": [lambda url=url: client.get(url) for url in plain_urls],
        },
    )
    written = AuditEvent.objects.filter(action="referral.viewed").count() - events_before
    assert written == total, f"{written} audit events for {total} audited detail requests"
    results["assignable"] = sum(may["assign"] for _side, may in TARGET["may"].values())
    results["profile"] = profile(client, "referral detail", real_urls[0])
    results["profile_plain"] = profile(client, "referral detail (plain)", plain_urls[0])
    return results


def tag_benchmarks(coach: User, project: Agency) -> dict:
    client = step2.verified_client(coach)
    total = ARGS.warmup + ARGS.requests
    size = settings.REFERRAL_PAGE_SIZE
    count = ApplicationTag.objects.filter(project=project).count()
    pages = -(-count // size)
    deep = max(1, round(pages * 0.9))
    print(f"  coach {coach.email}: {count:,} tags, {pages} pages")
    real_url, plain_url = reverse("tag_list"), reverse("plain_tag_list")
    results: dict[str, Any] = {"project_tags": count, "deep_page": deep}
    for key, (label, query) in {
        "tags_first": ("tag list, page 1", ""),
        "tags_deep": (f"tag list, page {deep}", f"?page={deep}"),
    }.items():
        real, plain = client.get(real_url + query), client.get(plain_url + query)
        assert main_part(real) == main_part(plain), f"{label}: the plain page differs"
        assert TAG_LINK.findall(real.content.decode()), f"{label}: empty page"
        results[key] = measure_variants(
            label,
            {
                "real": [lambda url=real_url + query: client.get(url)] * total,
                "plain": [lambda url=plain_url + query: client.get(url)] * total,
            },
        )
        results[key]["profile"] = profile(client, label, real_url + query)
        results[key]["profile_plain"] = profile(client, label + " (plain)", plain_url + query)
    return results


# 4. Report

CODE_MEASURED = [
    "referrals/views.py",
    "referrals/access.py",
    "dienstweg/paging.py",
    "referrals/actions/steps.py",
    "referrals/actions/transitions.py",
    "referrals/models.py",
    "referrals/templates/referrals/referral_list.html",
    "referrals/templates/referrals/referral_detail.html",
    "applications/views.py",
    "applications/access.py",
    "applications/models.py",
    "applications/templates/applications/tag_list.html",
    "dienstweg/access.py",
    "audit/trail.py",
]


def code_fingerprint() -> dict[str, str]:
    return step2.code_fingerprint(CODE_MEASURED)


def conditions(busy: Agency, project: Agency) -> dict:
    result = step2.conditions()
    result["code"] = code_fingerprint()
    with connection.cursor() as cursor:
        for name in ("synchronous_commit", "work_mem", "random_page_cost", "effective_cache_size"):
            cursor.execute(f"SHOW {name}")
            result[name] = cursor.fetchone()[0]
    result["dataset"].update(
        {
            "referrals": Referral.objects.count(),
            "referrals_to_busy_agency": Referral.objects.filter(to_agency=busy).count(),
            "referral_states": dict(
                Referral.objects.order_by().values_list("state").annotate(n=Count("id"))
            ),
            "referral_events": ReferralEvent.objects.count(),
            "referral_group_permissions": ReferralGroupPermission.objects.count(),
            "referral_user_permissions": ReferralUserPermission.objects.count(),
            "memberships": Membership.objects.count(),
            "application_tags": ApplicationTag.objects.count(),
            "tags_of_measured_project": ApplicationTag.objects.filter(project=project).count(),
            "tag_status_changes": TagStatusChange.objects.count(),
        }
    )
    return result


def summary(inbox: dict, detail: dict, tags: dict) -> list[dict]:
    rows = []
    for label, figures in (
        ("inbox page 1", inbox["inbox_first"]),
        ("inbox ?state=sent", inbox["inbox_sent"]),
        (f"inbox page {inbox['deep_page']}", inbox["inbox_deep"]),
        ("referral detail", detail),
        ("tag list page 1", tags["tags_first"]),
        (f"tag list page {tags['deep_page']}", tags["tags_deep"]),
    ):
        real, plain = figures["real"], figures["plain"]
        rows.append(
            {
                "figure": label,
                "p50": real["p50"],
                "p95": real["p95"],
                "p99": real["p99"],
                "plain_p50": plain["p50"],
                "plain_p95": plain["p95"],
                "ratio_p50": figures["ratio_p50"],
                "ratio_p95": figures["ratio_p95"],
                "sql_ms": figures["profile"]["sql_ms"],
                "plain_sql_ms": figures["profile_plain"]["sql_ms"],
                "p95_met": real["p95"] <= TARGET_P95_MS,
                # No slower than 1.5 times the plain page: at the median and at p95.
                "ratio_met": max(figures["ratio_p50"], figures["ratio_p95"]) <= TARGET_RATIO,
            }
        )
    return rows


def print_table(rows: list[dict]) -> None:
    width = max(len(row["figure"]) for row in rows)
    print(
        f"\n{'ms':<{width}}  {'p50':>6} {'p95':>6} {'p99':>6}  {'plain p50':>9} {'plain p95':>9}"
        f"  {'ratio p50':>9} {'ratio p95':>9}  {'SQL':>6} {'plain SQL':>9}  p95 ≤ 25  ratio ≤ 1.5"
    )
    for row in rows:
        print(
            f"{row['figure']:<{width}}  {row['p50']:6.2f} {row['p95']:6.2f} {row['p99']:6.2f}"
            f"  {row['plain_p50']:9.2f} {row['plain_p95']:9.2f}  {row['ratio_p50']:9.2f}"
            f" {row['ratio_p95']:9.2f}  {row['sql_ms']:6.2f} {row['plain_sql_ms']:9.2f}"
            f"  {'yes' if row['p95_met'] else 'NO':>8}  {'yes' if row['ratio_met'] else 'NO':>11}"
        )


def main() -> None:
    rng = random.Random(ARGS.seed)
    code_at_start = code_fingerprint()
    generated: dict[str, Any] = {"reused": ARGS.reuse}
    if not ARGS.reuse:
        with step2.phase("reset and migrate"):
            step2.reset_database()
            call_command("migrate", verbosity=0)
        with step2.phase("generate network, families, referrals and tags"):
            network = create_network(rng, ARGS.users)
            generated.update(generate(rng, network))
        with step2.phase("vacuum analyze"):
            step2.vacuum_analyze()
    settings.ROOT_URLCONF = URLCONF.__name__
    clear_url_caches()
    lead = User.objects.get(email=BENCH_LEAD)
    coach = User.objects.get(email=BENCH_COACH)
    busy = Agency.objects.get(memberships__user=lead)
    project = Agency.objects.get(memberships__user=coach)
    TARGET.update(busy=busy.pk, project=project.pk)
    step2.CALIBRATION["before_requests"] = step2.calibration_ms()
    with step2.phase("inbox requests"):
        inbox = inbox_benchmarks(lead)
    with step2.phase("detail requests"):
        detail = detail_benchmarks(rng, lead)
    with step2.phase("tag list requests"):
        tags = tag_benchmarks(coach, project)
    step2.CALIBRATION["after_requests"] = step2.calibration_ms()
    changed = sorted(
        name for name, digest in code_fingerprint().items() if code_at_start.get(name) != digest
    )
    if changed:
        print(f"\nWARNING: measured code changed during the run: {', '.join(changed)}")
    rows = summary(inbox, detail, tags)
    print_table(rows)
    result = {
        "summary": rows,
        "targets": {"p95_ms": TARGET_P95_MS, "ratio_to_plain": TARGET_RATIO},
        "conditions": conditions(busy, project),
        "generated": generated,
        "arguments": {key: str(value) for key, value in vars(ARGS).items()},
        "code_changed_during_run": changed,
        "phases_s": step2.PHASES,
        "load_average_after_phase": step2.LOAD,
        "inbox_ms": inbox,
        "detail_ms": detail,
        "tags_ms": tags,
    }
    ARGS.output.parent.mkdir(parents=True, exist_ok=True)
    ARGS.output.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"\nwritten to {ARGS.output}")


if __name__ == "__main__":
    main()
