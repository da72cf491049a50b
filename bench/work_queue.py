"""Step 9 benchmark: the start page's work queue at the step-3 volumes.

    DIENSTWEG_DEBUG=true DATABASE_URL=postgres://root@127.0.0.1:5432/dienstweg_bench_queue \
        .venv/bin/python bench/work_queue.py [--families 100000 --referrals 500000 \
        --tags 100000] [--reuse]

1. Unless --reuse: drops and creates the database named in DATABASE_URL (its name must
   contain "bench") and generates the step-3 network with bench/step3.py's own generator
   (50 agencies, staff, families with consents, referrals, 10 % of them to one busy
   Jobcenter, application tags).
2. Times, through django.test.Client in-process with a verified session, the start page
   (`/`) of the busy Jobcenter's lead (unassigned and overdue referrals, the office's open
   document requests, unread threads), of the caseworker of that Jobcenter with the most
   referrals assigned, and of a coach of the biggest project (answers, documents
   requested, consents ending): --warmup untimed, then --requests timed requests each,
   interleaved with as many requests of the plain page of the same user (below: the same
   view, template and sections, each section's rows read the plain Django way, without
   the gates); the same for the socket's counts (dienstweg.worklist.counts_of, called
   directly).
3. Prints p50/p95/p99 in ms with the number of queries of one request, the plain page's
   figures and the ratios (issue 16: at most 1.3), the calibration before and after
   (bench/step2.py), and writes bench/results/work_queue.json.

Measurements run with DEBUG off (DIENSTWEG_DEBUG=true only supplies development secrets).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import types
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "work_queue.json"
TARGET_P95_MS = 25.0
TARGET_RATIO = 1.3  # to a plain Django page of the same rows (issue 16)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--families", type=int, default=100_000)
    parser.add_argument("--referrals", type=int, default=500_000)
    parser.add_argument("--tags", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


ARGS = parse_args()

# step3 (and through it step2) read their command line when imported: hand them the volumes.
sys.path.insert(0, str(BENCH))
_argv, sys.argv = (
    sys.argv,
    [
        str(BENCH / "step3.py"),
        *("--families", str(ARGS.families), "--referrals", str(ARGS.referrals)),
        *("--tags", str(ARGS.tags), "--users", str(ARGS.users), "--seed", str(ARGS.seed)),
    ],
)
try:
    import step3
finally:
    sys.argv = _argv
step2 = step3.step2

from dataclasses import replace  # noqa: E402

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, QuerySet  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import clear_url_caches, include, path  # noqa: E402

from applications import queue as application_queue  # noqa: E402
from applications.models import ApplicationTag  # noqa: E402
from dienstweg import views, worklist  # noqa: E402
from dienstweg.access import CASE_ROLES, Reach, Role  # noqa: E402
from dienstweg.models import User  # noqa: E402
from referrals import queue as referral_queue  # noqa: E402
from referrals.actions.reminders import overdue_since  # noqa: E402
from referrals.models import Referral  # noqa: E402


def measure(name: str, request: Any) -> dict[str, Any]:
    samples = []
    for index in range(ARGS.warmup + ARGS.requests):
        started = time.perf_counter()
        request()
        elapsed = (time.perf_counter() - started) * 1000
        if index >= ARGS.warmup:
            samples.append(elapsed)
    with CaptureQueriesContext(connection) as captured:
        request()
    figures = {**step2.percentiles(samples), "queries": len(captured.captured_queries)}
    print(
        f"  {name:<40} p50 {figures['p50']:6.2f}  p95 {figures['p95']:6.2f}  "
        f"p99 {figures['p99']:6.2f} ms  {figures['queries']} queries",
        flush=True,
    )
    return figures


# The plain start page: the same view, template, sections and forms, with each section's
# rows read by their columns alone, without the gates (no object permission, no consent, no
# restriction; no compiled rule), the Django way: a sliced queryset and a capped count.
# Sections whose only rule is the user's own memberships (role proposals, her project's
# tags and consents, her threads) are the real ones.

State = Referral.State
ROW = ("id", "state", "sent_at", "family__reference")


def _plain_rows(rows: QuerySet[Any], other_side: str) -> tuple[list[tuple[Any, ...]], int]:
    shown = list(rows.values_list(*ROW, f"{other_side}__name")[: worklist.SHOWN])
    return shown, worklist.capped_count(rows)


def _plain_waiting(reach: Reach, **filters: Any) -> QuerySet[Referral]:
    led = reach.agencies_holding(Role.LEAD)
    return Referral.objects.filter(
        to_agency_id__in=led, state=State.SENT, sent_at__isnull=False, **filters
    ).order_by("sent_at", "pk")


def _plain_lead_section(reach: Reach, prefix: str, detail: str, **filters: Any) -> Any:
    """One of the lead's two sections, with the real assign form."""
    if not reach.agencies_holding(Role.LEAD):
        return None
    found = referral_queue._rows(
        _plain_rows(_plain_waiting(reach, **filters), "from_agency"),
        lambda referral: f"von {referral.agency}, {detail}",
        more_url="/eingang/",
        more_label="Alle",
    )
    return referral_queue._assignable(found, reach, prefix=prefix)


