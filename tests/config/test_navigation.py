"""The main navigation is wired in config/navigation.py: the core's templates name no page of
an app above the core, and the menu marks the page shown."""

from __future__ import annotations

import re
from pathlib import Path

from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from config.navigation import MAIN
from tests.conftest import Network, make_staff, verified_client

ROOT = Path(__file__).resolve().parents[2]
URL_TAG = re.compile(r"{%\s*url\s+['\"]([\w:]+)['\"]")


def views_by_name() -> dict[str, str]:
    """URL name (with namespace) → the module of its view."""
    found: dict[str, str] = {}

    def walk(patterns: list, namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, inner)
            elif isinstance(pattern, URLPattern) and pattern.name:
                view = getattr(pattern.callback, "__wrapped__", pattern.callback)
                found[f"{namespace}{pattern.name}"] = view.__module__

    walk(get_resolver().url_patterns, "")
    return found


def test_core_templates_link_only_to_core_pages() -> None:
    views = views_by_name()
    templates = sorted((ROOT / "dienstweg" / "templates").rglob("*.html"))
    assert templates
    linked = {
        (template.name, name)
        for template in templates
        for name in URL_TAG.findall(template.read_text())
    }
    assert linked
    above = {
        (template, name)
        for template, name in linked
        if not views[name].startswith(("dienstweg.", "django."))
    }
    assert not above


def test_every_entry_leads_to_a_page() -> None:
    views = views_by_name()
    assert all(entry.url_name in views for entry in MAIN)


def test_menu_marks_the_page_shown(anna_client: Client) -> None:
    page = anna_client.get("/familien/").content.decode()
    assert re.search(r'href="/familien/" aria-current="page"', page)
    assert page.count('aria-current="page"') == 1


def test_dpo_entry_only_for_the_dpo(network: Network) -> None:
    assert "/datenschutz/" not in verified_client(network.anna).get("/").content.decode()
    assert "/datenschutz/" in verified_client(network.dora).get("/").content.decode()
    vera = make_staff("vera@example.org", "Vera Vogt", network.jobcenter, "network_dpo")
    assert "/datenschutz/" in verified_client(vera).get("/").content.decode()


def test_menu_in_english(network: Network) -> None:
    client = verified_client(network.dora)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    page = client.get("/").content.decode()
    for label in ("Overview", "Families", "Referrals", "Applications", "Data protection"):
        assert f">{label}<" in page or f">{label} (" in page
