"""Anonymous case consultations ("anonyme Fallberatung"): a coach asks agencies that the
family has not consented to for advice, under a case alias and with only her text, which
must not name the family (identifying.py); the agencies answer; naming the family to one of
them later needs the family's consent, and the trail records both."""

from __future__ import annotations

import secrets

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.trail import record
from conferences.access import may_convene
from conferences.audit_actions import (
    CONSULTATION_ANSWERED,
    CONSULTATION_REFUSED,
    CONSULTATION_REIDENTIFICATION_ENDED,
    CONSULTATION_REIDENTIFIED,
    CONSULTATION_SHARED,
    CONSULTATION_VIEWED,
)
from conferences.identifying import CODES, Identifiers, found_in
from conferences.models import Consultation, ConsultationAnswer, ConsultationRecipient
from dienstweg.access import CASE_ROLES, holds_role, members_holding
from dienstweg.actions import ActionError, NotAllowed
from dienstweg.consent import (
    ConsentMissing,
    ProcessingRestricted,
    require_consent,
    require_unrestricted,
)
from dienstweg.models import Agency, Consent, DataCategory, Family, Purpose, User
from dienstweg.notifications import notify

MAX_QUESTION = 3000
MAX_RECIPIENTS = 10
# Letters and digits that cannot be mistaken for each other when read aloud or typed.
ALIAS_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
RESTRICTED = gettext_lazy(
    "Gesperrt, solange die Verarbeitung eingeschränkt ist (Art. 18 DSGVO): Es wird nichts gesendet."
)


def _check_text(family: Family, text: str, *, by: User) -> None:
    """Refuse TEXT if it names the family (the kinds found, never the values), recorded."""
    kinds = found_in(text, Identifiers.of(family))
    if not kinds:
        return
    with transaction.atomic():
        record(
            by,
            CONSULTATION_REFUSED,
            target=family,
            family=family,
            details={f"found_{CODES[kind]}": True for kind in kinds},
        )
    raise ActionError(
        _(
            "Der Text nennt die Familie (%(kinds)s). Es wurde nichts gesendet: Bitte "
            "beschreiben Sie den Fall ohne Namen, Geburtsdaten, Anschrift und Telefonnummer."
        )
        % {"kinds": ", ".join(_(kind) for kind in kinds)}
    )


def _alias() -> str:
    return "Fallberatung " + "".join(secrets.choice(ALIAS_ALPHABET) for _index in range(6))


def ask_network(family: Family, *, question: str, agencies: list[Agency], by: User) -> Consultation:
    """Ask AGENCIES about the family's case without naming it (a coach or lead of its
    project). Refused, with nothing sent, if the text names the family, or while its
    processing is restricted."""
    if not may_convene(by, family):
        raise NotAllowed(_("Fallberatungen stellen Coaches und Leitungen des Projekts."))
    if family.is_erased:
        raise ActionError(_("Die Daten dieser Familie sind gelöscht."))
    question = question.strip()
    agencies = [agency for agency in agencies if agency.pk != family.owner_id]
    if not question:
        raise ActionError(_("Bitte beschreiben Sie den Fall und Ihre Frage."))
    if len(question) > MAX_QUESTION:
        raise ActionError(
            _("Der Text ist zu lang (höchstens %(max)d Zeichen).") % {"max": MAX_QUESTION}
        )
    if not agencies or len(agencies) > MAX_RECIPIENTS:
        raise ActionError(_("Bitte wählen Sie eine bis %(max)d Stellen.") % {"max": MAX_RECIPIENTS})
    _check_text(family, question, by=by)
    for _attempt in range(5):
        try:
            return _send(family, question, agencies, by)
        except IntegrityError:  # the alias was taken: draw another
            continue
    raise ActionError(_("Bitte versuchen Sie es noch einmal."))


def _send(family: Family, question: str, agencies: list[Agency], by: User) -> Consultation:
    with transaction.atomic():
        try:
            require_unrestricted(family)
        except ProcessingRestricted:
            raise ActionError(str(RESTRICTED)) from None
        consultation = Consultation(
            family=family, project=family.owner, alias=_alias(), created_by=by
        )
        consultation.encrypt_field("question", question)
        consultation.save()
        ConsultationRecipient.objects.bulk_create(
            ConsultationRecipient(consultation=consultation, agency=agency) for agency in agencies
        )
        record(
            by,
            CONSULTATION_SHARED,
            target=consultation,
            family=family,
            purpose="anonyme Fallberatung",
            details={"agencies": len(agencies), "alias": consultation.alias.split()[-1]},
        )
        # No reference: the agencies must not learn which family it is.
        notify(
            members_holding(*CASE_ROLES, agencies=[agency.pk for agency in agencies]),
            kind="consultation.asked",
            title=gettext_lazy("Anonyme Fallberatung: ein Projekt bittet um Rat"),
            url=reverse("consultation_detail", args=[consultation.pk]),
        )
    return consultation


def record_consultation_read(consultation: Consultation, *, side: str, by: User) -> None:
    """Record that BY opened the consultation (under the family, which she may not know)."""
    with transaction.atomic():
        record(
            by,
            CONSULTATION_VIEWED,
            target=consultation,
            family=consultation.family,
            details={"side": side},
        )


