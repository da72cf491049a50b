"""Fonts and text for the PDFs drawn with fpdf2 (the tag stamp, the Art. 15 report).

The PDFs embed DejaVu (TrueType, Debian's fonts-dejavu-core, found in
DIENSTWEG_PDF_FONT_DIR): it covers Turkish, Polish, Arabic-script names in Latin
transcription and every letter of the languages spoken in the network, so a name prints as
written. fpdf2 embeds only the glyphs used. `latin1` remains for the PDF metadata
fields some viewers show in a core encoding."""

from __future__ import annotations

import logging
import unicodedata
from pathlib import Path

from django.conf import settings
from fpdf import FPDF

SANS, MONO = "DejaVuSans", "DejaVuSansMono"  # MONO in bold only: the stamp's code
FONT_FILES = {
    (SANS, ""): "DejaVuSans.ttf",
    (SANS, "B"): "DejaVuSans-Bold.ttf",
    (MONO, "B"): "DejaVuSansMono-Bold.ttf",
}


# fpdf2 subsets the fonts with fontTools, which reports every glyph at INFO: not a log line
# worth having per PDF.
logging.getLogger("fontTools").setLevel(logging.WARNING)


def font_path(file_name: str) -> Path:
    return Path(settings.DIENSTWEG_PDF_FONT_DIR) / file_name


def add_fonts(pdf: FPDF) -> None:
    """Register the Unicode fonts on PDF as SANS and MONO (regular and bold)."""
    for (family, style), file_name in FONT_FILES.items():
        pdf.add_font(family, style, str(font_path(file_name)))


# Letters NFKD cannot take apart, and typography the core fonts lack.
_REPLACEMENTS = {
    "ı": "i", "İ": "I", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ħ": "h", "Ħ": "H",
    "œ": "oe", "Œ": "OE", "ŋ": "ng", "–": "-", "—": "-", "‚": ",", "„": '"', "“": '"',
    "”": '"', "‘": "'", "’": "'", "…": "...", "€": "EUR", "•": "-",
}  # fmt: skip


def latin1(text: str) -> str:
    """Return `text` with every character outside latin-1 transliterated, or "?" as last resort."""
    out = []
    for char in text:
        if ord(char) < 256:
            out.append(char)
        elif char in _REPLACEMENTS:
            out.append(_REPLACEMENTS[char])
        else:
            base = "".join(
                c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
            )
            out.append(base if base and all(ord(c) < 256 for c in base) else "?")
    return "".join(out)
