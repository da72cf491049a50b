"""The trail is the lowest floor: it imports nothing of ours, so every app can record
through it, and its events cannot depend on a domain table (STYLE.md). The DPO console
(audit/console/) is the top floor: it reads across the apps, and none of them imports it."""

from __future__ import annotations

import ast
from pathlib import Path

from audit.models import AuditEvent, AuditSeal

ROOT = Path(__file__).resolve().parents[2]
AUDIT = ROOT / "audit"
CONSOLE = AUDIT / "console"
OURS = ("dienstweg", "referrals", "applications", "messaging", "tests")


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules


def test_audit_imports_nothing_of_the_platform() -> None:
    sources = sorted(path for path in AUDIT.rglob("*.py") if CONSOLE not in path.parents)
    assert len(sources) > 10
    offending = {
        f"{path.relative_to(AUDIT.parent)}: {module}"
        for path in sources
        for module in imported_modules(path)
        if module.split(".")[0] in OURS
    }
    assert not offending


def test_audit_tables_hold_no_foreign_keys() -> None:
    for model in (AuditEvent, AuditSeal):
        assert not [field.name for field in model._meta.get_fields() if field.is_relation]


def test_no_app_below_imports_the_console() -> None:
    sources = [
        path
        for app in ("dienstweg", "referrals", "applications", "messaging")
        for path in sorted((ROOT / app).rglob("*.py"))
    ]
    assert len(sources) > 30
    offending = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in sources
        for module in imported_modules(path)
        if module.startswith("audit.console")
    }
    assert not offending
