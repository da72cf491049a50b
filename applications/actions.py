"""Every write of application tags, one function per domain verb: tagging an application,
the processing office's steps on it (received, documents requested, decided), and erasing
a family's tags."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from applications.access import TAGGING_ROLES, require_tag_consent
from applications.audit_actions import TAG_CREATED, TAG_STATUS_CHANGED, TAG_STEP_REFUSED
from applications.models import ApplicationTag, TagStatusChange
from audit.trail import record
from dienstweg import worklist
from dienstweg.access import CASE_ROLES, holds_role, members_holding
from dienstweg.actions import BACKUP_CODE_ALPHABET, ActionError
from dienstweg.consent import ConsentMissing
from dienstweg.locks import lock_family_row
from dienstweg.models import PUBLIC_KINDS, Agency, Family, Purpose, User
from dienstweg.notifications import notify


def new_tag_code() -> str:
    """12 characters from a 31-letter alphabet (about 59 bits), printed as XXXX-XXXX-XXXX:
    too many to guess, even before the look-up throttle."""
    letters = "".join(secrets.choice(BACKUP_CODE_ALPHABET) for _ in range(12))
    return "-".join(letters[i : i + 4] for i in range(0, 12, 4))


@dataclass(frozen=True)
class TagData:
    kind: str
    processing_agency: Agency
    submitted_on: date
    file_number: str = ""


def tag_application(family: Family, *, data: TagData, by: User) -> ApplicationTag:
    """Tag a benefit application the coach helped with; she is its contact."""
    if not holds_role(by, *TAGGING_ROLES, agency=family.owner_id):
        raise ActionError(_("Anträge markieren Coaches und Leitungen des Projekts."))
    # Asked of the row: FAMILY may have been loaded before the DPO restricted it.
    if Family.objects.filter(pk=family.pk, restricted_at__isnull=False).exists():
        raise ActionError(
            _(
                "Die Verarbeitung der Daten dieser Familie ist eingeschränkt (Art. 18 DSGVO): "
                "Bis der Datenschutz die Einschränkung aufhebt, werden keine Anträge markiert."
            )
        )
    if data.kind not in ApplicationTag.Kind.values:
        raise ActionError(_("Unbekannte Antragsart."))
    if data.processing_agency.pk == family.owner_id:
        raise ActionError(_("Die eigene Einrichtung bearbeitet keine Anträge."))
    if data.processing_agency.kind not in PUBLIC_KINDS:  # as offered by TagForm
        raise ActionError(_("Anträge bearbeiten nur Leistungsträger und Behörden."))
    if data.submitted_on > timezone.localdate():
        raise ActionError(_("Das Einreichungsdatum liegt in der Zukunft."))
    if len(data.file_number) > 60:
        raise ActionError(_("Das Aktenzeichen ist zu lang."))
    for attempt in range(3):
        try:
            with transaction.atomic():
                tag = ApplicationTag(
                    code=new_tag_code(),
                    family=family,
                    project_id=family.owner_id,
                    processing_agency=data.processing_agency,
                    kind=data.kind,
                    submitted_on=data.submitted_on,
                    coach=by,
                )
                tag.encrypt_field("file_number", data.file_number.strip())
                tag.save(force_insert=True)
                TagStatusChange.objects.create(
                    tag=tag, state=ApplicationTag.State.SUBMITTED, by=by, at=tag.created_at
                )
                record(
                    by,
                    TAG_CREATED,
                    target=tag,
                    family=family,
                    agency_id=family.owner_id,
                    details={"kind": data.kind, "processing_agency": data.processing_agency.pk},
                )
                return tag
        except IntegrityError:
            if attempt == 2:  # three colliding 59-bit codes: something else is wrong
                raise
    raise AssertionError("unreachable")


TAG_NEXT = {
    ApplicationTag.State.SUBMITTED: {"received", "documents_requested", "decided"},
    ApplicationTag.State.RECEIVED: {"documents_requested", "decided"},
    ApplicationTag.State.DOCUMENTS_REQUESTED: {"received", "documents_requested", "decided"},
    ApplicationTag.State.DECIDED: set(),
}
TAG_PRIORITY = {"documents_requested": 0, "submitted": 1, "received": 1, "decided": 2}


def record_tag_status(
    tag: ApplicationTag, *, state: str, note: str = "", decided_on: date | None = None, by: User
) -> ApplicationTag:
    """Record the processing office's step (received, documents requested with what is
    missing, decided with the date); the coach is notified. Needs the family's consent
    for the office, checked and locked in this transaction."""
    if state == ApplicationTag.State.DOCUMENTS_REQUESTED and not note.strip():
        raise ActionError(_("Bitte angeben, welche Unterlagen fehlen."))
    if state == ApplicationTag.State.DECIDED and decided_on is None:
        raise ActionError(_("Bitte das Datum der Entscheidung angeben."))
    with transaction.atomic():
        # The family row first (dienstweg.locks): the consent check locks it after the tag.
        lock_family_row(tag.family_id)
        locked = (
            ApplicationTag.objects.select_for_update(of=("self",))
            .select_related("family__data_key", "processing_agency")
            .get(pk=tag.pk)
        )
        if not holds_role(by, *CASE_ROLES, agency=locked.processing_agency_id):
            raise ActionError(_("Den Stand trägt die bearbeitende Stelle ein."))
        if state not in TAG_NEXT[ApplicationTag.State(locked.state)]:
            raise ActionError(
                _("Nicht möglich: Der Antrag ist „%(state)s“.")
                % {"state": ApplicationTag.State(locked.state).label}
            )
        if decided_on is not None and not (
            locked.submitted_on <= decided_on <= timezone.localdate()
        ):
            raise ActionError(
                _("Das Entscheidungsdatum muss zwischen Einreichung und heute liegen.")
            )
        try:
            require_tag_consent(locked)
        except ConsentMissing:
            raise ActionError(
                _("Die Einwilligung der Familie deckt Ihre Stelle nicht (mehr) ab.")
            ) from None
        change = TagStatusChange(tag=locked, state=state, by=by, decided_on=decided_on)
        change.encrypt_field("note", note.strip())
        change.save(force_insert=True)
        locked.state = state
        locked.priority = TAG_PRIORITY[state]
        locked.updated_at = change.at
        if state == ApplicationTag.State.DOCUMENTS_REQUESTED:
            locked.encrypt_field("missing_documents", note.strip())
        if decided_on is not None:
            locked.decided_on = decided_on
            locked.days_to_decision = (decided_on - locked.submitted_on).days
        locked.save()
        record(
            by,
            TAG_STATUS_CHANGED,
            target=locked,
            family=locked.family,
            agency_id=locked.processing_agency_id,
            purpose=str(Purpose.APPLICATION_SUPPORT.label),
            details={"state": state},
        )
        notify(
            [locked.coach] if locked.coach else [],
            kind="application_tag.status_changed",
            title=gettext_lazy("Neuer Stand zu einem markierten Antrag"),
            family_ref=locked.family.reference,
            url=reverse("tag_detail", args=[locked.code]),
        )
        # The office's start pages (its open document requests) recount; the coach's
        # follow her notification.
        worklist.counts_changed(
            members_holding(*CASE_ROLES, agencies=[locked.processing_agency_id]).values_list(
                "pk", flat=True
            )
        )
        return locked


def record_refused_step(tag: ApplicationTag, *, verb: str, by: User) -> None:
    """Record that a step on a tag was refused (in its own transaction: the refused step's
    was rolled back)."""
    with transaction.atomic():
        record(
            by,
            TAG_STEP_REFUSED,
            target=tag,
            family=tag.family,
            details={"verb": verb, "state": tag.state},
        )


def erase_family_tags(family: Family) -> int:
    """Delete all the family's application tags with their timelines (GDPR Art. 17), and
    return how many. Runs inside the erasure's transaction; its record is the caller's
    `family.cases_erased` event (referrals.actions.erasure.erase_family_cases)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("erase_family_tags() must run inside the erasure's transaction")
    tags = ApplicationTag.objects.filter(family=family)
    count = tags.count()
    tags.delete()
    return count
