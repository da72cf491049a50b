"""The printable stamp for an application tag: a real one-page PDF with a vector QR code."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import date

import segno
from django.utils import translation
from pypdf import PdfReader

from applications.stamp import StampData, render_stamp
from dienstweg.pdf import latin1

URL = "https://dienstweg.example.de/t/7KQM-3XPA-94TD"
ANNA_STAMP = StampData(
    project_name="Familiencoaching Gladbeck (rebeq GmbH)",
    project_address=["Hochstraße 12", "45964 Gladbeck"],
    project_phone="02043 123456",
    contact_name="Anna Albers",
    code="7KQM-3XPA-94TD",
    url=URL,
    kind_label="Bildung und Teilhabe",
    submitted_on=date(2026, 4, 12),
    contact_phone="02043 1234-17",
)
# fpdf2 writes a filled rectangle as "x y w h re f" in points, y measured from the bottom.
FILLED_RECT = re.compile(rb"(-?[\d.]+) (-?[\d.]+) (-?[\d.]+) (-?[\d.]+) re f\b")


def content(data: StampData) -> str:
    """The uncompressed PDF as text (for its metadata; the text itself is glyph ids)."""
    return render_stamp(data, compress=False).decode("latin-1")


def read(data: StampData) -> str:
    """The stamp's text as a PDF reader extracts it (through the fonts' Unicode maps)."""
    with translation.override("de"):
        pdf = render_stamp(data)
    return PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


def qr_modules(pdf: bytes) -> set[tuple[int, int]]:
    """(row, column) of every filled module, counted from the topmost and leftmost one."""
    rects = [tuple(float(n) for n in m.groups()) for m in FILLED_RECT.finditer(pdf)]
    size = rects[0][2]
    left = min(x for x, _, _, _ in rects)
    top = max(y for _, y, _, _ in rects)
    return {(round((top - y) / size), round((x - left) / size)) for x, y, _, _ in rects}


def dark_modules(url: str) -> set[tuple[int, int]]:
    matrix = segno.make(url, error="m").matrix
    return {(r, c) for r, row in enumerate(matrix) for c, dark in enumerate(row) if dark}


def test_renders_a_complete_pdf():
    pdf = render_stamp(ANNA_STAMP)
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")


def test_shows_code_project_contact_phones_and_submission_date():
    text = read(ANNA_STAMP)
    assert "Auf kurzem Dienstweg" in text
    assert "7KQM-3XPA-94TD" in text
    assert "Familiencoaching Gladbeck (rebeq GmbH)" in text
    assert "Hochstraße 12" in text
    assert "Ansprechperson: Anna Albers" in text
    assert "Tel. 02043 123456" in text  # the project's number
    assert "Durchwahl 02043 1234-17" in text  # the coach's, beside it
    assert "Bildung und Teilhabe" in text
    assert "Eingereicht am 12.04.2026" in text
    assert "dienstweg.example.de" in text


def test_metadata_names_the_code_but_no_author():
    text = content(ANNA_STAMP)
    assert "/Title (Dienstweg-Stempel 7KQM-3XPA-94TD)" in text
    assert "/Creator (Dienstweg)" in text
    assert "/Author" not in text


def test_names_print_as_written_in_an_embedded_unicode_font():
    stamp = replace(ANNA_STAMP, contact_name="Łukasz Yılmaz-Şahin")
    text = read(stamp)
    assert "Ansprechperson: Łukasz Yılmaz-Şahin" in text
    fonts = content(stamp)
    assert "/FontFile2" in fonts  # embedded TrueType, not a core font
    assert "DejaVuSans" in fonts and "Helvetica" not in fonts


def test_without_a_direct_number_or_date_those_lines_are_left_out():
    text = read(replace(ANNA_STAMP, contact_phone="", submitted_on=None))
    assert "Durchwahl" not in text
    assert "Eingereicht" not in text


def test_the_code_is_set_large():
    # The code's font size in the content stream: "/F? 28.00 Tf" before it is drawn.
    sizes = re.findall(rb"/F\d+ ([\d.]+) Tf", render_stamp(ANNA_STAMP, compress=False))
    assert max(float(size) for size in sizes) >= 28


def test_latin1_keeps_umlauts_and_falls_back_to_question_mark():
    assert latin1("Grüße – Şükrü, Jürgen") == "Grüße - Sükrü, Jürgen"
    assert latin1("Ayşe Öztürk") == "Ayse Öztürk"
    assert latin1("李") == "?"


def test_qr_is_drawn_module_by_module_from_the_url():
    pdf = render_stamp(ANNA_STAMP, compress=False)
    expected = dark_modules(URL)
    assert len(FILLED_RECT.findall(pdf)) == len(expected)
    assert qr_modules(pdf) == expected
    assert b"/XObject" not in pdf  # no embedded raster image


def test_another_url_gives_another_qr():
    other = replace(ANNA_STAMP, url="https://dienstweg.example.de/t/ZZZZ-ZZZZ-ZZZZ")
    pdf = render_stamp(other, compress=False)
    assert qr_modules(pdf) == dark_modules(other.url)
    assert qr_modules(pdf) != dark_modules(URL)


def test_missing_fonts_are_a_system_check_warning(settings, tmp_path):
    from dienstweg.checks import pdf_fonts_present

    assert pdf_fonts_present() == []
    settings.DIENSTWEG_PDF_FONT_DIR = tmp_path
    [error] = pdf_fonts_present()
    assert error.id == "dienstweg.W120"
    assert "fonts-dejavu-core" in error.hint
