"""The Strukturkonferenz report's one write: its use, recorded in the trail."""

from __future__ import annotations

from django.db import transaction

from audit.trail import record
from conferences.report import StructureReport
from dienstweg.models import User


def record_report_use(report: StructureReport, *, action: str, by: User, fmt: str = "html") -> None:
    """Record that BY viewed or exported the Strukturkonferenz report (no family: it names
    none): the period, the scope and the format."""
    with transaction.atomic():
        record(
            by,
            action,
            purpose="Strukturkonferenz",
            details={
                "start": report.period.start.isoformat(),
                "end": report.period.end.isoformat(),
                "network": report.scope.network,
                "agencies": len(report.scope.agency_ids or ()),
                "format": fmt,
            },
        )