def answering_agency(user: User, consultation: Consultation) -> Agency | None:
    """The agency for which USER answers: the project, or her recipient agency (the first
    by name where she holds a case role); None if she has none."""
    if holds_role(user, *CASE_ROLES, agency=consultation.project_id):
        return consultation.project
    recipient = (
        consultation.recipients.filter(
            agency__memberships__user=user, agency__memberships__role__in=CASE_ROLES
        )
        .select_related("agency")
        .order_by("agency__name")
        .first()
    )
    return recipient.agency if recipient else None


def answer_consultation(consultation: Consultation, *, text: str, by: User) -> ConsultationAnswer:
    """Answer (a recipient agency) or add to (the project) a consultation. The project's
    text is checked like the question: it must not name the family either."""
    agency = answering_agency(by, consultation)
    if agency is None:
        raise NotAllowed(_("Antworten können die gefragten Stellen und das Projekt."))
    text = text.strip()
    if not text or len(text) > MAX_QUESTION:
        raise ActionError(
            _("Bitte schreiben Sie eine Antwort (höchstens %(max)d Zeichen).")
            % {"max": MAX_QUESTION}
        )
    family = consultation.family
    if agency.pk == consultation.project_id:
        _check_text(family, text, by=by)
    with transaction.atomic():
        answer = ConsultationAnswer(consultation=consultation, agency=agency, author=by)
        answer.encrypt_field("text", text)
        answer.save()
        record(
            by,
            CONSULTATION_ANSWERED,
            target=consultation,
            family=family,
            agency_id=agency.pk,
            details={"agency": agency.pk},
        )
        if agency.pk != consultation.project_id and consultation.created_by is not None:
            notify(
                [consultation.created_by],
                kind="consultation.answered",
                title=gettext_lazy("Antwort auf Ihre anonyme Fallberatung"),
                family_ref=family.reference,
                url=reverse("consultation_detail", args=[consultation.pk]),
            )
    return answer


def reidentify(consultation: Consultation, *, agency: Agency, by: User) -> ConsultationRecipient:
    """Name the family to AGENCY, one of the consultation's recipients (a coach or lead of
    the project), only if the family's consent covers the agency for case coordination
    and identity data (checked and locked here); until that consent ends."""
    family = consultation.family
    if not may_convene(by, family):
        raise NotAllowed(_("Die Familie benennen Coaches und Leitungen des Projekts."))
    with transaction.atomic():
        recipient = (
            ConsultationRecipient.objects.select_for_update()
            .filter(consultation=consultation, agency=agency)
            .first()
        )
        if recipient is None:
            raise ActionError(_("Diese Stelle wurde in der Fallberatung nicht gefragt."))
        if recipient.names_family:
            raise ActionError(_("Die Familie ist dieser Stelle schon benannt."))
        try:
            consents = require_consent(
                family,
                to_agency=agency,
                categories=[DataCategory.IDENTITY],
                purpose=Purpose.CASE_COORDINATION,
            )
        except ProcessingRestricted:
            raise ActionError(str(RESTRICTED)) from None
        except ConsentMissing:
            raise ActionError(
                _(
                    "Keine gültige Einwilligung erlaubt, die Familie %(agency)s zu nennen "
                    "(Fallabstimmung, Identität). Es wurde nichts geändert."
                )
                % {"agency": agency.name}
            ) from None
        recipient.reidentified_at = timezone.now()
        recipient.reidentified_by = by
        recipient.reidentified_until = min(consent.valid_until for consent in consents)
        recipient.reidentification_ended_at = None
        recipient.save()
        recipient.consents.set(consents)
        record(
            by,
            CONSULTATION_REIDENTIFIED,
            target=consultation,
            family=family,
            purpose=str(Purpose.CASE_COORDINATION.label),
            details={"to_agency": agency.pk, "consents": len(consents)},
        )
        notify(
            members_holding(*CASE_ROLES, agencies=agency),
            kind="consultation.reidentified",
            title=gettext_lazy("Fallberatung: Die Familie ist Ihnen jetzt benannt"),
            family_ref=family.reference,
            url=reverse("consultation_detail", args=[consultation.pk]),
        )
    return recipient


def end_reidentification_after_revocation(*, consent: Consent, by: User) -> None:
    """Handler of dienstweg.hooks.consent_revoked: the agencies that were named the family
    on this consent no longer see its reference (in the revoking transaction)."""
    for recipient in (
        ConsultationRecipient.objects.select_for_update()
        .filter(
            consents=consent, reidentification_ended_at__isnull=True, reidentified_at__isnull=False
        )
        .select_related("consultation__family")
    ):
        recipient.reidentification_ended_at = timezone.now()
        recipient.save(update_fields=["reidentification_ended_at"])
        record(
            by,
            CONSULTATION_REIDENTIFICATION_ENDED,
            target=recipient.consultation,
            family=recipient.consultation.family,
            purpose="Art. 7 Abs. 3 DSGVO",
            details={"to_agency": recipient.agency_id},
        )
