"""Audit events, the seals over them and the checkpoints of their pruning. All three are
append-only: the database rejects UPDATE, DELETE and TRUNCATE (migrations 0002, 0004),
except the one deletion of expired, sealed events through audit/pruning.py. Events hold
ids, pseudonyms and labels, never foreign keys into domain tables: an event must outlive
the family and the account it names."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class CurrentTransactionId(models.Func):
    """The writing transaction's id: txid_current() on PostgreSQL, NULL elsewhere.

    As a column default it is filled in by the database at INSERT, so a writer never asks
    for it and never waits; the sealer orders and fences events by it (audit/ordering.py).
    """

    # SQLite has one writer at a time and AUTOINCREMENT ids: the id alone is the order.
    template = "NULL"
    output_field = models.BigIntegerField()

    def as_postgresql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        **extra_context: Any,
    ) -> tuple[str, Sequence[str | int]]:
        return self.as_sql(compiler, connection, template="txid_current()", **extra_context)


class AuditEvent(models.Model):
    """One recorded action: who, when, what, on which object, about which family, why."""

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField(_("Zeitpunkt"), default=timezone.now)
    actor_id = models.BigIntegerField(_("Akteur-ID"), null=True, blank=True)
    actor_label = models.CharField(_("Akteur"), max_length=64)  # "user:12", "system"
    agency_id = models.BigIntegerField(_("Stelle-ID"), null=True, blank=True)
    action = models.CharField(_("Aktion"), max_length=64)  # "family.viewed"
    target_type = models.CharField(_("Objekttyp"), max_length=64, blank=True, default="")
    target_id = models.CharField(_("Objekt-ID"), max_length=64, blank=True, default="")
    # The data subject: the family's primary key (a UUID) and its pseudonymous reference.
    # NULL when the event concerns no family (a login, say); "" would read like an id.
    family_id = models.CharField(  # noqa: DJ001
        _("Familien-ID"), max_length=64, null=True, blank=True
    )
    family_ref = models.CharField(_("Familien-Kennung"), max_length=32, blank=True, default="")
    purpose = models.CharField(_("Zweck / Rechtsgrundlage"), max_length=200, blank=True, default="")
    request_id = models.CharField(_("Anfrage-ID"), max_length=64, blank=True, default="")
    ip = models.GenericIPAddressField(_("IP-Adresse"), null=True, blank=True)
    details = models.JSONField(_("Einzelheiten"), default=dict, blank=True)
    txid = models.BigIntegerField(
        _("Transaktions-ID"),
        null=True,
        blank=True,
        editable=False,
        db_default=CurrentTransactionId(),
    )

    class Meta:
        verbose_name = _("Protokollereignis")
        verbose_name_plural = _("Protokollereignisse")
        # The DPO console's filters, each with the console's order (newest first), so that
        # a page is an index range scan however many events the filter matches.
        # PostgreSQL also gets (txid, id) for the sealer (migration 0002).
        indexes = [
            models.Index(fields=["occurred_at", "id"], name="audit_event_time"),
            models.Index(fields=["family_id", "occurred_at", "id"], name="audit_event_family_time"),
            models.Index(fields=["actor_id", "occurred_at", "id"], name="audit_event_actor_time"),
            models.Index(fields=["agency_id", "occurred_at", "id"], name="audit_event_agency_time"),
            models.Index(fields=["action", "occurred_at", "id"], name="audit_event_action_time"),
            models.Index(
                fields=["target_type", "target_id", "occurred_at", "id"],
                name="audit_event_target_time",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.action} ({self.actor_label})"


class AuditSeal(models.Model):
    """A signed seal over one batch of events, chained to the seal before it.

    The batch is every event after the previous seal's last position up to and including
    (last_txid, last_event_id) in the sealing order (audit/ordering.py). batch_hash covers
    the id and full SHA-256 of every event; the manifest (event id and the first 8 bytes of
    its hash, 16 bytes per event) only serves to name the event that was changed, deleted
    or inserted. seal_hash covers every field below except itself and the signature, which is
    Ed25519 over seal_hash. The private key is never stored; key_id names the public key.
    """

    class Basis(models.TextChoices):
        TXID = "txid", _("Transaktions-ID (PostgreSQL)")
        ID = "id", _("Ereignis-ID (SQLite)")

    id = models.BigAutoField(primary_key=True)
    # 1, 2, 3 … unique: two sealers racing cannot both append after the same seal.
    number = models.PositiveBigIntegerField(_("Nummer"), unique=True)
    sealed_at = models.DateTimeField(_("versiegelt am"))
    basis = models.CharField(_("Ordnung"), max_length=8, choices=Basis.choices)
    # Every event of the batch lies below this fence (snapshot xmin, or max committed id + 1).
    fence = models.BigIntegerField(_("Grenze"))
    after_txid = models.BigIntegerField(null=True, blank=True)
    after_event_id = models.BigIntegerField(null=True, blank=True)
    last_txid = models.BigIntegerField(null=True, blank=True)
    last_event_id = models.BigIntegerField()
    event_count = models.PositiveIntegerField(_("Ereignisse"))
    batch_hash = models.CharField(max_length=64)
    manifest = models.BinaryField()
    previous_hash = models.CharField(max_length=64, unique=True)
    seal_hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(_("Schlüssel"), max_length=32)
    signature = models.CharField(max_length=128)
    # The newest time of an event sealed so far, this batch included (refused ones not),
    # and the events of this batch that the sealer refused as dated out of order
    # (audit/chronology.py): in the batch like any other, never genuine. Both are covered
    # by seal_hash; NULL only on seals made before they existed (hashing.seal_hash).
    high_water = models.DateTimeField(_("neuestes Ereignis bis hier"), null=True, blank=True)
    refused = models.BinaryField(null=True, blank=True)

    class Meta:
        verbose_name = _("Protokollsiegel")
        verbose_name_plural = _("Protokollsiegel")

    def __str__(self) -> str:
        return f"Siegel {self.number} ({self.event_count} Ereignisse)"


class CheckpointEntry(NamedTuple):
    """What a checkpoint attests for one seal: how many of its events are left, and the
    hash over them (as a seal's batch_hash: each survivor's id and full hash, in order)."""

    seal: int
    survivors: int
    survivors_hash: str


_ENTRY = struct.Struct(">QQ32s")  # seal number, survivor count, survivor hash: 48 bytes


class AuditCheckpoint(models.Model):
    """A signed record of one pruning run (audit/pruning.py), chained to the one before.

    It attests: the events of these seals were verified against their seals (or their last
    checkpoint entry), then the expired ones were removed, and the survivors hash to this.
    `entries` holds one fixed-size record per touched seal, in seal order; for a seal
    touched again later, the later checkpoint's entry wins. checkpoint_hash covers every
    field but itself and the signature (entries through their SHA-256), and the signature
    is Ed25519 over checkpoint_hash, with the key that signs the seals.
    """

    ENTRY_BYTES = _ENTRY.size

    id = models.BigAutoField(primary_key=True)
    # 1, 2, 3 … unique: two pruning runs racing cannot both append after the same one.
    number = models.PositiveBigIntegerField(_("Nummer"), unique=True)
    created_at = models.DateTimeField(_("erstellt am"))
    entries = models.BinaryField()
    removed = models.PositiveBigIntegerField(_("entfernte Ereignisse"))
    seals = models.PositiveIntegerField(_("betroffene Siegel"))
    previous_hash = models.CharField(max_length=64, unique=True)
    checkpoint_hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(_("Schlüssel"), max_length=32)
    signature = models.CharField(max_length=128)

    class Meta:
        verbose_name = _("Protokoll-Prüfpunkt")
        verbose_name_plural = _("Protokoll-Prüfpunkte")

    def __str__(self) -> str:
        return f"Prüfpunkt {self.number} ({self.removed} Ereignisse entfernt)"

    @staticmethod
    def pack(entries: Iterable[CheckpointEntry]) -> bytes:
        return b"".join(
            _ENTRY.pack(entry.seal, entry.survivors, bytes.fromhex(entry.survivors_hash))
            for entry in entries
        )

    @staticmethod
    def unpack(entries: bytes) -> list[CheckpointEntry]:
        """The entries of a stored checkpoint; ValueError if they are not whole records."""
        if len(entries) % _ENTRY.size:
            raise ValueError("checkpoint entries are not whole records")
        return [
            CheckpointEntry(seal, survivors, digest.hex())
            for seal, survivors, digest in _ENTRY.iter_unpack(entries)
        ]


class AuditPrunePermit(models.Model):
    """The pruning run's permit to delete sealed events (migration 0004's DELETE trigger).

    Not append-only: audit/pruning.py inserts one in its transaction right before the
    DELETE and deletes it before the commit, so outside that transaction there is none.
    On PostgreSQL the trigger also requires txid to be its own transaction's, so a stray
    committed row opens nothing.
    """

    id = models.BigAutoField(primary_key=True)
    checkpoint = models.PositiveBigIntegerField(_("Prüfpunkt"))
    txid = models.BigIntegerField(null=True, blank=True, db_default=CurrentTransactionId())

    class Meta:
        verbose_name = _("Löscherlaubnis")
        verbose_name_plural = _("Löscherlaubnisse")

    def __str__(self) -> str:
        return f"Löscherlaubnis für Prüfpunkt {self.checkpoint}"
