"""The Strukturkonferenz report as a PDF: the same tables as the page, hidden entries as
"•", and the charts drawn as bars (the trend, the gaps), in embedded DejaVu with page
numbers."""

from __future__ import annotations

from django.utils import formats
from django.utils.translation import gettext as _
from fpdf import FPDF

from conferences.report import StructureReport, Table
from dienstweg.pdf import SANS, add_fonts

HIDDEN = "•"
BAR = (30, 64, 175)  # KERN's blue
BEFORE = (160, 160, 170)


class _ReportPDF(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(SANS, size=7.5)
        self.set_text_color(80)
        # "{nb}": fpdf2 puts in the number of pages at the end.
        page = _("Strukturkonferenz – Seite %(page)d von %(pages)s")
        self.cell(0, 5, page % {"page": self.page_no(), "pages": "{nb}"}, align="R")
        self.set_text_color(0)


def _value(value: float | None) -> str:
    if value is None:
        return HIDDEN
    if value == 0:
        return "–"
    return formats.number_format(value)


def render_report_pdf(report: StructureReport) -> bytes:
    pdf = _ReportPDF(orientation="L", unit="mm", format="A4")
    pdf.set_title(_("Strukturkonferenz"))
    pdf.set_creator("Dienstweg")
    pdf.set_margins(12, 12, 12)
    pdf.set_auto_page_break(auto=True, margin=16)
    add_fonts(pdf)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def text(value: str, *, size: float = 9, style: str = "", height: float = 5) -> None:
        pdf.set_font(SANS, style=style, size=size)
        pdf.multi_cell(0, height, value, new_x="LMARGIN", new_y="NEXT")

    period = report.period
    text(_("Strukturkonferenz: Bericht"), size=16, style="B", height=9)
    text(
        _("Zeitraum %(start)s bis %(end)s, verglichen mit %(before_start)s bis %(before_end)s")
        % {
            "start": formats.date_format(period.start, "SHORT_DATE_FORMAT"),
            "end": formats.date_format(period.end, "SHORT_DATE_FORMAT"),
            "before_start": formats.date_format(period.previous().start, "SHORT_DATE_FORMAT"),
            "before_end": formats.date_format(period.previous().end, "SHORT_DATE_FORMAT"),
        }
    )
    text(_("Für: %(scope)s") % {"scope": report.scope.label})
    text(
        _(
            "Alle Zahlen zählen Familien. • = weniger als 5 Familien oder ausgeblendet, damit "
            "sich eine solche Zahl nicht aus den Summen errechnen lässt; – = keine. Keine "
            "Kennungen, keine Namen, keine Freitexte."
        ),
        size=8,
    )
    pdf.ln(2)
    text(_("Entwicklung"), size=12, style="B", height=7)
    highest = max([v for trend in report.trends for v in (trend.now, trend.before) if v] or [1])
    label_width, bar_width = 75, width - 95
    for trend in report.trends:
        for value, colour, caption in (
            (trend.before, BEFORE, _("Vorzeitraum")),
            (trend.now, BAR, _("Zeitraum")),
        ):
            y = pdf.get_y()
            pdf.set_font(SANS, size=8)
            pdf.cell(label_width, 4.5, f"{trend.label} ({caption})")
            if value:
                pdf.set_fill_color(*colour)
                pdf.rect(pdf.l_margin + label_width, y + 0.8, bar_width * value / highest, 3, "F")
            pdf.set_xy(pdf.l_margin + label_width + bar_width + 2, y)
            pdf.cell(15, 4.5, _value(value), new_x="LMARGIN", new_y="NEXT")
    for table in report.tables:
        _table(pdf, table, width)
    for title, timings in (
        (_("Tage bis zur ersten Antwort, je empfangende Stelle"), report.answer_times),
        (_("Tage von der Einreichung bis zur Entscheidung, je Antragsart"), report.decision_times),
    ):
        pdf.ln(3)
        text(title, size=12, style="B", height=7)
        if not timings:
            text(_("Keine im Zeitraum."))
        for timing in timings:
            text(
                f"{timing.label}: {_('Familien')} {_value(timing.families)}, "
                f"{_('Median')} {_value(timing.median_days)}, "
                f"{_('90. Perzentil')} {_value(timing.p90_days)}"
            )
    return bytes(pdf.output())


def _table(pdf: FPDF, table: Table, width: float) -> None:
    pdf.ln(3)
    pdf.set_font(SANS, style="B", size=11)
    pdf.multi_cell(0, 6, table.title, new_x="LMARGIN", new_y="NEXT")
    headers = table.headers
    first = min(70.0, width * 0.3)
    other = (width - first) / len(headers)
    pdf.set_font(SANS, style="B", size=7)
    y = pdf.get_y()
    pdf.multi_cell(first, 4, "", new_x="RIGHT", new_y="TOP")
    for header in headers:
        pdf.multi_cell(other, 4, header, align="R", new_x="RIGHT", new_y="TOP")
    pdf.set_y(y + 9)
    pdf.set_font(SANS, size=7.5)
    for label, values in table.lines():
        pdf.cell(first, 4.5, label)
        for value in values:
            pdf.cell(other, 4.5, _value(value), align="R")
        pdf.ln(4.5)
