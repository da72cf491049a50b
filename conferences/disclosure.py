"""Statistical disclosure control for the Strukturkonferenz report: no cell of fewer than
MINIMUM families is shown, and no hidden cell can be worked out from the others and the
totals.

The rules follow the German statistical offices' practice (Geheimhaltung): a cell with 1 to
MINIMUM - 1 cases is suppressed (primary suppression; an empty cell, 0, is shown as "–", as
in official tables); then further cells are suppressed (secondary, complementary
suppression) until no suppressed value follows from the published ones.

A table here is additive: R x C cells, each row's total, each column's total and the grand
total, all published unless suppressed. Seen as a graph with a node per line (each row,
the totals row; each column, the totals column) and an edge per entry (a cell joins its row
and its column; a row's total joins that row and the totals column; the grand total joins
the two totals lines), every line says that its entries add up. A suppressed entry's value
follows from the published ones exactly when its edge is a bridge of the graph of
suppressed entries: on a cycle, adding and taking one alternately keeps every line's sum,
so two tables fit what is published. The algorithm suppresses until no suppressed entry
is a bridge; tests/conferences/test_disclosure.py checks the result by linear algebra
(rational elimination), not by this argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MINIMUM = 5

Entry = tuple[int, int]  # (row, column); row R is the totals row, column C the totals column


@dataclass(frozen=True)
class Protected:
    """A table ready to publish: VALUES with the totals (row R, column C), and the entries
    that must not be shown."""

    values: tuple[tuple[int, ...], ...]
    hidden: frozenset[Entry]

    def shown(self, row: int, column: int) -> int | None:
        """The entry's value, or None where it is suppressed."""
        return None if (row, column) in self.hidden else self.values[row][column]


def with_totals(cells: Sequence[Sequence[int]], columns: int | None = None) -> list[list[int]]:
    """CELLS with each row's total appended and the totals row below (COLUMNS: how many
    columns, for a table without rows)."""
    columns = len(cells[0]) if cells else (columns or 0)
    rows = [[*row, sum(row)] for row in cells]
    rows.append([sum(row[c] for row in rows) for c in range(columns + 1)])
    return rows


def _is_bridge(edge: Entry, hidden: set[Entry], rows: int, columns: int) -> bool:
    """Whether EDGE is a bridge in the graph of HIDDEN entries (nodes: rows 0..rows-1 as
    ("r", i), columns as ("c", j); the totals row is row R, the totals column C)."""
    start, goal = ("r", edge[0]), ("c", edge[1])
    others = hidden - {edge}
    seen = {start}
    frontier = [start]
    while frontier:
        kind, index = frontier.pop()
        for row, column in others:
            if kind == "r" and row == index:
                neighbour = ("c", column)
            elif kind == "c" and column == index:
                neighbour = ("r", row)
            else:
                continue
            if neighbour == goal:
                return False
            if neighbour not in seen:
                seen.add(neighbour)
                frontier.append(neighbour)
    return True


def _cycle_for(edge: Entry, values: list[list[int]], hidden: set[Entry]) -> set[Entry]:
    """The entries to hide so that EDGE lies on a cycle of four (the hypercube method of
    the statistical offices, in two dimensions): another row and another column whose
    three corners with EDGE cost least to hide, counting a shown value as itself and an
    empty entry as 1 (a "–" turned "•" says less too)."""
    row, column = edge
    height, width = len(values), len(values[0])
    best: tuple[float, int, set[Entry]] | None = None
    for other_row in range(height):
        for other_column in range(width):
            if other_row == row or other_column == column:
                continue
            corners = {(row, other_column), (other_row, other_column), (other_row, column)}
            added = corners - hidden
            cost = sum(values[r][c] or 1 for r, c in added)
            if best is None or (cost, len(added)) < best[:2]:
                best = (cost, len(added), added)
    return best[2] if best is not None else set()


def protect(
    cells: Sequence[Sequence[int]], *, columns: int | None = None, minimum: int = MINIMUM
) -> Protected:
    """CELLS (families per cell, rows x columns) with their totals, and the entries to hide:
    every entry of 1 to MINIMUM - 1, and then as few more as this simple rule finds (the
    cheapest four corners at a time) until no hidden entry follows from the shown ones."""
    values = with_totals(cells, columns)
    hidden = {
        (r, c)
        for r, line in enumerate(values)
        for c, value in enumerate(line)
        if 0 < value < minimum
    }
    height, width = len(values), len(values[0])
    while True:
        bridges = sorted(e for e in hidden if _is_bridge(e, hidden, height, width))
        if not bridges:
            break
        added = _cycle_for(bridges[0], values, hidden)
        if not added:  # a table of one line: nothing can stand beside the entry
            hidden = {(r, c) for r in range(height) for c in range(width)}
            break
        hidden |= added
    return Protected(tuple(tuple(line) for line in values), frozenset(hidden))
