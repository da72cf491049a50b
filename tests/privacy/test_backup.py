"""Backup and restore (privacy/backups.py) on the configured database, SQLite or PostgreSQL
(the test database): the file is private and holds no data key (those go to a key file of
their own), a restore gives the data back and the trail still verifies; an erasure made
after a backup survives its restore, the older trail is reported by audit_verify, a
database restored behind restore's back does not start, and once the key files from before
an erasure have expired no backup can be read for the family at all.

Pia (DPO of the project) erases the Yılmaz family, which Anna registered."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.db import connection, transaction

from audit.models import AuditEvent, AuditSeal
from audit.sealing import seal_pending
from config.serve import refuse_unapplied_erasures
from dienstweg import erasure_register, vault
from dienstweg.models import DataKey, Family, User
from privacy import backup_keys, backups, erasure
from privacy.audit_actions import (
    BACKUP_CREATED,
    BACKUP_RESTORED,
    BACKUPS_REMOVED,
    FAMILY_ERASED,
)
from tests.audit.helpers import wait_until_final
from tests.conftest import Network

REASON = "Antrag auf Loeschung nach Art. 17 DSGVO vom 02.03.2026"
ADDRESS = "Horster Straße 30, 45964 Gladbeck"

pytestmark = pytest.mark.usefixtures("committed")


def address_of(family: Family) -> str:
    return Family.objects.get(pk=family.pk).decrypt_field("address")


def verify_output() -> str:
    out = StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def take_backup(tmp_path: Path, name: str = "sicherung.bin") -> Path:
    # pg_dump and pg_restore must reach the test database, never the configured one.
    assert connection.vendor == "sqlite" or connection.settings_dict["NAME"].startswith("test_")
    wait_until_final()  # PostgreSQL: so that the backup's trail ends sealed
    target = tmp_path / name
    out = StringIO()
    call_command("backup", output=target, stdout=out)
    assert str(target) in out.getvalue()
    return target


def test_backup_is_private_and_a_restore_gives_back_the_data_and_a_verified_trail(
    network: Network, family: Family, tmp_path: Path
) -> None:
    target = take_backup(tmp_path)
    keys = backup_keys.newest()
    assert keys is not None
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    later = Family.objects.create(reference="F-NACH-SICHERUNG", owner=network.project)

    out = StringIO()
    call_command("restore", str(target), stdout=out)

    assert not Family.objects.filter(pk=later.pk).exists()  # the database is the backup's
    assert address_of(family) == ADDRESS
    created = AuditEvent.objects.get(action=BACKUP_CREATED)
    restored = AuditEvent.objects.get(action=BACKUP_RESTORED)
    assert restored.details["backup_id"] == created.details["backup_id"]
    assert restored.details["erasures_reapplied"] == 0
    assert "zurückgespielt" in out.getvalue()
    wait_until_final()
    assert "Prüfung bestanden" in verify_output()


def test_a_backup_never_overwrites_a_file(family: Family, tmp_path: Path) -> None:
    target = tmp_path / "vorhanden.bin"
    target.write_bytes(b"etwas anderes")
    with pytest.raises(CommandError, match="gibt es schon"):
        call_command("backup", output=target)
    assert target.read_bytes() == b"etwas anderes"


def test_an_erasure_after_the_backup_survives_its_restore(
    network: Network, family: Family, pia: User, tmp_path: Path
) -> None:
    key_id = family.data_key_id
    copy = bytes(Family.objects.get(pk=family.pk).address_enc)
    target = take_backup(tmp_path)
    erasure.erase_family(family, by=pia, reason=REASON)
    assert [entry.family_id for entry in erasure_register.entries()] == [str(family.pk)]
    noted = AuditSeal.objects.order_by("-number").values_list("seal_hash", flat=True)[0]

    out, err = StringIO(), StringIO()
    call_command("restore", str(target), stdout=out, stderr=err)

    # The backup brought the family and its key back; restore erased them again.
    restored = Family.objects.get(pk=family.pk)
    assert restored.is_erased
    assert restored.data_key_id is None
    assert not DataKey.objects.filter(pk=key_id).exists()
    assert restored.address_enc == b""
    with pytest.raises(vault.VaultError):
        vault.decrypt(
            restored.data_key, copy, table="dienstweg_family", row=family.pk, field="address"
        )
    assert family.reference in out.getvalue()
    again = AuditEvent.objects.get(action=FAMILY_ERASED)  # the backup held no erasure
    assert again.actor_label == backups.ACTOR_RESTORE
    assert "erneut angewandt" in again.purpose
    assert AuditEvent.objects.get(action=BACKUP_RESTORED).details["erasures_reapplied"] == 1
    assert erasure_register.unapplied() == []
    refuse_unapplied_erasures()  # starts

    # The erasure's seal was anchored after the backup: the older trail is reported.
    assert "verankerten Protokollkopf" in err.getvalue()
    with pytest.raises(CommandError):
        call_command("audit_verify", stdout=StringIO())
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_verify", stdout=out)
    assert "fehlt in der Datenbank, ist aber außerhalb verankert" in out.getvalue()
    assert "das Ende des Protokolls wurde entfernt" in out.getvalue()
    out = StringIO()  # the DPO's note of the head from after the backup fails too
    with pytest.raises(CommandError):
        call_command("audit_verify", expect_head=[noted], stdout=out)
    assert f"Kopf {noted} ist nicht in der Siegelkette" in out.getvalue()


def test_after_an_older_restore_a_fresh_anchor_lets_sealing_go_on_and_the_old_shows_the_gap(
    family: Family, pia: User, tmp_path: Path, settings
) -> None:
    target = take_backup(tmp_path)
    erasure.erase_family(family, by=pia, reason=REASON)
    call_command("restore", str(target), stdout=StringIO(), stderr=StringIO())
    old_anchor = Path(settings.AUDIT_ANCHOR_DIR)

    # The procedure in the README: the anchor directory moved aside and kept.
    kept = old_anchor.with_name(old_anchor.name + "-bis-heute")
    old_anchor.rename(kept)
    wait_until_final()
    assert seal_pending()  # the restore's own events, on top of the adopted head

    assert "Prüfung bestanden" in verify_output()
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_verify", anchor_dir=kept, stdout=out)
    assert "weicht vom außerhalb der Datenbank verankerten Kopf ab" in out.getvalue()
    assert "das Protokoll wurde ab hier ersetzt" in out.getvalue()


def test_a_database_restored_behind_restores_back_does_not_start(
    network: Network, family: Family, pia: User, tmp_path: Path
) -> None:
    target = take_backup(tmp_path)
    erasure.erase_family(family, by=pia, reason=REASON)

    # The backup and its keys put back by hand (pg_restore, a copied file), without the
    # register.
    keys = backup_keys.newest()
    assert keys is not None
    backups.replace_database(target, keys=keys)

    assert Family.objects.get(pk=family.pk).data_key_id is not None
    assert address_of(family) == ADDRESS  # readable again: exactly what must not happen
    with pytest.raises(SystemExit, match=family.reference):
        refuse_unapplied_erasures()
    with pytest.raises(SystemCheckError, match=r"dienstweg\.E110"):
        call_command("check", databases=["default"], stdout=StringIO())

    out = StringIO()
    call_command("apply_erasures", stdout=out)

    assert family.reference in out.getvalue()
    assert Family.objects.get(pk=family.pk).is_erased
    refuse_unapplied_erasures()
    call_command("check", databases=["default"], stdout=StringIO())


def test_a_rolled_back_erasure_is_not_registered(family: Family, pia: User) -> None:
    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        erasure.erase_family(family, by=pia, reason=REASON, seal=False)
        raise Abort

    assert erasure_register.entries() == []
    assert not Family.objects.get(pk=family.pk).is_erased


def test_restore_refuses_a_changed_register_before_touching_the_database(
    network: Network, family: Family, pia: User, tmp_path: Path
) -> None:
    target = take_backup(tmp_path)
    erasure.erase_family(family, by=pia, reason=REASON)
    file = erasure_register.path()
    line = json.loads(file.read_bytes())
    line["family_id"] = str(network.project.pk)  # someone points the erasure elsewhere
    file.write_text(json.dumps(line) + "\n")

    with pytest.raises(CommandError, match="Eintrag 1 wurde verändert"):
        call_command("restore", str(target))

    assert Family.objects.get(pk=family.pk).is_erased  # the database was left alone
    assert not AuditEvent.objects.filter(action=BACKUP_RESTORED).exists()


def test_an_erasure_whose_line_was_not_written_is_caught_up_by_the_next_backup(
    family: Family, pia: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(erasure_register, "_append", _fail)
    erasure.erase_family(family, by=pia, reason=REASON)  # committed; the line failed
    monkeypatch.undo()
    assert erasure_register.entries() == []

    take_backup(tmp_path)

    assert [entry.family_id for entry in erasure_register.entries()] == [str(family.pk)]


def _fail(**kwargs: object) -> None:
    raise OSError("Datenträger voll")


def test_backup_removes_its_own_backups_older_than_the_retention_period(
    family: Family, settings
) -> None:
    settings.BACKUP_RETENTION_DAYS = 30
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    folder = Path(settings.BACKUP_DIR)
    folder.mkdir(parents=True)
    expired = folder / "dienstweg-20260130T090000Z-0a1b2c3d.sqlite3"  # 31 days before
    young = folder / "dienstweg-20260201T090000Z-0a1b2c3e.sqlite3"  # 29 days before
    foreign = folder / "dienstweg-vor-dem-umzug.sqlite3"  # not a name backup gives
    for path in (expired, young, foreign):
        path.write_bytes(b"alt")
    wait_until_final()

    backup = backups.create_backup(now=now)

    assert backup.path.parent == folder
    assert backup.path.name.startswith("dienstweg-20260302T090000Z-")
    assert backup.removed == [expired.name]
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [backup.path.name, young.name, foreign.name]
    )
    removal = AuditEvent.objects.get(action=BACKUPS_REMOVED)
    assert removal.details == {
        "backups_removed": 1,
        "key_files_removed": 0,
        "retention_days": 30,
        "key_retention_days": settings.BACKUP_KEYS_RETENTION_DAYS,
    }


def test_key_files_are_kept_for_their_own_shorter_period(family: Family, settings) -> None:
    settings.BACKUP_KEYS_RETENTION_DAYS = 7
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    folder = backup_keys.directory()
    folder.mkdir(parents=True)
    expired = folder / "dienstweg-20260222T090000Z-0a1b2c3d.keys.jsonl"  # 8 days before
    young = folder / "dienstweg-20260224T090000Z-0a1b2c3e.keys.jsonl"  # 6 days before
    for path in (expired, young):
        path.write_text("")
    wait_until_final()

    backup = backups.create_backup(now=now)

    assert backup.removed == [expired.name]
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [backup.keys_path.name, young.name]
    )
    assert backup_keys.newest() == backup.keys_path


def test_the_backup_file_holds_no_data_key(family: Family, tmp_path: Path) -> None:
    key = DataKey.objects.get(pk=family.data_key_id)
    target = take_backup(tmp_path)

    if connection.vendor == "sqlite":
        copy = sqlite3.connect(target)
        try:
            assert copy.execute("SELECT count(*) FROM dienstweg_datakey").fetchone() == (0,)
            assert copy.execute("SELECT count(*) FROM dienstweg_family").fetchone() == (1,)
        finally:
            copy.close()
        assert bytes(key.wrapped) not in target.read_bytes()  # not even in a freed page
    else:
        listing = ["pg_restore", "--data-only", "--file=-", str(target)]
        script = subprocess.run(listing, capture_output=True, check=True).stdout  # noqa: S603
        assert b"COPY public.dienstweg_family " in script
        assert str(key.pk).encode() in script  # the family names its key ...
        assert b"COPY public.dienstweg_datakey" not in script  # ... but not the key
        assert bytes(key.wrapped).hex().encode() not in script
    keys = backup_keys.newest()
    assert keys is not None
    assert str(key.pk) in keys.read_text()


def test_once_the_key_files_from_before_an_erasure_are_gone_no_backup_reads_the_family(
    family: Family, pia: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = take_backup(tmp_path, "vorher.bin")
    before = backup_keys.newest()
    assert before is not None
    erasure.erase_family(family, by=pia, reason=REASON)
    take_backup(tmp_path, "nachher.bin")
    before.unlink()  # expired: the keys are kept for days, the backups for weeks
    # Even without the register: lost, on a new server whose database is gone too.
    erasure_register.path().unlink()
    monkeypatch.setattr(erasure_register, "catch_up", lambda: 0)

    call_command("restore", str(older), stdout=StringIO(), stderr=StringIO())

    restored = Family.objects.get(pk=family.pk)
    assert not restored.is_erased  # the register is gone: nothing says it was erased ...
    assert restored.data_key_id is None  # ... but its key is in no key file any more
    with pytest.raises(vault.VaultError):
        restored.decrypt_field("address")


def test_restore_refuses_a_file_that_is_no_backup_or_a_missing_key_file(
    network: Network, family: Family, tmp_path: Path
) -> None:
    target = take_backup(tmp_path)
    later = Family.objects.create(reference="F-NACH-SICHERUNG", owner=network.project)
    other = tmp_path / "notizen.txt"
    other.write_text("keine Sicherung")

    with pytest.raises(CommandError, match="ist keine Sicherung"):
        call_command("restore", str(other))
    for keys in backup_keys.directory().iterdir():
        keys.unlink()
    with pytest.raises(CommandError, match="Keine Schlüsseldatei"):
        call_command("restore", str(target))

    assert Family.objects.filter(pk=later.pk).exists()  # the database was left alone