def plain_unassigned(user: User, reach: Reach) -> Any:
    return _plain_lead_section(
        reach, "unassigned", "noch niemandem zugewiesen", assignee__isnull=True
    )


def plain_overdue(user: User, reach: Reach) -> Any:
    return _plain_lead_section(reach, "overdue", "ohne Antwort", sent_at__lt=overdue_since())


def _plain_referrals(
    reach: Reach, role: str, other_side: str, order: tuple[str, ...], **filters: Any
) -> Any:
    """A section of ROLE: the referrals of the user's agencies (FILTERS) in ORDER."""
    if not reach.agencies_holding(role):
        return None
    side = "to_agency" if other_side == "from_agency" else "from_agency"
    rows = Referral.objects.filter(**{f"{side}_id__in": reach.agency_ids}, **filters)
    rows = rows.order_by(*order)
    return referral_queue._rows(
        _plain_rows(rows, other_side), lambda referral: f"von {referral.agency}"
    )


def plain_assigned(user: User, reach: Reach) -> Any:
    return _plain_referrals(
        reach,
        Role.CASEWORKER,
        "from_agency",
        ("-state", "sent_at", "pk"),
        assignee=user,
        state__in=[State.SENT, State.ACCEPTED],
        sent_at__isnull=False,
    )


def plain_answers(user: User, reach: Reach) -> Any:
    return _plain_referrals(
        reach,
        Role.COACH,
        "to_agency",
        ("-answered_at", "-pk"),
        created_by=user,
        state__in=[State.ACCEPTED, State.DECLINED],
        answered_at__gte=referral_queue._answers_since(),
    )


def plain_office_requests(user: User, reach: Reach) -> Any:
    offices = sorted({agency for agency, role in reach.roles if role in CASE_ROLES})
    if not offices:
        return None
    tags = ApplicationTag.objects.filter(
        processing_agency_id__in=offices, state=ApplicationTag.State.DOCUMENTS_REQUESTED
    ).order_by("updated_at", "pk")
    return worklist.QueueRows(
        [
            worklist.QueueItem(
                label=code,
                url=f"/antraege/{code}/",
                detail=f"{ApplicationTag.Kind(kind).label}, Unterlagen nachgefordert",
            )
            for code, kind in tags.values_list("code", "kind")[: worklist.SHOWN]
        ],
        worklist.capped_count(tags),
    )


PLAIN_ITEMS = {
    referral_queue.UNASSIGNED.key: plain_unassigned,
    referral_queue.OVERDUE.key: plain_overdue,
    referral_queue.ASSIGNED.key: plain_assigned,
    referral_queue.ANSWERS.key: plain_answers,
    application_queue.OFFICE_REQUESTS.key: plain_office_requests,
}


def plain_home(request: HttpRequest) -> HttpResponse:
    real = list(worklist.queue_sources)
    worklist.queue_sources[:] = [
        replace(source, items=PLAIN_ITEMS.get(source.key, source.items)) for source in real
    ]
    try:
        return views.home(request)
    finally:
        worklist.queue_sources[:] = real


# Served through the same middleware as the real page (as bench/step3.py's plain pages).
URLCONF = types.ModuleType("bench_work_queue_urls")
URLCONF.urlpatterns = [  # type: ignore[attr-defined]
    path("bench/plain/start/", plain_home),
    path("", include(settings.ROOT_URLCONF)),
]
sys.modules[URLCONF.__name__] = URLCONF


