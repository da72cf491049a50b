"""Step 5 benchmark: the DPO console's trail search at 5 million audit events.

    DIENSTWEG_DEBUG=true DATABASE_URL=postgres://root@127.0.0.1:5432/dienstweg_bench5 \
        .venv/bin/python bench/step5.py [--families 100000 --events 5000000]

1. Drops and creates the database named in DATABASE_URL (its name must contain "bench"),
   migrates it and generates 50 agencies (through the real action), USERS staff with their
   memberships and agency groups (bulk rows), five DPOs, FAMILIES families and EVENTS audit
   events. The families are plain rows made in the database (id, reference, owner,
   registration time; no household, no data key, nothing encrypted): the console never opens
   a family's data, it only looks a reference up. The events are made in the database too,
   INSERT ... SELECT from generate_series, in time order over two years, with the trail's
   indexes dropped during the load and built again afterwards (same names, same
   definitions); txid is the loading transaction's, as the column default fills it. They
   are not sealed: the search does not read seals. Then VACUUM (ANALYZE).
2. Times the search page /datenschutz/protokoll/ through django.test.Client in-process,
   signed in as a DPO with a verified second factor, DEBUG off: by family (the heaviest and
   typical ones), by person (the busiest and typical ones), by time window (a day, a
   month), combined, a deep keyset page (after following "weiter" 20 times), the other
   filters of the console, and the CSV export's time to its first event.
3. For each figure: the queries of one request and EXPLAIN (ANALYZE, BUFFERS) of the
   page's main query, checked for an index range scan on the trail without a Seq Scan or a
   large Sort. Prints a table and writes bench/results/step5.json.

--reuse skips step 1 and measures the database as it is (each run adds the DPO's own
console.searched events, a few thousand). Measurements run with DEBUG off, as in
production; DIENSTWEG_DEBUG=true only supplies the generated development secrets (pass
--debug to keep DEBUG on). Helpers shared with step 2 are imported from step2.py.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import platform
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "step5.json"

TARGET_P95_MS = 200.0  # the issue: console queries p95 below 200 ms
DEEP_PAGE_FOLLOWS = 20
BIG_SORT_ROWS = 1_000  # a Sort node above this many rows is "a big sort"

PROJECTS = 20
CITIES = ["Gladbeck", "Bottrop", "Dorsten", "Marl", "Herten", "Recklinghausen"]
KINDS = [  # 6 cities x 5 kinds = 30 authorities
    ("jobcenter", "sgb_ii", "Jobcenter {city}"),
    ("jugendamt", "sgb_viii", "Stadt {city}, Amt für Jugend und Familie"),
    ("sozialamt", "sgb_xii", "Stadt {city}, Sozialamt"),
    ("familienkasse", "other", "Familienkasse {city}"),
    ("but_office", "sgb_ii", "Stadt {city}, BuT-Stelle"),
]
# The DPO of the Jugendamt Gladbeck, who is also the network's DPO: the figures of step 5
# were taken with a DPO who saw the whole trail, which since step 7 is the network's DPO.
BENCH_DPO = "dpo.1@bench.example.org"

DAYS = 730  # the events cover the two years up to yesterday
EXISTING_SHARE = 0.4  # families registered in the year before those two years
FAMILY_SHARE, SECURITY_SHARE = 0.70, 0.20  # the rest (10 %) are other events
SKEWED_FAMILY_SHARE = 0.2  # of family events: Zipf-like over the families
SKEWED_ACTOR_SHARE = 0.5  # of all events: Zipf-like over the staff
SKEW_OFFSET = 10  # rank = c * ((n + c) / c) ** u - c: rank 0 gets ln(1.1) / ln(n / c + 1)
PERMUTE = 7919  # a prime: spreads the heavy ranks over families and staff
WORKING_HOURS_SHARE = 0.9  # events between 7 and 19 o'clock local time
CASE_WORK = "Fallarbeit im eigenen Projekt"
CONSENT = "Art. 6 Abs. 1 lit. a DSGVO"

# (action, share within its kind, target type, purpose). Target ids: the family itself for
# "dienstweg.family", the user for "dienstweg.user" and "user", else a fresh UUID.
FAMILY_ACTIONS = [
    ("family.viewed", 0.40, "dienstweg.family", CASE_WORK),
    ("referral.viewed", 0.15, "referrals.referral", CASE_WORK),
    ("message.read", 0.12, "messaging.message", CASE_WORK),
    ("thread.opened", 0.08, "messaging.thread", CASE_WORK),
    ("message.posted", 0.06, "messaging.message", CASE_WORK),
    ("application_tag.viewed", 0.05, "referrals.applicationtag", CASE_WORK),
    ("referral.sent", 0.04, "referrals.referral", CONSENT),
    ("referral.accepted", 0.03, "referrals.referral", ""),
    ("application_tag.status_changed", 0.02, "referrals.applicationtag", ""),
    ("consent.granted", 0.02, "dienstweg.consent", CONSENT),
    ("family.access_denied", 0.01, "dienstweg.family", ""),
    ("referral.completed", 0.01, "referrals.referral", ""),
    ("consent.revoked", 0.01, "dienstweg.consent", "Art. 7 Abs. 3 DSGVO"),
]
SECURITY_ACTIONS = [
    ("auth.login", 0.35, "", ""),
    ("auth.second_factor_passed", 0.33, "", ""),
    ("auth.logout", 0.15, "", ""),
    ("session.ended", 0.10, "dienstweg.user", ""),
    ("auth.login_failed", 0.05, "user", ""),
    ("auth.second_factor_failed", 0.02, "", ""),
]
OTHER_ACTIONS = [
    ("read.updated", 0.45, "messaging.thread", ""),
    ("message.updated", 0.25, "messaging.message", ""),
    ("access.revoked", 0.15, "referrals.referral", ""),
    ("membership.granted", 0.10, "dienstweg.membership", ""),
    ("membership.removed", 0.05, "dienstweg.membership", ""),
]
DETAILS = {
    "auth.second_factor_passed": '{"device": "AuthenticatorDevice"}',
    "auth.second_factor_failed": '{"throttled": false}',
    "session.ended": '{"count": 1}',
    "consent.granted": '{"valid_until": "2027-06-30"}',
    "referral.sent": '{"state": "sent"}',
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--families", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--chunks", type=int, default=10, help="time slices of the event load")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per figure")
    parser.add_argument("--warmup", type=int, default=30, help="untimed requests before each")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="skip reset and generation")
    parser.add_argument("--debug", action="store_true", help="keep DEBUG on while measuring")
    parser.add_argument(
        "--export-all-requests",
        type=int,
        default=5,
        help="timed exports of the whole trail (seconds each; 0: none)",
    )
    parser.add_argument("--only", default="", help="measure only figures whose key has this")
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

import django  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.http import QueryDict  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from audit.models import AuditEvent  # noqa: E402
from dienstweg import actions  # noqa: E402
from dienstweg.access import DPO_ROLES, dpo_scope_of  # noqa: E402
from dienstweg.models import Agency, Family, Membership, User  # noqa: E402
from privacy.search import TrailFilterForm, events_matching  # noqa: E402

EVENT_TABLE = AuditEvent._meta.db_table
BERLIN = "Europe/Berlin"


# 1. Data


def create_network(rng: random.Random, users_total: int) -> dict[str, Any]:
    """50 agencies through the real action (each with its group); staff, memberships and
    group rows in bulk (one password hash for all)."""
    projects = [
        actions.create_agency(
            name=f"Familiencoaching Projekt {number + 1:02d}",
            kind=Agency.Kind.PROJECT,
            rechtskreis=Agency.Rechtskreis.OTHER,
        )
        for number in range(PROJECTS)
    ]
    authorities = [
        actions.create_agency(name=template.format(city=city), kind=kind, rechtskreis=rechtskreis)
        for city in CITIES
        for kind, rechtskreis, template in KINDS
    ]
    people: list[tuple[str, str, Agency, str]] = [
        (
            f"dpo.{number}",
            "Datenschutz",
            authority,
            Membership.Role.NETWORK_DPO if number == 1 else Membership.Role.DPO,
        )
        for number, authority in enumerate(authorities[: len(KINDS)])
    ]
    # Projects: a quarter of the staff (coaches, a lead each); authorities the rest.
    per_project = max(2, round(users_total * 0.25 / PROJECTS))
    per_authority = max(2, round((users_total - PROJECTS * per_project) / len(authorities)))
    for number, project in enumerate(projects):
        people.append((f"lead.p{number}", "Leitung", project, Membership.Role.LEAD))
        people += [
            (f"coach.{number}.{index}", "Coach", project, Membership.Role.COACH)
            for index in range(per_project - 1)
        ]
    for number, authority in enumerate(authorities):
        people.append((f"lead.a{number}", "Leitung", authority, Membership.Role.LEAD))
        people += [
            (f"case.{number}.{index}", "Fallbearbeitung", authority, Membership.Role.CASEWORKER)
            for index in range(per_authority - 1)
        ]
    password = make_password("bench-" + hashlib.sha256(str(rng.random()).encode()).hexdigest())
    with transaction.atomic():
        users = User.objects.bulk_create(
            User(
                email=f"{login}@bench.example.org",
                full_name=f"{title} {rng.choice(step2.LAST)}",
                password=password,
            )
            for login, title, _agency, _role in people
        )
        Membership.objects.bulk_create(
            Membership(user=user, agency=agency, role=role)
            for user, (_login, _title, agency, role) in zip(users, people, strict=True)
        )
        User.groups.through.objects.bulk_create(
            User.groups.through(user_id=user.pk, group_id=agency.group_id)
            for user, (_login, _title, agency, _role) in zip(users, people, strict=True)
        )
    staff = [
        (user.pk, agency.pk)
        for user, (_login, _title, agency, role) in zip(users, people, strict=True)
        if role not in DPO_ROLES
    ]
    # The actor permutation below gives the heavy ranks to whoever is first here.
    rng.shuffle(staff)
    print(f"{len(projects)} projects, {len(authorities)} authorities, {len(users)} staff")
    return {"projects": [project.pk for project in projects], "staff": staff}


def first_day() -> date:
    return timezone.localdate() - timedelta(days=DAYS)


def generate_families(network: dict[str, Any], count: int) -> None:
    """COUNT families in registration order: EXISTING_SHARE in the year before the two
    years of events, the rest spread over them; references as actions._next_reference
    makes them (F-<year>-<number of the year, at least 4 digits>)."""
    existing = max(1, round(count * EXISTING_SHARE))
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [ARGS.seed / 1000])
        cursor.execute(
            """
            INSERT INTO dienstweg_family (
                id, reference, owner_id, data_key_id, address_enc, phone_enc, notes_enc,
                restriction_reason_enc, registered_at, registered_by_id
            )
            SELECT id, 'F-' || year || '-' || CASE WHEN number < 10000
                    THEN lpad(number::text, 4, '0') ELSE number::text END,
                owner, NULL, '', '', '', '', registered, NULL
            FROM (
                SELECT *, row_number() OVER (PARTITION BY year ORDER BY n) AS number
                FROM (
                    SELECT n, gen_random_uuid() AS id, registered,
                        extract(year FROM registered AT TIME ZONE %(tz)s)::int AS year,
                        (%(projects)s::bigint[])[1 + floor(random() * %(projects_n)s)::int]
                            AS owner
                    FROM (
                        SELECT n, CASE WHEN n <= %(existing)s
                            THEN %(start)s - interval '365 days'
                                + (n - 1) * (interval '365 days' / %(existing)s)
                            ELSE %(start)s + (n - %(existing)s - 1)
                                * (%(span)s / greatest(1, %(count)s - %(existing)s))
                            END AS registered
                        FROM generate_series(1, %(count)s) AS n
                    ) AS times
                ) AS drawn
            ) AS numbered
            """,
            {
                "tz": BERLIN,
                "projects": network["projects"],
                "projects_n": len(network["projects"]),
                "existing": existing,
                "count": count,
                "start": timezone.make_aware(datetime.combine(first_day(), datetime.min.time())),
                "span": timedelta(days=DAYS),
            },
        )
    print(f"  {count:,} families ({existing:,} registered before the two years)")


def _cases(shares: list[tuple[str, float, str, str]], column: str, pick: Callable) -> str:
    """A CASE over COLUMN (uniform in [0, 1)) choosing PICK(row) by the cumulative shares."""
    total = sum(share for _action, share, *_rest in shares)
    cumulative, branches = 0.0, []
    for row in shares[:-1]:
        cumulative += row[1] / total
        branches.append(f"WHEN {column} < {cumulative:.6f} THEN {pick(row)}")
    return f"CASE {' '.join(branches)} ELSE {pick(shares[-1])} END"


def _quoted(text: str) -> str:
    assert "'" not in text  # constants of this file only
    return f"'{text}'"


ALL_ACTIONS = FAMILY_ACTIONS + SECURITY_ACTIONS + OTHER_ACTIONS


def _by_action(values: dict[str, str], default: str) -> str:
    branches = " ".join(
        f"WHEN {_quoted(action)} THEN {value}" for action, value in values.items() if value
    )
    return f"CASE e.action {branches} ELSE {default} END" if branches else default


def event_sql() -> str:
    """One time slice of events, in time order. Parameters: first_id, last_id (the slice's
    numbers in generate_series), first_day, days (the slice), start (the two years' first
    midnight as timestamptz), seconds (of the two years), families, existing, staff."""
    action = (
        f"CASE WHEN kind = 'f' THEN {_cases(FAMILY_ACTIONS, 'ua', lambda r: _quoted(r[0]))} "
        f"WHEN kind = 's' THEN {_cases(SECURITY_ACTIONS, 'ua', lambda r: _quoted(r[0]))} "
        f"ELSE {_cases(OTHER_ACTIONS, 'ua', lambda r: _quoted(r[0]))} END"
    )
    target_type = _by_action({a: _quoted(t) for a, _s, t, _p in ALL_ACTIONS if t}, "''")
    purpose = _by_action({a: _quoted(p) for a, _s, _t, p in ALL_ACTIONS if p}, "''")
    details = _by_action({a: _quoted(d) for a, d in DETAILS.items()}, "'{}'")
    family_targets = [a for a, _s, t, _p in ALL_ACTIONS if t == "dienstweg.family"]
    user_targets = [a for a, _s, t, _p in ALL_ACTIONS if t in ("dienstweg.user", "user")]
    c = SKEW_OFFSET
    return f"""
        INSERT INTO {EVENT_TABLE} (
            occurred_at, actor_id, actor_label, agency_id, action, target_type, target_id,
            family_id, family_ref, purpose, request_id, ip, details
        )
        SELECT e.at,
            CASE WHEN e.action = 'auth.login_failed' THEN NULL ELSE s.user_id END,
            CASE WHEN e.action = 'auth.login_failed' THEN 'system'
                ELSE 'user:' || s.user_id END,
            CASE WHEN e.kind = 's' THEN NULL ELSE s.agency_id END,
            e.action,
            {target_type},
            CASE WHEN e.action IN ({", ".join(map(_quoted, family_targets))}) THEN f.id
                WHEN e.action IN ({", ".join(map(_quoted, user_targets))})
                    THEN s.user_id::text
                WHEN {target_type} = '' THEN ''
                ELSE gen_random_uuid()::text END,
            f.id, coalesce(f.ref, ''),
            {purpose},
            md5(e.g::text),
            ('10.20.' || (e.g %% 41) || '.' || (1 + (e.g / 41) %% 254))::inet,
            ({details})::jsonb
        FROM (
            SELECT g, kind, at, {action} AS action,
                CASE WHEN kind <> 'f' THEN NULL
                    WHEN uf < {1 - SKEWED_FAMILY_SHARE} THEN 1 + floor(uf2 * greatest(1,
                        %(existing)s + floor(extract(epoch FROM at - %(start)s)
                            / %(seconds)s * (%(families)s - %(existing)s))))::int
                    ELSE 1 + (least(%(existing)s - 1, floor({c} * power(
                        (%(existing)s + {c}) / {c}.0, uf2) - {c}))::bigint
                        * {PERMUTE} %% %(existing)s)::int
                END AS family_n,
                1 + ((CASE WHEN us < {1 - SKEWED_ACTOR_SHARE} THEN floor(us2 * %(staff)s)
                    ELSE least(%(staff)s - 1, floor({c} * power(
                        (%(staff)s + {c}) / {c}.0, us2) - {c})) END)::bigint
                    * {PERMUTE} %% %(staff)s)::int AS staff_n
            FROM (
                SELECT g,
                    CASE WHEN uk < {FAMILY_SHARE} THEN 'f'
                        WHEN uk < {FAMILY_SHARE + SECURITY_SHARE} THEN 's' ELSE 'o' END AS kind,
                    ua, uf, uf2, us, us2,
                    (day + CASE WHEN uh < {WORKING_HOURS_SHARE}
                        THEN interval '7 hours' + uh2 * interval '12 hours'
                        ELSE uh2 * interval '24 hours' END) AT TIME ZONE %(tz)s AS at
                FROM (
                    SELECT g, random() AS uk, random() AS ua, random() AS uf,
                        random() AS uf2, random() AS us, random() AS us2, random() AS uh,
                        random() AS uh2,
                        (%(first_day)s::date + floor(random() * %(days)s)::int)::timestamp
                            AS day
                    FROM generate_series(%(first_id)s, %(last_id)s) AS g
                ) AS raw
            ) AS timed
        ) AS e
        LEFT JOIN bench_family AS f ON f.n = e.family_n
        JOIN bench_staff AS s ON s.n = e.staff_n
        ORDER BY e.at, e.g
    """  # noqa: S608 (only constants of this file are formatted into it)


def trail_indexes() -> list[tuple[str, str]]:
    """The trail's secondary indexes as (name, CREATE INDEX statement), the primary key
    aside: what the migrations made."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes AS i
            JOIN pg_class AS c ON c.relname = i.indexname
            JOIN pg_index AS x ON x.indexrelid = c.oid
            WHERE i.tablename = %s AND NOT x.indisprimary ORDER BY i.indexname
            """,
            [EVENT_TABLE],
        )
        return list(cursor.fetchall())


def generate_events(network: dict[str, Any], families: int, count: int) -> dict[str, Any]:
    """COUNT events in the database, in CHUNKS time slices of the two years, each in time
    order (ids follow time, as in a live trail). Family events name a family registered
    before them; the skewed part draws from the families registered before the two years."""
    staff = network["staff"]
    existing = max(1, round(families * EXISTING_SHARE))
    start_day = first_day()
    start = timezone.make_aware(datetime.combine(start_day, datetime.min.time()))
    indexes = trail_indexes()
    timings: dict[str, float] = {}
    with connection.cursor() as cursor:
        cursor.execute("SET work_mem = '256MB'")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("SELECT setseed(%s)", [ARGS.seed / 1000 + 0.0001])
        cursor.execute(
            "CREATE TEMP TABLE bench_family AS SELECT row_number() OVER "
            "(ORDER BY registered_at, id) AS n, id::text AS id, reference AS ref "
            "FROM dienstweg_family"
        )
        cursor.execute("ALTER TABLE bench_family ADD PRIMARY KEY (n)")
        cursor.execute(
            "CREATE TEMP TABLE bench_staff (n int PRIMARY KEY, user_id bigint, agency_id bigint)"
        )
        cursor.executemany(
            "INSERT INTO bench_staff VALUES (%s, %s, %s)",
            [(n, user, agency) for n, (user, agency) in enumerate(staff, start=1)],
        )
        cursor.execute("ANALYZE bench_family")
        cursor.execute("ANALYZE bench_staff")
        # Autovacuum would analyze and vacuum the table in the middle of the load.
        cursor.execute(f"ALTER TABLE {EVENT_TABLE} SET (autovacuum_enabled = false)")
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        started = time.perf_counter()
        sql = event_sql()
        chunks = max(1, ARGS.chunks)
        for chunk in range(chunks):
            first_id, last_id = chunk * count // chunks + 1, (chunk + 1) * count // chunks
            day_from, day_to = chunk * DAYS // chunks, (chunk + 1) * DAYS // chunks
            with transaction.atomic():
                cursor.execute(
                    sql,
                    {
                        "first_id": first_id,
                        "last_id": last_id,
                        "first_day": start_day + timedelta(days=day_from),
                        "days": day_to - day_from,
                        "start": start,
                        "seconds": DAYS * step2.DAY,
                        "families": families,
                        "existing": existing,
                        "staff": len(staff),
                        "tz": BERLIN,
                    },
                )
            elapsed = time.perf_counter() - started
            print(
                f"  events {last_id:>9,} / {count:,}  {elapsed:6.1f} s  "
                f"({last_id / elapsed:,.0f}/s)",
                flush=True,
            )
        timings["insert_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        for name, definition in indexes:
            began = time.perf_counter()
            cursor.execute(definition)
            print(f"  index {name}: {time.perf_counter() - began:.1f} s", flush=True)
        timings["indexes_s"] = round(time.perf_counter() - started, 1)
        cursor.execute(f"ALTER TABLE {EVENT_TABLE} RESET (autovacuum_enabled)")
        cursor.execute("DROP TABLE bench_family, bench_staff")
        cursor.execute("RESET work_mem")
        cursor.execute("RESET maintenance_work_mem")
    assert [name for name, _ in trail_indexes()] == [name for name, _ in indexes]
    return {**timings, "indexes_rebuilt": [name for name, _ in indexes]}


# 2. Requests


def shares(kind: list[tuple[str, float, str, str]]) -> dict[str, float]:
    return {action: share for action, share, *_rest in kind}


def counts_by(column: str) -> list[tuple[Any, ...]]:
    """(value, label, events) for each family or actor, most events first."""
    label = "family_ref" if column == "family_id" else "actor_label"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column}, {label}, count(*) FROM {EVENT_TABLE} "  # noqa: S608
            f"WHERE {column} IS NOT NULL GROUP BY 1, 2 ORDER BY 3 DESC, 1"
        )
        return list(cursor.fetchall())


def typical(rows: list[tuple[Any, ...]], rng: random.Random, k: int) -> tuple[list, int]:
    """K values drawn from those with about the median number of events (±20 %)."""
    median = statistics.median(row[2] for row in rows)
    near = [row for row in rows if 0.8 * median <= row[2] <= 1.2 * median]
    return [rng.choice(near) for _index in range(k)], round(median)


def active_days(column: str, values: list[Any], rng: random.Random) -> list[date]:
    """For each of VALUES (family ids or actor ids), the local day of one of its events
    drawn at random: a window in which it has events to find."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column}, array_agg((occurred_at AT TIME ZONE %s)::date) "  # noqa: S608
            f"FROM {EVENT_TABLE} WHERE {column} = ANY(%s) GROUP BY 1",
            [BERLIN, sorted(set(values))],
        )
        days = {str(value): dates for value, dates in cursor.fetchall()}
    return [rng.choice(days[str(value)]) for value in values]


