"""The printable stamp for an application tag ("auf kurzem Dienstweg").

`render_stamp` turns a `StampData` into a one-page A6 landscape PDF that a coach prints and
staples onto a paper benefit application: whom the processing agency may ask, the tag's code
in large monospace type and a QR code that opens the tag. The module is pure: it reads no
database and drawing only depends on its input, so views, commands and tests share it.

The text is set in DejaVu (`dienstweg.pdf`), so Yılmaz and Łukasz print as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit

import segno
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from fpdf import FPDF

from dienstweg.pdf import MONO, SANS, add_fonts, latin1

PAGE_W, PAGE_H, MARGIN = 148.0, 105.0, 8.0  # A6 landscape, millimetres
QR_SIZE = 38.0
QUIET_ZONE = 4  # modules of white border the QR standard asks for


@dataclass(frozen=True)
class StampData:
    project_name: str
    project_address: list[str]
    project_phone: str
    contact_name: str
    code: str
    url: str
    kind_label: str
    submitted_on: date | None = None
    contact_phone: str = ""  # the coach's direct number, from the directory


def _draw_qr(pdf: FPDF, url: str, *, x: float, y: float, size: float) -> None:
    """Draw the QR code for `url` as one filled rectangle per dark module (vector, no image)."""
    matrix = segno.make(url, error="m").matrix
    module = size / (len(matrix) + 2 * QUIET_ZONE)
    pdf.set_fill_color(0)
    for row_no, row in enumerate(matrix):
        for col_no, dark in enumerate(row):
            if dark:
                left = x + (QUIET_ZONE + col_no) * module
                top = y + (QUIET_ZONE + row_no) * module
                pdf.rect(left, top, module, module, style="F")


def render_stamp(data: StampData, *, compress: bool = True) -> bytes:
    """Render the stamp as PDF bytes; `compress=False` leaves the content stream readable."""
    pdf = FPDF(orientation="L", unit="mm", format=(PAGE_H, PAGE_W))
    pdf.set_compression(compress)
    pdf.set_title(latin1(f"Dienstweg-Stempel {data.code}"))
    pdf.set_creator("Dienstweg")
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(auto=False)  # a stamp is one page; overlong text is clipped by design
    add_fonts(pdf)
    pdf.add_page()
    pdf.set_draw_color(0)
    pdf.set_line_width(0.4)
    pdf.rect(MARGIN / 2, MARGIN / 2, PAGE_W - MARGIN, PAGE_H - MARGIN, style="D")

    text_w = PAGE_W - 2 * MARGIN - QR_SIZE - 4

    def line(text: str, *, size: float, style: str = "", height: float = 4.2) -> None:
        pdf.set_font(SANS, style=style, size=size)
        pdf.set_x(MARGIN)
        pdf.multi_cell(text_w, height, text, align="L", new_x="LMARGIN", new_y="NEXT")

    line(_("Auf kurzem Dienstweg"), size=15, style="B", height=7)
    line(_("Bei Fragen oder fehlenden Unterlagen wenden Sie sich bitte an:"), size=8, height=3.8)
    pdf.ln(1.5)
    line(data.project_name, size=10, style="B", height=4.6)
    for address_line in data.project_address[:4]:
        line(address_line, size=9)
    if data.project_phone:
        line(_("Tel. %(phone)s") % {"phone": data.project_phone}, size=9)
    pdf.ln(1.5)
    line(_("Ansprechperson: %(name)s") % {"name": data.contact_name}, size=9, style="B")
    if data.contact_phone:
        line(_("Durchwahl %(phone)s") % {"phone": data.contact_phone}, size=9)
    line(_("Antrag: %(kind)s") % {"kind": data.kind_label}, size=9)
    if data.submitted_on:
        submitted = date_format(data.submitted_on, "SHORT_DATE_FORMAT")
        line(_("Eingereicht am %(date)s") % {"date": submitted}, size=9)

    qr_x = PAGE_W - MARGIN - QR_SIZE
    _draw_qr(pdf, data.url, x=qr_x, y=MARGIN - 1, size=QR_SIZE)
    host = urlsplit(data.url).netloc or data.url
    pdf.set_font(SANS, size=6.5)
    pdf.set_xy(qr_x, MARGIN - 1 + QR_SIZE)
    caption = _("Code scannen oder unter %(host)s eingeben") % {"host": host}
    pdf.multi_cell(QR_SIZE, 2.8, caption, align="C")

    pdf.line(MARGIN, PAGE_H - 25, PAGE_W - MARGIN, PAGE_H - 25)
    # Large and monospaced: a clerk types it from paper, character by character.
    pdf.set_font(MONO, style="B", size=28)
    pdf.set_xy(MARGIN, PAGE_H - 22)
    pdf.cell(PAGE_W - 2 * MARGIN, 14, data.code, align="C")
    return bytes(pdf.output())
