"""The erasure register: every erased family, kept outside the database.

Erasing a family destroys its data key, but the wrapped keys live in the database, so a
backup taken before the erasure still holds the key, and restoring it would make the
family readable again. The register closes that gap: `erasures.jsonl` in
settings.ERASURE_REGISTER_DIR gets one line per erased family (its id, reference, the data
key's id and the time), chained to the previous line by hash and signed with the trail's
key, like a seal. `manage.py restore` erases again every family of the register that the
restored database still holds unerased, and the platform refuses to start while one is
left (`unapplied`).

A line is written once the erasure has committed (a rolled-back erasure must not be
applied later). Should that write fail, the database still says the family is erased:
`catch_up` adds what is missing, and `backup` and `restore` call it first.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone

from audit import hashing, signing
from dienstweg.models import Family

logger = logging.getLogger(__name__)

FILE = "erasures.jsonl"
GENESIS = "0" * 64


class RegisterError(Exception):
    """The register cannot be read or written, or a line does not verify (German)."""


@dataclass(frozen=True)
class Entry:
    number: int
    family_id: str
    reference: str
    data_key_id: str | None  # None when added by catch_up (the key id had gone)
    erased_at: str
    previous_hash: str
    entry_hash: str = ""
    key_id: str = ""
    signature: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "family_id": self.family_id,
            "reference": self.reference,
            "data_key_id": self.data_key_id,
            "erased_at": self.erased_at,
            "previous_hash": self.previous_hash,
        }

    def computed_hash(self) -> str:
        canonical = json.dumps(self.body(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def line(self) -> bytes:
        fields = self.body() | {
            "entry_hash": self.entry_hash,
            "key_id": self.key_id,
            "signature": self.signature,
        }
        return (json.dumps(fields, separators=(",", ":")) + "\n").encode()

    @classmethod
    def parse(cls, raw: bytes) -> Entry:
        fields = json.loads(raw)
        data_key_id = fields["data_key_id"]
        return cls(
            number=int(fields["number"]),
            family_id=str(fields["family_id"]),
            reference=str(fields["reference"]),
            data_key_id=None if data_key_id is None else str(data_key_id),
            erased_at=str(fields["erased_at"]),
            previous_hash=str(fields["previous_hash"]),
            entry_hash=str(fields["entry_hash"]),
            key_id=str(fields["key_id"]),
            signature=str(fields["signature"]),
        )


def directory() -> Path:
    return Path(settings.ERASURE_REGISTER_DIR)


def path(where: Path | None = None) -> Path:
    return (where or directory()) / FILE


@contextmanager
def _locked(where: Path | None = None) -> Iterator[Path]:
    folder = where or directory()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise RegisterError(
            f"Löschregister {folder} nicht verfügbar ({exc.strerror or exc})."
        ) from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield folder
    finally:
        os.close(handle)


def _read(where: Path | None = None) -> list[Entry]:
    file = path(where)
    try:
        raw_lines = file.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RegisterError(f"Löschregister {file} nicht lesbar ({exc.strerror or exc}).") from exc
    entries = []
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        try:
            entries.append(Entry.parse(raw))
        except (ValueError, TypeError, KeyError) as exc:
            raise RegisterError(f"Löschregister {file}: Zeile {number} ist unlesbar.") from exc
    return entries


def entries(where: Path | None = None) -> list[Entry]:
    """Every entry, each checked: numbered from 1 without a gap, chained, signed with this
    installation's key. RegisterError names the first line that fails."""
    found = _read(where)
    key = signing.public_key()
    key_id = signing.key_id(key)
    previous = GENESIS
    for number, entry in enumerate(found, start=1):
        problem = None
        if entry.number != number:
            problem = f"trägt die Nummer {entry.number}"
        elif entry.previous_hash != previous:
            problem = "schließt nicht an den vorigen Eintrag an"
        elif entry.computed_hash() != entry.entry_hash:
            problem = "wurde verändert"
        elif entry.key_id != key_id:
            problem = f"ist mit einem anderen Schlüssel signiert ({entry.key_id})"
        else:
            try:
                key.verify(bytes.fromhex(entry.signature), bytes.fromhex(entry.entry_hash))
            except (InvalidSignature, ValueError):
                problem = "trägt keine gültige Signatur"
        if problem is not None:
            raise RegisterError(f"Löschregister {path(where)}: Eintrag {number} {problem}.")
        previous = entry.entry_hash
    return found