def month_of(day: date) -> tuple[date, date]:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return date(day.year, day.month, 1), following - timedelta(days=1)


def months_between(first: date, last: date) -> list[tuple[date, date]]:
    """Every whole calendar month from FIRST to LAST."""
    months = []
    day = date(first.year, first.month, 1)
    if day < first:
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    while True:
        following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        if following - timedelta(days=1) > last:
            return months
        months.append((day, following - timedelta(days=1)))
        day = following


NEXT_LINK = re.compile(r'<a href="\?([^"]+)" rel="next">')
EVENT_ROW = re.compile(r'<span class="help">#(\d+)</span>')


def shown(response: Any) -> list[int]:
    return [int(number) for number in EVENT_ROW.findall(response.content.decode())]


def follow(client: Client, query: str, times: int) -> tuple[str, int]:
    """The query of the page reached by following "weiter" TIMES times from QUERY (or as
    often as there is one: a small data set), and that page's number."""
    url = reverse("console:search")
    for number in range(times):
        response = client.get(f"{url}?{query}")
        assert response.status_code == 200, response.status_code
        found = NEXT_LINK.search(response.content.decode())
        if not found:
            return query, number + 1
        query = html.unescape(found.group(1))
    return query, times + 1


def first_event_ms(client: Client, url: str) -> float:
    """The export's time to its first event: the response, its header line and the
    first event's line (the header comes before the query runs)."""
    started = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    content = iter(response.streaming_content)
    next(content)
    next(content)
    elapsed = (time.perf_counter() - started) * 1000
    response.close()
    return elapsed


