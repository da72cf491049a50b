"""Families: registering, keeping the record current, recording reads, erasing (Art. 17)
and restricting (Art. 18) their processing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.db.models.functions import Length
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from audit.models import AuditEvent
from audit.trail import record, record_each
from dienstweg import erasure_register, family_search, hooks, vault
from dienstweg.access import families_visible_to, may_edit_family, may_register_for
from dienstweg.actions.errors import ActionError, NotAllowed, case_write_refused, check_dpo
from dienstweg.audit_actions import (
    FAMILY_CHANGED,
    FAMILY_DUPLICATES_CHECKED,
    FAMILY_KEY_DESTROYED,
    FAMILY_LISTED,
    FAMILY_PROCESSING_RESTRICTED,
    FAMILY_RECORD_ERASED,
    FAMILY_REGISTERED,
    FAMILY_RESTRICTION_LIFTED,
    FAMILY_SEARCHED,
)
from dienstweg.consent import lock_family
from dienstweg.models import (
    Agency,
    Consent,
    DataKey,
    Evidence,
    Family,
    FamilySearchToken,
    HouseholdMember,
    Notification,
    OutboxMail,
    User,
)

# Families


@dataclass(frozen=True)
class MemberData:
    kind: str
    first_name: str
    last_name: str
    birth_date: date


def _folded(name: str) -> str:
    return " ".join(name.split()).casefold()


def same_person(one: MemberData, other: MemberData) -> bool:
    """Whether two rows name the same person: first name, last name (case and spaces aside)
    and birth date. Compares decrypted values in memory: the names are encrypted at rest,
    so SQL cannot compare them."""
    return (
        one.birth_date == other.birth_date
        and _folded(one.first_name) == _folded(other.first_name)
        and _folded(one.last_name) == _folded(other.last_name)
    )


def already_in_household(data: MemberData) -> str:
    """The refusal of DATA added a second time to a household (a duplicate by mistake)."""
    return _(
        "%(name)s, geboren am %(date)s, gehört schon zum Haushalt. Bitte tragen Sie "
        "niemanden doppelt ein."
    ) % {
        "name": f"{data.first_name} {data.last_name}",
        "date": date_format(data.birth_date, "SHORT_DATE_FORMAT"),
    }


def identity_index(first_name: str, last_name: str, birth_date: date) -> str:
    return vault.blind_index(first_name, last_name, birth_date.isoformat())


def _next_reference(year: int) -> str:
    prefix = f"F-{year}-"
    # Longest first, then by text: "F-2026-10000" comes after "F-2026-9999".
    last = (
        Family.objects.filter(reference__startswith=prefix)
        .order_by(Length("reference").desc(), "-reference")
        .values_list("reference", flat=True)
        .first()
    )
    number = int(last.removeprefix(prefix)) + 1 if last else 1
    return f"{prefix}{number:04d}"


def register_family(
    *,
    owner: Agency,
    members: list[MemberData],
    address: str,
    phone: str,
    notes: str,
    by: User,
) -> Family:
    """Register a family of the owner project, its data encrypted under a new data key.
    NotAllowed unless BY is a coach or lead of that project."""
    # Not audited: no family exists yet to name, and the view refuses the page before.
    if not may_register_for(by, owner):
        raise NotAllowed(_("Familien legen Coaches und Leitungen eines Projekts an."))
    if not members:
        raise ActionError(_("Bitte mindestens ein Haushaltsmitglied angeben."))
    if not any(member.kind == HouseholdMember.Kind.ADULT for member in members):
        raise ActionError(_("Zum Haushalt gehört mindestens eine erwachsene Person."))
    for attempt in range(5):
        try:
            with transaction.atomic():
                return _register_family(owner, members, address, phone, notes, by)
        except IntegrityError:
            # Two registrations took the same reference at once: take the next one.
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _register_family(
    owner: Agency, members: list[MemberData], address: str, phone: str, notes: str, by: User
) -> Family:
    family = Family(
        reference=_next_reference(timezone.localdate().year),
        owner=owner,
        data_key=vault.create_data_key(),
        registered_by=by,
    )
    family.encrypt_field("address", address)
    family.encrypt_field("phone", phone)
    family.encrypt_field("notes", notes)
    family.save(force_insert=True)
    for position, data in enumerate(members):
        member = HouseholdMember(family=family, position=position)
        _fill_member(member, data)
        member.save(force_insert=True)
    _index(family, [(m.first_name, m.last_name, m.birth_date) for m in members])
    record(
        by,
        FAMILY_REGISTERED,
        target=family,
        family=family,
        agency_id=owner.pk,
        details={"members": len(members)},
    )
    return family


def _fill_member(member: HouseholdMember, data: MemberData) -> None:
    """Write DATA into the member row: encrypted fields and every blind index. The one place
    that derives the indexes, for registering and for changing alike, so that a search
    finds a person by what the record says now."""
    member.kind = data.kind
    member.encrypt_field("first_name", data.first_name)
    member.encrypt_field("last_name", data.last_name)
    member.encrypt_field("birth_date", data.birth_date.isoformat())
    member.identity_index = identity_index(data.first_name, data.last_name, data.birth_date)


# Keeping the record current

# What change_family reports and records as changed: names only, never values (the trail
# holds no personal data). dienstweg.family_history gives them their German labels.
FAMILY_FIELDS = ("address", "phone", "notes")
MEMBER_FIELDS = ("kind", "first_name", "last_name", "birth_date")


def family_version(family: Family) -> int:
    """The id of the family's latest recorded change (0 before the first): a form carries
    it, and change_family refuses when someone else changed the record in between."""
    latest = AuditEvent.objects.filter(family_id=str(family.pk), action=FAMILY_CHANGED).aggregate(
        latest=Max("id")
    )["latest"]
    return int(latest or 0)


def _member_values(member: HouseholdMember) -> MemberData:
    return MemberData(
        kind=member.kind,
        first_name=member.decrypt_field("first_name"),
        last_name=member.decrypt_field("last_name"),
        birth_date=member.birth_date,
    )


def change_family(
    family: Family,
    *,
    by: User,
    address: str | None = None,
    phone: str | None = None,
    notes: str | None = None,
    changed_members: Mapping[str, MemberData] | None = None,
    added_members: Sequence[MemberData] = (),
    removed_members: Sequence[str] = (),
    seen_version: int | None = None,
) -> dict[str, int | bool]:
    """Change the family's record: the contact fields given (None leaves one as it is), the
    members in CHANGED_MEMBERS (by id; only what differs is written), ADDED_MEMBERS and
    REMOVED_MEMBERS (ids; deleted, with their encrypted data). Returns what changed, as
    recorded in the trail: field names and counts, never values ({} when nothing did,
    and then nothing is recorded).

    NotAllowed (audited) unless BY is a coach or lead of the owning project. ActionError
    for an erased family, a person not of this family, removing a person a consent names
    (the consent must stay provable), a household left without an adult, a person added
    who is in the household already (same_person), or a record someone else changed since
    SEEN_VERSION (family_version when the form was shown)."""
    if not may_edit_family(by, family):
        raise case_write_refused(by, family)
    changed_members = changed_members or {}
    with transaction.atomic():
        # The family row first (locks.py): erasure, restriction and transmissions that
        # read the record wait for this change or run before it.
        locked = lock_family(family)
        if locked.is_erased:
            raise ActionError(_("Die Daten dieser Familie sind gelöscht."))
        if seen_version is not None and family_version(locked) != seen_version:
            raise ActionError(
                _(
                    "Inzwischen hat jemand anderes diese Familie geändert. Bitte öffnen Sie "
                    "die Seite neu und tragen Sie Ihre Änderungen noch einmal ein."
                )
            )
        changes: dict[str, int | bool] = {}
        contact = {"address": address, "phone": phone, "notes": notes}
        for name, value in contact.items():
            if value is not None and value != locked.decrypt_field(name):
                locked.encrypt_field(name, value)
                changes[name] = True
        if changes:
            locked.save(update_fields=[f"{name}_enc" for name in changes])
        members = {str(m.pk): m for m in HouseholdMember.objects.filter(family=locked)}
        unknown = (set(changed_members) | set(removed_members)) - set(members)
        if unknown:
            raise ActionError(_("Eine der Personen gehört nicht (mehr) zu dieser Familie."))
        removed = set(removed_members)
        _check_removable(locked, [members[pk] for pk in removed])
        remaining = [
            changed_members[pk].kind if pk in changed_members else member.kind
            for pk, member in members.items()
            if pk not in removed
        ] + [data.kind for data in added_members]
        if not remaining:
            raise ActionError(_("Bitte mindestens ein Haushaltsmitglied angeben."))
        if HouseholdMember.Kind.ADULT not in remaining:
            raise ActionError(_("Zum Haushalt gehört mindestens eine erwachsene Person."))
        household = [
            changed_members.get(pk) or _member_values(member)
            for pk, member in members.items()
            if pk not in removed
        ]
        for data in added_members:
            if any(same_person(data, person) for person in household):
                raise ActionError(already_in_household(data))
            household.append(data)
        changed_count = 0
        for pk, data in changed_members.items():
            if pk in removed:
                continue
            member = members[pk]
            before = _member_values(member)
            differs = [f for f in MEMBER_FIELDS if getattr(before, f) != getattr(data, f)]
            if differs:
                _fill_member(member, data)
                member.save()
                changed_count += 1
                changes.update({f"member_{f}": True for f in differs})
        if changed_count:
            changes["members_changed"] = changed_count
        if removed:
            HouseholdMember.objects.filter(family=locked, pk__in=removed).delete()
            changes["members_removed"] = len(removed)
        if added_members:
            position = max((m.position for m in members.values()), default=-1) + 1
            for offset, data in enumerate(added_members):
                member = HouseholdMember(family=locked, position=position + offset)
                _fill_member(member, data)
                member.save(force_insert=True)
            changes["members_added"] = len(added_members)
        if changed_count or removed or added_members:
            reindex_family(locked)  # the search finds the household as it is now
        if changes:
            record(
                by,
                FAMILY_CHANGED,
                target=locked,
                family=locked,
                purpose="Fallarbeit im eigenen Projekt",
                agency_id=locked.owner_id,
                details=changes,
            )
        return changes


def _check_removable(family: Family, members: list[HouseholdMember]) -> None:
    """Refuse to remove a person whom a consent names (who gave it, or for whom): the
    consent, revoked or expired too, is the proof that past processing was lawful."""
    if not members:
        return
    ids = [m.pk for m in members]
    named = set()
    for given_by, on_behalf_of in Consent.objects.filter(
        Q(given_by_id__in=ids) | Q(on_behalf_of_id__in=ids), family=family
    ).values_list("given_by_id", "on_behalf_of_id"):
        named.update({given_by, on_behalf_of} & set(ids))
    if named:
        names = ", ".join(m.display_name for m in members if m.pk in named)
        raise ActionError(
            _(
                "%(names)s kann nicht entfernt werden: Eine Einwilligung nennt diese Person. "
                "Einwilligungen bleiben als Nachweis erhalten, auch widerrufene."
            )
            % {"names": names}
        )


# At most this many families get their own event from one search or duplicate check (the
# count is always complete); an exact match through the blind index finds a handful at most.
MAX_FOUND_EVENTS = 50


def _record_lookup(action: str, found: list[Family], *, by: User, members: int) -> None:
    """Record a read of the blind index: one event for each family found (so that its
    access report shows the lookup), or one without a family when none was. Counts and ids
    only, never the names or birth dates looked up."""
    details = {"found": len(found), "members": members}
    for family in found[:MAX_FOUND_EVENTS]:
        record(by, action, target=family, family=family, details=details)
    if not found:
        record(by, action, details=details)


def reindex_family(family: Family) -> None:
    """Rebuild the family's search tokens from its household as stored now. Call it inside
    the transaction of every action that adds, removes or renames a member or changes a
    birth date, after the members are saved; an erased family keeps no tokens."""
    FamilySearchToken.objects.filter(family=family).delete()
    if family.data_key_id is None or family.erased_at is not None:
        return
    members = HouseholdMember.objects.filter(family=family).only(
        "id", "family_id", "first_name_enc", "last_name_enc", "birth_date_enc"
    )
    people = []
    for member in members:
        member.family = family  # its key, without a query per member
        people.append(
            (
                member.decrypt_field("first_name"),
                member.decrypt_field("last_name"),
                member.birth_date,
            )
        )
    _index(family, people)


def _index(family: Family, people: list[tuple[str, str, date]]) -> None:
    tokens: set[str] = set()
    for first_name, last_name, birth_date in people:
        tokens |= family_search.member_tokens(family.owner_id, first_name, last_name, birth_date)
    FamilySearchToken.objects.bulk_create(
        [FamilySearchToken(family=family, token=token) for token in sorted(tokens)]
    )


@transaction.atomic
def record_families_shown(
    shown: list[Family], *, by: User, searched: bool, found: int, page: int
) -> None:
    """Record that the family list showed SHOWN (names included) to BY: one event per
    family, so that each family's access report lists it, written in one INSERT. A search
    records the families it showed, or one event without a family when it found none;
    never the text searched for."""
    action = FAMILY_SEARCHED if searched else FAMILY_LISTED
    details = {"found": found, "shown": len(shown), "page": page}
    if shown:
        record_each(by, action, shown, details=details)
    elif searched:
        record(by, action, details=details)


@transaction.atomic
def find_duplicates(members: list[MemberData], *, by: User) -> list[Family]:
    """The families visible to BY that already hold a person of one of these names and
    birth dates (the check before registering a family); the lookup is recorded."""
    indexes = [identity_index(m.first_name, m.last_name, m.birth_date) for m in members]
    found = list(
        families_visible_to(by)
        .filter(members__identity_index__in=indexes)
        .only("id", "reference")
        .distinct()
        .order_by("reference")
    )
    _record_lookup(FAMILY_DUPLICATES_CHECKED, found, by=by, members=len(members))
    return found


@transaction.atomic
def record_family_read(
    family: Family, *, by: User, action: str, details: dict[str, Any] | None = None
) -> None:
    """Record that a member of the owning project read the family's data."""
    record(
        by,
        action,
        target=family,
        family=family,
        purpose="Fallarbeit im eigenen Projekt",
        agency_id=family.owner_id,
        details=details,
    )


