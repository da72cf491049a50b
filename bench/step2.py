"""Step 2 benchmark: family pages, audit cost of a write, seal and verify throughput.

    DIENSTWEG_DEBUG=true DATABASE_URL=postgres://root@127.0.0.1:5432/dienstweg_bench \
        .venv/bin/python bench/step2.py [--families 100000 --events 1000000]

1. Drops and creates the database named in DATABASE_URL (its name must contain "bench"),
   migrates it and generates a network: 20 projects, 5 authorities, staff with
   memberships, FAMILIES families (2-5 household members each, encrypted under the family's
   own data key, one consent each) and EVENTS audit events spread over three years.
   Rows are built in Python with the real vault (create_data_key, Encrypted.encrypt_field,
   blind_index) and inserted with bulk_create; audit events with COPY.
2. Times the family list (first and a deep page) and the family detail page through
   django.test.Client in-process, as a coach of a project with ~5 % of the families.
3. Times two write requests (revoke a consent, grant a consent) with the audit trail
   recording and with audit.trail.record patched to a no-op in dienstweg.actions.
4. Times manage.py audit_seal (until nothing is left) and audit_verify.
5. Prints a summary and writes bench/results/step2.json.

--reuse skips step 1 and measures the database as it is (for profiling again).
Measurements run with DEBUG off, as in production; DIENSTWEG_DEBUG=true only supplies
the generated development secrets (pass --debug to keep DEBUG on).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import random
import re
import shutil
import statistics
import sys
import time
import timeit
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The generated history is dated at random and sealed afterwards, which the sealer would
# refuse as backdated (audit/chronology.py); and the bench database is made anew each run,
# so its anchored heads (audit/anchor.py) live and go with it.
os.environ.setdefault("DIENSTWEG_AUDIT_CLOCK_SKEW_SECONDS", str(100 * 366 * 24 * 3600))
BENCH_ANCHOR = ROOT / "var" / "bench-anchor" / "step2"
os.environ["DIENSTWEG_AUDIT_ANCHOR_DIR"] = str(BENCH_ANCHOR)

RESULTS = ROOT / "bench" / "results" / "step2.json"
DAY = 86_400.0

# Targets of the issue.
TARGET_PAGE_P95_MS = 25.0
TARGET_AUDIT_OVERHEAD = 0.10
TARGET_EVENTS_PER_S = 100_000.0

PROJECTS = 20
MAIN_SHARE = 0.05  # the measured coach's project: ~5,000 of 100,000 families
AUTHORITIES = [
    ("Jobcenter Kreis Recklinghausen", "jobcenter", "sgb_ii"),
    ("Stadt Gladbeck, Amt für Jugend und Familie", "jugendamt", "sgb_viii"),
    ("Stadt Gladbeck, Sozialamt", "sozialamt", "sgb_xii"),
    ("Familienkasse Nordrhein-Westfalen Nord", "familienkasse", "other"),
    ("Stadt Gladbeck, BuT-Stelle", "but_office", "sgb_ii"),
]
COACHES_PER_PROJECT = 3
CASEWORKERS_PER_AUTHORITY = 6
BENCH_COACH = "coach.0.0@bench.example.org"

FIRST_ADULT = [
    "Ayşe", "Fatma", "Anna", "Maria", "Katarzyna", "Olena", "Sabine", "Nadia", "Leyla",
    "Mehmet", "Ahmad", "Thomas", "Michael", "Piotr", "Dmytro", "Stefan", "Hassan", "Jörg",
]  # fmt: skip
FIRST_CHILD = [
    "Emre", "Mia", "Noah", "Lina", "Elif", "Ben", "Sofia", "Yusuf", "Emma", "Luca",
    "Zeynep", "Paul", "Amira", "Leon", "Hanna", "Omar", "Ida", "Milan",
]  # fmt: skip
LAST = [
    "Yılmaz", "Kaya", "Schmidt", "Müller", "Nowak", "Kowalski", "Schneider", "Fischer",
    "Al-Hassan", "Demir", "Weber", "Meyer", "Shevchenko", "Öztürk", "Becker", "Hoffmann",
    "Haddad", "Wagner", "Kovačević", "Krüger",
]  # fmt: skip
STREETS = [
    "Horster Straße", "Hochstraße", "Buersche Straße", "Rentforter Straße", "Wilhelmstraße",
    "Schützenstraße", "Bottroper Straße", "Kirchstraße", "Goethestraße", "Feldstraße",
]  # fmt: skip
NOTES = [
    "Mutter sucht Teilzeitstelle; Kita-Platz fehlt.",
    "Mietschulden, Termin bei der Schuldnerberatung vereinbart.",
    "Sprachkurs B1 läuft, Anerkennung des Abschlusses beantragt.",
    "Vater arbeitssuchend, Interesse an Umschulung.",
    "",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--families", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per figure")
    parser.add_argument("--warmup", type=int, default=30, help="untimed requests before each")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="skip reset and generation")
    parser.add_argument("--debug", action="store_true", help="keep DEBUG on while measuring")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


ARGS = parse_args()

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.management.base import CommandError  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Sum  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_otp import DEVICE_ID_SESSION_KEY  # noqa: E402

from audit import hashing  # noqa: E402
from audit.models import AuditEvent, AuditSeal  # noqa: E402
from dienstweg import actions, vault  # noqa: E402
from dienstweg.models import (  # noqa: E402
    Agency,
    AuthenticatorDevice,
    Consent,
    DataCategory,
    DataKey,
    Family,
    HouseholdMember,
    Membership,
    Purpose,
    User,
)

if not ARGS.debug:
    # Production runs without DEBUG: no query log, no template debug information.
    settings.DEBUG = False

PHASES: dict[str, float] = {}


LOAD: dict[str, list[float]] = {}


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time a phase; keep the machine's load average at its end (other work skews figures)."""
    print(f"\n== {name}", flush=True)
    started = time.perf_counter()
    yield
    PHASES[name] = round(time.perf_counter() - started, 1)
    LOAD[name] = [round(value, 2) for value in os.getloadavg()]
    print(f"== {name}: {PHASES[name]:.1f} s (load average {LOAD[name]})", flush=True)