def measure(
    name: str, requests: list[Callable[[], float]], warmup: int | None = None
) -> dict[str, Any]:
    warmup = ARGS.warmup if warmup is None else warmup
    for request in requests[:warmup]:
        request()
    samples = [request() for request in requests[warmup:]]
    figures = step2.percentiles(samples)
    print(
        f"  {name:<44} p50 {figures['p50']:7.2f}  p95 {figures['p95']:7.2f}  "
        f"p99 {figures['p99']:7.2f} ms  (n={figures['n']})",
        flush=True,
    )
    return figures


def get(client: Client, url: str) -> Callable[[], float]:
    def request() -> float:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, f"{url}: {response.status_code}"
        return elapsed

    return request


def plan_check(plan: list[dict[str, Any]], *, whole_set: bool = False) -> dict[str, Any]:
    """What the JSON plan does with the trail: its scans (index, condition) and sorts.
    A page must be an index scan without a large Sort. An export (WHOLE_SET) reads every
    event of the filter anyway: an index scan with a Sort of that set is fine there."""
    scans: list[dict[str, Any]] = []
    sorts: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        kind = node["Node Type"]
        if node.get("Relation Name") == EVENT_TABLE or kind == "Bitmap Index Scan":
            scans.append(
                {
                    "node": kind,
                    "index": node.get("Index Name"),
                    "direction": node.get("Scan Direction"),
                    "index_cond": node.get("Index Cond"),
                    "filter": node.get("Filter"),
                    "rows": node.get("Actual Rows"),
                    "rows_removed_by_filter": node.get("Rows Removed by Filter", 0),
                }
            )
        if "Sort" in kind:
            sorts.append(
                {
                    "node": kind,
                    "rows": node.get("Actual Rows"),
                    "method": node.get("Sort Method"),
                    "space": node.get("Sort Space Type"),
                    "space_kb": node.get("Sort Space Used"),
                }
            )
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    seq = any(scan["node"] == "Seq Scan" for scan in scans)
    index = any(
        scan["node"] in ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
        and (scan["index"] or "").startswith("audit_event")
        for scan in scans
    )
    big_sort = any((sort["rows"] or 0) > BIG_SORT_ROWS for sort in sorts)
    return {
        "scans": scans,
        "sorts": sorts,
        "index_scan": index,
        "seq_scan": seq,
        "big_sort": big_sort,
        "whole_set": whole_set,
        "ok": index and not seq and (whole_set or not big_sort),
        "execution_ms": round(plan[0]["Execution Time"], 2),
        "planning_ms": round(plan[0]["Planning Time"], 2),
    }


