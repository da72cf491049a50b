"""Throughput of the audit sealer and verifier, on a throw-away database.

    DIENSTWEG_DEBUG=1 .venv/bin/python bench/audit_seal_verify.py --events 200000
    DIENSTWEG_DEBUG=1 DATABASE_URL=postgres://root@127.0.0.1:5432/test \
        .venv/bin/python bench/audit_seal_verify.py --events 200000

Creates and migrates a database of its own (the audit tables are append-only, so it would
never get them empty again), writes EVENTS events in transactions of 1,000, then times
seal_pending() and verify() and drops the database. Each figure comes with the conditions
it was measured under: the load average, and two fixed workloads timed in the same run (a
pure-Python loop, and PostgreSQL hashing rows on one backend), because the shared machine's
speed varies up to threefold between runs.

--keep-events (PostgreSQL) keeps the written, unsealed events as a template database and
clones it on the next run instead of writing them again (`--drop-events` removes it).
--independent also times `audit_verify --independent` (every hash in Python: slow).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import timeit
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A throw-away database gets a throw-away anchor for its seals' heads (audit/anchor.py).
os.environ.setdefault("DIENSTWEG_AUDIT_ANCHOR_DIR", tempfile.mkdtemp(prefix="bench-anchor-"))

import django

django.setup()

from django.db import connection, connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from audit.models import AuditEvent  # noqa: E402
from audit.sealing import seal_pending  # noqa: E402
from audit.verify import verify  # noqa: E402


def write_events(count: int, per_transaction: int = 1_000) -> None:
    """COUNT events, in transactions of PER_TRANSACTION (as many writers would leave them)."""
    if connection.vendor == "postgresql":
        _write_in_sql(count, per_transaction)
    else:
        _write_with_orm(count, per_transaction)


def _write_in_sql(count: int, per_transaction: int) -> None:
    # generate_series is 20 times faster than bulk_create and fills the same columns.
    for start in range(0, count, per_transaction):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO audit_auditevent (occurred_at, actor_id, actor_label, agency_id, "
                "action, target_type, target_id, family_id, family_ref, purpose, request_id, "
                "ip, details) "
                "SELECT now(), n %% 97, 'user:' || (n %% 97), n %% 11, 'family.viewed', "
                "'dienstweg.family', md5((n %% 500)::text)::uuid::text, "
                "md5((n %% 500)::text)::uuid::text, 'F-2026-' || lpad((n %% 500)::text, 4, '0'), "
                "'Art. 6 Abs. 1 lit. e DSGVO', md5(n::text), '192.0.2.10', "
                "jsonb_build_object('consent_id', n, 'state', 'active') "
                "FROM generate_series(%s, %s) AS n",
                [start, min(start + per_transaction, count) - 1],
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")  # as autovacuum would after such a load


def _write_with_orm(count: int, per_transaction: int) -> None:
    families = [str(uuid.uuid4()) for _ in range(500)]
    for start in range(0, count, per_transaction):
        with transaction.atomic():
            AuditEvent.objects.bulk_create(
                AuditEvent(
                    occurred_at=timezone.now(),
                    actor_id=number % 97,
                    actor_label=f"user:{number % 97}",
                    agency_id=number % 11,
                    action="family.viewed",
                    target_type="dienstweg.family",
                    target_id=families[number % 500],
                    family_id=families[number % 500],
                    family_ref=f"F-2026-{number % 500:04d}",
                    purpose="Art. 6 Abs. 1 lit. e DSGVO",
                    request_id=uuid.uuid4().hex,
                    ip="192.0.2.10",
                    details={"consent_id": number, "state": "active"},
                )
                for number in range(start, min(start + per_transaction, count))
            )


TEMPLATE = "dienstweg_bench_audit_events"  # --keep-events: the written events, unsealed


def python_calibration_ms() -> float:
    """A fixed pure-Python workload (as bench/step2.py's): the machine's speed right now."""
    return round(min(timeit.repeat("sum(range(1000))", number=10_000, repeat=5)) * 1000, 1)


def database_calibration_ms() -> float:
    """A fixed workload on one PostgreSQL backend, like the sealer's: canonical text and
    SHA-256 of 100,000 generated rows."""
    samples = []
    with connection.cursor() as cursor:
        for _index in range(3):
            started = time.perf_counter()
            cursor.execute(
                "SELECT count(sha256(convert_to(to_json('user:' || n)::text || "
                "to_char(now(), 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || md5(n::text), 'UTF8'))) "
                "FROM generate_series(1, 100000) AS n"
            )
            cursor.fetchone()
            samples.append(time.perf_counter() - started)
    return round(min(samples) * 1000, 1)


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def conditions(label: str) -> str:
    database = f", PostgreSQL calibration {database_calibration_ms()} ms"
    if connection.vendor != "postgresql":
        database = ""
    return (
        f"[{label}: load {load()}, Python calibration {python_calibration_ms()} ms{database}, "
        f"{os.cpu_count()} CPUs]"
    )


def _admin(sql: str) -> None:
    """SQL that must not run in the benchmark's own database (CREATE/DROP DATABASE)."""
    connection.close()
    connection.close_pool()  # the pool's idle connections are sessions in the database too
    with connection._nodb_cursor() as cursor:
        cursor.execute(sql)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--keep-events", action="store_true")
    parser.add_argument("--drop-events", action="store_true")
    parser.add_argument("--independent", action="store_true")
    arguments = parser.parse_args()
    postgresql = connection.vendor == "postgresql"
    if arguments.drop_events:
        _admin(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        return
    settings_dict = connection.settings_dict
    settings_dict["TEST"]["NAME"] = "dienstweg_bench_audit" if postgresql else None
    keep = arguments.keep_events and postgresql
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        if keep and _events_kept(arguments.events):
            _admin(f"DROP DATABASE {name}")
            _admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
            print(f"{connection.vendor}: {arguments.events} events cloned from {TEMPLATE}")
        else:
            started = time.perf_counter()
            write_events(arguments.events)
            written = time.perf_counter() - started
            print(f"{connection.vendor}: {arguments.events} events written in {written:.1f} s")
            if keep:
                _admin(f"DROP DATABASE IF EXISTS {TEMPLATE}")
                _admin(f"CREATE DATABASE {TEMPLATE} TEMPLATE {name}")
                _admin(f"COMMENT ON DATABASE {TEMPLATE} IS '{arguments.events} events'")

        print(conditions("before sealing"))
        started = time.perf_counter()
        seals = seal_pending()
        sealed = time.perf_counter() - started
        count = sum(seal.event_count for seal in seals)
        assert count == arguments.events, f"sealed {count} of {arguments.events}"
        rate = count / sealed
        print(f"seal:   {count} events, {len(seals)} seals in {sealed:.2f} s = {rate:,.0f}/s")

        print(conditions("after sealing"))
        runs = [("verify", None)]
        if arguments.independent:
            runs.append(("verify --independent", False))
        for label, in_database in runs:
            started = time.perf_counter()
            report = verify(in_database=in_database)
            checked = time.perf_counter() - started
            assert report.ok, report.lines(limit=10)
            rate = report.sealed_events / checked
            print(f"{label}: {report.sealed_events} events in {checked:.2f} s = {rate:,.0f}/s")
            print(conditions(f"after {label}"))
        print(report.summary())
    finally:
        connections.close_all()
        if postgresql:
            connection.close_pool()
        connection.creation.destroy_test_db(name, verbosity=0)


def _events_kept(count: int) -> bool:
    """Whether the template holds COUNT events (a template of another size is rebuilt)."""
    with connection._nodb_cursor() as cursor:
        cursor.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [TEMPLATE],
        )
        row = cursor.fetchone()
    return row is not None and row[0] == f"{count} events"


if __name__ == "__main__":
    main()
