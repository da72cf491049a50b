"""The protocol of a Familienkonferenz for the family, as a PDF in plain German: short
sentences, one agreement after the other with who does it by when, and whom to call.
Set in embedded DejaVu (names as written), with page numbers; no word is broken."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.utils import formats, timezone
from fpdf import FPDF

from conferences.models import Agreement, Conference, Invitation
from dienstweg.models import Contact
from dienstweg.pdf import SANS, add_fonts, latin1


@dataclass(frozen=True)
class Caller:
    """Someone the family can call: name, agency and number."""

    name: str
    agency: str
    phone: str


class _ProtocolPDF(FPDF):
    reference = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(SANS, size=8)
        self.set_text_color(80)
        self.cell(
            0,
            5,
            f"Familienkonferenz {self.reference} – Seite {self.page_no()} von {{nb}}",
            align="R",
        )
        self.set_text_color(0)


def _day(value: date) -> str:
    return formats.date_format(value, "j. F Y")


def callers(conference: Conference, invitations: list[Invitation]) -> list[Caller]:
    """The coach with her direct number (the directory's entry by her e-mail address) or the
    project's phone, then each invited agency's public phone."""
    found: list[Caller] = []
    coach = conference.convened_by
    if coach is not None:
        direct = (
            Contact.objects.filter(agency_id=conference.project_id, email__iexact=coach.email)
            .exclude(direct_phone="")
            .values_list("direct_phone", flat=True)
            .first()
        )
        found.append(
            Caller(
                coach.full_name, conference.project.name, direct or conference.project.public_phone
            )
        )
    seen = set()
    for invitation in invitations:
        if invitation.agency_id in seen or invitation.access_ended_at is not None:
            continue
        seen.add(invitation.agency_id)
        found.append(Caller("", invitation.agency.name, invitation.agency.public_phone))
    return found


def _who(agreement: Agreement) -> str:
    if agreement.agency is None:
        return "Sie selbst (die Familie)"
    if agreement.person is not None:
        return f"{agreement.person.full_name}, {agreement.agency.name}"
    return agreement.agency.name


_STATE = {
    Agreement.State.OPEN: "vereinbart",
    Agreement.State.CONFIRMED: "fest zugesagt",
    Agreement.State.DONE: "erledigt",
    Agreement.State.NOT_POSSIBLE: "nicht möglich",
}


def render_protocol_pdf(
    conference: Conference,
    *,
    agreements: list[Agreement],
    invitations: list[Invitation],
    compress: bool = True,
) -> bytes:
    """The protocol as an A4 PDF (`compress=False` leaves the content streams readable)."""
    reference = conference.family.reference
    pdf = _ProtocolPDF(orientation="P", unit="mm", format="A4")
    pdf.reference = reference
    pdf.set_compression(compress)
    pdf.set_title(latin1(f"Familienkonferenz {reference}"))
    pdf.set_creator("Dienstweg")
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(auto=True, margin=20)
    add_fonts(pdf)
    pdf.add_page()

    def text(value: str, *, size: float = 12, style: str = "", height: float = 7) -> None:
        pdf.set_font(SANS, style=style, size=size)
        pdf.multi_cell(0, height, value, new_x="LMARGIN", new_y="NEXT")

    def heading(value: str) -> None:
        pdf.ln(4)
        text(value, size=15, style="B", height=9)

    start = timezone.localtime(conference.starts_at)
    text("Was wir gemeinsam vereinbart haben", size=20, style="B", height=11)
    text(f"Familienkonferenz {reference}", size=13)
    heading("Wann und wo")
    text(f"Am {_day(start.date())} um {start:%H:%M} Uhr.")
    place = conference.decrypt_field("place")
    if place:
        text(f"Ort: {place}")
    if conference.decrypt_field("video_link"):
        text("Auch per Video.")
    heading("Wer dabei war")
    if conference.convened_by is not None:
        text(f"{conference.convened_by.full_name}, {conference.project.name}. Sie hat eingeladen.")
    for invitation in invitations:
        text(f"{invitation.user.full_name}, {invitation.agency.name}.")
    heading("Was wir vereinbart haben")
    if not agreements:
        text("Es gibt noch keine Vereinbarung.")
    for agreement in agreements:
        pdf.ln(2)
        text(f"{agreement.number}. {agreement.decrypt_field('what')}", style="B")
        text(f"Wer macht das? {_who(agreement)}.")
        text(f"Bis wann? Bis zum {_day(agreement.due_on)}.")
        text(f"Stand: {_STATE[Agreement.State(agreement.state)]}.")
    heading("Wen Sie anrufen können")
    for caller in callers(conference, invitations):
        who = f"{caller.name}, {caller.agency}" if caller.name else caller.agency
        text(f"{who}: {caller.phone}" if caller.phone else who)
    pdf.ln(4)
    text(
        "Sie haben Fragen? Rufen Sie an. Sie können Ihre Einwilligung jederzeit "
        "widerrufen. Dann sehen die Stellen Ihre Daten nicht mehr.",
        size=11,
    )
    return bytes(pdf.output())
