"""The sealer: committed events in order, in batches, chained and signed with Ed25519."""

from __future__ import annotations

import base64
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.db import connection, transaction

from audit import hashing, ordering, sealing, signing
from audit.models import AuditSeal
from audit.verify import verify
from tests.audit.helpers import record_committed, seal_all, sealed_ids, wait_until_final


def test_seals_committed_events_in_order(trail: None) -> None:
    events = record_committed(5)
    (seal,) = seal_all()
    assert seal.number == 1
    assert seal.event_count == 5
    assert seal.last_event_id == events[-1].id
    assert seal.previous_hash == hashing.GENESIS
    assert sealed_ids() == [event.id for event in events]


def test_seals_in_batches_chained_to_each_other(trail: None) -> None:
    events = record_committed(25)
    seals = seal_all(batch_size=10)
    assert [seal.event_count for seal in seals] == [10, 10, 5]
    assert [seal.number for seal in seals] == [1, 2, 3]
    assert [seal.previous_hash for seal in seals] == [
        hashing.GENESIS,
        seals[0].seal_hash,
        seals[1].seal_hash,
    ]
    assert (seals[1].after_event_id, seals[1].last_event_id) == (events[9].id, events[19].id)
    assert sealed_ids() == [event.id for event in events]


def test_a_later_run_seals_only_the_new_events(trail: None) -> None:
    first = record_committed(3)
    seal_all()
    second = record_committed(2)
    (seal,) = seal_all()
    assert seal.number == 2
    assert seal.event_count == 2
    assert seal.after_event_id == first[-1].id
    assert sealed_ids() == [event.id for event in first + second]


def test_nothing_new_makes_no_seal(trail: None) -> None:
    record_committed(2)
    seal_all()
    assert sealing.seal_pending() == []
    assert AuditSeal.objects.count() == 1


def test_seal_is_signed_with_the_configured_key(trail: None, signing_key: str) -> None:
    record_committed(3)
    (seal,) = seal_all()
    public = Ed25519PrivateKey.from_private_bytes(base64.b64decode(signing_key)).public_key()
    assert seal.key_id == signing.key_id(public)
    public.verify(bytes.fromhex(seal.signature), bytes.fromhex(seal.seal_hash))  # or raises


def test_seal_hash_covers_the_batch_and_the_previous_seal(trail: None) -> None:
    record_committed(4)
    seal_all(batch_size=2)
    second = AuditSeal.objects.get(number=2)
    fields = {
        name: getattr(second, name) for name in hashing.SEAL_FIELDS if name != "manifest_hash"
    }
    fields["manifest_hash"] = hashing.manifest_hash(bytes(second.manifest))
    fields["high_water"] = second.high_water
    fields["refused_hash"] = hashing.refused_hash(bytes(second.refused))
    assert hashing.seal_hash(fields) == second.seal_hash
    assert hashing.seal_hash({**fields, "previous_hash": "f" * 64}) != second.seal_hash
    assert hashing.seal_hash({**fields, "batch_hash": "f" * 64}) != second.seal_hash
    # The mark and the refused events too, and a seal cannot lose them unseen.
    later = second.high_water + timedelta(seconds=1)
    assert hashing.seal_hash({**fields, "high_water": later}) != second.seal_hash
    assert hashing.seal_hash({**fields, "refused_hash": "f" * 64}) != second.seal_hash
    assert hashing.seal_hash({**fields, "high_water": None}) != second.seal_hash


def test_seal_made_before_marks_existed_hashes_as_it_did(trail: None) -> None:
    record_committed(2)
    (seal,) = seal_all()
    fields = {name: getattr(seal, name) for name in hashing.SEAL_FIELDS if name != "manifest_hash"}
    fields["manifest_hash"] = hashing.manifest_hash(bytes(seal.manifest))
    legacy = hashing.seal_hash(fields)  # what the sealer computed before marks existed
    assert legacy == hashing.seal_hash({**fields, "high_water": None})
    assert legacy != seal.seal_hash


def test_manifest_holds_event_ids_and_truncated_hashes(trail: None) -> None:
    events = record_committed(3)
    (seal,) = seal_all()
    manifest = hashing.read_manifest(bytes(seal.manifest))
    assert len(bytes(seal.manifest)) == 3 * 16
    assert [event_id for event_id, _ in manifest] == [event.id for event in events]
    assert all(len(digest) == hashing.MANIFEST_HASH_BYTES for _, digest in manifest)


def test_private_key_is_never_stored(trail: None, signing_key: str) -> None:
    record_committed(3)
    seal_all()
    raw = base64.b64decode(signing_key)
    forms = [raw, raw.hex().encode(), signing_key.encode(), base64.urlsafe_b64encode(raw)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM audit_auditseal")
        stored = [
            bytes(value) if isinstance(value, memoryview) else str(value).encode()
            for row in cursor.fetchall()
            for value in row
        ]
    assert stored
    assert not [form for form in forms for value in stored if form in value]


def test_sealer_refuses_to_run_inside_a_transaction(trail: None) -> None:
    record_committed(1)
    with (
        pytest.raises(RuntimeError, match="must not run inside a transaction"),
        transaction.atomic(),
    ):
        sealing.seal_next()
    assert not AuditSeal.objects.exists()


def test_racing_sealers_do_not_fork_the_chain(
    trail: None, monkeypatch: pytest.MonkeyPatch, settings, tmp_path: Path
) -> None:
    """A second sealer appends while the first is hashing: the first one's seal collides
    on number and previous hash, and it starts again after the other one's seal. (Sealers
    sharing an anchor directory take turns under its lock; the rival here is one on
    another host, with an anchor of its own.)"""
    record_committed(3)
    real_fence = ordering.fence
    raced = []

    def fence_after_a_rival_sealed(*args: object) -> int:
        if not raced:
            raced.append(True)
            ours = settings.AUDIT_ANCHOR_DIR
            settings.AUDIT_ANCHOR_DIR = tmp_path / "rival"
            try:
                assert sealing.seal_next() is not None  # the rival, with the same view
            finally:
                settings.AUDIT_ANCHOR_DIR = ours
        return real_fence(*args)  # type: ignore[arg-type]

    record_committed(2)
    wait_until_final()
    monkeypatch.setattr(ordering, "fence", fence_after_a_rival_sealed)
    seal_all()
    seals = list(AuditSeal.objects.order_by("number"))
    assert [seal.previous_hash for seal in seals] == [hashing.GENESIS] + [
        seal.seal_hash for seal in seals[:-1]
    ]
    assert verify().ok


def test_sealing_does_not_query_per_event(trail: None, django_assert_max_num_queries) -> None:
    record_committed(300)
    wait_until_final()
    # Per batch: last seal, fence, events, the three of chronology.judge, and
    # BEGIN/INSERT/COMMIT; then one empty round.
    with django_assert_max_num_queries(3 * 9 + 3):
        seals = sealing.seal_pending(batch_size=100)
    assert [seal.event_count for seal in seals] == [100, 100, 100]


def test_audit_seal_command_seals_once(trail: None) -> None:
    record_committed(3)
    wait_until_final()
    out = StringIO()
    call_command("audit_seal", stdout=out)
    assert out.getvalue().strip() == "1 Siegel über 3 Ereignisse angelegt."


def test_sealer_loop_seals_until_told_to_stop(trail: None) -> None:
    record_committed(3)
    wait_until_final()
    made = sealing.seal_loop(interval=0.01, stop=lambda: AuditSeal.objects.exists())
    assert made == 1
    assert AuditSeal.objects.get().event_count == 3
