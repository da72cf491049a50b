"""A consent is never edited (DESIGN.md "Consent"): the database itself refuses every change
of a consent row and of its recipients but the two the design allows.

- Revocation (dienstweg.actions.consent.revoke_consent): once, from not revoked to revoked,
  and only revoked_at, revoked_by_id and revocation_note_enc change.
- Erasure of the family record (dienstweg.actions.families.erase_family_record): once the
  family row is marked erased in the same transaction, evidence_id may become NULL and the
  two encrypted notes empty; nothing else changes (the consent stays as proof that the
  processing was lawful).
- Saving a row unchanged.

DELETE is refused always (no family is ever deleted; an erasure keeps the consents), and
so are UPDATE and DELETE of the recipients. A recipient row may be INSERTed only for an
agency in the consent's recipient_ids, written with the row at the grant (and filled here
for the consents there are): no agency can be added to a consent later. The refusal is an error of the statement,
as for the audit trail (audit/migrations/0002): only the tables' owner can lift the
triggers. Deleting an account that recorded or revoked a consent is refused too (its
SET NULL would change the row): accounts are deactivated, never deleted.

Trap (as in audit 0002): on SQLite, Django alters a table by building a new one and
dropping the old, which drops these triggers. A later migration that alters these tables
must run SQLITE_CREATE again (tests/dienstweg/test_consent_unchangeable.py fails if a
trigger is gone).
"""

from django.db import migrations, models

CONSENT = "dienstweg_consent"
RECIPIENTS = "dienstweg_consent_recipients"
COLUMNS = (
    "id",
    "family_id",
    "categories",
    "purposes",
    "valid_from",
    "valid_until",
    "given_by_id",
    "on_behalf_of_id",
    "capacity",
    "method",
    "witness_note_enc",
    "text_version",
    "evidence_id",
    "recorded_at",
    "recorded_by_id",
    "revoked_at",
    "revoked_by_id",
    "revocation_note_enc",
    "recipient_ids",
)
REVOCATION = ("revoked_at", "revoked_by_id", "revocation_note_enc")
ERASURE = ("evidence_id", "witness_note_enc", "revocation_note_enc")
REJECTED = "a consent is never changed: {operation} on {table} rejected"


def _unchanged(columns, same):
    return " AND ".join(same(column) for column in columns)


def _allowed(same):
    """The SQL condition under which an UPDATE of a consent row passes."""
    revocation = (
        "OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL AND "
        + _unchanged([c for c in COLUMNS if c not in REVOCATION], same)
    )
    erasure = (
        "EXISTS (SELECT 1 FROM dienstweg_family AS family WHERE family.id = OLD.family_id "
        "AND family.erased_at IS NOT NULL) AND NEW.evidence_id IS NULL "
        "AND length(NEW.witness_note_enc) = 0 AND length(NEW.revocation_note_enc) = 0 AND "
        + _unchanged([c for c in COLUMNS if c not in ERASURE], same)
    )
    return f"({_unchanged(COLUMNS, same)}) OR ({revocation}) OR ({erasure})"


POSTGRESQL_ALLOWED = _allowed(lambda column: f"NEW.{column} IS NOT DISTINCT FROM OLD.{column}")
SQLITE_ALLOWED = _allowed(lambda column: f"NEW.{column} IS OLD.{column}")

# A recipient row names an agency the consent was granted to.
POSTGRESQL_GRANTED = (
    f"EXISTS (SELECT 1 FROM {CONSENT} AS consent WHERE consent.id = NEW.consent_id "
    "AND consent.recipient_ids @> to_jsonb(NEW.agency_id))"
)
SQLITE_GRANTED = (
    f"EXISTS (SELECT 1 FROM {CONSENT} AS consent, json_each(consent.recipient_ids) AS granted "
    "WHERE consent.id = NEW.consent_id AND granted.value = NEW.agency_id)"
)

