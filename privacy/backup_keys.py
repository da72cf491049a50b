"""The data keys of a backup, kept apart from it.

A database backup holds no data key: `backup` leaves the table of wrapped keys empty in the
copy and writes the keys into a file of their own in settings.BACKUP_KEYS_DIR, which is
kept for a short time only (settings.BACKUP_KEYS_RETENTION_DAYS). Erasing a family deletes
its key from the database; once the last key file made before that is gone, no backup can
be read for the family, whoever holds it, with or without the master key.

`restore` puts back the keys from the newest key file (or one named), leaving out every key
the erasure register names, so an older backup is read with the keys that exist now. A
reference to a key that the file does not hold is set to NULL: that data stays unreadable.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.db.models import ForeignKey

from dienstweg.models import DataKey

KEYS_SUFFIX = ".keys.jsonl"
STAMP = "%Y%m%dT%H%M%SZ"
# The names `backup` gives its key files; retention removes no other file.
OWN_NAME = re.compile(r"dienstweg-(?P<stamp>\d{8}T\d{6}Z)-[0-9a-f]{8}\.keys\.jsonl")
BATCH = 1000


class KeysError(Exception):
    """The key file cannot be written or read (German)."""


@dataclass(frozen=True)
class Restored:
    keys: int  # keys put back
    left_out: int  # keys the erasure register names
    missing: int  # references to a key the file does not hold, set to NULL


def directory() -> Path:
    return Path(settings.BACKUP_KEYS_DIR)


def path_for(*, stamp: str, backup_id: str) -> Path:
    return directory() / f"dienstweg-{stamp}-{backup_id[:8]}{KEYS_SUFFIX}"


def made_at(path: Path) -> datetime | None:
    match = OWN_NAME.fullmatch(path.name)
    if match is None:
        return None
    return datetime.strptime(match["stamp"], STAMP).replace(tzinfo=UTC)


def write(target: Path, *, alias: str) -> int:
    """Every wrapped data key of the database into TARGET (a new file, mode 0600, one JSON
    line per key); the number written."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeysError(f"{target} gibt es schon; eine Sicherung überschreibt nichts.") from None
    except OSError as exc:
        raise KeysError(f"Schlüsseldatei {target} nicht angelegt: {exc}") from exc
    count = 0
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            rows = DataKey.objects.using(alias).order_by("pk")
            for key in rows.iterator(chunk_size=BATCH):
                line = {
                    "id": str(key.pk),
                    "master_version": key.master_version,
                    "wrapped": base64.b64encode(bytes(key.wrapped)).decode(),
                    "created_at": key.created_at.isoformat(),
                }
                file.write(json.dumps(line, separators=(",", ":")) + "\n")
                count += 1
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return count


def newest() -> Path | None:
    """The newest key file `backup` wrote (by the time in its name), or None."""
    try:
        candidates = [path for path in directory().iterdir() if made_at(path) is not None]
    except FileNotFoundError:
        return None
    return max(candidates, key=lambda path: (made_at(path), path.name), default=None)


def _read(source: Path) -> list[DataKey]:
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise KeysError(f"Schlüsseldatei {source} nicht lesbar ({exc.strerror or exc}).") from exc
    keys = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            fields = json.loads(text)
            keys.append(
                DataKey(
                    id=fields["id"],
                    master_version=int(fields["master_version"]),
                    wrapped=base64.b64decode(fields["wrapped"], validate=True),
                    created_at=datetime.fromisoformat(fields["created_at"]),
                )
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise KeysError(f"Schlüsseldatei {source}: Zeile {number} ist unlesbar.") from exc
    return keys


def check(source: Path) -> None:
    """KeysError unless SOURCE reads as a key file (before anything is replaced)."""
    _read(source)


def _references() -> list[ForeignKey[DataKey, DataKey]]:
    """Every column that names a data key (families, staff accounts, direct threads...)."""
    from django.apps import apps

    return [
        field
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, ForeignKey) and field.related_model is DataKey
    ]


def restore(source: Path, *, erased: Iterable[str], alias: str) -> Restored:
    """Put the keys of SOURCE into the (restored, key-less) database, except ERASED key ids
    and keys nothing refers to, then set every reference to a key that is not there to NULL.
    Runs before the foreign keys are checked (PostgreSQL: before the post-data section)."""
    erased = set(erased)
    referenced: set[str] = set()
    fields = _references()
    for field in fields:
        rows = field.model._default_manager.using(alias)
        named = rows.exclude(**{f"{field.attname}__isnull": True})
        referenced.update(str(value) for value in named.values_list(field.attname, flat=True))
    keys = _read(source)
    wanted = [key for key in keys if str(key.pk) in referenced and str(key.pk) not in erased]
    DataKey.objects.using(alias).bulk_create(wanted, batch_size=BATCH)
    present = {str(key.pk) for key in wanted}
    missing = 0
    connection = connections[alias]
    with connection.cursor() as cursor:
        for field in fields:
            table = connection.ops.quote_name(field.model._meta.db_table)
            column = connection.ops.quote_name(field.column)
            key_table = connection.ops.quote_name(DataKey._meta.db_table)
            cursor.execute(
                f"UPDATE {table} SET {column} = NULL WHERE {column} IS NOT NULL "  # noqa: S608
                f"AND {column} NOT IN (SELECT id FROM {key_table})"
            )
            missing += cursor.rowcount
    left_out = len([key for key in keys if str(key.pk) in erased and str(key.pk) in referenced])
    return Restored(keys=len(present), left_out=left_out, missing=missing - left_out)
