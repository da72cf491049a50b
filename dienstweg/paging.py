"""Pages of long lists that cost the same deep down as on page 1, without counting the
whole list (a busy agency's inbox holds tens of thousands of referrals). The one shape of
pagination: every list page uses numbered_page or keyset_page, and the template
dienstweg/pagination.html."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db.models import Field, Q, QuerySet
from django.http import HttpRequest, QueryDict

MAX_PAGE_NUMBER = 10_000


def _number(request: HttpRequest) -> int:
    try:
        return max(1, min(int(request.GET.get("page", "1")), MAX_PAGE_NUMBER))
    except ValueError:
        return 1


@dataclass
class NumberedPage:
    """A page found by its number; with TOTAL and NUM_PAGES when the list was counted."""

    object_list: list[Any]
    number: int
    has_next: bool
    query: QueryDict  # the list's other parameters (filters)
    total: int | None = None
    num_pages: int | None = None

    def __iter__(self) -> Iterator[Any]:  # as Django's Page: {% for row in page %}
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next

    @property
    def next_query(self) -> str | None:
        return self._with_page(self.number + 1) if self.has_next else None

    @property
    def previous_query(self) -> str | None:
        return self._with_page(self.number - 1) if self.has_previous else None

    def _with_page(self, number: int) -> str:
        query = self.query.copy()
        query["page"] = str(number)
        return query.urlencode()


def numbered_page(
    queryset: QuerySet[Any],
    request: HttpRequest,
    size: int,
    *,
    counted: bool = False,
    number: int | None = None,
    rows: QuerySet[Any] | None = None,
) -> NumberedPage:
    """The page `?page=N`. Its ids come first, from the list's index alone, then only
    those rows are read: a deep page skips index entries, not table rows with their joins.

    COUNTED also counts the list (for "n found" and "page 2 of 5"; only for lists that stay
    small, such as one user's families or notifications); a number past the end then
    shows the last page. NUMBER, if given, instead of `?page=` (a search sent by POST).
    ROWS, if given, reads the rows of those ids (their joins, their columns) without the
    list's filters: the list's access rule has picked the ids in this request, and asking
    it again of 25 ids cost the inbox 2 ms (bench/step3.py)."""
    number = _number(request) if number is None else max(1, min(number, MAX_PAGE_NUMBER))
    total = num_pages = None
    if counted:
        total = queryset.count()
        num_pages = max(1, -(-total // size))
        number = min(number, num_pages)
    start = (number - 1) * size
    ids = list(queryset.values_list("pk", flat=True)[start : start + size + 1])
    found = (queryset if rows is None else rows).in_bulk(ids[:size])
    query = request.GET.copy()
    query.pop("page", None)
    return NumberedPage(
        [found[pk] for pk in ids[:size] if pk in found],
        number,
        len(ids) > size,
        query,
        total,
        num_pages,
    )


@dataclass
class KeysetPage:
    """A page of a list ordered newest first, found from the row next to it (`nach`: the
    page after that row, `vor`: the page before it), so any page reads only its own rows."""

    object_list: list[Any]
    number: int
    next_query: str | None
    previous_query: str | None

    @property
    def has_next(self) -> bool:
        return self.next_query is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_query is not None

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous


def _cursor(row: Any, field: str) -> str:
    return f"{getattr(row, field).isoformat()}~{row.pk}"


def _parse_cursor(text: str, pk_field: Field[Any, Any]) -> tuple[datetime, Any] | None:
    moment, _sep, pk = text.partition("~")
    try:
        at = datetime.fromisoformat(moment)
        # The model's own primary key type: a UUID for families, an integer for events.
        return (at, pk_field.to_python(pk)) if at.tzinfo is not None and pk else None
    except (ValueError, ValidationError):
        return None


def keyset_page(
    queryset: QuerySet[Any], request: HttpRequest, *, field: str, size: int
) -> KeysetPage:
    """The page of QUERYSET, ordered by (FIELD, id) newest first, that the URL asks for.
    FIELD must be a datetime that is never null in QUERYSET; an unreadable cursor gives
    the first page."""
    pk_field = cast("Field[Any, Any]", queryset.model._meta.pk)
    after = _parse_cursor(request.GET.get("nach", ""), pk_field)
    before = None if after else _parse_cursor(request.GET.get("vor", ""), pk_field)
    number = _number(request) if (after or before) else 1
    newest_first = queryset.order_by(f"-{field}", "-pk")
    if before is not None:
        at, pk = before
        # The `field >= at` bound lets the database start its index walk at the cursor;
        # the OR then drops the rows at the same moment that are not newer.
        rows = list(
            queryset.filter(**{f"{field}__gte": at})
            .filter(Q(**{f"{field}__gt": at}) | Q(**{field: at, "pk__gt": pk}))
            .order_by(field, "pk")[: size + 1]
        )
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        number = max(2, number - 1) if more_before else 1
        more_after = True
    else:
        if after is not None:
            at, pk = after
            newest_first = newest_first.filter(**{f"{field}__lte": at}).filter(
                Q(**{f"{field}__lt": at}) | Q(**{field: at, "pk__lt": pk})
            )
        rows = list(newest_first[: size + 1])
        more_after = len(rows) > size
        rows = rows[:size]
        more_before = after is not None
    return KeysetPage(
        rows,
        number,
        _query(request, "nach", _cursor(rows[-1], field), number + 1)
        if more_after and rows
        else None,
        _query(request, "vor", _cursor(rows[0], field), number - 1)
        if more_before and rows
        else None,
    )


def _query(request: HttpRequest, key: str, cursor: str, number: int) -> str:
    query: QueryDict = request.GET.copy()
    for name in ("nach", "vor", "page"):
        query.pop(name, None)
    query[key] = cursor
    query["page"] = str(number)
    return query.urlencode()
