"""The trail's head, anchored outside the database: whoever owns the database can delete
the newest seals together with their events, and the chain left behind is intact. So each
seal's signed head (number, hash, time, signature) also goes

- to an append-only file, `heads.jsonl` in settings.AUDIT_ANCHOR_DIR: one JSON line per
  seal, written with O_APPEND in one write and fsynced. The directory must be one the
  database's user cannot write (README, "The anchored head");
- to the system journal: the logger `audit.anchor` logs the same line (stderr, which
  systemd hands to journald).

The sealer writes the line after the seal has committed, under an exclusive lock of the
directory that it holds from reading the previous seal until the line is written, so the
file lists the seals in order, each once. If the write fails, the seal stays in the
database unanchored: `audit_verify` names it, and the sealer makes no further seal until
it has anchored it (catch_up). A head is never anchored before its seal has committed, so
an anchored head that the database lacks was removed from it.

`audit_verify` reads the file (under the same lock, with the newest seal number) and keeps
the head it verified last in `verified-head.json` beside it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.utils import timezone

from audit import hashing

logger = logging.getLogger(__name__)

HEADS = "heads.jsonl"
VERIFIED = "verified-head.json"
_TAIL_BYTES = 64 * 1024  # more than one line; the last line is read from the file's end


class AnchorError(Exception):
    """The anchor could not be read or written; the message (German) says where."""


class AnchorMismatch(AnchorError):
    """The database's newest seals do not continue the anchored head: the sealer stops."""