DECLARE = re.compile(r'DECLARE "[^"]+" [A-Z ]*CURSOR (?:WITH(?:OUT)? HOLD )?FOR ')


def main_query(sql: str) -> str | None:
    """The page's (or export's) read of the trail itself, not the count or the insert; an
    export's server-side cursor without its DECLARE."""
    text = DECLARE.sub("", sql.lstrip(), count=1)
    if (
        text.startswith("SELECT")
        and f'FROM "{EVENT_TABLE}"' in text
        and "ORDER BY" in text
        and "COUNT(" not in text.upper()
    ):
        return text
    return None


def profile(client: Client, url: str, *, export: bool = False) -> dict[str, Any]:
    """The queries of one request (times by perf_counter) and the plans of its main query."""
    timings: list[float] = []

    def timed_query(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timings.append((time.perf_counter() - started) * 1000)

    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timed_query):
        response = client.get(url)
        if export:
            # Up to the first event: the cursor is declared then (and the whole-trail
            # export is not written out here).
            content = iter(response.streaming_content)
            next(content)
            next(content)
            response.close()
    sqls = [query["sql"] for query in captured.captured_queries]
    # BEGIN and COMMIT are logged but do not pass through the wrapper.
    measured = iter(timings)
    queries = [
        {
            "ms": round(
                float(query["time"]) * 1000
                if query["sql"] in ("BEGIN", "COMMIT")
                else next(measured, 0.0),
                3,
            ),
            "sql": query["sql"][:3000],
        }
        for query in captured.captured_queries
    ]
    main = next((found for sql in sqls if (found := main_query(sql))), None)
    assert main is not None, f"{url}: no query of the trail"
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + main)
        text = [row[0] for row in cursor.fetchall()]
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + main)
        raw = cursor.fetchone()[0]
    plan = raw if isinstance(raw, list) else json.loads(raw)
    check = plan_check(plan, whole_set=export)
    counted = None
    if export:
        counting = next((sql for sql in sqls if "COUNT(*)" in sql.upper()), None)
        if counting:
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + counting)
                counted = [row[0] for row in cursor.fetchall()]
    return {
        "url": url,
        "queries": len(queries),
        "sql_ms": round(sum(query["ms"] for query in queries), 2),
        "all": queries,
        "main_query": main,
        "plan": text,
        "check": check,
        **({"count_plan": counted} if counted is not None else {}),
    }


