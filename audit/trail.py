"""Record an audit event, inside the transaction of the action it records.

    with transaction.atomic():
        consent.revoke(...)
        record(user, "consent.revoked", target=consent, family=family, purpose="Art. 7 DSGVO")

Request id, client address and acting agency come from audit.context (bound by
audit.middleware.RequestContextMiddleware for web requests).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from django.db import models, router, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from audit import context, registry
from audit.models import AuditEvent


class Identified(Protocol):
    @property
    def pk(self) -> Any: ...


class DataSubject(Protocol):
    """A family: its primary key and its pseudonymous reference ("F-2026-0042")."""

    @property
    def pk(self) -> Any: ...

    @property
    def reference(self) -> str: ...


Actor = Identified | str | None
Target = models.Model | tuple[str, object] | None

# Ids and labels: letters, digits and _ . : - / only, at most 64 characters.
LABEL = re.compile(r"[A-Za-z0-9_.:\-/]{0,64}")
DETAIL_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_DETAILS = 20
MAX_PURPOSE = 200
INT_LIMIT = 2**63


def record(
    actor: Actor,
    action: str,
    *,
    target: Target = None,
    family: DataSubject | None = None,
    purpose: str = "",
    details: Mapping[str, object] | None = None,
    agency_id: int | None = None,
) -> AuditEvent:
    """Record ACTION by ACTOR (a user, a label such as "system:retention", or None for the
    system) and return the event. Raises RuntimeError outside a transaction, ValueError for
    an undeclared action and for anything that is not an id or a label."""
    event = _event(actor, action, target, family, purpose, details, agency_id)
    alias = router.db_for_write(AuditEvent)
    connection = transaction.get_connection(alias)
    if connection.vendor != "postgresql":
        event.save(force_insert=True)
        return event
    # Model.save() took 0.65-0.75 ms an event, this INSERT 0.40 (median of 300, bench
    # database, 2026-12-07): every page and every message frame records at least one.
    values = [_adapted(name, getattr(event, name)) for name, _kind in _COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_ONE, values)
        event.pk, event.txid = cursor.fetchone()
    event._state.adding = False
    event._state.db = alias
    return event


def record_each(
    actor: Actor,
    action: str,
    families: Sequence[DataSubject],
    *,
    purpose: str = "",
    details: Mapping[str, object] | None = None,
    agency_id: int | None = None,
) -> int:
    """Record ACTION once for each of FAMILIES (the target and the data subject), in one
    INSERT, and return how many: a page that shows many families records each, at the
    cost of one. What is the same for every event is checked once."""
    if not families:
        return 0
    common = _event(actor, action, None, None, purpose, details, agency_id)
    # What differs from event to event: the family, as target and as data subject.
    own: list[dict[str, Any]] = []
    for family in families:
        kind, target = _target(_as_target(family))
        own.append(
            {
                "target_type": kind,
                "target_id": target,
                "family_id": _label("family id", family.pk),
                "family_ref": _label("family reference", family.reference),
            }
        )
    connection = transaction.get_connection(router.db_for_write(AuditEvent))
    if connection.vendor != "postgresql":
        AuditEvent.objects.bulk_create([_copy(common, **fields) for fields in own])
        return len(own)
    # Built by hand: Django writes the DEFAULT of txid (db_default) into a VALUES row per
    # event, 14 parameters each, which it must bind and PostgreSQL parse and plan; for the
    # family list's 25 events the ORM's INSERT took 4.1 ms, this one 2.5, and building the
    # 25 model objects another 2 (bench/pages.py's machine, 2026-12-07).
    columns = [
        [_adapted(name, fields.get(name, getattr(common, name))) for fields in own]
        for name, _kind in _COLUMNS
    ]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_EACH, columns)
    return len(own)


# The columns record() fills, with their types for record_each's arrays. The transaction's
# id (txid) is the column's own default: written by the database, never by the caller.
_COLUMNS = (
    ("occurred_at", "timestamptz"),
    ("actor_id", "bigint"),
    ("actor_label", "varchar"),
    ("agency_id", "bigint"),
    ("action", "varchar"),
    ("target_type", "varchar"),
    ("target_id", "varchar"),
    ("family_id", "varchar"),
    ("family_ref", "varchar"),
    ("purpose", "varchar"),
    ("request_id", "varchar"),
    ("ip", "inet"),
    ("details", "jsonb"),
)
_TABLE = '"{}" ({})'.format(
    AuditEvent._meta.db_table, ", ".join(f'"{name}"' for name, _kind in _COLUMNS)
)
_INSERT_ONE = 'INSERT INTO {} VALUES ({}) RETURNING "id", "txid"'.format(  # noqa: S608
    _TABLE, ", ".join("%s" for _column in _COLUMNS)
)
_INSERT_EACH = "INSERT INTO {} SELECT * FROM UNNEST({})".format(  # noqa: S608
    _TABLE, ", ".join(f"%s::{kind}[]" for _name, kind in _COLUMNS)
)


def _adapted(name: str, value: Any) -> Any:
    """VALUE of the column NAME as psycopg passes it (details: as jsonb)."""
    return Jsonb(value) if name == "details" else value


def _copy(event: AuditEvent, **fields: object) -> AuditEvent:
    return AuditEvent(**({name: getattr(event, name) for name, _kind in _COLUMNS} | fields))


def _as_target(family: DataSubject) -> Target:
    return family if isinstance(family, models.Model) else None


def _event(
    actor: Actor,
    action: str,
    target: Target,
    family: DataSubject | None,
    purpose: str,
    details: Mapping[str, object] | None,
    agency_id: int | None,
) -> AuditEvent:
    # Inside the action's transaction, the event commits and rolls back with it: no action
    # without its record, no record of an action that never happened.
    if not transaction.get_connection(router.db_for_write(AuditEvent)).in_atomic_block:
        raise RuntimeError(
            "audit.trail.record() must run inside the transaction of the action it records "
            "(transaction.atomic)."
        )
    if not registry.is_declared(action):
        # Declared with its label in the recording app's audit_actions.py (audit.registry).
        raise ValueError(f"the action {action!r} is not declared")
    if not isinstance(purpose, str) or len(purpose) > MAX_PURPOSE:
        raise ValueError(f"purpose must be a text of at most {MAX_PURPOSE} characters")
    actor_id, actor_label = _actor(actor)
    target_type, target_id = _target(target)
    request = context.current()
    return AuditEvent(
        occurred_at=timezone.now(),
        actor_id=actor_id,
        actor_label=actor_label,
        agency_id=request.agency_id if agency_id is None else agency_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        family_id=None if family is None else _label("family id", family.pk),
        family_ref="" if family is None else _label("family reference", family.reference),
        purpose=purpose,
        request_id=request.request_id,
        ip=request.ip,
        details=check_details(details),
    )


def check_details(details: Mapping[str, object] | None) -> dict[str, int | bool | str | None]:
    """The details, if they hold only ids and labels; else ValueError.

    The trail outlives every family and account and is read by the DPO and the people
    whose data it names, so it must never hold content or personal data (DESIGN.md,
    "Audit trail"). Numbers, yes/no, and strings of at most 64 characters from
    [A-Za-z0-9_.:-/] pass: ids, UUIDs, pseudonymous references, state names, dates. Spaces,
    "@", umlauts and punctuation do not, which keeps out names, e-mail addresses, street
    addresses and free text. No lists and no nesting: an event names one family through
    family_id, so that the per-family access report (GDPR Art. 15) finds every event about
    it; a bulk action records one event per family.
    """
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise ValueError("details must be a mapping")
    if len(details) > MAX_DETAILS:
        raise ValueError(f"details may hold at most {MAX_DETAILS} entries")
    checked: dict[str, int | bool | str | None] = {}
    for key, value in details.items():
        if not isinstance(key, str) or not DETAIL_KEY.fullmatch(key):
            raise ValueError(f"details key {key!r} must be a lower-case identifier")
        if value is None or isinstance(value, bool):
            checked[key] = value
        elif isinstance(value, int):
            if not -INT_LIMIT <= value < INT_LIMIT:
                raise ValueError(f"details[{key!r}] is out of range")
            checked[key] = value
        elif isinstance(value, str) and LABEL.fullmatch(value):
            checked[key] = value
        else:
            # Do not repeat the value: it may be exactly the personal data kept out here.
            raise ValueError(
                f"details[{key!r}] must be a number, yes/no, or an id or label of at most "
                "64 characters from A-Z a-z 0-9 _ . : - /"
            )
    return checked


def _label(what: str, value: object) -> str:
    text = str(value)
    if not text or not LABEL.fullmatch(text):
        raise ValueError(f"{what} must be an id or label of at most 64 characters")
    return text


def _actor(actor: Actor) -> tuple[int | None, str]:
    if actor is None:
        return None, "system"
    if isinstance(actor, str):
        return None, _label("actor label", actor)
    if actor.pk is None:  # AnonymousUser: a failed login, say
        return None, "anonymous"
    return int(actor.pk), f"user:{int(actor.pk)}"


def _target(target: Target) -> tuple[str, str]:
    if target is None:
        return "", ""
    if isinstance(target, models.Model):
        # A model moved between apps names the type its earlier events were recorded under
        # (audit_target_type): the trail cannot be rewritten, and one object keeps one name.
        kind = getattr(target, "audit_target_type", None) or target._meta.label_lower
        return kind, _label("target id", target.pk)
    kind, identifier = target
    return _label("target type", kind), _label("target id", identifier)
