"""Keyset and numbered pages: every row once, in order, forwards and back, whatever the
depth; ties on the timestamp and unreadable cursors handled."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dienstweg.actions import create_agency
from dienstweg.models import Family
from dienstweg.paging import keyset_page, numbered_page

SIZE = 4


@pytest.fixture
def families(db: None) -> list[Family]:
    """Eleven families, newest first; three share one registration moment, and page 1
    ends inside that tie."""
    owner = create_agency(name="Projekt", kind="project", rechtskreis="other")
    start = timezone.now()
    Family.objects.bulk_create(
        Family(reference=f"F-2026-{n:04d}", owner=owner, registered_at=start - timedelta(hours=n))
        for n in range(11)
    )
    tie = start - timedelta(hours=4)
    Family.objects.filter(reference__in=["F-2026-0003", "F-2026-0005"]).update(registered_at=tie)
    return list(Family.objects.order_by("-registered_at", "-pk"))


def page_at(query: str):
    request = RequestFactory().get("/familien/" + (f"?{query}" if query else ""))
    return keyset_page(Family.objects.all(), request, field="registered_at", size=SIZE)


def test_walking_forward_lists_every_row_once_in_order(families: list[Family]) -> None:
    pages, query = [], ""
    while True:
        page = page_at(query)
        pages.append(page)
        if not page.has_next:
            break
        query = page.next_query
    assert [page.number for page in pages] == [1, 2, 3]
    assert [row for page in pages for row in page.object_list] == families
    assert not pages[0].has_previous and pages[-1].has_previous


def test_walking_back_returns_the_same_pages(families: list[Family]) -> None:
    forward = [page_at("")]
    while forward[-1].has_next:
        forward.append(page_at(forward[-1].next_query))
    page = forward[-1]
    for expected in reversed(forward[:-1]):
        page = page_at(page.previous_query)
        assert (page.object_list, page.number) == (expected.object_list, expected.number)
    assert not page.has_previous


def test_keeps_the_filters_of_the_list(families: list[Family]) -> None:
    request = RequestFactory().get("/familien/?state=sent")
    page = keyset_page(Family.objects.all(), request, field="registered_at", size=SIZE)
    assert parse_qs(page.next_query)["state"] == ["sent"]


@pytest.mark.parametrize(
    "query",
    ["nach=gestern", "nach=2026-01-01T00:00:00~kein-uuid", "vor=~", "nach=2026-01-01~" + "0" * 32],
)
def test_an_unreadable_cursor_gives_the_first_page(families: list[Family], query: str) -> None:
    page = page_at(query + "&page=7")
    assert (page.object_list, page.number) == (families[:SIZE], 1)


def test_numbered_page_reads_the_rows_of_its_page(families: list[Family]) -> None:
    ordered = Family.objects.order_by("-registered_at", "-pk")
    request = RequestFactory().get("/familien/?page=3&q=x")
    page = numbered_page(ordered, request, SIZE)
    assert page.object_list == families[8:]
    assert not page.has_next and parse_qs(page.previous_query) == {"page": ["2"], "q": ["x"]}


def test_numbered_page_reads_its_rows_by_id_as_it_is_told(families: list[Family]) -> None:
    """The list (its rule) picks the page's ids; ROWS reads those rows, in the list's order,
    with its own joins and columns, and nothing beyond those ids."""
    ordered = Family.objects.filter(pk__in=[f.pk for f in families[:7]]).order_by(
        "-registered_at", "-pk"
    )
    request = RequestFactory().get("/familien/?page=2")
    with CaptureQueriesContext(connection) as captured:
        page = numbered_page(ordered, request, SIZE, rows=Family.objects.only("reference"))
    assert page.object_list == families[SIZE:7]
    assert [f.reference for f in page.object_list] == [f.reference for f in families[SIZE:7]]
    read = captured.captured_queries[-1]["sql"]
    assert "registered_at" not in read.split("WHERE")[0]  # ROWS' columns, not the list's
