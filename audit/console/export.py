"""Exports of a filtered set of events, as CSV and JSON, streamed in chunks so that an
export of millions of events never sits in memory.

CSV cells that a spreadsheet would run as a formula (starting with = + - @, a tab or a
carriage return) are prefixed with an apostrophe (OWASP "CSV injection")."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from audit.models import AuditEvent

COLUMNS = (
    "id",
    "occurred_at",
    "actor_id",
    "actor_label",
    "agency_id",
    "action",
    "target_type",
    "target_id",
    "family_id",
    "family_ref",
    "purpose",
    "request_id",
    "ip",
    "details",
)
CHUNK = 2_000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def escape_cell(value: object) -> object:
    """VALUE, made safe for a spreadsheet when it is text."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(zip(COLUMNS, values, strict=True))
    row["occurred_at"] = timezone.localtime(row["occurred_at"]).isoformat()
    return row


def _ordered(events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent, tuple[Any, ...]]:
    return events.order_by("-occurred_at", "-id").values_list(*COLUMNS)


def _csv_line(cells: list[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()


class Format:
    """How one export format opens, writes an event and closes."""

    def __init__(self, name: str) -> None:
        self.name = name
        # A byte-order mark, so that spreadsheets read the CSV file as UTF-8.
        self.header = "\ufeff" + _csv_line(list(COLUMNS)) if name == "csv" else "[\n"
        self.footer = "" if name == "csv" else "\n]\n"

    def line(self, values: tuple[Any, ...], *, first: bool) -> str:
        row = _row(values)
        if self.name == "csv":
            row["details"] = json.dumps(row["details"], ensure_ascii=False, sort_keys=True)
            return _csv_line([escape_cell(row[column]) for column in COLUMNS])
        text = json.dumps(row, ensure_ascii=False, sort_keys=True)
        return text if first else ",\n" + text


def lines(events: QuerySet[AuditEvent], form: Format) -> Iterator[str]:
    """The export, piece by piece (for WSGI and the test client)."""
    yield form.header
    for number, values in enumerate(_ordered(events).iterator(chunk_size=CHUNK)):
        yield form.line(values, first=number == 0)
    yield form.footer


async def lines_async(events: QuerySet[AuditEvent], form: Format) -> AsyncIterator[str]:
    """The same under Daphne: a synchronous iterator would be read whole into memory
    before the first byte is sent."""
    yield form.header
    number = 0
    async for values in _ordered(events).aiterator(chunk_size=CHUNK):
        yield form.line(values, first=number == 0)
        number += 1
    yield form.footer
