"""Does a text name the family? The check before an anonymous case consultation leaves the
project: the family's own record, decrypted in memory for the check and never stored or
logged, against the text the coach wrote. A pure core (`found_in`) on plain values, and
`Identifiers.of(family)` that reads them.

Matched, whatever the case, the accents (Yılmaz = Yilmaz = YILMAZ) and the spacing:
- every household member's first and last name as a whole word (a name of one letter is
  left out: it would match every "a");
- every birth date as people write it: 12.04.1988, 12.4.88, 1988-04-12, 12. April 1988;
- the address's street with its number (Horster Straße 30, Horster Str. 30) and its
  postcode;
- the phone number, by its digits (02043 123456 = 02043/123456 = +49 2043 123456).
The kinds found are named to the coach, never the values (she knows them; a log must not).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.utils.translation import gettext_noop

from dienstweg.models import Family

# The kinds, named in the refusal (translated where it is written).
NAME = gettext_noop("Name aus dem Haushalt")
BIRTH_DATE = gettext_noop("Geburtsdatum")
ADDRESS = gettext_noop("Anschrift")
PHONE = gettext_noop("Telefonnummer")
# Each kind as the trail names it (a refusal records which kinds, never the values).
CODES = {NAME: "name", BIRTH_DATE: "birth_date", ADDRESS: "address", PHONE: "phone"}

_MONTHS = [
    "januar", "februar", "marz", "april", "mai", "juni",
    "juli", "august", "september", "oktober", "november", "dezember",
]  # fmt: skip
_FOLD = {"ı": "i", "ł": "l", "ø": "o", "đ": "d", "ß": "ss", "æ": "ae", "œ": "oe"}


def folded(text: str) -> str:
    """TEXT in lower case without accents, ß as ss, dots and runs of spaces as one space."""
    text = "".join(_FOLD.get(char, char) for char in text.casefold())
    text = "".join(
        char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char)
    )
    return re.sub(r"\s+", " ", text)


def _word(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(folded(value))}(?!\w)")


def date_forms(born: date) -> list[re.Pattern[str]]:
    """The ways a birth date is written, as patterns over folded text."""
    day, month, year = born.day, born.month, born.year
    short = year % 100
    numeric = rf"0?{day}\s?\.\s?0?{month}\s?\.\s?(?:{year}|{short:02d})(?!\d)"
    return [
        re.compile(rf"(?<!\d){numeric}"),
        re.compile(rf"(?<!\d){year}-{month:02d}-{day:02d}(?!\d)"),
        re.compile(rf"(?<!\d)0?{day}\.? ?{_MONTHS[month - 1]}\w* ?(?:{year}|{short:02d})(?!\d)"),
    ]


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@dataclass(frozen=True)
class Identifiers:
    """What would identify the family, as plain values (read from its record)."""

    names: tuple[str, ...]
    birth_dates: tuple[date, ...]
    address: str
    phone: str

    @classmethod
    def of(cls, family: Family) -> Identifiers:
        names: list[str] = []
        dates: list[date] = []
        for member in family.members.all():
            names += [member.decrypt_field("first_name"), member.decrypt_field("last_name")]
            dates.append(member.birth_date)
        return cls(
            tuple(names),
            tuple(dates),
            family.decrypt_field("address"),
            family.decrypt_field("phone"),
        )


def _street_patterns(address: str) -> list[re.Pattern[str]]:
    """The street with its number ("Horster Straße 30", also "Horster Str. 30" and
    "Horster Strasse 30") and the postcode, from an address written "Street 30, 45964 Town"."""
    patterns = []
    street = folded(address.split(",")[0]).strip()
    match = re.fullmatch(r"(.+?)\s*(\d+\s*[a-z]?)", street)
    if match:
        name, number = match.group(1).strip(), match.group(2).replace(" ", "")
        suffix = re.search(r"(strasse|str\.?)$", name)
        stem = (
            re.escape(name[: suffix.start()]) + r"(?:strasse|str\.?)" if suffix else re.escape(name)
        )
        patterns.append(re.compile(rf"(?<!\w){stem}\s*{re.escape(number)}(?!\d)"))
    for postcode in re.findall(r"(?<!\d)\d{5}(?!\d)", address):
        patterns.append(re.compile(rf"(?<!\d){postcode}(?!\d)"))
    return patterns


def found_in(text: str, identifiers: Identifiers) -> list[str]:
    """The kinds of identifying data TEXT contains (NAME, BIRTH_DATE, ADDRESS, PHONE), in
    that order; empty if none."""
    plain = folded(text)
    found = []
    if any(_word(name).search(plain) for name in identifiers.names if len(name.strip()) > 1):
        found.append(NAME)
    if any(p.search(plain) for born in identifiers.birth_dates for p in date_forms(born)):
        found.append(BIRTH_DATE)
    if identifiers.address.strip() and any(
        p.search(plain) for p in _street_patterns(identifiers.address)
    ):
        found.append(ADDRESS)
    phone = _digits(identifiers.phone).lstrip("0")
    if len(phone) >= 6 and _has_number(text, phone):
        found.append(PHONE)
    return found


def _has_number(text: str, wanted: str) -> bool:
    """Whether a number written in TEXT (digits with spaces, slashes, dashes, brackets, a
    +49 in front) ends with the digits WANTED (the number without its leading 0)."""
    for run in re.findall(r"\+?[\d][\d\s/\-().]{4,}\d", text):
        digits = _digits(run).lstrip("0")
        if digits.startswith("49") and digits[2:] == wanted:
            return True
        if digits == wanted or digits.endswith(wanted):
            return True
    return False


def kinds_text(kinds: Iterable[str]) -> str:
    return ", ".join(kinds)