@transaction.atomic
def erase_family_key(family: Family, *, by: User | str | None, reason: str) -> None:
    """Destroy the family's data key (crypto-shredding): every copy of its encrypted data,
    backups included, becomes unreadable. The records themselves go in a later step.
    A person erasing must be a DPO whose scope covers the family (NotAllowed); a command
    names itself in BY."""
    check_dpo(by, family=family)
    if family.data_key_id is None:
        raise ActionError(_("Die Daten dieser Familie sind bereits gelöscht."))
    DataKey.objects.filter(pk=family.data_key_id).delete()
    # Said outright, not left to SET_NULL: a database restored by hand may name a key row
    # that is not there, and the family must still end up without one.
    Family.objects.filter(pk=family.pk).update(data_key=None)
    family.data_key = None
    # The tokens stand for names and birth dates that are now unreadable: they go too.
    FamilySearchToken.objects.filter(family=family).delete()
    transaction.on_commit(vault.forget_unwrapped_keys)
    record(by, FAMILY_KEY_DESTROYED, target=family, family=family, purpose=reason[:200])


@dataclass(frozen=True)
class RecordErasure:
    """What erase_family_record removed (counts) and kept (consents, as metadata)."""

    members: int
    evidence: int
    consents_kept: int
    notifications: int


@transaction.atomic
def erase_family_record(family: Family, *, by: User | str | None, reason: str) -> RecordErasure:
    """Erase the family record (GDPR Art. 17): blank its encrypted fields, delete the consent
    scans and the notifications naming it, anonymise the household members. The row stays
    as a tombstone (its reference); the consents stay as metadata without their notes,
    as proof that the processing was lawful (Art. 7 Abs. 1 DSGVO). The key goes separately
    (erase_family_key). A person erasing must be a DPO whose scope covers the family
    (NotAllowed)."""
    check_dpo(by, family=family)
    locked = Family.objects.select_for_update().get(pk=family.pk)
    if locked.erased_at is not None:
        raise ActionError(_("Die Daten dieser Familie sind bereits gelöscht."))
    Family.objects.filter(pk=family.pk).update(
        erased_at=timezone.now(),
        address_enc=b"",
        phone_enc=b"",
        notes_enc=b"",
        restriction_reason_enc=b"",
    )
    # Consent.evidence and Consent.given_by PROTECT their rows: unlink the scans first, and
    # keep the members, anonymised (no names, no birth date, no blind index to find them).
    consents = Consent.objects.filter(family=family)
    consents_kept = consents.update(evidence=None, witness_note_enc=b"", revocation_note_enc=b"")
    evidence, _details = Evidence.objects.filter(family=family).delete()
    members = HouseholdMember.objects.filter(family=family).update(
        first_name_enc=b"", last_name_enc=b"", birth_date_enc=b"", identity_index=""
    )
    FamilySearchToken.objects.filter(family=family).delete()
    notifications, _details = Notification.objects.filter(family_ref=family.reference).delete()
    OutboxMail.objects.filter(family_ref=family.reference).delete()  # their e-mails too
    family.refresh_from_db()
    # Kept outside the database too, once committed: a restored older backup would bring
    # the family and its key back, and `restore` erases again what the register names.
    tombstone, key_id = Family(pk=family.pk, reference=family.reference), family.data_key_id
    transaction.on_commit(lambda: erasure_register.record_erasure(tombstone, data_key_id=key_id))
    erased = RecordErasure(members, evidence, consents_kept, notifications)
    record(
        by,
        FAMILY_RECORD_ERASED,
        target=family,
        family=family,
        purpose=reason[:200],
        details={
            "members": members,
            "evidence": evidence,
            "consents_kept": consents_kept,
            "notifications": notifications,
        },
    )
    return erased