def matching(query: str) -> int:
    """How many events the filter of QUERY selects (the form as the view checks it)."""
    scope = dpo_scope_of(User.objects.get(email=BENCH_DPO))
    assert scope is not None
    form = TrailFilterForm(QueryDict(query), scope=scope)
    assert form.is_valid(), form.errors
    return events_matching(form.trail_filter(), scope=scope).count()


def scenarios(rng: random.Random, client: Client) -> dict[str, dict[str, Any]]:
    """Each figure: a label, the queries of its requests (rotating where a figure is about
    a kind of filter rather than one value), and what it is meant to show."""
    total = ARGS.warmup + ARGS.requests
    families = counts_by("family_id")
    actors = counts_by("actor_id")
    heavy_family, heavy_actor = families[0], actors[0]
    typical_families, family_median = typical(families, rng, total)
    typical_actors, actor_median = typical(actors, rng, total)
    first, last = first_day() + timedelta(days=1), timezone.localdate() - timedelta(days=1)
    days = [first + timedelta(days=rng.randrange((last - first).days + 1)) for _ in range(total)]
    months = months_between(first, last)
    some_months = [rng.choice(months) for _index in range(total)]
    # The combinations with a typical family or person (and the busiest person's day) look
    # at a window in which it has events: a month or day drawn from its own events.
    family_months = [
        month_of(day) for day in active_days("family_id", [r[0] for r in typical_families], rng)
    ]
    actor_months = [
        month_of(day) for day in active_days("actor_id", [r[0] for r in typical_actors], rng)
    ]
    actor_days = active_days("actor_id", [heavy_actor[0]] * total, rng)
    agencies = busiest_agencies()
    print(
        f"  heaviest family {heavy_family[1]}: {heavy_family[2]:,} events; median family "
        f"{family_median}; busiest actor {heavy_actor[1]}: {heavy_actor[2]:,} events; "
        f"median actor {actor_median}",
        flush=True,
    )

    def q(**params: Any) -> str:
        return urlencode({key: value for key, value in params.items() if value is not None})

    def window(span: tuple[date, date]) -> dict[str, str]:
        return {"date_from": span[0].isoformat(), "date_to": span[1].isoformat()}

    cases: dict[str, dict[str, Any]] = {
        "no_filter": {
            "label": "no filter, page 1",
            "queries": [q()] * total,
        },
        "family_heavy": {
            "label": f"family, heaviest ({heavy_family[2]:,} events)",
            "queries": [q(family=heavy_family[1])] * total,
        },
        "family_typical": {
            "label": f"family, typical (~{family_median} events, rotating)",
            "queries": [q(family=row[1]) for row in typical_families],
        },
        "actor_heavy": {
            "label": f"person, busiest ({heavy_actor[2]:,} events)",
            "queries": [q(actor=heavy_actor[0])] * total,
        },
        "actor_typical": {
            "label": f"person, typical (~{actor_median:,} events, rotating)",
            "queries": [q(actor=row[0]) for row in typical_actors],
        },
        "window_day": {
            "label": "time window: one day (random days)",
            "queries": [q(**window((day, day))) for day in days],
        },
        "window_month": {
            "label": "time window: one month (random months)",
            "queries": [q(**window(month)) for month in some_months],
        },
        "family_heavy_month": {
            "label": "heaviest family + one month (random months)",
            "queries": [q(family=heavy_family[1], **window(month)) for month in some_months],
        },
        "family_typical_month": {
            "label": "typical family + one month of its events",
            "queries": [
                q(family=row[1], **window(month))
                for row, month in zip(typical_families, family_months, strict=True)
            ],
        },
        "actor_heavy_month": {
            "label": "busiest person + one month (random months)",
            "queries": [q(actor=heavy_actor[0], **window(month)) for month in some_months],
        },
        "actor_heavy_day": {
            "label": "busiest person + one day of hers",
            "queries": [q(actor=heavy_actor[0], **window((day, day))) for day in actor_days],
        },
        "actor_typical_month": {
            "label": "typical person + one month of hers",
            "queries": [
                q(actor=row[0], **window(month))
                for row, month in zip(typical_actors, actor_months, strict=True)
            ],
        },
    }
    deep = {
        "deep_no_filter": ("no filter", q()),
        "deep_actor_heavy": ("busiest person", q(actor=heavy_actor[0])),
        "deep_family_heavy": ("heaviest family", q(family=heavy_family[1])),
    }
    for key, (label, base) in deep.items():
        query, number = follow(client, base, DEEP_PAGE_FOLLOWS)
        cases[key] = {
            "label": f"{label}, page {number} (keyset, via 'weiter')",
            "queries": [query] * total,
        }
    busy_agency = agencies[0]
    cases.update(
        {
            "agency_busy": {
                "label": f"agency, busiest ({busy_agency[1]:,} events)",
                "queries": [q(agency=busy_agency[0])] * total,
            },
            "action_common": {
                "label": "action auth.login",
                "queries": [q(action="auth.login")] * total,
            },
            "action_rare": {
                "label": "action consent.revoked",
                "queries": [q(action="consent.revoked")] * total,
            },
            "action_prefix_common": {
                "label": "action prefix 'auth.'",
                "queries": [q(action="auth.")] * total,
            },
            "action_prefix_rare": {
                "label": "action prefix 'membership.'",
                "queries": [q(action="membership.")] * total,
            },
            "action_prefix_rare_month": {
                "label": "action prefix 'consent.' + one month",
                "queries": [q(action="consent.", **window(month)) for month in some_months],
            },
            "target_family": {
                "label": "object: heaviest family's record",
                "queries": [q(target_type="dienstweg.family", target_id=heavy_family[0])] * total,
            },
        }
    )
    return {
        "cases": cases,
        "subjects": {
            "heavy_family": {"reference": heavy_family[1], "events": heavy_family[2]},
            "family_events_median": family_median,
            "family_events_top10": [row[2] for row in families[:10]],
            "families_with_1000_or_more": sum(1 for row in families if row[2] >= 1000),
            "heavy_actor": {"actor": heavy_actor[1], "events": heavy_actor[2]},
            "actor_events_median": actor_median,
            "actor_events_top10": [row[2] for row in actors[:10]],
            "busy_agency": {"id": busy_agency[0], "events": busy_agency[1]},
            "months": len(months),
            "days": (last - first).days + 1,
        },
    }


