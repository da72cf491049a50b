"""The start page's work queue and the navigation's live counts: what each app contributes,
registered in its AppConfig.ready() (the core imports none of them, STYLE.md).

- A `QueueSource` gives one section of the start page for a user: the rows waiting for her
  (each with the link to its action) and how many there are in all, or None when the
  section is not hers (her roles do not call for it). Each source reads through its app's
  access helpers, in a fixed number of queries whatever the number of rows, and shows
  metadata only (references, states, dates, agency names, the names of colleagues): the
  families' names and the content are read, audited, on the object's own page, as on
  every other list.
- A `Badge` counts something for the navigation (unread messages). The core counts unread
  notifications itself.

The sockets carry only the counts (`counts_of`), never content: an app that changes what a
user's counts would show calls `counts_changed([user ids])`; her sockets then ask for the
counts afresh (messaging/consumers.py)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, TypedDict, TypeVar

from django.db.models import Model, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.functional import Promise

from dienstweg import events
from dienstweg.access import Reach, reach_of
from dienstweg.compiled import CompiledQuery
from dienstweg.models import Notification, User

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class QueueItem:
    """One row of a section: LABEL (a family reference, a code, a name) links to URL, where
    the action is; DETAIL says what waits; DUE, if any, is shown as a date and the row
    marked when it has passed. A REFERENCE label is kept on one line; a person's name
    (with her agency) is not, or it would run off a phone's screen."""

    label: str
    url: str
    detail: str
    due: date | None = None
    overdue: bool = False
    reference: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueRows:
    """What a source found for the user: up to `SHOWN` rows and the total; MORE links to
    the full list (the inbox, the tag list), if there is one. EXTRA: what the source's own
    template needs beside the rows (a form to act on several of them at once)."""

    rows: Sequence[QueueItem]
    total: int
    more_url: str = ""
    more_label: str | Promise = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shown_total(self) -> str:
        return shown_count(self.total)


@dataclass(frozen=True)
class QueueSource:
    """A section of the start page. ORDER places it (lower first); ITEMS gives its rows for
    the user (her memberships read once for the page), or None when it is not hers. COUNT,
    if given, gives the total alone (for the live counts), cheaper than the rows."""

    key: str
    title: Promise
    order: int
    items: Callable[[User, Reach], QueueRows | None]
    count: Callable[[User, Reach], int | None] | None = None
    # The section's rows as a template of their own (the lead's role proposals, decided on
    # the spot; referrals a lead assigns several at once); by default a list of links.
    template: str = "dienstweg/queue_rows.html"


@dataclass(frozen=True)
class Section:
    source: QueueSource
    found: QueueRows


SHOWN = 10  # rows per section on the start page; the rest behind its list's link
# A section counts up to this many and then shows "99+": counting every one of 5,000 overdue
# referrals tests the visibility rule 5,000 times (bench/work_queue.py); the list behind the
# section's link has them all.
COUNTED_UP_TO = 99

queue_sources: list[QueueSource] = []


def capped_count(rows: QuerySet[Any]) -> int:
    """How many ROWS there are, up to COUNTED_UP_TO + 1 (which means: more)."""
    return rows.order_by()[: COUNTED_UP_TO + 1].count()


def _total(rows: QuerySet[Any]) -> RawSQL:
    """How many ROWS there are (capped_count), as a subquery PostgreSQL runs once beside the
    rows shown (an empty page costs the same one query)."""
    capped = rows.order_by().values("pk")[: COUNTED_UP_TO + 1]
    sql, params = capped.query.sql_with_params()
    # The ORM's own SQL, compiled from ROWS, with its values still parameters.
    return RawSQL(f"SELECT COUNT(*) FROM ({sql}) capped", params)  # noqa: S608, S611


def first_rows(rows: QuerySet[M]) -> tuple[list[M], int]:
    """The first SHOWN of ROWS and how many there are (capped_count), in one query whatever
    their number."""
    shown = list(rows.annotate(queue_total=_total(rows))[:SHOWN])
    return shown, (getattr(shown[0], "queue_total", 0) if shown else 0)


def _picked(rows: QuerySet[M]) -> QuerySet[M]:
    """The first SHOWN of ROWS, picked by id in a subquery that reads the index alone, then
    read with their columns and related rows (and the capped count of ROWS). Walked with
    the table's rows, the passed-over ones read too, the lead's sections took 2.8 ms to
    pick their rows instead of 0.8 (EXPLAIN ANALYZE, bench/work_queue.py's busy Jobcenter)."""
    picked = rows.values("pk")[:SHOWN]
    shown = rows.model._default_manager.filter(pk__in=picked).order_by(*rows.query.order_by)
    return shown.annotate(queue_total=_total(rows))


