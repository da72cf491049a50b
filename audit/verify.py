"""Re-hash sealed history, check the chain and every signature, and name each event that
was changed, deleted or inserted after sealing; count the unsealed tail. Texts in German:
the report is for the data-protection officer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import connections, router

from audit import batches, hashing, ordering, signing
from audit.models import AuditEvent, AuditSeal
from audit.sealing import SEAL_COLUMNS

CHANGED = "changed"
DELETED = "deleted"
INSERTED = "inserted"
UNCOVERED = "uncovered"  # in a gap between two seals
UNSEALABLE = "unsealable"  # PostgreSQL: no txid, so not written through record()
SEAL = "seal"  # the seal itself: chain, content, key or signature


@dataclass(frozen=True)
class Finding:
    kind: str
    text: str
    seal: int | None = None
    event_id: int | None = None


@dataclass
class Report:
    seals: int = 0
    sealed_events: int = 0
    unsealed: int = 0
    head_number: int = 0
    head_hash: str = hashing.GENESIS
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def event_ids(self, kind: str) -> list[int]:
        return [f.event_id for f in self.findings if f.kind == kind and f.event_id is not None]

    def summary(self) -> str:
        counts = (
            f"{_events(self.sealed_events)} in {_seals(self.seals)}, "
            f"{self.unsealed} noch nicht versiegelt"
        )
        if self.ok:
            return f"Prüfung bestanden: {counts}."
        found = len(self.findings)
        return (
            f"Prüfung NICHT bestanden: {found} {'Befund' if found == 1 else 'Befunde'} ({counts})."
        )

    def lines(self, limit: int | None = None) -> list[str]:
        shown = self.findings if limit is None else self.findings[:limit]
        lines = [self.summary(), *(f"  {finding.text}" for finding in shown)]
        if len(shown) < len(self.findings):
            lines.append(f"  … und {len(self.findings) - len(shown)} weitere Befunde.")
        if self.seals:
            lines.append(f"Letztes Siegel: Nr. {self.head_number}, Hash {self.head_hash}")
        return lines


def _events(count: int) -> str:
    return "1 Ereignis" if count == 1 else f"{count} Ereignisse"


def _seals(count: int) -> str:
    return "1 Siegel" if count == 1 else f"{count} Siegeln"


def verify(
    *,
    public_keys: Sequence[Ed25519PublicKey] | None = None,
    in_database: bool | None = None,
) -> Report:
    """Check the whole trail against PUBLIC_KEYS (by default the configured key's).
    IN_DATABASE=False re-hashes every event in Python instead of trusting PostgreSQL's
    functions to (slower; the default lets PostgreSQL hash, as the sealer does)."""
    alias = router.db_for_read(AuditEvent)
    basis = ordering.basis(connections[alias])
    keys = {signing.key_id(key): key for key in public_keys or [signing.public_key()]}
    report = Report()
    previous_hash = hashing.GENESIS
    previous_number = 0
    previous_last: ordering.Position | None = None
    seal_ids = AuditSeal.objects.using(alias).order_by("number").values_list("id", flat=True)
    for seal_id in list(seal_ids):
        seal = (
            AuditSeal.objects.using(alias)
            .values(*SEAL_COLUMNS, "manifest", "signature")
            .get(id=seal_id)
        )
        number = seal["number"]
        if number != previous_number + 1:
            missing = (
                f"Siegel Nr. {previous_number + 1} fehlt"
                if number == previous_number + 2
                else f"Siegel Nr. {previous_number + 1} bis {number - 1} fehlen"
            )
            report.findings.append(Finding(SEAL, f"Siegel {number}: {missing}.", number))
        if seal["basis"] != basis:
            report.findings.append(
                Finding(
                    SEAL,
                    f"Siegel {number}: nach Ordnung „{seal['basis']}“ versiegelt, diese "
                    f"Datenbank ordnet nach „{basis}“.",
                    number,
                )
            )
        if seal["previous_hash"] != previous_hash:
            report.findings.append(
                Finding(
                    SEAL,
                    f"Siegel {number}: Verkettung unterbrochen, der Vorgänger-Hash passt nicht "
                    + (
                        "zum Anfang der Kette."
                        if previous_number == 0
                        else f"zu Siegel {previous_number}."
                    ),
                    number,
                )
            )
        _check_seal(report, seal, keys)
        after = _after(basis, seal)
        if after != previous_last:
            report.findings.append(
                Finding(
                    SEAL,
                    f"Siegel {number}: "
                    + (
                        "beginnt nicht beim ersten Ereignis."
                        if previous_number == 0
                        else f"schließt nicht lückenlos an Siegel {previous_number} an."
                    ),
                    number,
                )
            )
            if after is not None and (previous_last is None or _before(previous_last, after)):
                _report_gap(report, alias, basis, previous_last, after, number)
        last = ordering.position(basis, seal["last_txid"], seal["last_event_id"])
        _check_events(report, alias, basis, seal, after, last, in_database)
        report.seals += 1
        report.sealed_events += seal["event_count"]
        report.head_number, report.head_hash = number, seal["seal_hash"]
        previous_hash, previous_number, previous_last = seal["seal_hash"], number, last

    events = AuditEvent.objects.using(alias)
    report.unsealed = events.filter(ordering.after(basis, previous_last)).count()
    if basis == ordering.TXID:
        for event_id in (
            events.filter(txid__isnull=True).order_by("id").values_list("id", flat=True)
        ):
            report.findings.append(
                Finding(
                    UNSEALABLE,
                    f"Ereignis {event_id} hat keine Transaktions-ID: nicht über das Protokoll "
                    "geschrieben, kann nicht versiegelt werden.",
                    None,
                    event_id,
                )
            )
    return report


def _after(basis: str, seal: dict[str, Any]) -> ordering.Position | None:
    if seal["after_event_id"] is None:
        return None
    return ordering.position(basis, seal["after_txid"], seal["after_event_id"])


def _before(first: ordering.Position, second: ordering.Position) -> bool:
    return (first[0] or 0, first[1]) < (second[0] or 0, second[1])


def _check_seal(report: Report, seal: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> None:
    """The seal's own content, and its signature."""
    number = seal["number"]
    manifest = bytes(seal["manifest"])
    fields = {**seal, "manifest_hash": hashing.manifest_hash(manifest)}
    if hashing.seal_hash(fields) != seal["seal_hash"]:
        report.findings.append(
            Finding(SEAL, f"Siegel {number}: Inhalt verändert (Siegel-Hash passt nicht).", number)
        )
    key = keys.get(seal["key_id"])
    if key is None:
        report.findings.append(
            Finding(
                SEAL,
                f"Siegel {number}: mit unbekanntem Schlüssel {seal['key_id']} signiert.",
                number,
            )
        )
        return
    try:
        key.verify(bytes.fromhex(seal["signature"]), bytes.fromhex(seal["seal_hash"]))
    except (InvalidSignature, ValueError):
        report.findings.append(Finding(SEAL, f"Siegel {number}: Signatur ungültig.", number))


def _check_events(
    report: Report,
    alias: str,
    basis: str,
    seal: dict[str, Any],
    after: ordering.Position | None,
    last: ordering.Position,
    in_database: bool | None,
) -> None:
    """Re-hash the seal's events; on a mismatch, name them through the manifest."""
    events = AuditEvent.objects.using(alias).filter(
        ordering.after(basis, after), ordering.up_to(basis, last)
    )
    batch = batches.read(events, basis, in_database=in_database)
    if batch.count == seal["event_count"] and batch.batch_hash == seal["batch_hash"]:
        return
    number = seal["number"]
    stored = dict(hashing.read_manifest(bytes(seal["manifest"])))
    current = dict(batch.entries)
    found = len(report.findings)
    for event_id in sorted(stored.keys() | current.keys()):
        if event_id not in current:
            kind, text = DELETED, "wurde gelöscht"
        elif event_id not in stored:
            kind, text = INSERTED, "wurde nachträglich eingefügt"
        elif stored[event_id] != current[event_id]:
            kind, text = CHANGED, "wurde verändert"
        else:
            continue
        report.findings.append(
            Finding(kind, f"Siegel {number}: Ereignis {event_id} {text}.", number, event_id)
        )
    if len(report.findings) == found:
        report.findings.append(
            Finding(
                SEAL,
                f"Siegel {number}: Prüfsumme der Ereignisse passt nicht (Reihenfolge verändert "
                "oder Verzeichnis manipuliert).",
                number,
            )
        )


def _report_gap(
    report: Report,
    alias: str,
    basis: str,
    start: ordering.Position | None,
    end: ordering.Position,
    number: int,
) -> None:
    """Events between two seals that do not join up: covered by no seal at all."""
    gap: Iterable[int] = (
        AuditEvent.objects.using(alias)
        .filter(ordering.after(basis, start), ordering.up_to(basis, end))
        .order_by(*ordering.order_by(basis))
        .values_list("id", flat=True)
    )
    for event_id in gap:
        report.findings.append(
            Finding(
                UNCOVERED,
                f"Ereignis {event_id} liegt in keinem Siegel (Lücke vor Siegel {number}).",
                number,
                event_id,
            )
        )
