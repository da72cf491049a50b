"""`{{ nav_counts|count_of:link.badge }}`: a badge's number by its name."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def count_of(counts: dict[str, int] | None, name: str) -> int:
    return (counts or {}).get(name, 0)
