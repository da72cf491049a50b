"""Application tags sit above referrals and below messaging (DESIGN.md, Layout): referrals
never imports them, and they import neither referrals nor anything above them."""

from __future__ import annotations

from pathlib import Path

from tests.audit.test_layering import ROOT, imported_modules


def offending(app: str, forbidden: tuple[str, ...]) -> set[str]:
    sources = sorted((ROOT / app).rglob("*.py"))
    assert len(sources) > 5
    return {
        f"{path.relative_to(ROOT)}: {module}"
        for path in sources
        for module in imported_modules(path)
        if module.split(".")[0] in forbidden or module.startswith("audit.console")
    }


def test_referrals_import_no_application_tags() -> None:
    assert not offending("referrals", ("applications", "messaging"))


def test_application_tags_import_no_referrals_and_nothing_above() -> None:
    assert not offending("applications", ("referrals", "messaging"))


def test_the_tags_templates_live_in_their_app() -> None:
    assert not list(Path(ROOT / "referrals" / "templates").rglob("tag_*.html"))


def test_application_templates_include_nothing_of_referrals() -> None:
    templates = sorted((ROOT / "applications" / "templates").rglob("*.html"))
    assert templates
    assert not [path.name for path in templates if '"referrals/' in path.read_text()]
