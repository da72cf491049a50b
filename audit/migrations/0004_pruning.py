"""Checkpoints of pruning runs and the pruning permit; the one deletion the trail allows.

Events: UPDATE stays rejected always. A DELETE passes only inside the pruning
transaction (a row in audit_auditprunepermit; on PostgreSQL one written by this very
transaction) and only for a sealed event: at or below the newest seal's last position,
(txid, id) on PostgreSQL, id on SQLite. audit/pruning.py writes the signed checkpoint in
the same transaction, which is how `manage.py audit_verify` tells that deletion from any
other. Checkpoints: append-only like the seals (no UPDATE, DELETE, or TRUNCATE of rows).

Trap (as in 0002): on SQLite, Django alters a table by building a new one and dropping
the old, which drops these triggers. A later migration that alters these tables must run
SQLITE_CREATE of 0002 and of this one again (tests/audit/test_append_only.py fails if
a trigger is gone). tests/audit/helpers.py lifts and restores SQLITE_TRIGGERS.
"""

from django.db import migrations, models

import audit.models

REJECTED = "audit trail is append-only: DELETE on audit_auditevent rejected"

POSTGRESQL_CREATE = [
    f"""
    CREATE FUNCTION audit_event_prune_only() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        sealed boolean;
    BEGIN
        IF EXISTS (
            SELECT 1 FROM audit_auditprunepermit
            WHERE txid = pg_catalog.txid_current()
        ) THEN
            -- NULL (no seal yet, an event without txid) counts as not sealed.
            SELECT (OLD.txid, OLD.id) <= (seal.last_txid, seal.last_event_id) INTO sealed
            FROM audit_auditseal AS seal ORDER BY seal.number DESC LIMIT 1;
            IF sealed THEN
                RETURN OLD;
            END IF;
        END IF;
        RAISE EXCEPTION USING
            MESSAGE = '{REJECTED}',
            ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    "DROP TRIGGER audit_auditevent_append_only ON audit_auditevent",
    "CREATE TRIGGER audit_auditevent_append_only BEFORE UPDATE ON audit_auditevent "
    "FOR EACH ROW EXECUTE FUNCTION audit_reject_change()",
    "CREATE TRIGGER audit_auditevent_prune_only BEFORE DELETE ON audit_auditevent "
    "FOR EACH ROW EXECUTE FUNCTION audit_event_prune_only()",
    # The functions of 0002.
    "CREATE TRIGGER audit_auditcheckpoint_append_only BEFORE UPDATE OR DELETE "
    "ON audit_auditcheckpoint FOR EACH ROW EXECUTE FUNCTION audit_reject_change()",
    "CREATE TRIGGER audit_auditcheckpoint_no_truncate BEFORE TRUNCATE ON audit_auditcheckpoint "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_truncate()",
]

POSTGRESQL_DROP = [
    "DROP TRIGGER audit_auditcheckpoint_no_truncate ON audit_auditcheckpoint",
    "DROP TRIGGER audit_auditcheckpoint_append_only ON audit_auditcheckpoint",
    "DROP TRIGGER audit_auditevent_prune_only ON audit_auditevent",
    "DROP TRIGGER audit_auditevent_append_only ON audit_auditevent",
    "CREATE TRIGGER audit_auditevent_append_only BEFORE UPDATE OR DELETE ON audit_auditevent "
    "FOR EACH ROW EXECUTE FUNCTION audit_reject_change()",
    "DROP FUNCTION audit_event_prune_only()",
]


def _reject(table: str, operation: str) -> str:
    return (
        f"BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: {operation} on {table} "
        "rejected'); END"
    )


# Every append-only trigger on SQLite once this migration has run, by name.
SQLITE_TRIGGERS = {
    **{
        f"{table}_no_{operation.lower()}": (
            f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
            + _reject(table, operation)
        )
        for table, operations in (
            ("audit_auditevent", ("UPDATE",)),
            ("audit_auditseal", ("UPDATE", "DELETE")),
            ("audit_auditcheckpoint", ("UPDATE", "DELETE")),
        )
        for operation in operations
    },
    # COALESCE: without a seal nothing is sealed (a bare comparison with NULL would let
    # the DELETE through, as WHEN NULL does not fire the trigger).
    "audit_auditevent_no_delete": (
        "CREATE TRIGGER audit_auditevent_no_delete BEFORE DELETE ON audit_auditevent "
        "WHEN NOT EXISTS (SELECT 1 FROM audit_auditprunepermit) "
        "OR OLD.id > COALESCE((SELECT last_event_id FROM audit_auditseal "
        "ORDER BY number DESC LIMIT 1), 0) " + _reject("audit_auditevent", "DELETE")
    ),
}

SQLITE_CREATE = [
    "DROP TRIGGER audit_auditevent_no_delete",
    SQLITE_TRIGGERS["audit_auditevent_no_delete"],
    SQLITE_TRIGGERS["audit_auditcheckpoint_no_update"],
    SQLITE_TRIGGERS["audit_auditcheckpoint_no_delete"],
]

SQLITE_DROP = [
    "DROP TRIGGER audit_auditcheckpoint_no_delete",
    "DROP TRIGGER audit_auditcheckpoint_no_update",
    "DROP TRIGGER audit_auditevent_no_delete",
    "CREATE TRIGGER audit_auditevent_no_delete BEFORE DELETE ON audit_auditevent "
    + _reject("audit_auditevent", "DELETE"),
]

CREATE = {"postgresql": POSTGRESQL_CREATE, "sqlite": SQLITE_CREATE}
DROP = {"postgresql": POSTGRESQL_DROP, "sqlite": SQLITE_DROP}


def _execute(schema_editor, statements):
    vendor = schema_editor.connection.vendor
    if vendor not in statements:
        raise NotImplementedError(f"no append-only triggers for {vendor}")
    for sql in statements[vendor]:
        # params=None: the SQL goes to the database as it is (no %-placeholders).
        schema_editor.execute(sql, params=None)


def create(apps, schema_editor):
    _execute(schema_editor, CREATE)


def drop(apps, schema_editor):
    _execute(schema_editor, DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_console_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("number", models.PositiveBigIntegerField(unique=True, verbose_name="Nummer")),
                ("created_at", models.DateTimeField(verbose_name="erstellt am")),
                ("entries", models.BinaryField()),
                (
                    "removed",
                    models.PositiveBigIntegerField(verbose_name="entfernte Ereignisse"),
                ),
                ("seals", models.PositiveIntegerField(verbose_name="betroffene Siegel")),
                ("previous_hash", models.CharField(max_length=64, unique=True)),
                ("checkpoint_hash", models.CharField(max_length=64, unique=True)),
                ("key_id", models.CharField(max_length=32, verbose_name="Schlüssel")),
                ("signature", models.CharField(max_length=128)),
            ],
            options={
                "verbose_name": "Protokoll-Prüfpunkt",
                "verbose_name_plural": "Protokoll-Prüfpunkte",
            },
        ),
        migrations.CreateModel(
            name="AuditPrunePermit",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("checkpoint", models.PositiveBigIntegerField(verbose_name="Prüfpunkt")),
                (
                    "txid",
                    models.BigIntegerField(
                        blank=True, db_default=audit.models.CurrentTransactionId(), null=True
                    ),
                ),
            ],
            options={
                "verbose_name": "Löscherlaubnis",
                "verbose_name_plural": "Löscherlaubnisse",
            },
        ),
        migrations.RunPython(create, drop, elidable=False),
    ]
