"""Every write of conferences, one module per concern, one function per domain verb:

- convening.py: convening and cancelling a conference, recording that someone opened it,
  the end of an invitee's access when the consent behind it ends, erasure;
- consultations.py: anonymous case consultations, their answers, and naming the family
  to an agency later (with consent);
- agreements.py: recording agreements, their signed confirmation by the responsible
  agency, their end (done, or not possible with the gap it reveals), reminders."""

from conferences.actions.agreements import (
    AgreementData,
    close_agreement,
    confirm_agreement,
    record_agreement,
    remind_overdue_agreements,
)
from conferences.actions.consultations import (
    answer_consultation,
    ask_network,
    end_reidentification_after_revocation,
    record_consultation_read,
    reidentify,
)
from conferences.actions.convening import (
    MAX_INVITEES,
    MAX_TEXT,
    ConferenceData,
    cancel_conference,
    check_conference_data,
    convene_conference,
    end_invitee_access,
    erase_family_conferences,
    hide_after_restriction,
    losses_on_revocation,
    record_agreement_read,
    record_conference_read,
    withdraw_access_after_revocation,
)
from conferences.actions.reporting import record_report_use

__all__ = [
    "MAX_INVITEES",
    "MAX_TEXT",
    "AgreementData",
    "ConferenceData",
    "answer_consultation",
    "ask_network",
    "cancel_conference",
    "check_conference_data",
    "close_agreement",
    "confirm_agreement",
    "convene_conference",
    "end_invitee_access",
    "end_reidentification_after_revocation",
    "erase_family_conferences",
    "hide_after_restriction",
    "losses_on_revocation",
    "record_agreement",
    "record_agreement_read",
    "record_conference_read",
    "record_consultation_read",
    "record_report_use",
    "reidentify",
    "remind_overdue_agreements",
    "withdraw_access_after_revocation",
]
