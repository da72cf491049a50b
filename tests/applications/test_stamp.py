"""The printable stamp for an application tag: a real one-page PDF with a vector QR code."""

from __future__ import annotations

import re
from dataclasses import replace

import segno
from django.utils import translation

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
)
# fpdf2 writes a filled rectangle as "x y w h re f" in points, y measured from the bottom.
FILLED_RECT = re.compile(rb"(-?[\d.]+) (-?[\d.]+) (-?[\d.]+) (-?[\d.]+) re f\b")


def content(data: StampData) -> str:
    """The uncompressed PDF as text; core fonts write latin-1 strings, parentheses escaped."""
    text = render_stamp(data, compress=False).decode("latin-1")
    return text.replace("\\(", "(").replace("\\)", ")")


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


def test_shows_code_project_contact_and_phone():
    with translation.override("de"):
        text = content(ANNA_STAMP)
    assert "(Auf kurzem Dienstweg) Tj" in text
    assert "7KQM-3XPA-94TD" in text
    assert "Familiencoaching Gladbeck (rebeq GmbH)" in text
    assert "Hochstraße 12" in text
    assert "Ansprechperson: Anna Albers" in text
    assert "02043 123456" in text
    assert "Bildung und Teilhabe" in text
    assert "dienstweg.example.de" in text


def test_metadata_names_the_code_but_no_author():
    text = content(ANNA_STAMP)
    assert "/Title (Dienstweg-Stempel 7KQM-3XPA-94TD)" in text
    assert "/Creator (Dienstweg)" in text
    assert "/Author" not in text


def test_transliterates_names_outside_latin1():
    text = content(replace(ANNA_STAMP, contact_name="Zoë Łukasiewicz-Yılmaz"))
    assert "Ansprechperson: Zoë Lukasiewicz-Yilmaz" in text


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
