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
   requested, consents ending): --warmup untimed, then --requests timed requests each;
   the same for the socket's counts (dienstweg.worklist.counts_of, called directly).
3. Prints p50/p95/p99 in ms with the number of queries of one request, and writes
   bench/results/work_queue.json.

Measurements run with DEBUG off (DIENSTWEG_DEBUG=true only supplies development secrets).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "work_queue.json"
TARGET_P95_MS = 25.0


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

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from dienstweg import worklist  # noqa: E402
from dienstweg.models import User  # noqa: E402
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


def start_page(user: User) -> Any:
    client = step2.verified_client(user)

    def request() -> None:
        response = client.get("/")
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
    with step2.phase("start page and counts"):
        for label, user in users.items():
            counts = worklist.counts_of(user)
            print(f"  {label}: {user.email}, queue {counts['queue']}")
            results["users"][label] = {
                "email": user.email,
                "queue": counts["queue"],
                "start_page_ms": measure(f"start page, {label}", start_page(user)),
                "counts_ms": measure(
                    f"socket counts, {label}", lambda user=user: worklist.counts_of(user)
                ),
            }
    results["target_p95_ms"] = TARGET_P95_MS
    results["arguments"] = {key: str(value) for key, value in vars(ARGS).items()}
    results["load_average"] = step2.LOAD
    results["calibration_ms"] = step2.calibration_ms()
    ARGS.output.parent.mkdir(parents=True, exist_ok=True)
    ARGS.output.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
    met = all(row["start_page_ms"]["p95"] <= TARGET_P95_MS for row in results["users"].values())
    print(f"\ntarget p95 <= {TARGET_P95_MS} ms: {'met' if met else 'NOT met'}")
    print(f"written to {ARGS.output}")


if __name__ == "__main__":
    main()
