"""Backup and restore of the database, and the erasures a restore must not take back.

A backup is the database only: PostgreSQL through `pg_dump --format=custom`, SQLite through
its online backup API, into a file of mode 0600. It holds ciphertexts and the data keys
wrapped by the master key, never a secret. What a restore cannot bring back lives apart:
the secrets (master keys), the anchored heads of the trail, and the erasure register
(dienstweg/erasure_register.py).

`restore` replaces the database with a backup, brings its schema up to date, and erases
again every family that the register names and the backup still holds, before anything
else can read it: an erasure destroys the family's key in every copy, including this one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
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
from dienstweg.models import Family
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
    sealed: str | None  # why the trail could not be sealed first, or None
    removed: list[str] = field(default_factory=list)  # expired backups removed


@dataclass
class Restored:
    path: Path
    backup_id: str | None  # the backup's own backup.created event, if it has one
    reapplied: list[str] = field(default_factory=list)  # references erased again
    anchor_problem: str | None = None  # the trail's head is older than the anchored one


def engine() -> str:
    vendor = connections[ALIAS].vendor
    if vendor not in ("postgresql", "sqlite"):
        raise BackupError(f"Keine Sicherung für die Datenbank {vendor} vorgesehen.")
    return vendor


def default_path(*, backup_id: str, at: datetime) -> Path:
    suffix = "dump" if engine() == "postgresql" else "sqlite3"
    stamp = at.astimezone(UTC).strftime(STAMP)
    return Path(settings.BACKUP_DIR) / f"dienstweg-{stamp}-{backup_id[:8]}.{suffix}"


def create_backup(output: Path | None = None, *, now: datetime | None = None) -> Backup:
    """Register any erasure the register lacks, record `backup.created`, seal the trail
    (so the backup ends at an anchored head) and write the database to OUTPUT (by default
    into settings.BACKUP_DIR), mode 0600, never over an existing file. Then remove the
    platform's own backups there that are older than settings.BACKUP_RETENTION_DAYS."""
    kind = engine()
    now = now or timezone.now()
    erasure_register.catch_up()
    backup_id = str(uuid.uuid4())
    target = output or default_path(backup_id=backup_id, at=now)
    with transaction.atomic():
        record(ACTOR_BACKUP, BACKUP_CREATED, details={"backup_id": backup_id, "engine": kind})
    sealed = _seal()
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _new_file(target) as handle:
            if kind == "postgresql":
                _pg_dump(handle)
            else:
                _sqlite_backup(target)
    except (OSError, BackupError) as exc:
        with transaction.atomic():
            record(ACTOR_BACKUP, BACKUP_FAILED, details={"backup_id": backup_id})
        if isinstance(exc, BackupError):
            raise
        raise BackupError(f"Sicherung nach {target} fehlgeschlagen: {exc}") from exc
    removed = remove_expired(now=now, keep=target)
    return Backup(target, backup_id, target.stat().st_size, _sha256(target), sealed, removed)


def remove_expired(*, now: datetime, keep: Path) -> list[str]:
    """Remove the backups in settings.BACKUP_DIR that this command wrote (by their name)
    more than settings.BACKUP_RETENTION_DAYS before NOW, never KEEP; their names. An
    erased family's wrapped key leaves the last backup that holds it at this point."""
    folder = Path(settings.BACKUP_DIR)
    cutoff = now - timedelta(days=settings.BACKUP_RETENTION_DAYS)
    removed = []
    try:
        candidates = sorted(folder.iterdir())
    except FileNotFoundError:
        return []
    for candidate in candidates:
        match = OWN_NAME.fullmatch(candidate.name)
        if match is None or candidate == keep:
            continue
        made = datetime.strptime(match["stamp"], STAMP).replace(tzinfo=UTC)
        if made < cutoff:
            candidate.unlink(missing_ok=True)
            removed.append(candidate.name)
    if removed:
        with transaction.atomic():
            record(
                ACTOR_BACKUP,
                BACKUPS_REMOVED,
                details={"removed": len(removed), "retention_days": settings.BACKUP_RETENTION_DAYS},
            )
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
    _run([*command, "--format=custom", "--no-password"], environment, stdout=handle)


def _sqlite_backup(target: Path) -> None:
    connection = connections[ALIAS]
    connection.ensure_connection()
    destination = sqlite3.connect(target)
    try:
        connection.connection.backup(destination)
    finally:
        destination.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def restore_backup(path: Path, *, migrate: bool = True) -> Restored:
    """Replace the configured database by the backup at PATH (every service of the
    platform stopped), bring its schema up to date (MIGRATE), erase again what the erasure
    register names, record `backup.restored` and seal. Refuses before touching the database
    when the register does not verify or the file is no backup of this kind of database.
    ANCHOR_PROBLEM in the result says when the restored trail ends before the anchored head
    (an older backup: `audit_verify` names the seals that are gone)."""
    kind = engine()
    try:
        register = erasure_register.entries()
    except erasure_register.RegisterError as exc:
        raise BackupError(f"{exc} Es wird nichts zurückgespielt.") from exc
    _check_kind(path, kind)
    # An erasure whose line was never written is caught from the database it replaces.
    try:
        erasure_register.catch_up()
        register = erasure_register.entries()
    except DatabaseError:
        pass  # no database yet (a new server): the register is all there is
    replace_database(path)
    if migrate:
        call_command("migrate", interactive=False, verbosity=0)
    result = Restored(path, _backup_id())
    result.reapplied = reapply_erasures(register)
    with transaction.atomic():
        record(
            ACTOR_RESTORE,
            BACKUP_RESTORED,
            details={"backup_id": result.backup_id, "erasures_reapplied": len(result.reapplied)},
        )
    try:
        seal_pending()
    except anchor.AnchorError as exc:
        result.anchor_problem = str(exc)
    return result


def replace_database(path: Path) -> None:
    """Put the backup at PATH in place of the configured database, and nothing else: what
    an operator does by hand with pg_restore or a copied file. `restore_backup` goes on to
    apply the erasure register; without it the platform refuses to start."""
    kind = engine()
    _check_kind(path, kind)
    connections.close_all()
    if kind == "postgresql":
        command, environment = _pg_command("pg_restore")
        _run(
            [
                *command,
                "--clean",
                "--if-exists",
                "--single-transaction",
                "--exit-on-error",
                "--no-owner",
                "--no-privileges",
                "--no-password",
                str(path),
            ],
            environment,
        )
    else:
        _sqlite_restore(path)
    vault.forget_unwrapped_keys()


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
            # The record went, the key did not (not a state erase_family leaves): shred it.
            with transaction.atomic():
                locked = Family.objects.select_for_update().get(pk=family.pk)
                core.erase_family_key(locked, by=ACTOR_RESTORE, reason=reason)
                locked.save(update_fields=["data_key"])
        else:
            erase_family(family, by=ACTOR_RESTORE, reason=reason, seal=False)
        done.append(entry.reference)
        logger.warning("restore: erasure of family %s applied again", entry.family_id)
    vault.forget_unwrapped_keys()
    return done