# 1. Database and data


def reset_database() -> None:
    """Drop and create the benchmark database, from the server's 'postgres' database."""
    params = connection.settings_dict
    name = params["NAME"]
    if connection.vendor != "postgresql" or "bench" not in name:
        sys.exit(f"refusing to reset {name!r}: DATABASE_URL must name a PostgreSQL *bench* db")
    connection.close()
    conninfo = {
        "host": params.get("HOST") or None,
        "port": params.get("PORT") or None,
        "user": params.get("USER") or None,
        "password": params.get("PASSWORD") or None,
    }
    for maintenance in ("postgres", "test"):
        try:
            admin = psycopg.connect(
                dbname=maintenance,
                autocommit=True,
                **{k: v for k, v in conninfo.items() if v},
            )
        except psycopg.OperationalError:
            continue
        with admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        shutil.rmtree(BENCH_ANCHOR, ignore_errors=True)
        print(f"database {name} created (via {maintenance})")
        return
    sys.exit("no maintenance database ('postgres' or 'test') to create the bench db from")


def create_network(rng: random.Random) -> dict[str, Any]:
    """Agencies through the real actions; staff in bulk (one password hash for all)."""
    projects = [
        actions.create_agency(
            name=f"Familiencoaching Projekt {number + 1:02d}",
            kind=Agency.Kind.PROJECT,
            rechtskreis=Agency.Rechtskreis.OTHER,
        )
        for number in range(PROJECTS)
    ]
    authorities = [
        actions.create_agency(name=name, kind=kind, rechtskreis=rechtskreis)
        for name, kind, rechtskreis in AUTHORITIES
    ]
    password = make_password("bench-" + uuid.uuid4().hex)
    people: list[tuple[str, str, Agency, str]] = []
    for number, project in enumerate(projects):
        for index in range(COACHES_PER_PROJECT):
            people.append((f"coach.{number}.{index}", "Coach", project, Membership.Role.COACH))
        people.append((f"lead.p{number}", "Leitung", project, Membership.Role.LEAD))
    for number, authority in enumerate(authorities):
        for index in range(CASEWORKERS_PER_AUTHORITY):
            people.append(
                (f"case.{number}.{index}", "Fallbearbeitung", authority, Membership.Role.CASEWORKER)
            )
        people.append((f"lead.a{number}", "Leitung", authority, Membership.Role.LEAD))
    people.append(("dpo", "Datenschutz", authorities[1], Membership.Role.DPO))
    users = User.objects.bulk_create(
        User(
            email=f"{login}@bench.example.org",
            full_name=f"{title} {rng.choice(LAST)}",
            password=password,
        )
        for login, title, _agency, _role in people
    )
    case_staff: dict[int, list[int]] = {project.pk: [] for project in projects}
    coaches: dict[int, list[int]] = {project.pk: [] for project in projects}
    for user, (_login, _title, agency, role) in zip(users, people, strict=True):
        actions.add_membership(user, agency=agency, role=role, by=None)
        if agency.pk in case_staff:
            case_staff[agency.pk].append(user.pk)
            if role == Membership.Role.COACH:
                coaches[agency.pk].append(user.pk)
    print(f"{len(projects)} projects, {len(authorities)} authorities, {len(users)} staff")
    return {
        "projects": projects,
        "authorities": authorities,
        "users": [user.pk for user in users],
        "case_staff": case_staff,
        "coaches": coaches,
    }