POSTGRESQL_CREATE = [
    f"""
    CREATE FUNCTION dienstweg_consent_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- Nested: the recipients' rows have none of the columns the condition reads.
        IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = '{CONSENT}' THEN
            IF {POSTGRESQL_ALLOWED} THEN
                RETURN NEW;
            END IF;
        END IF;
        IF TG_OP = 'INSERT' AND TG_TABLE_NAME = '{RECIPIENTS}' THEN
            IF {POSTGRESQL_GRANTED} THEN
                RETURN NEW;
            END IF;
        END IF;
        RAISE EXCEPTION USING
            MESSAGE = 'a consent is never changed: ' || TG_OP || ' on ' || TG_TABLE_NAME
                || ' rejected',
            ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    f"CREATE TRIGGER {CONSENT}_unchangeable BEFORE UPDATE OR DELETE ON {CONSENT} "
    "FOR EACH ROW EXECUTE FUNCTION dienstweg_consent_guard()",
    f"CREATE TRIGGER {RECIPIENTS}_unchangeable BEFORE INSERT OR UPDATE OR DELETE ON {RECIPIENTS} "
    "FOR EACH ROW EXECUTE FUNCTION dienstweg_consent_guard()",
]

POSTGRESQL_DROP = [
    *(f"DROP TRIGGER {table}_unchangeable ON {table}" for table in (CONSENT, RECIPIENTS)),
    "DROP FUNCTION dienstweg_consent_guard()",
]


def _reject(table, operation):
    message = REJECTED.format(operation=operation, table=table)
    return f"BEGIN SELECT RAISE(ABORT, '{message}'); END"


# Every consent trigger on SQLite, by name (tests lift and restore them to age a consent).
SQLITE_TRIGGERS = {
    f"{CONSENT}_no_update": (
        f"CREATE TRIGGER {CONSENT}_no_update BEFORE UPDATE ON {CONSENT} "
        f"WHEN NOT ({SQLITE_ALLOWED}) " + _reject(CONSENT, "UPDATE")
    ),
    f"{CONSENT}_no_delete": (
        f"CREATE TRIGGER {CONSENT}_no_delete BEFORE DELETE ON {CONSENT} "
        + _reject(CONSENT, "DELETE")
    ),
    f"{RECIPIENTS}_only_granted": (
        f"CREATE TRIGGER {RECIPIENTS}_only_granted BEFORE INSERT ON {RECIPIENTS} "
        f"WHEN NOT {SQLITE_GRANTED} " + _reject(RECIPIENTS, "INSERT")
    ),
    **{
        f"{RECIPIENTS}_no_{operation.lower()}": (
            f"CREATE TRIGGER {RECIPIENTS}_no_{operation.lower()} BEFORE {operation} "
            f"ON {RECIPIENTS} " + _reject(RECIPIENTS, operation)
        )
        for operation in ("UPDATE", "DELETE")
    },
}

SQLITE_CREATE = list(SQLITE_TRIGGERS.values())
SQLITE_DROP = [f"DROP TRIGGER {name}" for name in SQLITE_TRIGGERS]

CREATE = {"postgresql": POSTGRESQL_CREATE, "sqlite": SQLITE_CREATE}
DROP = {"postgresql": POSTGRESQL_DROP, "sqlite": SQLITE_DROP}


def _execute(schema_editor, statements):
    vendor = schema_editor.connection.vendor
    if vendor not in statements:
        raise NotImplementedError(f"no consent triggers for {vendor}")
    for sql in statements[vendor]:
        # params=None: the SQL goes to the database as it is (no %-placeholders).
        schema_editor.execute(sql, params=None)


def seal_recipients(apps, schema_editor):
    """The recipients of the consents recorded so far, into their rows."""
    Consent = apps.get_model("dienstweg", "Consent")
    for consent in Consent.objects.prefetch_related("recipients"):
        granted = sorted(agency.pk for agency in consent.recipients.all())
        Consent.objects.filter(pk=consent.pk).update(recipient_ids=granted)


def create(apps, schema_editor):
    _execute(schema_editor, CREATE)


def drop(apps, schema_editor):
    _execute(schema_editor, DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("dienstweg", "0010_outbox_mail"),
    ]

    operations = [
        migrations.AddField(
            model_name="consent",
            name="recipient_ids",
            field=models.JSONField(default=list, editable=False),
        ),
        migrations.RunPython(seal_recipients, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(create, drop, elidable=False),
    ]
