"""Re-hash sealed history, check the chain and every signature, and name each event that
was changed, deleted or inserted after sealing; count the unsealed tail. Texts in German:
the report is for the data-protection officer.

The chain in the database is also compared with what lies outside it (audit/anchor.py):
the heads anchored in the file, the head this verification saw last, and heads the DPO
noted herself (`--expect-head`, a hash or her Prüfquittung). An anchored or noted head the
database lacks means its tail was removed, and is reported like a changed event. Events
the sealer refused as dated out of order (audit/chronology.py) are named every time.

Pruning (audit/pruning.py) removes expired events and leaves a signed checkpoint, chained
to the one before, that names for each touched seal how many of its events survived and
their hash. A seal with such an entry is checked against its latest entry instead of its
own batch hash; the seal still names every event it once held, so a changed or inserted
survivor is named as before, a missing one is counted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import connections, router, transaction
from django.db.models import Max
from django.utils import timezone

from audit import anchor, batches, chronology, hashing, ordering, signing, trail
from audit.audit_actions import AUDIT_VERIFIED
from audit.models import AuditCheckpoint, AuditEvent, AuditSeal, CheckpointEntry
from audit.sealing import SEAL_COLUMNS

logger = logging.getLogger(__name__)

READ_AHEAD = 2  # PostgreSQL: seals whose events are re-hashed at once, ahead of the checks

CHANGED = "changed"
DELETED = "deleted"
INSERTED = "inserted"
UNCOVERED = "uncovered"  # in a gap between two seals
UNSEALABLE = "unsealable"  # PostgreSQL: no txid, so not written through record()
SEAL = "seal"  # the seal itself: chain, content, key or signature
CHECKPOINT = "checkpoint"  # a pruning checkpoint: chain, content, key, signature, entries
TAIL = "tail"  # a head anchored or seen before is missing from the database, or differs
ANCHOR = "anchor"  # the anchor: a seal not anchored, a line that is no head
HEAD = "head"  # a head the DPO noted (--expect-head) is not in the chain
REFUSED = "refused"  # an event the sealer refused as dated out of order

# What a checkpoint's hash covers, and so its signature (entries through their SHA-256).
CHECKPOINT_FIELDS = (
    "number",
    "created_at",
    "entries_hash",
    "removed",
    "seals",
    "previous_hash",
    "key_id",
)
# The stored fields of a checkpoint that the verifier reads.
CHECKPOINT_COLUMNS = (
    *(f for f in CHECKPOINT_FIELDS if f != "entries_hash"),
    "entries",
    "checkpoint_hash",
    "signature",
)
_COMPACT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def checkpoint_hash(fields: Mapping[str, Any]) -> str:
    """FIELDS holds CHECKPOINT_FIELDS; created_at as a datetime. As hashing.seal_hash."""
    content = {name: fields[name] for name in CHECKPOINT_FIELDS}
    content["created_at"] = hashing.timestamp(content["created_at"])
    return hashlib.sha256(_COMPACT.encode(content).encode()).hexdigest()


def entries_hash(entries: bytes) -> str:
    return hashlib.sha256(entries).hexdigest()


@dataclass(frozen=True)
class Finding:
    kind: str
    text: str
    seal: int | None = None
    event_id: int | None = None


@dataclass(frozen=True)
class Survivors:
    """A seal's events as its latest valid checkpoint entry attests them."""

    checkpoint: int
    count: int
    survivors_hash: str


