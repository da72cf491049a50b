"""The access report (GDPR Art. 15) as a PDF for the family: the same content as the JSON
form, laid out in tables, in Latin-1 (the core PDF fonts)."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from fpdf import FPDF

from dienstweg.pdf import latin1
from privacy.reports.data import AccessReport


def _day(value: date | datetime | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, datetime):
        value = timezone.localdate(value)
    return formats.date_format(value, "SHORT_DATE_FORMAT")


def _moment(value: datetime) -> str:
    return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")


def render_access_report_pdf(report: AccessReport, *, compress: bool = True) -> bytes:
    """The report as an A4 PDF with one table per section (PDF core fonts: latin-1,
    everything else transliterated); `compress=False` leaves the text readable."""
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_compression(compress)
    pdf.set_title(latin1(_("Auskunft %(reference)s") % {"reference": report.reference}))
    pdf.set_creator("Dienstweg")
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()

    def text(value: str, *, size: float = 9, style: str = "", height: float = 5) -> None:
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.multi_cell(0, height, latin1(value), new_x="LMARGIN", new_y="NEXT")

    def heading(value: str) -> None:
        pdf.ln(3)
        text(value, size=12, style="B", height=7)

    def table(columns: list[tuple[str, float]], rows: list[list[str]], empty: str) -> None:
        if not rows:
            text(empty)
            return
        _Table(pdf, columns).draw(rows)

    text(_("Auskunft nach Art. 15 DSGVO"), size=16, style="B", height=9)
    text(_("Familie %(reference)s") % {"reference": report.reference}, size=12, style="B")
    text(_("Erstellt am %(moment)s") % {"moment": _moment(report.generated_at)})
    pdf.ln(2)
    for line in _status_lines(report):
        text(line)

    heading(_("Gespeicherte Datenkategorien"))
    table(
        [(_("Kategorie"), 3), (_("Herkunft"), 2)],
        [[c.label, ", ".join(c.source_labels)] for c in report.categories],
        _("Keine Datenkategorien gespeichert."),
    )
    if report.household:
        text(
            _("Haushalt: %(members)s")
            % {"members": ", ".join(f"{m.count} × {m.label}" for m in report.household)}
        )
    if report.tags:
        text(_("Unterstützung bei Anträgen: %(count)d Antragsmarker") % {"count": len(report.tags)})

    heading(_("Einwilligungen"))
    table(
        [
            (_("Gültig"), 2),
            (_("Stand"), 1.3),
            (_("Empfänger"), 3),
            (_("Datenkategorien"), 3),
            (_("Zwecke"), 2.2),
        ],
        [
            [
                f"{_day(c.valid_from)} – {_day(c.valid_until)}",
                c.state_label + (f" ({_day(c.revoked_on)})" if c.revoked_on else ""),
                "; ".join(c.recipients),
                ", ".join(c.category_labels),
                ", ".join(c.purpose_labels),
            ]
            for c in report.consents
        ],
        _("Keine Einwilligung gespeichert."),
    )

    heading(_("Empfänger: Vermittlungen"))
    table(
        [
            (_("Empfänger"), 3),
            (_("Gesendet"), 1.8),
            (_("Stand"), 1.3),
            (_("Datenkategorien"), 2.6),
            (_("Rechtsgrundlage"), 2.6),
            (_("Einwilligung"), 2),
        ],
        [
            [
                r.to_agency,
                _moment(r.sent_at),
                r.state_label,
                ", ".join(r.category_labels),
                r.basis_label,
                "; ".join(
                    f"{_day(c.valid_from)} – {_day(c.valid_until)}: {', '.join(c.purpose_labels)}"
                    for c in r.consents
                )
                or "–",
            ]
            for r in report.referrals
        ],
        _("Keine Vermittlung übermittelt."),
    )

    heading(_("Empfänger: Anträge (auf kurzem Dienstweg)"))
    table(
        [(_("Bearbeitende Stelle"), 3), (_("Antrag"), 2), (_("Eingereicht"), 1.5), (_("Stand"), 2)],
        [
            [t.processing_agency, t.kind_label, _day(t.submitted_on), t.state_label]
            for t in report.tags
        ],
        _("Kein Antrag markiert."),
    )

    heading(_("Kommunikation (nur Anzahl, keine Inhalte)"))
    table(
        [(_("Unterhaltung zu"), 3), (_("Unterhaltungen"), 1.5), (_("Nachrichten"), 1.5)],
        [[c.label, str(c.threads), str(c.messages)] for c in report.communication],
        _("Keine Unterhaltungen."),
    )

    heading(_("Zugriffe und Vorgänge"))
    columns = [
        (_("Tag"), 1.4),
        (_("Stelle"), 3),
        (_("Vorgang"), 2.6),
        (_("Zweck / Rechtsgrundlage"), 3),
        (_("Anzahl"), 0.9),
    ]
    if report.staff_names:
        columns.append((_("Mitarbeiter/in"), 2))
    table(
        columns,
        [
            [
                _day(row.day),
                row.agency or "–",
                row.action_label,
                row.purpose_label or "–",
                str(row.count),
            ]
            + ([row.staff or "–"] if report.staff_names else [])
            for row in report.consultations
        ],
        _("Keine Zugriffe protokolliert."),
    )
    if not report.staff_names:
        pdf.ln(2)
        text(
            _(
                "Die Namen einzelner Mitarbeiterinnen und Mitarbeiter sind nicht aufgeführt; "
                "die Stelle ist genannt."
            ),
            size=8,
        )
    return bytes(pdf.output())


class _Table:
    """A bordered table with a repeated heading row on every page.

    fpdf2's own table breaks every cell's text anew (about 5 ms a cell); a family's trail
    repeats the same agency names, actions and purposes in thousands of rows, so the lines
    of each text are computed once per column and reused."""

    FONT_SIZE = 8.0
    LINE = 3.8
    PAD = 1.2
    BASELINE = 2.8  # from a line's top, for 8 pt Helvetica

    def __init__(self, pdf: FPDF, columns: list[tuple[str, float]]) -> None:
        self.pdf = pdf
        total = sum(weight for _title, weight in columns)
        self.widths = [pdf.epw * weight / total for _title, weight in columns]
        self.titles = [title for title, _weight in columns]
        self.wrapped: dict[tuple[int, str], list[str]] = {}

    def draw(self, rows: list[list[str]]) -> None:
        self._row(self.titles, heading=True)
        for values in rows:
            self._row(values)
        self.pdf.ln(1)

    def _row(self, values: list[str], *, heading: bool = False) -> None:
        pdf = self.pdf
        pdf.set_font("Helvetica", style="B" if heading else "", size=self.FONT_SIZE)
        cells = [self._lines(column, value, heading) for column, value in enumerate(values)]
        height = max(len(lines) for lines in cells) * self.LINE + self.PAD
        if not heading and pdf.will_page_break(height):
            pdf.add_page()
            self._row(self.titles, heading=True)
            pdf.set_font("Helvetica", size=self.FONT_SIZE)
        top, x = pdf.get_y(), pdf.l_margin
        pdf.set_fill_color(230)
        for width, lines in zip(self.widths, cells, strict=True):
            pdf.rect(x, top, width, height, style="DF" if heading else "D")
            for number, line in enumerate(lines):
                # text() at the baseline: a tenth of cell()'s cost, which counts with
                # thousands of rows.
                pdf.text(
                    x + self.PAD, top + self.PAD / 2 + number * self.LINE + self.BASELINE, line
                )
            x += width
        pdf.set_xy(pdf.l_margin, top + height)

    def _lines(self, column: int, value: str, heading: bool) -> list[str]:
        key = (column * 2 + heading, value)
        lines = self.wrapped.get(key)
        if lines is None:
            lines = self.wrapped[key] = self._wrap(
                latin1(value), self.widths[column] - 2 * self.PAD
            )
        return lines

    def _wrap(self, text: str, width: float) -> list[str]:
        """Greedy word wrap; a word wider than the column is cut where it must."""
        measure = self.pdf.get_string_width
        lines: list[str] = []
        for paragraph in text.splitlines() or [""]:
            line = ""
            for word in paragraph.split(" "):
                candidate = f"{line} {word}" if line else word
                if measure(candidate) <= width:
                    line = candidate
                    continue
                if line:
                    lines.append(line)
                while measure(word) > width and len(word) > 1:
                    cut = len(word) - 1
                    while cut > 1 and measure(word[:cut]) > width:
                        cut -= 1
                    lines.append(word[:cut])
                    word = word[cut:]
                line = word
            lines.append(line)
        return lines


def _status_lines(report: AccessReport) -> list[str]:
    lines = [
        _("Verantwortliches Projekt: %(owner)s") % {"owner": report.owner},
        _("Angelegt am %(day)s") % {"day": _day(report.registered_at)},
    ]
    if report.restricted_at:
        lines.append(
            _("Verarbeitung eingeschränkt seit %(day)s (Art. 18 DSGVO)")
            % {"day": _day(report.restricted_at)}
        )
    if report.erased_at:
        lines.append(
            _("Gelöscht am %(day)s (Art. 17 DSGVO); aufgeführt ist, was aufbewahrt wird.")
            % {"day": _day(report.erased_at)}
        )
    return lines