@contextmanager
def keys_unsaved() -> Iterator[None]:
    """vault.create_data_key() exactly, minus its INSERT: the keys go in with bulk_create."""
    with mock.patch.object(DataKey, "save", lambda self, **kwargs: None):
        yield


def household(rng: random.Random, today: date) -> list[actions.MemberData]:
    last = rng.choice(LAST)
    adults = 1 if rng.random() < 0.35 else 2
    children = rng.randint(max(0, 2 - adults), 5 - adults)
    members = [
        actions.MemberData(
            HouseholdMember.Kind.ADULT,
            rng.choice(FIRST_ADULT),
            last,
            today - timedelta(days=rng.randint(20 * 365, 55 * 365)),
        )
        for _index in range(adults)
    ]
    members += [
        actions.MemberData(
            HouseholdMember.Kind.CHILD,
            rng.choice(FIRST_CHILD),
            last,
            today - timedelta(days=rng.randint(100, 17 * 365)),
        )
        for _index in range(children)
    ]
    return members


def build_family(
    rng: random.Random,
    network: dict[str, Any],
    owner: int,
    registered: float,
    reference: str,
    now: float,
) -> tuple[Family, list[HouseholdMember], Consent, list[Any], dict]:
    """One family as register_family and grant_consent would store it, unsaved."""
    today = timezone.localdate()
    moment = datetime.fromtimestamp(registered, tz=UTC)
    coach = rng.choice(network["coaches"][owner])
    family = Family(
        id=uuid.uuid4(),
        reference=reference,
        owner_id=owner,
        data_key=vault.create_data_key(),  # unsaved inside keys_unsaved()
        registered_at=moment,
        registered_by_id=coach,
    )
    family.encrypt_field("address", f"{rng.choice(STREETS)} {rng.randint(1, 120)}, 45964 Gladbeck")
    family.encrypt_field("phone", f"02043 {rng.randint(100000, 999999)}")
    family.encrypt_field("notes", rng.choice(NOTES))
    members = []
    for position, data in enumerate(household(rng, today)):
        member = HouseholdMember(
            id=uuid.uuid4(),
            family=family,
            kind=data.kind,
            position=position,
            identity_index=actions.identity_index(data.first_name, data.last_name, data.birth_date),
        )
        member.encrypt_field("first_name", data.first_name)
        member.encrypt_field("last_name", data.last_name)
        member.encrypt_field("birth_date", data.birth_date.isoformat())
        members.append(member)
    recorded = moment + timedelta(minutes=rng.randint(5, 90))
    valid_from = timezone.localtime(recorded).date()
    chosen = rng.sample(network["authorities"], rng.randint(1, 3))
    consent = Consent(
        id=uuid.uuid4(),
        family=family,
        categories=sorted(rng.sample(DataCategory.values, rng.randint(2, 5))),
        purposes=sorted(rng.sample(Purpose.values, rng.randint(1, 3))),
        valid_from=valid_from,
        valid_until=valid_from + timedelta(days=rng.choice((365, 730))),
        given_by=members[0],
        capacity=Consent.Capacity.ADULT_SELF,
        method=Consent.Method.ORAL_RECORDED,
        text_version="2026-1",
        recorded_at=recorded,
        recorded_by_id=coach,
        recipient_ids=sorted(agency.pk for agency in chosen),
    )
    consent.encrypt_field("witness_note", "Belehrung im Beisein einer Kollegin, Formular erklärt")
    revoked = None
    if rng.random() < 0.08:
        revoked = datetime.fromtimestamp(rng.uniform(recorded.timestamp(), now), tz=UTC)
        consent.revoked_at = revoked
        consent.revoked_by_id = coach
        consent.encrypt_field("revocation_note", "telefonisch widerrufen")
    recipients = [
        Consent.recipients.through(consent_id=consent.id, agency_id=agency.pk) for agency in chosen
    ]
    info = {
        "id": str(family.id),
        "reference": family.reference,
        "owner": owner,
        "registered": registered,
        "registered_by": coach,
        "members": len(members),
        "consent": str(consent.id),
        "recorded": recorded.timestamp(),
        "recipients": ".".join(str(agency.pk) for agency in chosen),
        "valid_until": consent.valid_until.isoformat(),
        "revoked": None if revoked is None else revoked.timestamp(),
    }
    return family, members, consent, recipients, info


