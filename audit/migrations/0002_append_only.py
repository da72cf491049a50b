"""Make the audit tables append-only in the database itself, and index (txid, id) on
PostgreSQL for the sealer.

PostgreSQL: row triggers reject UPDATE and DELETE, a statement trigger rejects TRUNCATE of
a table that holds rows (emptying an empty table loses nothing, and Django's test flush
truncates every table). SQLite: triggers RAISE(ABORT). Only the tables' owner can lift
them (ALTER TABLE ... DISABLE TRIGGER, DROP TRIGGER); whatever is done then shows up in
`manage.py audit_verify`.

Trap: on SQLite, Django alters a table by building a new one and dropping the old, which
drops these triggers. A later migration that alters these tables must run SQLITE_CREATE
again (tests/audit/test_append_only.py fails if the triggers are gone).
"""

from django.db import migrations

TABLES = ("audit_auditevent", "audit_auditseal")

POSTGRESQL_CREATE = [
    """
    CREATE FUNCTION audit_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION USING
            MESSAGE = 'audit trail is append-only: ' || TG_OP || ' on ' || TG_TABLE_NAME
                || ' rejected',
            ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE FUNCTION audit_reject_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        has_rows boolean;
    BEGIN
        -- TRUNCATE holds its ACCESS EXCLUSIVE lock by now: no writer can add a row meanwhile.
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM ' || TG_RELID::regclass::text || ')'
            INTO has_rows;
        IF has_rows THEN
            RAISE EXCEPTION USING
                MESSAGE = 'audit trail is append-only: TRUNCATE on ' || TG_TABLE_NAME
                    || ' rejected',
                ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NULL;
    END
    $$
    """,
    *(
        sql
        for table in TABLES
        for sql in (
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_reject_change()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_truncate()",
        )
    ),
    # The sealer's order and fence (audit/ordering.py).
    "CREATE INDEX audit_event_txid ON audit_auditevent (txid, id)",
]

POSTGRESQL_DROP = [
    "DROP INDEX audit_event_txid",
    *(
        f"DROP TRIGGER {table}_{name} ON {table}"
        for table in TABLES
        for name in ("append_only", "no_truncate")
    ),
    "DROP FUNCTION audit_reject_truncate()",
    "DROP FUNCTION audit_reject_change()",
]

SQLITE_CREATE = [
    f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: {operation} on {table} "
    "rejected'); END"
    for table in TABLES
    for operation in ("UPDATE", "DELETE")
]

SQLITE_DROP = [
    f"DROP TRIGGER {table}_no_{operation.lower()}"
    for table in TABLES
    for operation in ("UPDATE", "DELETE")
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
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