@dataclass
class Attested:
    """What the valid checkpoints attest: per seal the latest entry, and each entry in
    checkpoint order (to check that the removals add up to what each checkpoint says)."""

    latest: dict[int, Survivors] = field(default_factory=dict)
    history: dict[int, list[Survivors]] = field(default_factory=lambda: defaultdict(list))
    # By checkpoint number: the removed count it states, its seals, the count its entries
    # add up to (filled in seal by seal).
    removed: dict[int, int] = field(default_factory=dict)
    seals_of: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    counted: dict[int, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class Report:
    seals: int = 0
    sealed_events: int = 0  # sealed events still present as the seals and checkpoints attest
    unsealed: int = 0
    head_number: int = 0
    head_hash: str = hashing.GENESIS
    findings: list[Finding] = field(default_factory=list)
    checkpoints: int = 0
    removed_events: int = 0  # removed through checkpoints (expired after their retention)
    checkpoint_number: int = 0
    checkpoint_hash: str = hashing.GENESIS
    refused: int = 0  # events the seals list as refused (never genuine)
    anchor_dir: Path | None = None  # None: compared with no anchor
    anchored_number: int = 0  # the newest seal whose anchored head matched

    @property
    def ok(self) -> bool:
        return not self.findings

    def event_ids(self, kind: str) -> list[int]:
        return [f.event_id for f in self.findings if f.kind == kind and f.event_id is not None]

    def summary(self) -> str:
        counts = f"{_events(self.sealed_events)} in {_seals(self.seals)}, "
        if self.refused:
            counts += f"davon {self.refused} abgewiesen, "
        counts += f"{self.unsealed} noch nicht versiegelt"
        if self.checkpoints:
            counts += (
                f"; {_events(self.removed_events)} nach Ablauf der Aufbewahrungsfrist "
                f"entfernt ({_checkpoints(self.checkpoints)})"
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
        if self.checkpoints:
            lines.append(
                f"Letzter Prüfpunkt: Nr. {self.checkpoint_number}, Hash {self.checkpoint_hash}"
            )
        if self.anchor_dir is not None and self.anchored_number:
            lines.append(
                f"Außerhalb der Datenbank verankert: bis Siegel Nr. {self.anchored_number} "
                f"({anchor.heads_path(self.anchor_dir)})"
            )
        return lines


def _events(count: int) -> str:
    return "1 Ereignis" if count == 1 else f"{count} Ereignisse"


def _seals(count: int) -> str:
    return "1 Siegel" if count == 1 else f"{count} Siegeln"


def _checkpoints(count: int) -> str:
    return "1 Prüfpunkt" if count == 1 else f"{count} Prüfpunkte"


def keyring(public_keys: Sequence[Ed25519PublicKey] | None = None) -> dict[str, Ed25519PublicKey]:
    """PUBLIC_KEYS (by default the configured key's) by key id."""
    return {signing.key_id(key): key for key in public_keys or [signing.public_key()]}


@dataclass(frozen=True)
class ExpectedHead:
    """A head the DPO noted outside the database: it must be in the chain. PROBLEM, when
    set, is why the note itself cannot be used (a receipt whose signature fails)."""

    seal_hash: str
    number: int | None = None
    source: str = ""
    problem: str | None = None


def verify(
    *,
    public_keys: Sequence[Ed25519PublicKey] | None = None,
    in_database: bool | None = None,
    anchor_dir: Path | None = None,
    expected: Sequence[ExpectedHead] = (),
) -> Report:
    """Check the whole trail against PUBLIC_KEYS (by default the configured key's).
    IN_DATABASE=False re-hashes every event in Python instead of trusting PostgreSQL's
    functions to (slower; the default lets PostgreSQL hash, as the sealer does).
    ANCHOR_DIR: where the heads are anchored (by default settings.AUDIT_ANCHOR_DIR);
    EXPECTED: heads noted elsewhere, which must be in the chain."""
    alias = router.db_for_read(AuditEvent)
    basis = ordering.basis(connections[alias])
    keys = keyring(public_keys)
    report = Report(anchor_dir=anchor_dir or anchor.directory())
    newest, outside = _outside(report, alias, keys)
    attested = check_checkpoints(report, alias, keys)
    seen: set[int] = set()
    previous_hash = hashing.GENESIS
    previous_number = 0
    previous_last: ordering.Position | None = None
    seal_ranges = list(
        AuditSeal.objects.using(alias)
        .filter(number__lte=newest)
        .order_by("number")
        .values_list("id", "after_txid", "after_event_id", "last_txid", "last_event_id")
    )
    ranges = [_range(basis, *row[1:]) for row in seal_ranges]
    with contextlib.closing(_ReadAhead(alias, basis, in_database, ranges)) as ahead:
        for seal_id, *_ in seal_ranges:
            seal = (
                AuditSeal.objects.using(alias)
                .values(*SEAL_COLUMNS, "manifest", "refused", "signature")
                .get(id=seal_id)
            )
            number = seal["number"]
            if number != previous_number + 1:
                missing = _gap(previous_number, number, "Siegel Nr.", "Siegel Nr.")
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
            check_seal(report, seal, keys)
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
            survivors = attested.latest.get(number)
            batch = ahead.next((after, last))
            check_events(report, alias, basis, seal, after, last, in_database, survivors, batch)
            _check_removals(report, attested, seal)
            report_refusals(report, seal)
            outside.seal(number, seal["seal_hash"])
            seen.add(number)
            report.seals += 1
            if survivors is None:
                report.sealed_events += seal["event_count"]
            else:
                report.sealed_events += survivors.count
                report.removed_events += max(seal["event_count"] - survivors.count, 0)
            report.head_number, report.head_hash = number, seal["seal_hash"]
            previous_hash, previous_number, previous_last = seal["seal_hash"], number, last

    for number in sorted(attested.latest.keys() - seen):
        report.findings.append(
            Finding(
                CHECKPOINT,
                f"Prüfpunkt {attested.latest[number].checkpoint}: nennt Siegel {number}, "
                "das es nicht gibt.",
                number,
            )
        )
    _check_removed_counts(report, attested, seen)
    outside.finish(report.head_number, report.seals)
    _check_expected(report, alias, expected)
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


def _outside(report: Report, alias: str, keys: dict[str, Ed25519PublicKey]) -> tuple[int, _Outside]:
    """The newest seal to check and what lies outside the database to check it against,
    read under the anchor's lock: the sealer anchors a seal under that lock right after
    its commit, so every seal up to NEWEST is in the file by then, unless anchoring failed."""
    where = report.anchor_dir or anchor.directory()
    seals = AuditSeal.objects.using(alias)
    size = 0
    if where.is_dir():
        try:
            with anchor.locked(where, create=False):
                newest = seals.aggregate(newest=Max("number"))["newest"] or 0
                size = _size(anchor.heads_path(where))
        except anchor.AnchorError as exc:
            report.findings.append(Finding(ANCHOR, str(exc)))
            newest = seals.aggregate(newest=Max("number"))["newest"] or 0
    else:
        newest = seals.aggregate(newest=Max("number"))["newest"] or 0
    try:
        verified = anchor.last_verified(where)
    except anchor.AnchorError as exc:
        report.findings.append(Finding(ANCHOR, str(exc)))
        verified = None
    return newest, _Outside(report, where, keys, size, verified)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise anchor.AnchorError(f"Anker-Datei {path} nicht lesbar ({exc.strerror}).") from exc


class _Outside:
    """Compares the seals, in order, with the anchored heads (streamed: the file holds a
    line per seal, for years) and with the head the last verification saw."""

    def __init__(
        self,
        report: Report,
        where: Path,
        keys: dict[str, Ed25519PublicKey],
        size: int,
        verified: anchor.Verified | None,
    ) -> None:
        self.report = report
        self.path = anchor.heads_path(where)
        self.keys = keys
        self.verified = verified
        self.verified_seen = False
        self.lines: Iterator[anchor.Line] = iter(())
        if size:
            try:
                self.lines = anchor.read(where, limit=size)
            except anchor.AnchorError as exc:
                report.findings.append(Finding(ANCHOR, str(exc)))
        self.pending: anchor.Head | None = None
        self.first: anchor.Head | None = None
        self.previous: anchor.Head | None = None
        self._advance()
        self.first = self.pending

    def _advance(self) -> None:
        try:
            for line in self.lines:
                head = line.head
                if head is None:
                    self._finding(ANCHOR, f"Zeile {line.number} ist kein Protokollkopf.")
                    continue
                previous = self.previous
                if previous is not None and head.number <= previous.number:
                    if head.number != previous.number or head.seal_hash != previous.seal_hash:
                        self._finding(
                            ANCHOR,
                            f"Zeile {line.number}: Siegel {head.number} steht nach Siegel "
                            f"{previous.number}.",
                        )
                    continue
                self.previous = self.pending = head
                return
        except anchor.AnchorError as exc:
            self.report.findings.append(Finding(ANCHOR, str(exc)))
        self.pending = None

    def _finding(self, kind: str, text: str, seal: int | None = None) -> None:
        self.report.findings.append(Finding(kind, f"Anker-Datei {self.path}: {text}", seal))

    def seal(self, number: int, seal_hash: str) -> None:
        verified = self.verified
        if verified is not None and verified.number == number:
            self.verified_seen = True
            if verified.seal_hash != seal_hash:
                self.report.findings.append(
                    Finding(
                        TAIL,
                        f"Siegel {number}: die vorige Prüfung ({_when(verified.verified_at)}) "
                        f"sah es mit Hash {verified.seal_hash}, die Datenbank hat ein anderes: "
                        "das Protokoll wurde seitdem ersetzt.",
                        number,
                    )
                )
        while self.pending is not None and self.pending.number < number:
            self._missing(self.pending, beyond_head=False)
            self._advance()
        head = self.pending
        if head is not None and head.number == number:
            if head.seal_hash == seal_hash:
                self.report.anchored_number = number
            else:
                self.report.findings.append(
                    Finding(
                        TAIL,
                        f"Siegel {number}: weicht vom außerhalb der Datenbank verankerten Kopf "
                        f"ab (verankert {head.seal_hash}, in der Datenbank {seal_hash}): das "
                        "Protokoll wurde ab hier ersetzt.",
                        number,
                    )
                )
            self._advance()
            return
        if self.first is not None and number > self.first.number:
            self.report.findings.append(
                Finding(
                    ANCHOR,
                    f"Siegel {number} ist nicht außerhalb der Datenbank verankert "
                    f"({self.path}): der Versiegelungsdienst konnte den Kopf nicht schreiben.",
                    number,
                )
            )

    def finish(self, head_number: int, seals: int) -> None:
        while self.pending is not None:
            self._missing(self.pending, beyond_head=self.pending.number > head_number)
            self._advance()
        if self.first is None and seals:
            self.report.findings.append(
                Finding(
                    ANCHOR,
                    f"Kein Kopf außerhalb der Datenbank verankert ({self.path}), obwohl die "
                    f"Datenbank {_seals(seals).replace('Siegeln', 'Siegel')} hat.",
                )
            )
        verified = self.verified
        if verified is not None and not self.verified_seen:
            self.report.findings.append(
                Finding(
                    TAIL,
                    f"Die vorige Prüfung ({_when(verified.verified_at)}) sah Siegel "
                    f"{verified.number} (Hash {verified.seal_hash}); "
                    + (
                        (
                            f"die Datenbank endet bei Siegel {head_number}"
                            if head_number
                            else "die Datenbank hat kein Siegel"
                        )
                        + ": das Ende des Protokolls wurde entfernt."
                        if verified.number > head_number
                        else "es fehlt in der Datenbank."
                    ),
                    verified.number,
                )
            )

    def _missing(self, head: anchor.Head, *, beyond_head: bool) -> None:
        if not head.signed_by(self.keys):
            self._finding(
                ANCHOR,
                f"Siegel {head.number} ist mit ungültiger Signatur verankert und fehlt in der "
                "Datenbank.",
                head.number,
            )
            return
        events = _events(head.event_count)
        self.report.findings.append(
            Finding(
                TAIL if beyond_head else SEAL,
                f"Siegel {head.number} fehlt in der Datenbank, ist aber außerhalb verankert "
                f"(Hash {head.seal_hash[:16]}…, versiegelt {_when(head.sealed_at)}, {events} "
                f"bis Nr. {head.last_event_id})"
                + (": das Ende des Protokolls wurde entfernt." if beyond_head else "."),
                head.number,
            )
        )


def _when(moment: str | datetime) -> str:
    """A stored time as the DPO reads it: local time, to the second."""
    try:
        value = moment if isinstance(moment, datetime) else datetime.fromisoformat(moment)
    except ValueError:
        return str(moment)
    return timezone.localtime(value).strftime("%d.%m.%Y %H:%M:%S")


def _check_expected(report: Report, alias: str, expected: Sequence[ExpectedHead]) -> None:
    """Each head the DPO noted must be one of the chain's seals (up to the checked head)."""
    for note in expected:
        source = note.source or f"Erwarteter Kopf {note.seal_hash}"
        if note.problem is not None:
            report.findings.append(Finding(HEAD, f"{source}: {note.problem}", note.number))
            continue
        found = (
            AuditSeal.objects.using(alias)
            .filter(seal_hash=note.seal_hash.lower(), number__lte=report.head_number)
            .values_list("number", flat=True)
            .first()
        )
        if found is None:
            report.findings.append(
                Finding(
                    HEAD,
                    f"{source}: Kopf {note.seal_hash} ist nicht in der Siegelkette der "
                    "Datenbank: das Protokoll wurde danach gekürzt oder ersetzt.",
                    note.number,
                )
            )
        elif note.number is not None and found != note.number:
            report.findings.append(
                Finding(
                    HEAD,
                    f"{source}: Kopf {note.seal_hash} ist Siegel {found}, nicht {note.number}.",
                    note.number,
                )
            )


def report_refusals(report: Report, seal: dict[str, Any]) -> None:
    """Name each event the seal lists as refused (audit/chronology.py)."""
    number = seal["number"]
    try:
        refusals = chronology.unpack(None if seal["refused"] is None else bytes(seal["refused"]))
    except ValueError:
        report.findings.append(
            Finding(SEAL, f"Siegel {number}: Liste abgewiesener Ereignisse unlesbar.", number)
        )
        return
    for refusal in refusals:
        report.refused += 1
        if refusal.reason == chronology.FUTURE:
            why = (
                f"sein Zeitpunkt {_when(refusal.occurred_at)} liegt nach der Uhr des "
                f"Versiegelungsdienstes ({_when(refusal.bound)} samt Toleranz)"
            )
        else:
            why = (
                f"sein Zeitpunkt {_when(refusal.occurred_at)} liegt um mehr als die erlaubte "
                "Abweichung der Uhren vor dem neuesten schon versiegelten Ereignis "
                f"({_when(refusal.bound)})"
            )
        report.findings.append(
            Finding(
                REFUSED,
                f"Siegel {number}: Ereignis {refusal.event_id} bei der Versiegelung abgewiesen, "
                f"{why}: nachträglich eingefügt oder falsch datiert, es zählt nicht als echt.",
                number,
                refusal.event_id,
            )
        )


def _after(basis: str, seal: dict[str, Any]) -> ordering.Position | None:
    if seal["after_event_id"] is None:
        return None
    return ordering.position(basis, seal["after_txid"], seal["after_event_id"])


def _before(first: ordering.Position, second: ordering.Position) -> bool:
    return (first[0] or 0, first[1]) < (second[0] or 0, second[1])


def check_seal(report: Report, seal: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> None:
    """The seal's own content, and its signature."""
    number = seal["number"]
    if hashing.stored_seal_hash(seal) != seal["seal_hash"]:
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


def check_events(
    report: Report,
    alias: str,
    basis: str,
    seal: dict[str, Any],
    after: ordering.Position | None,
    last: ordering.Position,
    in_database: bool | None,
    survivors: Survivors | None = None,
    batch: batches.Batch | None = None,
) -> batches.Batch:
    """Re-hash the seal's events and compare them with the seal, or with SURVIVORS (the
    seal's latest checkpoint entry); on a mismatch, name them through the manifest.
    BATCH: the events from after to last, hashed already. Returns the events as read."""
    if batch is None:
        batch = _read_range(alias, basis, in_database, after, last)
    if survivors is not None:
        if (batch.count, batch.batch_hash) != (survivors.count, survivors.survivors_hash):
            _name_survivor_changes(report, seal, batch, survivors)
        return batch
    if batch.count == seal["event_count"] and batch.batch_hash == seal["batch_hash"]:
        return batch
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
    return batch


def _name_survivor_changes(
    report: Report, seal: dict[str, Any], batch: batches.Batch, survivors: Survivors
) -> None:
    """The seal's manifest names every event it ever held: a present event that it does
    not name was inserted, one whose hash differs was changed. Which of the absent ones
    the checkpoint removed is not recorded, so missing survivors can only be counted."""
    number, checkpoint = seal["number"], survivors.checkpoint
    stored = dict(hashing.read_manifest(bytes(seal["manifest"])))
    found = len(report.findings)
    inserted = 0
    for event_id, digest in sorted(batch.entries):
        if event_id not in stored:
            inserted += 1
            kind, text = INSERTED, "wurde nachträglich eingefügt"
        elif stored[event_id] != digest:
            kind, text = CHANGED, "wurde verändert"
        else:
            continue
        report.findings.append(
            Finding(kind, f"Siegel {number}: Ereignis {event_id} {text}.", number, event_id)
        )
    missing = survivors.count - (batch.count - inserted)
    if missing > 0:
        report.findings.append(
            Finding(
                DELETED,
                f"Siegel {number}: "
                + (
                    f"1 Ereignis fehlt, das nach Prüfpunkt {checkpoint} noch vorhanden war."
                    if missing == 1
                    else f"{missing} Ereignisse fehlen, die nach Prüfpunkt {checkpoint} noch "
                    "vorhanden waren."
                ),
                number,
            )
        )
    elif missing < 0:
        report.findings.append(
            Finding(
                INSERTED,
                f"Siegel {number}: {_events(-missing)} mehr, als Prüfpunkt {checkpoint} "
                "bezeugt (entfernte Ereignisse wieder eingefügt).",
                number,
            )
        )
    if len(report.findings) == found:
        report.findings.append(
            Finding(
                SEAL,
                f"Siegel {number}: Prüfsumme der nach Prüfpunkt {checkpoint} verbliebenen "
                "Ereignisse passt nicht (Reihenfolge verändert oder Verzeichnis manipuliert).",
                number,
            )
        )


def _gap(previous: int, number: int, one: str, many: str) -> str:
    """What is missing between numbers PREVIOUS and NUMBER of a chain: "Siegel Nr. 4 fehlt",
    "Prüfpunkte Nr. 4 bis 6 fehlen"."""
    if number == previous + 2:
        return f"{one} {previous + 1} fehlt"
    return f"{many} {previous + 1} bis {number - 1} fehlen"


def check_checkpoints(report: Report, alias: str, keys: dict[str, Ed25519PublicKey]) -> Attested:
    """Check the chain, content and signature of every checkpoint; return what the valid
    ones attest. A checkpoint that fails its hash or signature attests nothing: its seals
    are checked against their earlier entry or the seal itself, which names the events."""
    attested = Attested()
    previous_hash = hashing.GENESIS
    previous_number = 0
    rows = AuditCheckpoint.objects.using(alias).order_by("number").values(*CHECKPOINT_COLUMNS)
    for row in rows:
        number = row["number"]
        if number != previous_number + 1:
            missing = _gap(previous_number, number, "Prüfpunkt Nr.", "Prüfpunkte Nr.")
            report.findings.append(Finding(CHECKPOINT, f"Prüfpunkt {number}: {missing}."))
        if row["previous_hash"] != previous_hash:
            report.findings.append(
                Finding(
                    CHECKPOINT,
                    f"Prüfpunkt {number}: Verkettung unterbrochen, der Vorgänger-Hash passt "
                    + (
                        "nicht zum Anfang der Kette."
                        if previous_number == 0
                        else f"nicht zu Prüfpunkt {previous_number}."
                    ),
                )
            )
        entries = _checkpoint_entries(report, row, keys)
        for entry in entries:
            survivors = Survivors(number, entry.survivors, entry.survivors_hash)
            attested.latest[entry.seal] = survivors
            attested.history[entry.seal].append(survivors)
            attested.seals_of[number].add(entry.seal)
        if entries:
            attested.removed[number] = row["removed"]
        report.checkpoints += 1
        report.checkpoint_number, report.checkpoint_hash = number, row["checkpoint_hash"]
        previous_hash, previous_number = row["checkpoint_hash"], number
    return attested


def _checkpoint_entries(
    report: Report, row: dict[str, Any], keys: dict[str, Ed25519PublicKey]
) -> list[CheckpointEntry]:
    """The entries of a checkpoint whose content and signature hold, else none."""
    number = row["number"]
    raw = bytes(row["entries"])
    fields = {**row, "entries_hash": entries_hash(raw)}
    if checkpoint_hash(fields) != row["checkpoint_hash"]:
        report.findings.append(
            Finding(
                CHECKPOINT, f"Prüfpunkt {number}: Inhalt verändert (Prüfpunkt-Hash passt nicht)."
            )
        )
        return []
    key = keys.get(row["key_id"])
    if key is None:
        report.findings.append(
            Finding(
                CHECKPOINT,
                f"Prüfpunkt {number}: mit unbekanntem Schlüssel {row['key_id']} signiert.",
            )
        )
        return []
    try:
        key.verify(bytes.fromhex(row["signature"]), bytes.fromhex(row["checkpoint_hash"]))
    except (InvalidSignature, ValueError):
        report.findings.append(Finding(CHECKPOINT, f"Prüfpunkt {number}: Signatur ungültig."))
        return []
    try:
        entries = AuditCheckpoint.unpack(raw)
    except ValueError:
        entries = []
    seals = [entry.seal for entry in entries]
    if not entries or len(entries) != row["seals"] or seals != sorted(set(seals)):
        # Signed, so written by the pruning code itself: a fault there, not tampering.
        report.findings.append(
            Finding(CHECKPOINT, f"Prüfpunkt {number}: Einträge unlesbar oder unvollständig.")
        )
        return []
    return entries


def _check_removals(report: Report, attested: Attested, seal: dict[str, Any]) -> None:
    """Each checkpoint entry of SEAL must leave fewer events than before it."""
    number = seal["number"]
    before = seal["event_count"]
    for survivors in attested.history.get(number, []):
        if survivors.count >= before:
            report.findings.append(
                Finding(
                    CHECKPOINT,
                    f"Prüfpunkt {survivors.checkpoint}: Siegel {number} behielte "
                    f"{survivors.count} von {before} Ereignissen, es müssten weniger sein.",
                    number,
                )
            )
        attested.counted[survivors.checkpoint] += before - survivors.count
        before = survivors.count


def _check_removed_counts(report: Report, attested: Attested, seen: set[int]) -> None:
    """Each checkpoint's count of removed events must be what its entries add up to (where
    all of its seals are there to count from)."""
    for number, claimed in attested.removed.items():
        if not attested.seals_of[number] <= seen:
            continue  # already reported: it names a seal that is not there
        counted = attested.counted[number]
        if counted != claimed:
            report.findings.append(
                Finding(
                    CHECKPOINT,
                    f"Prüfpunkt {number}: nennt {_events(claimed)} als entfernt, seine "
                    f"Einträge ergeben {counted}.",
                )
            )


def _read_range(
    alias: str,
    basis: str,
    in_database: bool | None,
    after: ordering.Position | None,
    last: ordering.Position,
) -> batches.Batch:
    events = AuditEvent.objects.using(alias).filter(
        ordering.after(basis, after), ordering.up_to(basis, last)
    )
    return batches.read(events, basis, in_database=in_database)


Range = tuple[ordering.Position | None, ordering.Position]


def _range(
    basis: str, after_txid: int | None, after_id: int | None, last_txid: int | None, last_id: int
) -> Range:
    after = None if after_id is None else ordering.position(basis, after_txid, after_id)
    return after, ordering.position(basis, last_txid, last_id)


class _ReadAhead:
    """Re-hashes the next seals' events on connections of their own while the verifier
    checks the seal in hand (on PostgreSQL, which hashes on one core per connection; the
    seals' ranges are independent). A batch is used only for the very range it was read
    for; any other is read on the spot."""

    def __init__(
        self, alias: str, basis: str, in_database: bool | None, ranges: list[Range]
    ) -> None:
        self.alias, self.basis, self.in_database = alias, basis, in_database
        self.ranges = iter(ranges)
        self.pending: deque[tuple[Range, Future[batches.Batch]]] = deque()
        parallel = connections[alias].vendor == "postgresql" and in_database is not False
        self.pool = ThreadPoolExecutor(max_workers=READ_AHEAD) if parallel else None
        self._fill()

    def _fill(self) -> None:
        if self.pool is None:
            return
        while len(self.pending) < READ_AHEAD:
            span = next(self.ranges, None)
            if span is None:
                return
            self.pending.append((span, self.pool.submit(self._read, span)))

    def _read(self, span: Range) -> batches.Batch:
        try:
            return _read_range(self.alias, self.basis, self.in_database, *span)
        finally:
            connections[self.alias].close()  # the worker thread's own connection

    def next(self, span: Range) -> batches.Batch | None:
        if not self.pending:
            return None
        planned, future = self.pending.popleft()
        self._fill()
        return future.result() if planned == span else None

    def close(self) -> None:
        for _span, future in self.pending:
            future.cancel()
        if self.pool is not None:
            self.pool.shutdown(wait=True)


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


def record_result(report: Report, *, by: trail.Actor) -> AuditEvent:
    """Record REPORT as an `audit.verified` event, in its own transaction (the console
    shows the result of the last verification), and keep its head beside the anchor for
    the next run to compare with, if the run found nothing but refused events: otherwise
    the earlier head is kept (a missing tail is reported again, a head that did not
    verify is never remembered)."""
    clean = all(finding.kind == REFUSED for finding in report.findings)
    if report.anchor_dir is not None and report.seals and clean:
        try:
            anchor.remember_verified(
                report.head_number, report.head_hash, at=timezone.now(), where=report.anchor_dir
            )
        except anchor.AnchorError as exc:
            logger.error("audit verify: %s", exc)
    with transaction.atomic(using=router.db_for_write(AuditEvent)):
        return trail.record(
            by,
            AUDIT_VERIFIED,
            details={
                "ok": report.ok,
                "seals": report.seals,
                "sealed_events": report.sealed_events,
                "unsealed": report.unsealed,
                "findings": len(report.findings),
                "head": report.head_number,
                "checkpoints": report.checkpoints,
                "removed_events": report.removed_events,
                "refused": report.refused,
                "anchored": report.anchored_number,
            },
        )