def generate_families(rng: random.Random, network: dict[str, Any], count: int) -> list[dict]:
    """COUNT families with members and one consent each; returns what the events need."""
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
    numbers: dict[int, int] = {}
    families: list[dict] = []
    batch = 1_000
    started = time.perf_counter()
    members_total = 0
    for offset in range(0, count, batch):
        built = []
        with keys_unsaved():
            for index in range(offset, min(offset + batch, count)):
                year = timezone.localtime(datetime.fromtimestamp(registered[index], tz=UTC)).year
                numbers[year] = numbers.get(year, 0) + 1
                reference = f"F-{year}-{numbers[year]:04d}"  # as actions._next_reference
                built.append(
                    build_family(rng, network, owners[index], registered[index], reference, now)
                )
        with transaction.atomic():
            DataKey.objects.bulk_create(family.data_key for family, *_rest in built)
            Family.objects.bulk_create(family for family, *_rest in built)
            HouseholdMember.objects.bulk_create(m for _f, members, *_r in built for m in members)
            Consent.objects.bulk_create(consent for _f, _m, consent, *_r in built)
            Consent.recipients.through.objects.bulk_create(
                row for *_first, rows, _info in built for row in rows
            )
        families += [info for *_first, info in built]
        members_total += sum(len(members) for _f, members, *_r in built)
        done = min(offset + batch, count)
        if done % 10_000 == 0 or done == count:
            elapsed = time.perf_counter() - started
            print(
                f"  families {done:>7,} / {count:,}  members {members_total:>8,}  "
                f"{elapsed:6.1f} s  ({done / elapsed:,.0f} families/s)",
                flush=True,
            )
    return families


# What COPY writes: every hashed column but the id and the txid (the database fills those).
EVENT_COLUMNS = tuple(name for name in hashing.EVENT_FIELDS if name not in ("id", "txid"))
# Events not tied to a family's registration or consent, with their share.
OTHER_EVENTS = [
    ("family.viewed", 0.78),
    ("auth.login", 0.06),
    ("auth.second_factor_passed", 0.06),
    ("auth.logout", 0.04),
    ("session.ended", 0.04),
    ("auth.login_failed", 0.02),
]
CASE_WORK = "Fallarbeit im eigenen Projekt"


def event_row(
    rng: random.Random, moment: float, kind: str, family: dict | None, actor: int | None
) -> tuple:
    """One audit row as audit.trail.record() writes it (txid comes from the column default)."""
    # Drawn in this order so that a given seed yields the same data as before.
    ip = f"10.20.{rng.randint(0, 40)}.{rng.randint(1, 254)}"
    request_id = f"{rng.getrandbits(128):032x}"
    row = {
        "occurred_at": datetime.fromtimestamp(moment, tz=UTC),
        "actor_id": actor,
        "actor_label": f"user:{actor}" if actor is not None else "system",
        "agency_id": None,
        "action": kind,
        "target_type": "",
        "target_id": "",
        "family_id": None,
        "family_ref": "",
        "purpose": "",
        "request_id": request_id,
        "ip": ip,
        "details": {},
    }
    if family is not None:
        row.update(family_id=family["id"], family_ref=family["reference"])
        if kind in ("consent.granted", "consent.revoked"):
            row.update(target_type="dienstweg.consent", target_id=family["consent"])
            if kind == "consent.granted":
                row.update(
                    purpose="Art. 6 Abs. 1 lit. a DSGVO",
                    details={
                        "recipients": family["recipients"],
                        "valid_until": family["valid_until"],
                    },
                )
            else:
                row.update(purpose="Art. 7 Abs. 3 DSGVO")
        else:
            row.update(
                agency_id=family["owner"], target_type="dienstweg.family", target_id=family["id"]
            )
            if kind == "family.registered":
                row.update(details={"members": family["members"]})
            else:
                row.update(purpose=CASE_WORK)
    elif kind == "auth.login_failed":
        row.update(actor_id=None, actor_label="system", target_type="user", target_id=str(actor))
    elif kind == "session.ended":
        row.update(target_type="dienstweg.user", target_id=str(actor), details={"count": 1})
    elif kind == "auth.second_factor_passed":
        row.update(details={"device": "AuthenticatorDevice"})
    return tuple(row[column] for column in EVENT_COLUMNS)