# Restriction of processing (GDPR Art. 18)

RESTRICTION_PURPOSE = "Art. 18 DSGVO"
RESTRICTION_TEXT_MAX = 2000


def restrict_processing(
    family: Family, *, reason: str, by: User, agency_id: int | None = None
) -> Family:
    """Restrict the processing of the family's data (GDPR Art. 18, SGB X § 84), recorded by
    the DPO of AGENCY_ID: the data stays, but nothing of it is shared with or shown to
    anyone beyond the owning project until lifted. The reason is encrypted in the family row,
    never written to the trail. Waits for a transmission in flight to commit; the apps
    above tell the sockets of those who lose sight of the family (dienstweg.hooks.restricted).
    NotAllowed unless BY is a DPO (of AGENCY_ID, if given) whose scope covers the family:
    its owner's DPO or the network's (dienstweg.access.DpoScope)."""
    check_dpo(by, agency_id=agency_id, family=family)
    reason = reason.strip()
    if not reason:
        raise ActionError(_("Bitte geben Sie den Grund der Einschränkung an."))
    if len(reason) > RESTRICTION_TEXT_MAX:
        raise ActionError(
            _("Der Grund ist zu lang (höchstens %(n)d Zeichen).") % {"n": RESTRICTION_TEXT_MAX}
        )
    with transaction.atomic():
        locked = lock_family(family)
        if locked.is_erased:
            raise ActionError(_("Die Daten dieser Familie sind gelöscht: nichts einzuschränken."))
        if locked.is_restricted:
            raise ActionError(_("Die Verarbeitung dieser Familie ist bereits eingeschränkt."))
        locked.restricted_at = timezone.now()
        locked.restricted_by = by
        locked.encrypt_field("restriction_reason", reason)
        locked.save(update_fields=["restricted_at", "restricted_by", "restriction_reason_enc"])
        record(
            by,
            FAMILY_PROCESSING_RESTRICTED,
            target=locked,
            family=locked,
            purpose=RESTRICTION_PURPOSE,
            agency_id=agency_id,
        )
        hooks.restricted(locked, by=by)
        return locked


