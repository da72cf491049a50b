"""Throughput of the audit sealer and verifier, on a throw-away database.

    DIENSTWEG_DEBUG=1 .venv/bin/python bench/audit_seal_verify.py --events 200000
    DIENSTWEG_DEBUG=1 DATABASE_URL=postgres://root@127.0.0.1:5432/test \
        .venv/bin/python bench/audit_seal_verify.py --events 200000

Creates and migrates a database of its own (the audit tables are append-only, so it would
never get them empty again), writes EVENTS events in transactions of 1,000, then times
seal_pending() and verify() and drops the database.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A throw-away database gets a throw-away anchor for its seals' heads (audit/anchor.py).
os.environ.setdefault("DIENSTWEG_AUDIT_ANCHOR_DIR", tempfile.mkdtemp(prefix="bench-anchor-"))

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    arguments = parser.parse_args()
    settings_dict = connection.settings_dict
    settings_dict["TEST"]["NAME"] = (
        "dienstweg_bench_audit" if connection.vendor == "postgresql" else None
    )
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        started = time.perf_counter()
        write_events(arguments.events)
        written = time.perf_counter() - started
        print(f"{connection.vendor}: {arguments.events} events written in {written:.1f} s")

        started = time.perf_counter()
        seals = seal_pending()
        sealed = time.perf_counter() - started
        count = sum(seal.event_count for seal in seals)
        assert count == arguments.events, f"sealed {count} of {arguments.events}"
        rate = count / sealed
        print(f"seal:   {count} events, {len(seals)} seals in {sealed:.2f} s = {rate:,.0f}/s")

        for label, in_database in (("verify", None), ("verify --independent", False)):
            started = time.perf_counter()
            report = verify(in_database=in_database)
            checked = time.perf_counter() - started
            assert report.ok, report.lines(limit=10)
            rate = report.sealed_events / checked
            print(f"{label}: {report.sealed_events} events in {checked:.2f} s = {rate:,.0f}/s")
        print(report.summary())
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