def generate_events(
    rng: random.Random, network: dict[str, Any], families: list[dict], count: int
) -> int:
    """COUNT events in time order: each family's registration and consent (and revocation),
    the rest reads of families and sign-ins, spread over the three years."""
    plan: list[tuple[float, str, int, int | None]] = []
    for index, family in enumerate(families):
        plan.append((family["registered"], "family.registered", index, family["registered_by"]))
        plan.append((family["recorded"], "consent.granted", index, family["registered_by"]))
        if family["revoked"] is not None:
            plan.append((family["revoked"], "consent.revoked", index, family["registered_by"]))
    if len(plan) > count:
        sys.exit(f"--events must be at least {len(plan):,} (registrations and consents)")
    now = time.time()
    start = min(family["registered"] for family in families)
    kinds = [kind for kind, _share in OTHER_EVENTS]
    shares = [share for _kind, share in OTHER_EVENTS]
    users = network["users"]
    case_staff = network["case_staff"]
    for kind in rng.choices(kinds, weights=shares, k=count - len(plan)):
        if kind == "family.viewed":
            index = rng.randrange(len(families))
            family = families[index]
            actor = rng.choice(case_staff[family["owner"]])
            plan.append((rng.uniform(family["registered"], now), kind, index, actor))
        else:
            plan.append((rng.uniform(start, now), kind, -1, rng.choice(users)))
    plan.sort()
    columns = ", ".join(EVENT_COLUMNS)
    per_transaction = 500
    started = time.perf_counter()
    for offset in range(0, count, per_transaction):
        with transaction.atomic(), connection.cursor() as cursor:
            raw: Any = cursor.cursor
            with raw.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy:
                for moment, kind, index, actor in plan[offset : offset + per_transaction]:
                    row = event_row(
                        rng, moment, kind, families[index] if index >= 0 else None, actor
                    )
                    copy.write_row((*row[:-1], json.dumps(row[-1])))
        done = min(offset + per_transaction, count)
        if done % 100_000 == 0 or done == count:
            elapsed = time.perf_counter() - started
            print(
                f"  events {done:>9,} / {count:,}  {elapsed:6.1f} s  ({done / elapsed:,.0f}/s)",
                flush=True,
            )
    return count


def vacuum_analyze() -> None:
    """What autovacuum would have done on a live system: statistics and visibility maps."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")


# 2./3. Requests


def verified_client(user: User) -> Client:
    """As tests/conftest.py: logged in, session verified by the user's authenticator."""
    device = AuthenticatorDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = AuthenticatorDevice.create_for(user, name="Bench", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cut = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "n": len(ordered),
        "p50": round(statistics.median(ordered), 2),
        "p95": round(cut[94], 2),
        "p99": round(cut[98], 2),
        "mean": round(statistics.fmean(ordered), 2),
        "max": round(ordered[-1], 2),
    }


def timed(request: Callable[[], Any], expect: int) -> float:
    started = time.perf_counter()
    response = request()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != expect:
        raise AssertionError(f"status {response.status_code}, expected {expect}")
    return elapsed


def measure(name: str, requests: list[Callable[[], Any]], warmup: int, expect: int = 200) -> dict:
    for request in requests[:warmup]:
        timed(request, expect)
    samples = [timed(request, expect) for request in requests[warmup:]]
    figures = percentiles(samples)
    print(
        f"  {name:<34} p50 {figures['p50']:6.2f}  p95 {figures['p95']:6.2f}  "
        f"p99 {figures['p99']:6.2f} ms  (n={figures['n']})",
        flush=True,
    )
    return figures


def profile(client: Client, name: str, url: str) -> dict:
    """The queries of one request, slowest first, and the plan of the slowest."""
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    queries = sorted(captured.captured_queries, key=lambda query: -float(query["time"]))
    total = sum(float(query["time"]) for query in queries) * 1000
    slowest = queries[0]["sql"] if queries else ""
    plan = []
    if slowest.lstrip().upper().startswith("SELECT"):
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest)
            plan = [row[0] for row in cursor.fetchall()]
    print(
        f"  {name}: {len(queries)} queries, {total:.1f} ms in SQL; slowest "
        f"{float(queries[0]['time']) * 1000:.1f} ms"
    )
    return {
        "queries": len(queries),
        "sql_ms": round(total, 2),
        "slowest": [
            {"ms": round(float(query["time"]) * 1000, 2), "sql": query["sql"][:600]}
            for query in queries[:3]
        ],
        "slowest_plan": plan,
    }


