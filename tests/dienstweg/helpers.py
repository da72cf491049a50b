"""Lift the triggers that keep consent rows unchanged (dienstweg migration 0010), as the
tables' owner could: to age a consent in a test, and to empty the tables after a test
that committed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

CONSENT_TRIGGERS = import_module("dienstweg.migrations.0011_consent_unchangeable").SQLITE_TRIGGERS


@contextmanager
def consent_triggers_lifted() -> Iterator[CursorWrapper]:
    """A cursor, and the ORM, for which the consent triggers do not fire (PostgreSQL:
    session_replication_role = replica for one transaction; SQLite: drop the triggers and
    create them again afterwards)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
            yield cursor
            return
        for name in CONSENT_TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        try:
            yield cursor
        finally:
            for sql in CONSENT_TRIGGERS.values():
                cursor.execute(sql)


def empty_consent_tables() -> None:
    """Remove every consent before the test database is flushed: SQLite's flush deletes
    row by row, which the triggers refuse (PostgreSQL's TRUNCATE does not fire them)."""
    if connection.vendor == "postgresql":
        return
    with consent_triggers_lifted() as cursor:
        for table in (
            "referrals_referral_consents",
            "conferences_invitation_consents",
            "conferences_consultationrecipient_consents",
            "dienstweg_consent_recipients",
        ):
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 (our tables)
        cursor.execute("DELETE FROM dienstweg_consent")
