"""The access report a family may demand under GDPR Art. 15: its content, built from
metadata only, with its JSON form (data.py), and its PDF (pdf.py). Callers import from
here."""

from privacy.reports.data import (
    FORMAT,
    SPECIAL_CATEGORIES,
    AccessReport,
    CommunicationCount,
    ConsentEntry,
    ConsentRef,
    Consultation,
    ControllerContact,
    HeldCategory,
    MemberCount,
    ReferralEntry,
    TagEntry,
    action_label,
    build_access_report,
    consultations,
    purpose_label,
)
from privacy.reports.pdf import render_access_report_pdf

__all__ = [
    "FORMAT",
    "SPECIAL_CATEGORIES",
    "AccessReport",
    "CommunicationCount",
    "ConsentEntry",
    "ConsentRef",
    "Consultation",
    "ControllerContact",
    "HeldCategory",
    "MemberCount",
    "ReferralEntry",
    "TagEntry",
    "action_label",
    "build_access_report",
    "consultations",
    "purpose_label",
    "render_access_report_pdf",
]