def lift_restriction(
    family: Family, *, note: str = "", by: User, agency_id: int | None = None
) -> Family:
    """Lift the restriction (the DPO of AGENCY_ID): the family's objects are shared and
    shown again as its consents allow. The encrypted reason stays as the record of the last
    restriction, with NOTE (e.g. when the family was told, Art. 18(3)) added to it.
    NotAllowed unless BY is a DPO (of AGENCY_ID, if given) whose scope covers the family."""
    check_dpo(by, agency_id=agency_id, family=family)
    note = note.strip()
    if len(note) > RESTRICTION_TEXT_MAX:
        raise ActionError(
            _("Der Vermerk ist zu lang (höchstens %(n)d Zeichen).") % {"n": RESTRICTION_TEXT_MAX}
        )
    with transaction.atomic():
        locked = lock_family(family)
        if locked.is_erased:
            raise ActionError(_("Die Daten dieser Familie sind gelöscht: nichts freizugeben."))
        if not locked.is_restricted:
            raise ActionError(_("Die Verarbeitung dieser Familie ist nicht eingeschränkt."))
        since = timezone.localdate(locked.restricted_at)
        locked.restricted_at = None
        locked.restricted_by = None
        if note:
            reason = locked.decrypt_field("restriction_reason")
            lifted = _("Aufgehoben: %(note)s") % {"note": note}
            locked.encrypt_field(
                "restriction_reason", f"{reason}\n\n{lifted}" if reason else lifted
            )
        locked.save(update_fields=["restricted_at", "restricted_by", "restriction_reason_enc"])
        record(
            by,
            FAMILY_RESTRICTION_LIFTED,
            target=locked,
            family=locked,
            purpose=RESTRICTION_PURPOSE,
            agency_id=agency_id,
            details={"restricted_since": since.isoformat(), "with_note": bool(note)},
        )
        return locked