@dataclass(frozen=True)
class Head:
    """One anchored head, as a line of the file holds it."""

    number: int
    seal_hash: str
    previous_hash: str
    sealed_at: str
    event_count: int
    last_event_id: int
    key_id: str
    signature: str
    anchored_at: str = ""
    adopted: bool = False  # the database's head when anchoring began, not sealed then

    def line(self) -> bytes:
        fields = {
            "number": self.number,
            "seal_hash": self.seal_hash,
            "previous_hash": self.previous_hash,
            "sealed_at": self.sealed_at,
            "event_count": self.event_count,
            "last_event_id": self.last_event_id,
            "key_id": self.key_id,
            "signature": self.signature,
            "anchored_at": self.anchored_at,
        }
        if self.adopted:
            fields["adopted"] = True
        return (json.dumps(fields, separators=(",", ":")) + "\n").encode()

    def signed_by(self, keys: Mapping[str, Ed25519PublicKey]) -> bool:
        """Whether the seal's own signature over its hash holds (keys by key id)."""
        key = keys.get(self.key_id)
        if key is None:
            return False
        try:
            key.verify(bytes.fromhex(self.signature), bytes.fromhex(self.seal_hash))
        except (InvalidSignature, ValueError):
            return False
        return True

    @classmethod
    def of(cls, seal: Mapping[str, Any], *, adopted: bool = False) -> Head:
        """The head of a seal (a model instance's fields or a values() row)."""
        return cls(
            number=seal["number"],
            seal_hash=seal["seal_hash"],
            previous_hash=seal["previous_hash"],
            sealed_at=hashing.timestamp(seal["sealed_at"]),
            event_count=seal["event_count"],
            last_event_id=seal["last_event_id"],
            key_id=seal["key_id"],
            signature=seal["signature"],
            anchored_at=hashing.timestamp(timezone.now()),
            adopted=adopted,
        )

    @classmethod
    def parse(cls, line: bytes) -> Head:
        """ValueError if LINE is not a head."""
        try:
            fields = json.loads(line)
            head = cls(
                number=int(fields["number"]),
                seal_hash=str(fields["seal_hash"]),
                previous_hash=str(fields["previous_hash"]),
                sealed_at=str(fields["sealed_at"]),
                event_count=int(fields["event_count"]),
                last_event_id=int(fields["last_event_id"]),
                key_id=str(fields["key_id"]),
                signature=str(fields["signature"]),
                anchored_at=str(fields.get("anchored_at", "")),
                adopted=bool(fields.get("adopted", False)),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError("keine Kopfzeile") from exc
        return head


# The fields of a seal that make its head.
HEAD_COLUMNS = (
    "number",
    "seal_hash",
    "previous_hash",
    "sealed_at",
    "event_count",
    "last_event_id",
    "key_id",
    "signature",
)


def directory() -> Path:
    return Path(settings.AUDIT_ANCHOR_DIR)


def heads_path(where: Path | None = None) -> Path:
    return (where or directory()) / HEADS


@contextmanager
def locked(where: Path | None = None, *, create: bool = True) -> Iterator[Path]:
    """Hold the anchor directory's exclusive lock (flock on the directory itself, so a
    read-only copy can be locked too). The sealer holds it from reading the previous seal
    until its head is written; audit_verify while it reads the newest seal and the file."""
    path = where or directory()
    try:
        if create:
            path.mkdir(mode=0o750, parents=True, exist_ok=True)
        handle = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise AnchorError(
            f"Anker-Verzeichnis {path} nicht verfügbar ({exc.strerror or exc})."
        ) from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(handle)  # releases the lock


def append(head: Head, where: Path | None = None) -> None:
    """Append HEAD to the file (one write with O_APPEND, then fsync) and to the journal.
    Raises AnchorError when the file cannot be written."""
    path = heads_path(where)
    line = head.line()
    try:
        created = not path.exists()
        handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            written = os.write(handle, line)
            if written != len(line):
                raise OSError(f"nur {written} von {len(line)} Bytes geschrieben")
            os.fsync(handle)
        finally:
            os.close(handle)
        if created:
            _sync_directory(path.parent)
    except OSError as exc:
        logger.error(
            "Protokollkopf NICHT verankert: Siegel %s, Anker-Datei %s: %s",
            head.number,
            path,
            exc,
        )
        raise AnchorError(
            f"Kopf von Siegel {head.number} konnte nicht in {path} verankert werden: {exc}"
        ) from exc
    # The journal's copy: the same line, for anyone who compares it with the file.
    logger.info("Protokollkopf verankert: %s", line.decode().rstrip("\n"))


def _sync_directory(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


@dataclass(frozen=True)
class Line:
    number: int  # line number in the file, from 1
    head: Head | None  # None when the line is not a head
    text: str = ""


def read(where: Path | None = None, *, limit: int | None = None) -> Iterator[Line]:
    """Every line of the file, in order, within its first LIMIT bytes (the size it had
    under the lock); none when there is no file yet. Streams: the file grows by a line per
    seal, for years."""
    path = heads_path(where)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise AnchorError(f"Anker-Datei {path} nicht lesbar ({exc.strerror or exc}).") from exc
    consumed = 0
    with handle:
        for number, raw in enumerate(handle, start=1):
            consumed += len(raw)
            if limit is not None and consumed > limit:
                return  # written after the snapshot
            if not raw.strip():
                continue
            try:
                yield Line(number, Head.parse(raw))
            except ValueError:
                yield Line(number, None, raw[:80].decode(errors="replace"))


def last_head(where: Path | None = None) -> Head | None:
    """The file's last head, read from its end (the sealer asks before every seal)."""
    path = heads_path(where)
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _TAIL_BYTES))
            tail = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AnchorError(f"Anker-Datei {path} nicht lesbar ({exc.strerror or exc}).") from exc
    for raw in reversed(tail.splitlines()):
        if raw.strip():
            try:
                return Head.parse(raw)
            except ValueError:
                # The sealer must not build on a head it cannot read.
                raise AnchorMismatch(
                    f"Die letzte Zeile von {path} ist kein Protokollkopf: "
                    "`manage.py audit_verify` prüfen."
                ) from None
    return None


@dataclass(frozen=True)
class Verified:
    """The head that audit_verify saw last, with the time of that run."""

    number: int
    seal_hash: str
    verified_at: str


def last_verified(where: Path | None = None) -> Verified | None:
    path = (where or directory()) / VERIFIED
    try:
        fields = json.loads(path.read_bytes())
        return Verified(int(fields["number"]), str(fields["seal_hash"]), str(fields["verified_at"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise AnchorError(f"Prüfstand {path} nicht lesbar: {exc}") from exc


def remember_verified(
    number: int, seal_hash: str, *, at: datetime, where: Path | None = None
) -> None:
    """Keep NUMBER/SEAL_HASH as the head the last verification saw: written beside and
    renamed over the old state, so a crash leaves the old one or the new one."""
    folder = where or directory()
    path = folder / VERIFIED
    temporary = folder / f".{VERIFIED}.{os.getpid()}"
    content = json.dumps(
        {"number": number, "seal_hash": seal_hash, "verified_at": hashing.timestamp(at)},
        separators=(",", ":"),
    ).encode()
    try:
        folder.mkdir(mode=0o750, parents=True, exist_ok=True)
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(handle, content + b"\n")
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(temporary, path)
        _sync_directory(folder)
    except OSError as exc:
        raise AnchorError(f"Prüfstand {path} nicht geschrieben: {exc}") from exc