def drop_messages(client: Client) -> None:
    # A browser would follow the redirect and show the message; without that the message
    # cookie (and then the session) would grow with every request.
    client.cookies.pop("messages", None)


FAMILY_LINK = re.compile(r'href="/familien/[0-9a-f-]{36}/"')


def page_benchmarks(rng: random.Random, coach: User, project: Agency) -> dict:
    client = verified_client(coach)
    count = Family.objects.filter(owner=project).count()
    pages = -(-count // settings.FAMILY_PAGE_SIZE)
    deep = max(1, round(pages * 0.9))
    total = ARGS.warmup + ARGS.requests
    list_url = reverse("family_list")
    ids = list(Family.objects.filter(owner=project).values_list("pk", flat=True))
    detail_urls = [reverse("family_detail", args=[rng.choice(ids)]) for _index in range(total)]
    print(f"  coach {coach.email}: {count:,} families, {pages} pages; deep page = {deep}")
    for params in ({}, {"page": deep}):
        # The pages must list families, not an empty result (a bound search form, say).
        shown = len(FAMILY_LINK.findall(client.get(list_url, params).content.decode()))
        size = settings.FAMILY_PAGE_SIZE
        expected = min(size, count - (params.get("page", 1) - 1) * size)
        assert shown == expected, f"list {params}: {shown} families shown, {expected} expected"
    results = {
        "project_families": count,
        "pages": pages,
        "deep_page": deep,
        "list_first": measure(
            "family list, page 1", [lambda: client.get(list_url)] * total, ARGS.warmup
        ),
        "list_deep": measure(
            f"family list, page {deep}",
            [lambda: client.get(list_url, {"page": deep})] * total,
            ARGS.warmup,
        ),
        "detail": measure(
            "family detail (random family)",
            [lambda url=url: client.get(url) for url in detail_urls],
            ARGS.warmup,
        ),
    }
    results["profile"] = {
        "list_first": profile(client, "list page 1", list_url),
        "list_deep": profile(client, f"list page {deep}", f"{list_url}?page={deep}"),
        "detail": profile(client, "detail", detail_urls[0]),
    }
    return results


def write_benchmarks(rng: random.Random, coach: User, project: Agency) -> dict:
    """Each write request twice per round, with and without audit recording, in alternating
    order (so that drift of the machine affects both alike)."""
    client = verified_client(coach)
    total = ARGS.warmup + ARGS.requests
    open_consents = list(
        Consent.objects.filter(family__owner=project, revoked_at__isnull=True).values_list(
            "family_id", "pk"
        )[: 2 * total]
    )
    if len(open_consents) < 2 * total:
        sys.exit(f"only {len(open_consents)} open consents in the project; need {2 * total}")
    rng.shuffle(open_consents)
    revoke_urls = [reverse("consent_revoke", args=pair) for pair in open_consents]
    adults = list(
        HouseholdMember.objects.filter(family__owner=project, kind=HouseholdMember.Kind.ADULT)
        .order_by("family_id", "position")
        .distinct("family_id")
        .values_list("family_id", "pk")
    )
    rng.shuffle(adults)
    recipients = [agency.pk for agency in Agency.objects.exclude(kind=Agency.Kind.PROJECT)[:2]]
    today = timezone.localdate()

    def grant(family_id: Any, member_id: Any) -> Any:
        return client.post(
            reverse("consent_new", args=[family_id]),
            {
                "recipients": recipients,
                "categories": [DataCategory.IDENTITY, DataCategory.EMPLOYMENT],
                "purposes": [Purpose.REFERRAL],
                "valid_from": today.isoformat(),
                "valid_until": (today + timedelta(days=365)).isoformat(),
                "given_by": str(member_id),
                "capacity": Consent.Capacity.ADULT_SELF,
                "method": Consent.Method.ORAL_RECORDED,
                "witness_note": "Belehrung im Beisein einer Kollegin",
                "text_version": settings.CONSENT_TEXT_VERSION,
            },
        )

    def revoke(url: str) -> Any:
        # Confirmed: without `confirm` the page only asks (issue 15).
        return client.post(url, {"note": "telefonisch widerrufen", "confirm": "ja"})

    figures: dict[str, Any] = {}
    for name, make in (
        ("revoke", lambda index: lambda: revoke(revoke_urls[index])),
        ("grant", lambda index: lambda: grant(*adults[index % len(adults)])),
    ):
        samples: dict[str, list[float]] = {"audited": [], "no_audit": []}
        events_before = AuditEvent.objects.count()
        for round_ in range(total):
            order = ("audited", "no_audit") if round_ % 2 == 0 else ("no_audit", "audited")
            for mode in order:
                request = make(2 * round_ + (mode == "no_audit"))
                if mode == "audited":
                    elapsed = timed(request, 302)
                else:
                    # Both steps measured (grant, revoke) record in dienstweg.actions.consent.
                    with mock.patch("dienstweg.actions.consent.record", lambda *a, **kw: None):
                        elapsed = timed(request, 302)
                drop_messages(client)
                if round_ >= ARGS.warmup:
                    samples[mode].append(elapsed)
        written = AuditEvent.objects.count() - events_before
        assert written == total, f"{name}: {written} audit events for {total} audited requests"
        audited, plain = percentiles(samples["audited"]), percentiles(samples["no_audit"])
        overhead = (audited["p50"] - plain["p50"]) / plain["p50"]
        figures[name] = {
            "audited": audited,
            "no_audit": plain,
            "p50_overhead": round(overhead, 4),
            "p50_overhead_ms": round(audited["p50"] - plain["p50"], 2),
        }
        print(
            f"  {name:<8} audited p50 {audited['p50']:6.2f} ms, without audit p50 "
            f"{plain['p50']:6.2f} ms: overhead {overhead:+.1%}",
            flush=True,
        )
    return figures


# 4. Seal and verify


def sealed_total() -> int:
    return AuditSeal.objects.aggregate(total=Sum("event_count"))["total"] or 0


def seal_and_verify() -> dict:
    pending = AuditEvent.objects.count() - sealed_total()
    before = sealed_total()
    started = time.perf_counter()
    rounds = 0
    while True:
        out = io.StringIO()
        call_command("audit_seal", stdout=out)
        rounds += 1
        print(f"  audit_seal: {out.getvalue().strip()}", flush=True)
        if out.getvalue().startswith("0 "):
            break
    seal_seconds = time.perf_counter() - started
    sealed = sealed_total() - before
    seals = AuditSeal.objects.count()

    out = io.StringIO()
    started = time.perf_counter()
    ok = True
    try:
        call_command("audit_verify", stdout=out)
    except CommandError as error:
        ok = False
        out.write(f"\nCommandError: {error}")
    verify_seconds = time.perf_counter() - started
    verified = sealed_total()
    lines = out.getvalue().strip().splitlines()
    print("  audit_verify: " + " | ".join(lines[-3:]))
    result = {
        "pending_before": pending,
        "sealed": sealed,
        "seals_total": seals,
        "seal_commands": rounds,
        "seal_seconds": round(seal_seconds, 2),
        "seal_events_per_s": round(sealed / seal_seconds) if sealed else 0,
        "verified": verified,
        "verify_ok": ok,
        "verify_seconds": round(verify_seconds, 2),
        "verify_events_per_s": round(verified / verify_seconds) if verified else 0,
        "verify_output": lines[-5:],
    }
    print(f"  seal   {sealed:,} events in {seal_seconds:.1f} s = {result['seal_events_per_s']:,}/s")
    print(
        f"  verify {verified:,} events in {verify_seconds:.1f} s = "
        f"{result['verify_events_per_s']:,}/s ({'ok' if ok else 'FINDINGS'})"
    )
    return result


# 5. Report


CODE_MEASURED = [
    "dienstweg/views.py",
    "dienstweg/access.py",
    "dienstweg/actions/families.py",
    "dienstweg/actions/consent.py",
    "dienstweg/models/families.py",
    "dienstweg/paging.py",
    "dienstweg/hooks.py",
    "referrals/sections.py",
    "applications/sections.py",
    "audit/trail.py",
    "audit/sealing.py",
    "audit/verify.py",
    "audit/hashing.py",
]


def code_fingerprint(files: list[str] | None = None) -> dict[str, str]:
    """Which version of the measured code ran (files change while the project moves on):
    of FILES, by default this benchmark's CODE_MEASURED."""
    return {
        name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest()[:12]
        if (ROOT / name).exists()
        else "missing"  # a file that moved: update the list rather than drop it unseen
        for name in (CODE_MEASURED if files is None else files)
    }


def calibration_ms() -> float:
    """A fixed pure-Python workload, to compare machines (and the same machine over time)."""
    return round(min(timeit.repeat("sum(range(1000))", number=10_000, repeat=5)) * 1000, 1)


def connect_ms() -> float:
    """Opening a new database connection: paid per request with CONN_MAX_AGE=0."""
    samples = []
    for _index in range(10):
        connection.close()
        started = time.perf_counter()
        connection.ensure_connection()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 2)


