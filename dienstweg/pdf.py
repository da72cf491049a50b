"""Text for PDFs drawn with fpdf2's core fonts (the tag stamp, the Art. 15 report).

The core fonts cover latin-1 only; `latin1` transliterates everything else, so that a
Turkish or Polish name never stops a PDF from rendering."""

from __future__ import annotations

import unicodedata

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
