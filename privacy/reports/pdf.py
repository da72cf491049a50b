"""The access report (GDPR Art. 15) as a PDF for the family: the same content as the JSON
form, laid out in tables, set in embedded DejaVu (every name as written), with page numbers,
and columns never narrower than their longest word, so no word is broken."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from fpdf import FPDF

from dienstweg.pdf import SANS, add_fonts, latin1
from privacy.reports.data import AccessReport


class _ReportPDF(FPDF):
    """A4 with the reference and "Seite n von m" at the foot of every page."""

    reference = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(SANS, size=7.5)
        self.set_text_color(80)
        self.cell(
            0,
            5,
            _("Auskunft %(reference)s – Seite %(page)s von %(pages)s")
            % {"reference": self.reference, "page": self.page_no(), "pages": "{nb}"},
            align="R",
        )
        self.set_text_color(0)


def _day(value: date | datetime | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, datetime):
        value = timezone.localdate(value)
    return formats.date_format(value, "SHORT_DATE_FORMAT")


def _moment(value: datetime) -> str:
    return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")


def render_access_report_pdf(report: AccessReport, *, compress: bool = True) -> bytes:
    """The report as an A4 PDF with one table per section; `compress=False` leaves the
    content streams uncompressed."""
    pdf = _ReportPDF(orientation="P", unit="mm", format="A4")
    pdf.reference = report.reference
    pdf.set_compression(compress)
    pdf.set_title(latin1(_("Auskunft %(reference)s") % {"reference": report.reference}))
    pdf.set_creator("Dienstweg")
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=18)  # room for the page number
    add_fonts(pdf)
    pdf.add_page()

    def text(value: str, *, size: float = 9, style: str = "", height: float = 5) -> None:
        pdf.set_font(SANS, style=style, size=size)
        pdf.multi_cell(0, height, value, new_x="LMARGIN", new_y="NEXT")

    def heading(value: str) -> None:
        pdf.ln(3)
        text(value, size=12, style="B", height=7)

    def table(columns: list[tuple[str, float]], rows: list[list[str]], empty: str) -> None:
        if not rows:
            text(empty)
            return
        _Table(pdf, columns, rows).draw(rows)

    text(_("Auskunft nach Art. 15 DSGVO"), size=16, style="B", height=9)
    text(_("Familie %(reference)s") % {"reference": report.reference}, size=12, style="B")
    text(_("Erstellt am %(moment)s") % {"moment": _moment(report.generated_at)})
    pdf.ln(2)
    for line in _status_lines(report):
        text(line)

    controller = report.controller
    if controller is not None:
        heading(_("Verantwortliche Stelle und Datenschutzbeauftragte/r"))
        contact = [controller.name, *controller.address]
        contact += (
            [_("Telefon %(phone)s") % {"phone": controller.phone}] if controller.phone else []
        )
        contact += [controller.email] if controller.email else []
        text(_("Verantwortlich: %(contact)s") % {"contact": ", ".join(contact)})
        dpo = [controller.dpo_name, controller.dpo_address, controller.dpo_phone]
        dpo += [controller.dpo_email]
        text(
            _("Datenschutzbeauftragte/r: %(contact)s")
            % {"contact": ", ".join(part for part in dpo if part) or "–"}
        )

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
        tags = ngettext(
            "Unterstützung bei Anträgen: %(count)d Antragsmarker",
            "Unterstützung bei Anträgen: %(count)d Antragsmarker",
            len(report.tags),
        )
        text(tags % {"count": len(report.tags)})

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

    heading(_("Empfänger: Familienkonferenzen"))
    table(
        [(_("Termin"), 2), (_("Eingeladene Stellen"), 3.2), (_("Vereinbarungen"), 4.5)],
        [
            [
                f"{_moment(c.starts_at)} ({c.state_label})",
                "; ".join(c.agencies),
                "; ".join(
                    f"{a.number}. {a.responsible}, {_('bis')} {_day(a.due_on)}: {a.state_label}"
                    + (f" ({a.gap_label})" if a.gap_label else "")
                    for a in c.agreements
                )
                or "–",
            ]
            for c in report.conferences
        ],
        _("Keine Familienkonferenz."),
    )
    if report.case_consultations:
        heading(_("Anonyme Fallberatungen (ohne Namen der Familie)"))
        table(
            [(_("Gefragt am"), 1.5), (_("Gefragte Stellen"), 4), (_("Später benannt"), 3)],
            [
                [_day(c.asked_on), "; ".join(c.agencies), "; ".join(c.named_to) or "–"]
                for c in report.case_consultations
            ],
            "",
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

    heading(_("Wie lange die Daten gespeichert werden"))
    table(
        [(_("Daten"), 3), (_("Speicherdauer"), 2)],
        [[row.label, row.period] for row in report.retention],
        "–",
    )

    heading(_("Ihre Rechte"))
    for right in report.rights:
        text(f"{right.title} ({right.article})", style="B")
        text(right.text)
    pdf.ln(1)
    text(
        _("Zuständige Aufsichtsbehörde: %(authority)s")
        % {"authority": report.supervisory_authority}
    )
    text(
        _(
            "Wenden Sie sich für jedes dieser Rechte an die verantwortliche Stelle oder ihre "
            "Datenschutzbeauftragte / ihren Datenschutzbeauftragten (oben)."
        )
    )
    return bytes(pdf.output())


class _Table:
    """A bordered table with a repeated heading row on every page.

    fpdf2's own table breaks every cell's text anew (about 5 ms a cell); a family's trail
    repeats the same agency names, actions and purposes in thousands of rows, so the lines
    of each text are computed once per column and reused.

    Each column is at least as wide as its longest word ("angenommen" whole, not
    "angenomm|en"); the rest of the width is shared by the columns' weights. Only a word
    wider than any column could be (none in German prose) is still cut."""

    FONT_SIZE = 8.0
    LINE = 3.8
    PAD = 1.2
    BASELINE = 2.8  # from a line's top, for 8 pt DejaVu Sans

    def __init__(self, pdf: FPDF, columns: list[tuple[str, float]], rows: list[list[str]]) -> None:
        self.pdf = pdf
        self.titles = [title for title, _weight in columns]
        self.widths = self._widths(columns, rows)
        self.wrapped: dict[tuple[int, str], list[str]] = {}

    def _widths(self, columns: list[tuple[str, float]], rows: list[list[str]]) -> list[float]:
        pdf = self.pdf
        longest: list[float] = []
        measured: dict[tuple[str, str], float] = {}
        for column, (title, _weight) in enumerate(columns):
            widest = 0.0
            for style, value in [("B", title)] + [("", row[column]) for row in rows]:
                for word in value.split():
                    key = (style, word)
                    if key not in measured:
                        pdf.set_font(SANS, style=style, size=self.FONT_SIZE)
                        measured[key] = pdf.get_string_width(word)
                    widest = max(widest, measured[key])
            longest.append(widest + 2 * self.PAD + 0.5)
        weights = [weight for _title, weight in columns]
        shared = [pdf.epw * weight / sum(weights) for weight in weights]
        if sum(longest) > pdf.epw:
            return shared  # a word wider than the page allows: cut it (_wrap)
        # Columns whose word needs more than their share get it; the rest share the
        # remainder by weight, repeated until every column holds its longest word.
        fixed: dict[int, float] = {}
        while True:
            free = pdf.epw - sum(fixed.values())
            open_weight = sum(w for i, w in enumerate(weights) if i not in fixed)
            widths = [
                fixed[i] if i in fixed else free * w / open_weight for i, w in enumerate(weights)
            ]
            short = [i for i, w in enumerate(widths) if i not in fixed and w < longest[i]]
            if not short:
                return widths
            for i in short:
                fixed[i] = longest[i]

    def draw(self, rows: list[list[str]]) -> None:
        self._row(self.titles, heading=True)
        for values in rows:
            self._row(values)
        self.pdf.ln(1)

    def _row(self, values: list[str], *, heading: bool = False) -> None:
        pdf = self.pdf
        pdf.set_font(SANS, style="B" if heading else "", size=self.FONT_SIZE)
        cells = [self._lines(column, value, heading) for column, value in enumerate(values)]
        height = max(len(lines) for lines in cells) * self.LINE + self.PAD
        if not heading and pdf.will_page_break(height):
            pdf.add_page()
            self._row(self.titles, heading=True)
            pdf.set_font(SANS, size=self.FONT_SIZE)
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
            lines = self.wrapped[key] = self._wrap(value, self.widths[column] - 2 * self.PAD)
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