def conditions() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
        cursor.execute("SELECT pg_database_size(current_database())")
        size = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        shared_buffers = cursor.fetchone()[0]
    return {
        "date": timezone.now().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": server,
        "shared_buffers": shared_buffers,
        "database_mb": round(size / 2**20),
        "debug": settings.DEBUG,
        "conn_max_age": connection.settings_dict.get("CONN_MAX_AGE"),
        "new_connection_ms": connect_ms(),
        "code": code_fingerprint(),
        "python_calibration_ms": CALIBRATION,
        "client": "django.test.Client in-process, one persistent DB connection, "
        "time = request in, response out",
        "dataset": {
            "agencies": Agency.objects.count(),
            "staff": User.objects.count(),
            "families": Family.objects.count(),
            "household_members": HouseholdMember.objects.count(),
            "consents": Consent.objects.count(),
            "audit_events": AuditEvent.objects.count(),
        },
    }


def summary(pages: dict, writes: dict, audit: dict) -> list[dict]:
    rows = []
    for key, label in (
        ("list_first", "family list page 1, p95"),
        ("list_deep", f"family list page {pages['deep_page']}, p95"),
        ("detail", "family detail, p95"),
    ):
        value = pages[key]["p95"]
        rows.append(
            {
                "figure": label,
                "value": f"{value:.1f} ms",
                "target": "≤ 25 ms",
                "met": value <= TARGET_PAGE_P95_MS,
            }
        )
    for key, label in (("revoke", "POST revoke consent"), ("grant", "POST grant consent")):
        overhead = writes[key]["p50_overhead"]
        rows.append(
            {
                "figure": f"audit overhead, {label}, p50",
                "value": f"{overhead:+.1%} ({writes[key]['p50_overhead_ms']:+.2f} ms)",
                "target": "≤ 10 %",
                "met": overhead <= TARGET_AUDIT_OVERHEAD,
            }
        )
    for key, label in (
        ("seal_events_per_s", "audit_seal"),
        ("verify_events_per_s", "audit_verify"),
    ):
        value = audit[key]
        rows.append(
            {
                "figure": f"{label} throughput",
                "value": f"{value:,} events/s",
                "target": "≥ 100,000 events/s",
                "met": value >= TARGET_EVENTS_PER_S,
            }
        )
    return rows