def busiest_agencies() -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT agency_id, count(*) FROM {EVENT_TABLE} "  # noqa: S608
            "WHERE agency_id IS NOT NULL GROUP BY 1 ORDER BY 2 DESC"
        )
        return list(cursor.fetchall())


# Key: (the figure whose filters it exports, label, requests: None = --warmup/--requests).
EXPORTS: dict[str, tuple[str, str, int | None]] = {
    "export_family_heavy": ("family_heavy", "CSV export, heaviest family: first event", None),
    "export_window_day": ("window_day", "CSV export, one day: first event", None),
    "export_actor_heavy_month": (
        "actor_heavy_month",
        "CSV export, busiest person + month: first event",
        None,
    ),
    "export_window_month": ("window_month", "CSV export, one month: first event", None),
    # Seconds each (the whole trail): a few requests, no warm-up.
    "export_no_filter": ("no_filter", "CSV export, whole trail: first event", 0),
}


def run_requests(client: Client, cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    search = reverse("console:search")
    export = reverse("console:export", args=["csv"])
    results: dict[str, Any] = {}
    for key, case in cases.items():
        if ARGS.only and ARGS.only not in key:
            continue
        urls = [f"{search}?{query}" for query in case["queries"]]
        first = client.get(urls[0])
        rows = shown(first)
        assert first.status_code == 200 and rows, f"{key}: {first.status_code}, empty page"
        started = time.perf_counter()
        figures = measure(case["label"], [get(client, url) for url in urls])
        results[key] = {
            "label": case["label"],
            "example": case["queries"][0],
            "distinct_queries": len(set(case["queries"])),
            "rows_on_page": len(rows),
            "matching_events": matching(case["queries"][0]),
            "ms": figures,
            "seconds": round(time.perf_counter() - started, 1),
            "profile": profile(client, urls[0]),
        }
    for key, (source, label, requests) in EXPORTS.items():
        if ARGS.only and ARGS.only not in key:
            continue
        if requests == 0:
            requests = ARGS.export_all_requests
            if not requests:
                continue
            label = f"{label} (n={requests})"
        queries = cases[source]["queries"][: requests or None]
        urls = [f"{export}?{query}" for query in queries]
        figures = measure(
            label,
            [lambda url=url: first_event_ms(client, url) for url in urls],
            0 if requests else None,
        )
        results[key] = {
            "label": label,
            "example": queries[0],
            "distinct_queries": len(set(queries)),
            "matching_events": matching(queries[0]),
            "ms": figures,
            "profile": profile(client, urls[0], export=True),
        }
    return results


# 3. Report

CODE_MEASURED = [
    "privacy/search.py",
    "privacy/views/trail.py",
    "privacy/access.py",
    "privacy/urls.py",
    "privacy/export.py",
    "privacy/templates/console/search.html",
    "audit/models.py",
    "dienstweg/paging.py",
    "audit/trail.py",
]


def code_fingerprint() -> dict[str, str]:
    return step2.code_fingerprint(CODE_MEASURED)


def cpu_busy(seconds: float = 3.0) -> float:
    """Share of both CPUs busy over SECONDS (other helpers run tests on this machine)."""

    def sample() -> tuple[int, int]:
        fields = [int(value) for value in Path("/proc/stat").read_text().split()[1:9]]
        idle = fields[3] + fields[4]
        return sum(fields), idle

    total_a, idle_a = sample()
    time.sleep(seconds)
    total_b, idle_b = sample()
    return round(1 - (idle_b - idle_a) / max(1, total_b - total_a), 3)


def conditions(busy: dict[str, float]) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
        settings_shown = {}
        for name in (
            "shared_buffers",
            "work_mem",
            "effective_cache_size",
            "random_page_cost",
            "synchronous_commit",
            "lc_collate",
            "default_statistics_target",
        ):
            cursor.execute(f"SHOW {name}")
            settings_shown[name] = cursor.fetchone()[0]
        cursor.execute("SELECT pg_database_size(current_database())")
        database = cursor.fetchone()[0]
        cursor.execute(
            "SELECT pg_relation_size(%s), pg_total_relation_size(%s)", [EVENT_TABLE, EVENT_TABLE]
        )
        heap, table_total = cursor.fetchone()
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
            "WHERE indrelid = %s::regclass ORDER BY 1",
            [EVENT_TABLE],
        )
        indexes = {name: round(size / 2**20) for name, size in cursor.fetchall()}
        cursor.execute(f"SELECT count(*), min(occurred_at), max(occurred_at) FROM {EVENT_TABLE}")  # noqa: S608
        events, oldest, newest = cursor.fetchone()
        cursor.execute(
            f"SELECT action, count(*) FROM {EVENT_TABLE} GROUP BY 1 ORDER BY 2 DESC"  # noqa: S608
        )
        by_action = dict(cursor.fetchall())
        cursor.execute(
            f"SELECT count(*) FILTER (WHERE family_id IS NOT NULL), "  # noqa: S608
            f"count(*) FILTER (WHERE extract(hour FROM occurred_at AT TIME ZONE %s) "
            f"BETWEEN 7 AND 18) FROM {EVENT_TABLE}",
            [BERLIN],
        )
        with_family, working_hours = cursor.fetchone()
    return {
        "date": timezone.now().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": server,
        **settings_shown,
        "database_mb": round(database / 2**20),
        "events_table_mb": round(heap / 2**20),
        "events_table_with_indexes_mb": round(table_total / 2**20),
        "event_indexes_mb": indexes,
        "debug": settings.DEBUG,
        "conn_max_age": connection.settings_dict.get("CONN_MAX_AGE"),
        "page_size": settings.AUDIT_CONSOLE_PAGE_SIZE,
        "new_connection_ms": step2.connect_ms(),
        "python_calibration_ms": step2.CALIBRATION,
        "cpu_busy_before": busy,
        "code": code_fingerprint(),
        "client": "django.test.Client in-process, one persistent DB connection, "
        "time = request in, response out (export: to its first event line)",
        "dataset": {
            "agencies": Agency.objects.count(),
            "staff": User.objects.count(),
            "memberships": Membership.objects.count(),
            "families": Family.objects.count(),
            "audit_events": events,
            "oldest_event": oldest.isoformat(),
            "newest_event": newest.isoformat(),
            "events_with_family": with_family,
            "events_in_working_hours": working_hours,
            "events_by_action": by_action,
        },
    }


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, result in results.items():
        check = result["profile"]["check"]
        rows.append(
            {
                "key": key,
                "figure": result["label"],
                "matching": result["matching_events"],
                "p50": result["ms"]["p50"],
                "p95": result["ms"]["p95"],
                "p99": result["ms"]["p99"],
                "sql_ms": result["profile"]["sql_ms"],
                "main_query_ms": check["execution_ms"],
                "index": ",".join(
                    sorted({scan["index"] for scan in check["scans"] if scan["index"]})
                )
                or "-",
                "plan_ok": check["ok"],
                "p95_met": result["ms"]["p95"] < TARGET_P95_MS,
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    width = max(len(row["figure"]) for row in rows)
    print(
        f"\n{'ms':<{width}}  {'events':>9}  {'p50':>7} {'p95':>7} {'p99':>7}  {'SQL':>6} "
        f"{'main':>6}  {'index':<26} plan  p95<200"
    )
    for row in rows:
        print(
            f"{row['figure']:<{width}}  {row['matching']:>9,}  {row['p50']:7.2f} "
            f"{row['p95']:7.2f} {row['p99']:7.2f}  {row['sql_ms']:6.2f} "
            f"{row['main_query_ms']:6.2f}  {row['index']:<26} "
            f"{'ok' if row['plan_ok'] else 'NO':<4}  {'yes' if row['p95_met'] else 'NO'}"
        )


def main() -> None:
    rng = random.Random(ARGS.seed)
    code_at_start = code_fingerprint()
    generated: dict[str, Any] = {"reused": ARGS.reuse}
    if not ARGS.reuse:
        with step2.phase("reset and migrate"):
            step2.reset_database()
            call_command("migrate", verbosity=0)
        with step2.phase("generate network and families"):
            network = create_network(rng, ARGS.users)
            generate_families(network, ARGS.families)
        with step2.phase("generate audit events"):
            generated.update(generate_events(network, ARGS.families, ARGS.events))
        with step2.phase("vacuum analyze"):
            step2.vacuum_analyze()
        generated.update(
            families=ARGS.families,
            events=ARGS.events,
            users=ARGS.users,
            generation_s={
                name: seconds
                for name, seconds in step2.PHASES.items()
                if name != "reset and migrate"
            },
            mix={
                "family_share": FAMILY_SHARE,
                "security_share": SECURITY_SHARE,
                "other_share": round(1 - FAMILY_SHARE - SECURITY_SHARE, 2),
                "family_actions": shares(FAMILY_ACTIONS),
                "security_actions": shares(SECURITY_ACTIONS),
                "other_actions": shares(OTHER_ACTIONS),
                "skewed_family_share": SKEWED_FAMILY_SHARE,
                "skewed_actor_share": SKEWED_ACTOR_SHARE,
                "working_hours_share": WORKING_HOURS_SHARE,
                "days": DAYS,
            },
        )
    dpo = User.objects.get(email=BENCH_DPO)
    # A database generated before step 7 has her as the Jugendamt's DPO only.
    Membership.objects.filter(user=dpo).update(role=Membership.Role.NETWORK_DPO)
    client = step2.verified_client(dpo)
    busy = {"before_requests": cpu_busy()}
    step2.CALIBRATION["before_requests"] = step2.calibration_ms()
    with step2.phase("choose filters"):
        chosen = scenarios(rng, client)
    with step2.phase("console requests"):
        results = run_requests(client, chosen["cases"])
        extras: dict[str, Any] = {}
        if not ARGS.only or ARGS.only in "overview":
            # Not a search: the overview counts the unsealed tail, which here is the whole
            # trail (nothing is sealed); a live trail is sealed every few minutes.
            extras["overview_nothing_sealed"] = measure(
                "overview page, 5M events unsealed (n=5)",
                [get(client, reverse("console:home"))] * 5,
                0,
            )
    step2.CALIBRATION["after_requests"] = step2.calibration_ms()
    busy["after_requests"] = cpu_busy()
    changed = sorted(
        name for name, digest in code_fingerprint().items() if code_at_start.get(name) != digest
    )
    if changed:
        print(f"\nWARNING: measured code changed during the run: {', '.join(changed)}")
    rows = summary(results)
    print_table(rows)
    result = {
        "summary": rows,
        "targets": {"p95_ms_below": TARGET_P95_MS},
        "conditions": conditions(busy),
        "generated": generated,
        "subjects": chosen["subjects"],
        "arguments": {key: str(value) for key, value in vars(ARGS).items()},
        "code_changed_during_run": changed,
        "phases_s": step2.PHASES,
        "load_average_after_phase": step2.LOAD,
        "figures": results,
        "extras_ms": extras,
    }
    ARGS.output.parent.mkdir(parents=True, exist_ok=True)
    ARGS.output.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"\nwritten to {ARGS.output}")


if __name__ == "__main__":
    main()