def _append(
    *, family_id: str, reference: str, data_key_id: str | None, erased_at: datetime
) -> Entry:
    with _locked():
        known = _read()
        for entry in known:
            if entry.family_id == family_id:
                return entry  # erased again after a restore: registered already
        previous = known[-1] if known else None
        unsigned = Entry(
            number=previous.number + 1 if previous else 1,
            family_id=family_id,
            reference=reference,
            data_key_id=data_key_id,
            erased_at=hashing.timestamp(erased_at),
            previous_hash=previous.entry_hash if previous else GENESIS,
        )
        digest = unsigned.computed_hash()
        private = signing.private_key()
        entry = Entry(
            **unsigned.body(),
            entry_hash=digest,
            key_id=signing.key_id(private.public_key()),
            signature=private.sign(bytes.fromhex(digest)).hex(),
        )
        file = path()
        line = entry.line()
        try:
            handle = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if os.write(handle, line) != len(line):
                    raise OSError("unvollständig geschrieben")
                os.fsync(handle)
            finally:
                os.close(handle)
        except OSError as exc:
            raise RegisterError(f"Löschregister {file} nicht geschrieben: {exc}") from exc
    return entry


def record_erasure(family: Family, *, data_key_id: object | None) -> None:
    """Register FAMILY's erasure once it has committed (called from the erasure's
    on_commit). Never raises: the erasure has committed; a failed write is logged and
    made good by catch_up before the next backup or restore."""
    try:
        _append(
            family_id=str(family.pk),
            reference=family.reference,
            data_key_id=None if data_key_id is None else str(data_key_id),
            erased_at=timezone.now(),
        )
    except Exception:
        logger.exception("erasure of family %s NOT registered; catch_up adds it", family.pk)


def catch_up() -> int:
    """Register every family the database shows as erased that the register lacks (its
    write failed after the commit); the number added. RegisterError when the register
    does not verify."""
    known = {entry.family_id for entry in entries()}
    added = 0
    erased = Family.objects.filter(erased_at__isnull=False).order_by("erased_at", "pk")
    for family_id, reference, erased_at in erased.values_list("pk", "reference", "erased_at"):
        if str(family_id) not in known and erased_at is not None:
            _append(
                family_id=str(family_id),
                reference=reference,
                data_key_id=None,
                erased_at=erased_at,
            )
            added += 1
    return added


def unapplied(register: list[Entry] | None = None) -> list[Entry]:
    """The registered erasures that the database does not show: families it holds that are
    not erased, or still have a data key. Empty when the register is."""
    register = entries() if register is None else register
    if not register:
        return []
    by_id = {entry.family_id: entry for entry in register}
    rows = Family.objects.filter(pk__in=list(by_id)).filter(
        Q(erased_at__isnull=True) | Q(data_key__isnull=False)
    )
    pending = {str(pk) for pk in rows.values_list("pk", flat=True)}
    return [entry for entry in register if entry.family_id in pending]


def startup_problem() -> str | None:
    """Why the platform must not start (German), or None: the register does not verify,
    or the database holds registered erasures it does not reflect (a restored backup that
    went round `manage.py restore`). A database without tables yet has nothing to check."""
    try:
        pending = unapplied()
    except RegisterError as exc:
        return str(exc)
    except DatabaseError:
        return None
    if not pending:
        return None
    references = ", ".join(entry.reference for entry in pending[:10])
    one = len(pending) == 1
    families = "eine Familie, die" if one else f"{len(pending)} Familien, die"
    return (
        f"Die Datenbank enthält {families} laut Löschregister ({path()}) gelöscht "
        f"{'ist' if one else 'sind'}: {references}. Sie wurde wohl aus einer älteren Sicherung "
        "zurückgespielt. `manage.py apply_erasures` löscht sie erneut; bis dahin "
        "startet die Plattform nicht."
    )