def print_table(rows: list[dict]) -> None:
    width = max(len(row["figure"]) for row in rows)
    print(f"\n{'figure':<{width}}  {'value':>22}  {'target':>20}  met")
    for row in rows:
        print(
            f"{row['figure']:<{width}}  {row['value']:>22}  {row['target']:>20}  "
            f"{'yes' if row['met'] else 'NO'}"
        )


CALIBRATION: dict[str, float] = {}


def main() -> None:
    rng = random.Random(ARGS.seed)
    code_at_start = code_fingerprint()
    generated: dict[str, Any] = {"reused": ARGS.reuse}
    if not ARGS.reuse:
        with phase("reset and migrate"):
            reset_database()
            call_command("migrate", verbosity=0)
        with phase("generate network and families"):
            network = create_network(rng)
            families = generate_families(rng, network, ARGS.families)
        with phase("generate audit events"):
            generate_events(rng, network, families, ARGS.events)
            del families
        with phase("vacuum analyze"):
            vacuum_analyze()
        generated.update(families=ARGS.families, events=ARGS.events)
    coach = User.objects.get(email=BENCH_COACH)
    project = Agency.objects.get(memberships__user=coach)
    CALIBRATION["before_requests"] = calibration_ms()
    with phase("page requests"):
        pages = page_benchmarks(rng, coach, project)
    with phase("write requests"):
        writes = write_benchmarks(rng, coach, project)
    CALIBRATION["after_requests"] = calibration_ms()
    with phase("seal and verify"):
        audit = seal_and_verify()
    changed = sorted(
        name for name, digest in code_fingerprint().items() if code_at_start.get(name) != digest
    )
    if changed:
        print(f"\nWARNING: measured code changed during the run: {', '.join(changed)}")
    rows = summary(pages, writes, audit)
    print_table(rows)
    result = {
        "summary": rows,
        "conditions": conditions(),
        "generated": generated,
        "code_changed_during_run": changed,
        "phases_s": PHASES,
        "load_average_after_phase": LOAD,
        "pages_ms": pages,
        "writes_ms": writes,
        "audit": audit,
    }
    ARGS.output.parent.mkdir(parents=True, exist_ok=True)
    ARGS.output.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"\nwritten to {ARGS.output}")


if __name__ == "__main__":
    main()
