"""Search tokens for finding a family by part of a name, a birth date or its reference,
with no plaintext in the database: keyed hashes of normalised name prefixes and date parts.

A token is HMAC-SHA-256 under a key of its own (derived from the blind-index secret), over
the owning project's id, the kind and the value, cut to 128 bits. The project's id in the
input makes the same name give different tokens in different projects, so the table links
no person across projects. Prefixes shorter than MIN_PREFIX are never stored: one or two
letters would be few enough to be told apart by how often they occur."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from django.conf import settings
from django.db.models import Q, QuerySet

from dienstweg.models import Family, FamilySearchToken

MIN_PREFIX = 3
# Longer prefixes add rows, not precision: a typed word is cut to this length too.
MAX_PREFIX = 16
MAX_TERMS = 6
TOKEN_HEX = 32  # 128 bits

# Letters that Unicode does not decompose into a base letter and a mark.
_FOLD = str.maketrans(
    {"ı": "i", "ß": "ss", "ø": "o", "ł": "l", "æ": "ae", "œ": "oe", "đ": "d", "ð": "d", "þ": "th"}
)
# German spelling without umlauts: "Müller" is also written "Mueller".
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})
_APOSTROPHES = re.compile(r"['’`´]")
_NOT_LETTERS = re.compile(r"[^a-z]+")


@lru_cache(maxsize=1)
def _key(secret: bytes) -> bytes:
    # Its own key, so that these tokens cannot be compared with the exact identity index.
    return hmac.new(secret, b"dienstweg family search tokens v1", hashlib.sha256).digest()


def token(owner_id: int, kind: str, value: str) -> str:
    message = f"{owner_id}|{kind}:{value}".encode()
    digest = hmac.new(_key(settings.VAULT_BLIND_INDEX_KEY), message, hashlib.sha256)
    return digest.hexdigest()[:TOKEN_HEX]


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def name_words(text: str) -> set[str]:
    """The words of a name in every spelling it is searched by, lower case a-z only:
    "Yılmaz" gives {"yilmaz"}, "Müller" {"muller", "mueller"}."""
    text = _APOSTROPHES.sub("", text.casefold())
    words: set[str] = set()
    for spelling in {text, text.translate(_UMLAUTS)}:
        words.update(word for word in _NOT_LETTERS.split(_fold(spelling)) if word)
    return words


def member_tokens(owner_id: int, first_name: str, last_name: str, birth_date: date) -> set[str]:
    """Every token under which one household member is found."""
    tokens = {
        token(owner_id, "date", birth_date.isoformat()),
        token(owner_id, "year", f"{birth_date:%Y}"),
        token(owner_id, "month", f"{birth_date:%Y-%m}"),
        token(owner_id, "day", f"{birth_date:%m-%d}"),
    }
    for word in name_words(f"{first_name} {last_name}"):
        for length in range(MIN_PREFIX, min(len(word), MAX_PREFIX) + 1):
            tokens.add(token(owner_id, "name", word[:length]))
    return tokens


@dataclass(frozen=True)
class Term:
    """One typed word: a family matches if one of its members has one of KEYS (kind,
    value), or if its reference contains REFERENCE."""

    keys: frozenset[tuple[str, str]] = frozenset()
    reference: str = ""

    def tokens(self, owner_ids: Iterable[int]) -> list[str]:
        return [token(owner, kind, value) for owner in owner_ids for kind, value in self.keys]


_GERMAN_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{2}|\d{4})")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_MONTH_YEAR = re.compile(r"(\d{1,2})[./](\d{4})")
_DAY_MONTH = re.compile(r"(\d{1,2})\.(\d{1,2})\.?")
_YEAR = re.compile(r"\d{4}")
_REFERENCE = re.compile(r"(?:[a-z]-?)?\d[\d-]*", re.IGNORECASE)


def _date_keys(year: int, month: int, day: int) -> frozenset[tuple[str, str]]:
    try:
        return frozenset({("date", date(year, month, day).isoformat())})
    except ValueError:  # 31.02.: a term that finds nothing, not one that is ignored
        return frozenset()


def _term(word: str) -> list[Term]:
    if match := _GERMAN_DATE.fullmatch(word):
        day, month, year = (int(part) for part in match.groups())
        if len(match.group(3)) == 2:  # 02.04.88: either century
            keys = _date_keys(1900 + year, month, day) | _date_keys(2000 + year, month, day)
            return [Term(keys)]
        return [Term(_date_keys(year, month, day))]
    if match := _ISO_DATE.fullmatch(word):
        year, month, day = (int(part) for part in match.groups())
        return [Term(_date_keys(year, month, day))]
    if match := _MONTH_YEAR.fullmatch(word):
        month, year = (int(part) for part in match.groups())
        month_valid = 1 <= month <= 12
        return [Term(frozenset({("month", f"{year:04d}-{month:02d}")} if month_valid else set()))]
    if match := _DAY_MONTH.fullmatch(word):
        day, month = (int(part) for part in match.groups())
        day_valid = bool(_date_keys(2000, month, day))  # a leap year: 29.02. is a birthday
        return [Term(frozenset({("day", f"{month:02d}-{day:02d}")} if day_valid else set()))]
    if _YEAR.fullmatch(word):  # a birth year, or part of a reference ("F-2026-…")
        return [Term(frozenset({("year", word)}), reference=word)]
    if _REFERENCE.fullmatch(word):
        return [Term(reference=word)] if len(word) >= 2 else []
    # A name: each of its words must match ("Meyer-Lüdenscheid" is two), in either spelling
    # ("Müller" as "muller" or "mueller"); words too short to have a token are left out.
    text = _APOSTROPHES.sub("", word.casefold())
    plain = _NOT_LETTERS.split(_fold(text))
    german = _NOT_LETTERS.split(_fold(text.translate(_UMLAUTS)))
    return [
        Term(frozenset(("name", spelling[:MAX_PREFIX]) for spelling in {one, other}))
        for one, other in zip(plain, german, strict=True)
        if len(one) >= MIN_PREFIX
    ]


def parse(text: str) -> list[Term]:
    """The terms of what a coach typed; all must match. Empty when nothing in it is long
    enough to search by (a name needs MIN_PREFIX letters)."""
    terms: list[Term] = []
    for word in text.replace(",", " ").split():
        terms.extend(_term(word))
    return terms[:MAX_TERMS]


def matching(
    families: QuerySet[Family], terms: list[Term], *, owner_ids: Iterable[int]
) -> QuerySet[Family]:
    """FAMILIES (those the user may see, of the projects OWNER_IDS) narrowed to those that
    match every term. The tokens are computed for OWNER_IDS only: another project's family
    has other tokens for the same name and cannot match."""
    owner_ids = sorted(owner_ids)
    for term in terms:
        # Driven from the token index: the families holding one of the term's tokens.
        condition = Q(
            pk__in=FamilySearchToken.objects.filter(token__in=term.tokens(owner_ids)).values(
                "family_id"
            )
        )
        if term.reference:
            condition |= Q(reference__icontains=term.reference)
        families = families.filter(condition)
    return families