def measure_pair(name: str, real: Any, plain: Any) -> dict[str, Any]:
    """The real and the plain page, interleaved request by request (which goes first
    alternates), so that drift and warm caches fall on both alike; with the ratios."""
    samples: dict[str, list[float]] = {"real": [], "plain": []}
    for index in range(ARGS.warmup + ARGS.requests):
        pair = [("real", real), ("plain", plain)]
        for key, request in pair if index % 2 else pair[::-1]:
            started = time.perf_counter()
            request()
            if index >= ARGS.warmup:
                samples[key].append((time.perf_counter() - started) * 1000)
    figures: dict[str, Any] = {key: step2.percentiles(values) for key, values in samples.items()}
    for key, request in (("real", real), ("plain", plain)):
        with CaptureQueriesContext(connection) as captured:
            request()
        figures[key]["queries"] = len(captured.captured_queries)
    for cut in ("p50", "p95"):
        figures[f"ratio_{cut}"] = round(figures["real"][cut] / figures["plain"][cut], 3)
    print(
        f"  {name:<40} p50 {figures['real']['p50']:6.2f}  p95 {figures['real']['p95']:6.2f}  "
        f"p99 {figures['real']['p99']:6.2f} ms  {figures['real']['queries']} queries;  plain "
        f"p50 {figures['plain']['p50']:6.2f}  p95 {figures['plain']['p95']:6.2f} ms  "
        f"{figures['plain']['queries']} queries;  ratio p50 {figures['ratio_p50']:.2f}  "
        f"p95 {figures['ratio_p95']:.2f}",
        flush=True,
    )
    return figures


def start_page(user: User, url: str = "/") -> Any:
    client = step2.verified_client(user)

    def request() -> None:
        response = client.get(url)
        assert response.status_code == 200, response.status_code

    return request


def main() -> None:
    rng = random.Random(ARGS.seed)
    generated: dict[str, Any] = {"reused": ARGS.reuse}
    if not ARGS.reuse:
        with step2.phase("reset and migrate"):
            step2.reset_database()
            call_command("migrate", verbosity=0)
        with step2.phase("generate the step-3 network"):
            network = step3.create_network(rng, ARGS.users)
            generated.update(step3.generate(rng, network))
        with step2.phase("vacuum analyze"):
            step2.vacuum_analyze()
    lead = User.objects.get(email=step3.BENCH_LEAD)
    coach = User.objects.get(email=step3.BENCH_COACH)
    busy = lead.memberships.get().agency
    caseworker = User.objects.get(
        pk=Referral.objects.filter(to_agency=busy, assignee__memberships__role="caseworker")
        .values("assignee")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .values("assignee")[:1]
    )
    users = {"lead (busy Jobcenter)": lead, "caseworker (busy Jobcenter)": caseworker}
    users["coach (biggest project)"] = coach
    results: dict[str, Any] = {"generated": generated, "users": {}}
    settings.ROOT_URLCONF = URLCONF.__name__
    clear_url_caches()
    results["calibration_before_ms"] = step2.calibration_ms()
    with step2.phase("start page and counts"):
        for label, user in users.items():
            counts = worklist.counts_of(user)
            print(f"  {label}: {user.email}, queue {counts['queue']}")
            results["users"][label] = {
                "email": user.email,
                "queue": counts["queue"],
                "start_page_ms": measure_pair(
                    f"start page, {label}",
                    start_page(user),
                    start_page(user, "/bench/plain/start/"),
                ),
                "counts_ms": measure(
                    f"socket counts, {label}", lambda user=user: worklist.counts_of(user)
                ),
            }
    results["target_p95_ms"] = TARGET_P95_MS
    results["arguments"] = {key: str(value) for key, value in vars(ARGS).items()}
    results["load_average"] = step2.LOAD
    results["calibration_after_ms"] = step2.calibration_ms()
    ARGS.output.parent.mkdir(parents=True, exist_ok=True)
    ARGS.output.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
    met = all(
        row["start_page_ms"]["real"]["p95"] <= TARGET_P95_MS for row in results["users"].values()
    )
    print(f"\ntarget p95 <= {TARGET_P95_MS} ms: {'met' if met else 'NOT met'}")
    ratio = max(row["start_page_ms"]["ratio_p95"] for row in results["users"].values())
    print(f"highest ratio to the plain page at p95: {ratio:.2f} (issue 16: <= {TARGET_RATIO})")
    print(f"written to {ARGS.output}")


if __name__ == "__main__":
    main()