class CompiledSection:
    """first_rows for a section that every page asks, compiled once per shape
    (dienstweg/compiled.py): BUILD(**sentinels) gives the section's rows as a queryset, and
    rows(key, **values) its first SHOWN rows as tuples of FIELDS with how many there are.
    Building and compiling a section's access rule and reading its rows as model objects
    cost a start page 4-8 ms per section (bench/work_queue.py); the rule stays the one its
    app defines."""

    def __init__(
        self, build: Callable[..., QuerySet[Any]], fields: Sequence[str], **sentinels: Any
    ) -> None:
        self._query = CompiledQuery(
            lambda **values: _picked(build(**values)).values_list(*fields, "queue_total"),
            **sentinels,
        )
        # The total alone, for the socket's live counts: capped_count, compiled (only when
        # first asked).
        self._count = CompiledQuery(
            lambda **values: build(**values).order_by().values_list("pk")[: COUNTED_UP_TO + 1],
            **sentinels,
        )

    def rows(self, key: Hashable = None, **values: Any) -> tuple[list[tuple[Any, ...]], int]:
        # The build reads the cut and the cap too: a changed one compiles anew.
        found = self._query.rows((key, SHOWN, COUNTED_UP_TO), **values)
        return [row[:-1] for row in found], (found[0][-1] if found else 0)

    def count(self, key: Hashable = None, **values: Any) -> int:
        """How many rows there are, up to COUNTED_UP_TO + 1 (which means: more)."""
        return len(self._count.rows((key, COUNTED_UP_TO), **values))


def shown_count(number: int) -> str:
    """A section's number as the page shows it: "99+" past COUNTED_UP_TO."""
    return f"{COUNTED_UP_TO}+" if number > COUNTED_UP_TO else str(number)


def add_queue_source(source: QueueSource) -> None:
    if all(known.key != source.key for known in queue_sources):  # ready() may run twice
        queue_sources.append(source)
        queue_sources.sort(key=lambda known: known.order)


def work_queue(user: User, reach: Reach | None = None) -> list[Section]:
    """The sections of the user's start page that are hers and not empty, in order."""
    reach = reach or reach_of(user)
    sections = []
    for source in queue_sources:
        found = source.items(user, reach)
        if found is not None and found.total:
            sections.append(Section(source, found))
    return sections


@dataclass(frozen=True)
class Badge:
    """A number in the navigation, counted for the user by COUNT."""

    name: str
    # Counted on every page: one or two queries, and no reading of the user's memberships.
    count: Callable[[User], int]


badges: list[Badge] = []


def add_badge(badge: Badge) -> None:
    if all(known.name != badge.name for known in badges):
        badges.append(badge)


class Counts(TypedDict):
    """The event a socket sends its page: numbers only, never content."""

    type: Literal["counts"]
    notifications: int
    badges: dict[str, int]
    queue: dict[str, int]


def badge_counts(user: User) -> dict[str, int]:
    """The registered badges' numbers for the navigation of every page."""
    return {badge.name: badge.count(user) for badge in badges}


def counts_of(user: User, queue: bool = True) -> Counts:
    """Every count a page may show for the user: her unread notifications, each registered
    badge, and (with QUEUE) the number in each section of her work queue that is hers."""
    return Counts(
        type="counts",
        notifications=Notification.objects.filter(user=user, read_at__isnull=True).count(),
        badges=badge_counts(user),
        queue=queue_counts(user) if queue else {},
    )


def queue_counts(user: User) -> dict[str, int]:
    """The number in each section of the user's work queue that is hers."""
    reach = reach_of(user)
    numbers: dict[str, int] = {}
    for source in queue_sources:
        if source.count is not None:
            number = source.count(user, reach)
        else:
            found = source.items(user, reach)
            number = None if found is None else found.total
        if number is not None:
            numbers[source.key] = number
    return numbers


def counts_changed(user_ids: Iterable[int | None]) -> None:
    """After commit, each user's sockets recount (`counts.changed` carries no number and
    no content: the socket reads the counts for its own user)."""
    events.publish(user_ids, {"type": "counts.changed"})


def today() -> date:
    return timezone.localdate()
