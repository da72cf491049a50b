"""What prepared statements save the pages that read by id (dienstweg.compiled.planned_once):
each page with its queries prepared, interleaved request by request with the same page on
Django's own client-binding cursor (the order alternates), on the step-11 database.

    DIENSTWEG_DEBUG=true DATABASE_URL=postgres://root@127.0.0.1:5432/dienstweg_bench11 \
        .venv/bin/python bench/planned.py [--requests 200 --warmup 30]

Needs the database bench/step11.py built (it is not changed here, but for the audit
events of the pages' views). Pages, through django.test.Client in-process with verified
sessions and DEBUG off: the conference page of 30 conferences of the bench coach and of 30
of the busy Jobcenter's invitee (as bench/step11.py picks them), 20 referral pages, 20
family pages and 20 tag pages of the coach's project, and the coach's longest thread.
Prints p50/p95 in ms for both and writes bench/results/planned.json with the calibration
before and after (bench/step2.py).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--requests", type=int, default=200)
parser.add_argument("--warmup", type=int, default=30)
parser.add_argument("--output", type=Path, default=BENCH / "results" / "planned.json")
ARGS = parser.parse_args()

# step11 reads its command line on import (and sets Django up through step3 and step2).
sys.path.insert(0, str(BENCH))
_argv, sys.argv = sys.argv, [str(BENCH / "step11.py"), "--reuse", "--requests", "2"]
try:
    import step11
finally:
    sys.argv = _argv

from django.db.backends.postgresql.base import Cursor  # noqa: E402
from django.db.models import Q  # noqa: E402
from django.urls import reverse  # noqa: E402

import dienstweg.compiled  # noqa: E402
from applications.models import ApplicationTag  # noqa: E402
from dienstweg.models import Agency, Family, User  # noqa: E402
from messaging.models import Thread  # noqa: E402
from referrals.models import Referral  # noqa: E402

step2, step3 = step11.step2, step11.step3
PLANNED = dienstweg.compiled._PlanningCursor


def pages() -> dict[str, tuple[User, list[str]]]:
    coach = User.objects.get(email=step3.BENCH_COACH)
    lead = User.objects.get(email=step3.BENCH_LEAD)
    invitee = step11.busiest_invitee(Agency.objects.get(memberships__user=lead))
    rng = random.Random(11)

    def conferences(visible: Q) -> list[str]:
        chosen = step11.pick_conferences(rng, visible, 30)
        return [reverse("conference_detail", args=[pk]) for pk, _number in chosen]

    def first(name: str, keys: Iterable[Any]) -> list[str]:
        return [reverse(name, args=[key]) for key in list(keys)[:20]]

    mine = Q(from_agency__memberships__user=coach)
    referrals = Referral.objects.filter(mine).order_by("pk").values_list("pk", flat=True)
    families = Family.objects.filter(owner__memberships__user=coach).order_by("pk")
    tags = ApplicationTag.objects.filter(project__memberships__user=coach).order_by("pk")
    thread = Thread.objects.filter(participants__user=coach).order_by("-last_seq").first()
    assert thread is not None, "the coach has no thread"
    return {
        "conference page, convening coach": (coach, conferences(Q(convened_by=coach))),
        "conference page, invitee": (invitee, conferences(step11.invited_to(invitee))),
        "referral page": (coach, first("referral_detail", referrals)),
        "family page": (coach, first("family_detail", families.values_list("pk", flat=True))),
        "tag page": (coach, first("tag_detail", tags.values_list("code", flat=True))),
        f"thread page ({thread.last_seq} messages)": (
            coach,
            [reverse("thread_detail", args=[thread.pk])],
        ),
    }


def measure(user: User, urls: list[str]) -> dict[str, dict[str, float]]:
    client = step2.verified_client(user)
    times: dict[bool, list[float]] = {False: [], True: []}
    for index in range(ARGS.warmup + ARGS.requests):
        for planned in (False, True) if index % 2 else (True, False):
            # planned_once hands out this cursor: Django's own binds on the client.
            dienstweg.compiled._PlanningCursor = PLANNED if planned else Cursor
            started = time.perf_counter()
            response = client.get(urls[index % len(urls)])
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (urls[index % len(urls)], response.status_code)
            if index >= ARGS.warmup:
                times[planned].append(elapsed)
    dienstweg.compiled._PlanningCursor = PLANNED
    return {
        "planned" if planned else "client": step2.percentiles(values)
        for planned, values in times.items()
    }


def main() -> None:
    calibration = {"before": step2.calibration_ms()}
    results = {}
    for label, (user, urls) in pages().items():
        results[label] = measure(user, urls)
        client, planned = results[label]["client"], results[label]["planned"]
        print(
            f"{label:40} client p50 {client['p50']:6.1f} p95 {client['p95']:6.1f}   "
            f"planned p50 {planned['p50']:6.1f} p95 {planned['p95']:6.1f}   "
            f"ratio p50 {planned['p50'] / client['p50']:.2f} "
            f"p95 {planned['p95'] / client['p95']:.2f}"
        )
    calibration["after"] = step2.calibration_ms()
    print(f"calibration {calibration['before']:.1f} / {calibration['after']:.1f} ms")
    ARGS.output.parent.mkdir(parents=True, exist_ok=True)
    ARGS.output.write_text(
        json.dumps(
            {
                "pages_ms": results,
                "calibration_ms": calibration,
                "arguments": {key: str(value) for key, value in vars(ARGS).items()},
                "git": step11.git_state(),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written to {ARGS.output}")


if __name__ == "__main__":
    main()
