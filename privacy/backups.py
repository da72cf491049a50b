"""Backup and restore of the database, and the erasures a restore must not take back.

A backup is the database without its data keys: PostgreSQL through `pg_dump
--format=custom` (the key table's rows left out), SQLite through its online backup API (the
key table emptied in the copy, its pages zeroed and vacuumed), each into a file of mode
0600. The wrapped keys go to a key file of their own (privacy/backup_keys.py), kept apart and
for a short time. What a restore cannot bring back lives apart too: the secrets (master
keys), the anchored heads of the trail, and the erasure register
(dienstweg/erasure_register.py).

`restore` replaces the database with a backup and the keys of the newest key file, leaving
out every key the erasure register names, brings the schema up to date, and erases again
every family that the register names and the backup still holds, before anything else can
read it: an erasure destroys the family's key in every copy, including this one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from audit import anchor
from audit.models import AuditEvent
from audit.sealing import seal_pending
from audit.trail import record
from dienstweg import actions as core
from dienstweg import erasure_register, vault
from dienstweg.models import DataKey, Family
from privacy import backup_keys
from privacy.audit_actions import (
    BACKUP_CREATED,
    BACKUP_FAILED,
    BACKUP_RESTORED,
    BACKUPS_REMOVED,
)
from privacy.erasure import erase_family

logger = logging.getLogger(__name__)

ACTOR_BACKUP = "system:backup"
ACTOR_RESTORE = "system:restore"
ALIAS = "default"
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"
STAMP = "%Y%m%dT%H%M%SZ"
# The names `backup` gives its files; retention removes no other file.
OWN_NAME = re.compile(r"dienstweg-(?P<stamp>\d{8}T\d{6}Z)-[0-9a-f]{8}\.(dump|sqlite3)")


class BackupError(Exception):
    """A backup or restore could not be done; the message (German) says why."""


@dataclass(frozen=True)
class Backup:
    path: Path
    backup_id: str
    size: int
    sha256: str
    keys_path: Path  # the key file, apart from the backup
    keys: int
    sealed: str | None  # why the trail could not be sealed first, or None
    removed: list[str] = field(default_factory=list)  # expired backups and key files removed


@dataclass
class Restored:
    path: Path
    backup_id: str | None  # the backup's own backup.created event, if it has one
    keys_path: Path | None = None
    keys: backup_keys.Restored | None = None
    reapplied: list[str] = field(default_factory=list)  # references erased again
    anchor_problem: str | None = None  # the trail's head is older than the anchored one


def engine() -> str:
    vendor = connections[ALIAS].vendor
    if vendor not in ("postgresql", "sqlite"):
        raise BackupError(f"Keine Sicherung für die Datenbank {vendor} vorgesehen.")
    return vendor


def default_path(*, backup_id: str, at: datetime) -> Path:
    suffix = "dump" if engine() == "postgresql" else "sqlite3"
    return Path(settings.BACKUP_DIR) / f"dienstweg-{_stamp(at)}-{backup_id[:8]}.{suffix}"


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime(STAMP)


def create_backup(output: Path | None = None, *, now: datetime | None = None) -> Backup:
    """Register any erasure the register lacks, record `backup.created`, seal the trail
    (so the backup ends at an anchored head) and write the database without its data keys
    to OUTPUT (by default into settings.BACKUP_DIR), mode 0600, never over an existing file;
    then the keys into a key file in settings.BACKUP_KEYS_DIR. Finally remove the platform's
    own backups and key files older than their retention periods."""
    kind = engine()
    now = now or timezone.now()
    erasure_register.catch_up()
    backup_id = str(uuid.uuid4())
    target = output or default_path(backup_id=backup_id, at=now)
    with transaction.atomic():
        record(ACTOR_BACKUP, BACKUP_CREATED, details={"backup_id": backup_id, "engine": kind})
    sealed = _seal()
    keys_path = backup_keys.path_for(stamp=_stamp(now), backup_id=backup_id)
    written = False
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _new_file(target) as handle:
            if kind == "postgresql":
                _pg_dump(handle)
            else:
                _sqlite_backup(target)
        written = True
        # After the dump: a key made meanwhile is in the file; one destroyed meanwhile is
        # not, and its family is in the erasure register.
        keys = backup_keys.write(keys_path, alias=ALIAS)
    except (OSError, BackupError, backup_keys.KeysError) as exc:
        if written:
            target.unlink(missing_ok=True)  # a backup without its keys is no backup
        with transaction.atomic():
            record(ACTOR_BACKUP, BACKUP_FAILED, details={"backup_id": backup_id})
        if isinstance(exc, BackupError):
            raise
        if isinstance(exc, backup_keys.KeysError):
            raise BackupError(str(exc)) from exc
        raise BackupError(f"Sicherung nach {target} fehlgeschlagen: {exc}") from exc
    removed = remove_expired(now=now, keep={target, keys_path})
    size, digest = target.stat().st_size, _sha256(target)
    return Backup(target, backup_id, size, digest, keys_path, keys, sealed, removed)


def remove_expired(*, now: datetime, keep: set[Path]) -> list[str]:
    """Remove, never KEEP, the backups in settings.BACKUP_DIR older than
    settings.BACKUP_RETENTION_DAYS and the key files older than
    settings.BACKUP_KEYS_RETENTION_DAYS, each known by the name `backup` gives it; their
    names. After the key files' period an erased family's key is in no copy at all."""
    removed = _remove_older(
        Path(settings.BACKUP_DIR),
        _backup_made_at,
        now - timedelta(days=settings.BACKUP_RETENTION_DAYS),
        keep,
    )
    removed_keys = _remove_older(
        backup_keys.directory(),
        backup_keys.made_at,
        now - timedelta(days=settings.BACKUP_KEYS_RETENTION_DAYS),
        keep,
    )
    if removed or removed_keys:
        with transaction.atomic():
            record(
                ACTOR_BACKUP,
                BACKUPS_REMOVED,
                details={
                    "backups_removed": len(removed),
                    "key_files_removed": len(removed_keys),
                    "retention_days": settings.BACKUP_RETENTION_DAYS,
                    "key_retention_days": settings.BACKUP_KEYS_RETENTION_DAYS,
                },
            )
    return removed + removed_keys


def _backup_made_at(path: Path) -> datetime | None:
    match = OWN_NAME.fullmatch(path.name)
    if match is None:
        return None
    return datetime.strptime(match["stamp"], STAMP).replace(tzinfo=UTC)


def _remove_older(
    folder: Path, made_at: Callable[[Path], datetime | None], cutoff: datetime, keep: set[Path]
) -> list[str]:
    try:
        candidates = sorted(folder.iterdir())
    except FileNotFoundError:
        return []
    removed = []
    for candidate in candidates:
        made = made_at(candidate)
        if made is not None and made < cutoff and candidate not in keep:
            candidate.unlink(missing_ok=True)
            removed.append(candidate.name)
    return removed


@contextmanager
def _new_file(target: Path) -> Iterator[int]:
    """A new file of mode 0600 (never an existing one), removed again if writing fails."""
    try:
        handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(f"{target} gibt es schon; eine Sicherung überschreibt nichts.") from None
    try:
        yield handle
        os.fsync(handle)
    except BaseException:
        os.close(handle)
        target.unlink(missing_ok=True)
        raise
    os.close(handle)


def _seal() -> str | None:
    try:
        seal_pending()
    except anchor.AnchorError as exc:
        logger.warning("backup: trail not sealed first: %s", exc)
        return str(exc)
    return None


def _pg_command(program: str) -> tuple[list[str], dict[str, str]]:
    settings_dict = connections[ALIAS].settings_dict
    command = [program, "--dbname", settings_dict["NAME"]]
    if settings_dict.get("HOST"):
        command += ["--host", str(settings_dict["HOST"])]
    if settings_dict.get("PORT"):
        command += ["--port", str(settings_dict["PORT"])]
    if settings_dict.get("USER"):
        command += ["--username", str(settings_dict["USER"])]
    environment = dict(os.environ)
    if settings_dict.get("PASSWORD"):
        environment["PGPASSWORD"] = str(settings_dict["PASSWORD"])
    return command, environment


def _run(command: list[str], environment: dict[str, str], *, stdout: int | None = None) -> None:
    try:
        finished = subprocess.run(  # noqa: S603 (fixed program, our own arguments)
            command, env=environment, stdout=stdout, stderr=subprocess.PIPE, check=False
        )
    except OSError as exc:
        raise BackupError(f"{command[0]} nicht ausführbar: {exc}") from exc
    if finished.returncode != 0:
        message = finished.stderr.decode(errors="replace").strip()[-2000:]
        raise BackupError(f"{command[0]} endete mit Status {finished.returncode}: {message}")


def _pg_dump(handle: int) -> None:
    command, environment = _pg_command("pg_dump")
    keys = f"--exclude-table-data={DataKey._meta.db_table}"
    _run([*command, "--format=custom", keys, "--no-password"], environment, stdout=handle)


def _sqlite_backup(target: Path) -> None:
    connection = connections[ALIAS]
    connection.ensure_connection()
    destination = sqlite3.connect(target, isolation_level=None)
    try:
        connection.connection.backup(destination)
        # The copy keeps no key, not even in freed pages or a journal left on disk.
        destination.execute("PRAGMA journal_mode=MEMORY")
        destination.execute("PRAGMA secure_delete=ON")
        destination.execute("PRAGMA foreign_keys=OFF")
        destination.execute(f'DELETE FROM "{DataKey._meta.db_table}"')  # noqa: S608
        destination.execute("VACUUM")
    finally:
        destination.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def restore_backup(path: Path, *, keys: Path | None = None, migrate: bool = True) -> Restored:
    """Replace the configured database by the backup at PATH (every service of the
    platform stopped) with the keys of KEYS (by default the newest key file), leaving out
    those the erasure register names; bring the schema up to date (MIGRATE), erase again
    what the register names, record `backup.restored` and seal. Refuses before touching the
    database when the register does not verify, the file is no backup of this kind of
    database, or no key file can be read. ANCHOR_PROBLEM in the result says when the
    restored trail ends before the anchored head (an older backup: `audit_verify` names
    the seals that are gone)."""
    kind = engine()
    try:
        register = erasure_register.entries()
    except erasure_register.RegisterError as exc:
        raise BackupError(f"{exc} Es wird nichts zurückgespielt.") from exc
    _check_kind(path, kind)
    source = keys or backup_keys.newest()
    if source is None:
        raise BackupError(
            f"Keine Schlüsseldatei in {backup_keys.directory()}: ohne sie bliebe jede "
            "verschlüsselte Angabe unlesbar. Mit --keys die neueste Schlüsseldatei angeben."
        )
    try:
        backup_keys.check(source)
    except backup_keys.KeysError as exc:
        raise BackupError(str(exc)) from exc
    # An erasure whose line was never written is caught from the database it replaces.
    try:
        erasure_register.catch_up()
        register = erasure_register.entries()
    except DatabaseError:
        pass  # no database yet (a new server): the register is all there is
    erased_keys = {entry.data_key_id for entry in register if entry.data_key_id}
    keys_restored = replace_database(path, keys=source, erased_keys=erased_keys)
    if migrate:
        call_command("migrate", interactive=False, verbosity=0)
    result = Restored(path, _backup_id(), source, keys_restored)
    result.reapplied = reapply_erasures(register)
    with transaction.atomic():
        record(
            ACTOR_RESTORE,
            BACKUP_RESTORED,
            details={
                "backup_id": result.backup_id,
                "keys_restored": keys_restored.keys,
                "keys_left_out": keys_restored.left_out,
                "erasures_reapplied": len(result.reapplied),
            },
        )
    try:
        seal_pending()
    except anchor.AnchorError as exc:
        result.anchor_problem = str(exc)
    return result


def replace_database(
    path: Path, *, keys: Path, erased_keys: Iterable[str] = ()
) -> backup_keys.Restored:
    """Put the backup at PATH in place of the configured database, with the keys of KEYS
    but ERASED_KEYS, and nothing else: what an operator does by hand with pg_restore or a
    copied file. `restore_backup` goes on to apply the erasure register; without it the
    platform refuses to start. On PostgreSQL the schema is dropped and rebuilt in three
    steps (tables and rows, keys, then indexes, constraints and triggers): a failure in
    between leaves a database to restore again."""
    kind = engine()
    _check_kind(path, kind)
    if kind == "postgresql":
        command, environment = _pg_command("pg_restore")
        options = [
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            "--no-password",
        ]
        _run(["pg_restore", "--list", str(path)], environment, stdout=subprocess.DEVNULL)
        with transaction.atomic(using=ALIAS), connections[ALIAS].cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE")
            cursor.execute("CREATE SCHEMA public")
        connections.close_all()
        _run([*command, "--section=pre-data", "--section=data", *options, str(path)], environment)
        with transaction.atomic(using=ALIAS):
            restored = backup_keys.restore(keys, erased=erased_keys, alias=ALIAS)
        connections.close_all()
        _run([*command, "--section=post-data", *options, str(path)], environment)
    else:
        _sqlite_restore(path)
        with transaction.atomic(using=ALIAS):
            restored = backup_keys.restore(keys, erased=erased_keys, alias=ALIAS)
    vault.forget_unwrapped_keys()
    return restored


def _check_kind(path: Path, kind: str) -> None:
    try:
        with path.open("rb") as handle:
            start = handle.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise BackupError(f"{path} nicht lesbar ({exc.strerror or exc}).") from exc
    expected = PG_MAGIC if kind == "postgresql" else SQLITE_MAGIC
    if not start.startswith(expected):
        raise BackupError(
            f"{path} ist keine Sicherung einer {'PostgreSQL' if kind == 'postgresql' else 'SQLite'}"
            "-Datenbank dieser Art (pg_dump --format=custom bzw. SQLite)."
        )


def _sqlite_restore(path: Path) -> None:
    connection = connections[ALIAS]
    connection.ensure_connection()
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        source.backup(connection.connection)
    finally:
        source.close()


def _backup_id() -> str | None:
    newest = (
        AuditEvent.objects.filter(action=BACKUP_CREATED).order_by("-id").values("details").first()
    )
    return None if newest is None else str(newest["details"].get("backup_id"))


def reapply_erasures(register: list[erasure_register.Entry] | None = None) -> list[str]:
    """Erase again every family the register names that the database holds unerased or
    with its key (each in its own transaction, recorded as `family.erased` by the platform
    itself); the references erased. The trail is sealed by the caller."""
    done = []
    for entry in erasure_register.unapplied(register):
        family = Family.objects.get(pk=entry.family_id)
        reason = (
            f"Löschung vom {entry.erased_at[:10]} nach dem Zurückspielen einer Sicherung "
            "erneut angewandt"
        )
        if family.is_erased:
            # The record went, the key (or a reference to one) did not: a database put
            # back by hand. Not a state erase_family leaves; shred what is left.
            with transaction.atomic():
                locked = Family.objects.select_for_update().get(pk=family.pk)
                core.erase_family_key(locked, by=ACTOR_RESTORE, reason=reason)
        else:
            erase_family(family, by=ACTOR_RESTORE, reason=reason, seal=False)
        done.append(entry.reference)
        logger.warning("restore: erasure of family %s applied again", entry.family_id)
    vault.forget_unwrapped_keys()
    return done
