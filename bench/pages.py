"""Issue 16 benchmark: the pages a coach opens in a day that bench/step3.py and
bench/work_queue.py do not measure (the family list, a deep page of it, the family search,
the family page, the thread page and the tag page), each against a plain Django page of
the same rows without the gates, at the step-3 volumes.

    DIENSTWEG_DEBUG=true DATABASE_URL=postgres://root@127.0.0.1:5432/dienstweg_bench_queue \
        .venv/bin/python bench/pages.py [--requests 200 --warmup 20]

1. Needs the step-3 database (bench/work_queue.py or bench/step3.py builds it; the
   volumes must be the defaults). Adds once what the generator does not make, through the
   real actions: 40 families of the biggest project registered with names and search
   tokens (register_family), and a referral thread of its coach with 40 messages
   (open_referral_thread, post_message).
2. Times, through django.test.Client in-process with the coach's verified session, each
   page and its plain twin, interleaved request by request (which goes first alternates):
   --warmup untimed, then --requests timed. The plain twin is the same view, template and
   forms, served through the same middleware, with the gates swapped out while it runs:
   the object permission and consent rules read the rows by their ids and owner alone, and
   nothing is audited (`record_*`, the trail's `record`). Before timing, each real page's
   <main> is checked to be the plain one's (CSRF tokens aside).
3. Prints p50/p95/p99 in ms, the queries of one request, the ratios (issue 16: at most
   1.3 at p50 and p95, and p95 at most 25 ms), the calibration before and after
   (bench/step2.py), and writes bench/results/pages.json.

Measurements run with DEBUG off (DIENSTWEG_DEBUG=true only supplies development secrets).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import random
import re
import sys
import time
import types
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "pages.json"
TARGET_P95_MS = 25.0
TARGET_RATIO = 1.3
MARK = "bench-pages"  # the note of the families this benchmark registers


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--deep-page", type=int, default=180)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


ARGS = parse_args()

# step3 (and through it step2) read their command line when imported: the default volumes.
sys.path.insert(0, str(BENCH))
_argv, sys.argv = sys.argv, [str(BENCH / "step3.py")]
try:
    import step3
finally:
    sys.argv = _argv
step2 = step3.step2

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import clear_url_caches, include, path  # noqa: E402

import applications.views  # noqa: E402
import dienstweg.views  # noqa: E402
import messaging.actions  # noqa: E402
import messaging.views  # noqa: E402
from applications.models import ApplicationTag  # noqa: E402
from applications.sections import FAMILY_SECTION as TAGS_SECTION  # noqa: E402
from dienstweg import actions, hooks  # noqa: E402
from dienstweg.actions import MemberData  # noqa: E402
from dienstweg.hooks import FamilySection  # noqa: E402
from dienstweg.models import Agency, Family, FamilySearchToken, User  # noqa: E402
from messaging.access import thread_by_id  # noqa: E402
from messaging.models import Thread  # noqa: E402
from referrals.models import Referral  # noqa: E402
from referrals.sections import FAMILY_SECTION as REFERRALS_SECTION  # noqa: E402
from referrals.sections import Listed  # noqa: E402

FIRST = ["Ayşe", "Leyla", "Emre", "Anna", "Jonas", "Olena", "Łukasz", "Mia", "Yusuf", "Lea"]
LAST = ["Yılmaz", "Kowalski", "Schmidt", "Haddad", "Bondarenko", "Becker", "Demir", "Nowak"]

# 1. What the step-3 generator does not make.


def prepare(coach: User, project: Agency, rng: random.Random) -> Thread:
    """The named families and the coach's thread, made once (found again on --reuse)."""
    if not FamilySearchToken.objects.filter(family__owner=project).exists():
        for number in range(40):
            adult = MemberData(
                "adult", rng.choice(FIRST), rng.choice(LAST), date(1975 + number % 25, 4, 2)
            )
            child = MemberData(
                "child", rng.choice(FIRST), adult.last_name, date(2012 + number % 10, 9, 1)
            )
            actions.register_family(
                owner=project, members=[adult, child], address="", phone="", notes=MARK, by=coach
            )
    thread = Thread.objects.filter(referral__created_by=coach, last_seq__gte=40).first()
    if thread is not None:
        return thread
    today = date.today()
    candidates = Referral.objects.filter(
        created_by=coach,
        state__in=[Referral.State.SENT, Referral.State.ACCEPTED],
        access_ended_at__isnull=True,
        access_until__gte=today + timedelta(days=30),
    ).order_by("pk")
    for referral in candidates[:50]:
        try:  # opens the thread, or finds it opened
            thread = messaging.actions.open_referral_thread(referral, by=coach)
        except actions.ActionError:
            continue
        for number in range(40):
            messaging.actions.post_message(
                thread,
                body=f"Rückfrage {number + 1}: Die Unterlagen liegen vor, bitte um Rückruf.",
                client_id=uuid.uuid4(),
                by=coach,
            )
        return Thread.objects.get(pk=thread.pk)  # with its messages counted
    raise SystemExit("no referral of the coach could open a thread")


# 2. The plain twins: the same view with the gates swapped out while it runs.


@contextlib.contextmanager
def swapped(target: Any, **replacements: Any) -> Iterator[None]:
    kept = {name: getattr(target, name) for name in replacements}
    for name, value in replacements.items():
        setattr(target, name, value)
    try:
        yield
    finally:
        for name, value in kept.items():
            setattr(target, name, value)


def nothing(*args: Any, **kwargs: Any) -> None:
    """An audit write left out."""


def plain_family_list(request: HttpRequest) -> HttpResponse:
    """The list's only rule is already the plain one (the families its agencies own): the
    twin leaves out the record of the families shown."""
    with swapped(actions, record_families_shown=nothing):
        return dienstweg.views.family_list(request)


def plain_family_by_id(user: User, family_id: Any, reach: Any = None) -> Family:
    return Family.objects.select_related("owner", "data_key").get(pk=family_id)


def plain_referrals_section(family: Family, user: User, reach: Any) -> dict[str, Any]:
    """The family's referrals that its own project sent, without the visibility rule."""
    rows = (
        Referral.objects.filter(family=family, from_agency_id=family.owner_id)
        .order_by("-created_at")
        .values_list("pk", "to_agency__name", "state", "created_at")[:20]
    )
    return {
        "family": family,
        "referrals": [
            Listed(pk, agency, str(Referral.State(state).label), created_at)
            for pk, agency, state, created_at in rows
        ],
    }


def plain_tags_section(family: Family, user: User, reach: Any) -> dict[str, Any]:
    return {
        "family": family,
        "tags": ApplicationTag.objects.filter(family=family, project_id=family.owner_id)
        .select_related("processing_agency")
        .order_by("-submitted_on")[:20],
    }


PLAIN_SECTIONS = {
    REFERRALS_SECTION.template: FamilySection(REFERRALS_SECTION.template, plain_referrals_section),
    TAGS_SECTION.template: FamilySection(TAGS_SECTION.template, plain_tags_section),
}


def plain_family_page(request: HttpRequest, family_id: str) -> HttpResponse:
    real = list(hooks.family_sections)
    hooks.family_sections[:] = [PLAIN_SECTIONS.get(s.template, s) for s in real]
    try:
        with (
            swapped(dienstweg.views, access_family_by_id=plain_family_by_id),
            swapped(actions, record_family_read=nothing),
        ):
            return dienstweg.views.family_detail(request, family_id)
    finally:
        hooks.family_sections[:] = real


def plain_thread_page(request: HttpRequest, thread_id: str) -> HttpResponse:
    """The thread by its id, its messages read without the trail's record (the read
    marker still moves, as on the real page)."""
    with (
        swapped(messaging.views, access_thread_by_id=lambda user, pk: thread_by_id(pk)),
        swapped(messaging.actions, record=nothing),
    ):
        return messaging.views.thread_detail(request, thread_id)


def plain_tag_by_code(user: User, code: str, **kwargs: Any) -> tuple[ApplicationTag, str]:
    tag = ApplicationTag.objects.select_related(
        "family__data_key", "project", "processing_agency", "coach"
    ).get(code=code)
    return tag, "project"


def plain_tag_page(request: HttpRequest, code: str) -> HttpResponse:
    with swapped(applications.views, access_tag_by_code=plain_tag_by_code):
        return applications.views.tag_detail(request, code)


URLCONF = types.ModuleType("bench_pages_urls")
URLCONF.urlpatterns = [  # type: ignore[attr-defined]
    path("bench/plain/familien/", plain_family_list),
    path("bench/plain/familien/<uuid:family_id>/", plain_family_page),
    path("bench/plain/nachrichten/<uuid:thread_id>/", plain_thread_page),
    path("bench/plain/antraege/<str:code>/", plain_tag_page),
    path("", include(settings.ROOT_URLCONF)),
]
sys.modules[URLCONF.__name__] = URLCONF

# 3. Requests


def interleaved(name: str, real: list[Callable[[], Any]], plain: list[Callable[[], Any]]) -> dict:
    """Each round one real and one plain request (the same page), which first alternating."""
    samples: dict[str, list[float]] = {"real": [], "plain": []}
    for index in range(ARGS.warmup + ARGS.requests):
        pair = [("real", real[index % len(real)]), ("plain", plain[index % len(plain)])]
        for key, request in pair if index % 2 else pair[::-1]:
            started = time.perf_counter()
            request()
            if index >= ARGS.warmup:
                samples[key].append((time.perf_counter() - started) * 1000)
    figures: dict[str, Any] = {key: step2.percentiles(values) for key, values in samples.items()}
    for key, requests in (("real", real), ("plain", plain)):
        with CaptureQueriesContext(connection) as captured:
            requests[0]()
        figures[key]["queries"] = len(captured.captured_queries)
    for cut in ("p50", "p95"):
        figures[f"ratio_{cut}"] = round(figures["real"][cut] / figures["plain"][cut], 3)
    real_f, plain_f = figures["real"], figures["plain"]
    print(
        f"  {name:<26} p50 {real_f['p50']:6.2f}  p95 {real_f['p95']:6.2f}  p99 "
        f"{real_f['p99']:6.2f} ms  {real_f['queries']:2} q;  plain p50 {plain_f['p50']:6.2f}  "
        f"p95 {plain_f['p95']:6.2f} ms  {plain_f['queries']:2} q;  ratio p50 "
        f"{figures['ratio_p50']:.2f}  p95 {figures['ratio_p95']:.2f}",
        flush=True,
    )
    return figures


def getter(client: Any, url: str, data: dict[str, str] | None = None) -> Callable[[], Any]:
    def request() -> Any:
        response = client.post(url, data) if data is not None else client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response

    return request


# The composer's id for the next message, new on every page.
CLIENT_ID = re.compile(r'name="client_id" value="[^"]*"')


def same_page(name: str, real: Callable[[], Any], plain: Callable[[], Any]) -> None:
    """The plain twin shows what the real page shows (else the comparison is void)."""
    shown, plainly = (CLIENT_ID.sub("", step3.main_part(page())) for page in (real, plain))
    if shown != plainly:
        diff = difflib.unified_diff(shown.splitlines(), plainly.splitlines(), lineterm="", n=1)
        raise SystemExit(f"{name}: the plain page differs\n" + "\n".join(list(diff)[:40]))


def main() -> None:
    rng = random.Random(ARGS.seed)
    coach = User.objects.get(email=step3.BENCH_COACH)
    project = Agency.objects.get(memberships__user=coach)
    with step2.phase("prepare"):
        thread = prepare(coach, project, rng)
    settings.ROOT_URLCONF = URLCONF.__name__
    clear_url_caches()
    client = step2.verified_client(coach)
    families = list(
        Family.objects.filter(owner=project, referrals__isnull=False)
        .distinct()
        .values_list("pk", flat=True)[:20]
    )
    tags = list(
        ApplicationTag.objects.filter(project=project, coach=coach).values_list("code", flat=True)[
            :20
        ]
    )
    surname = LAST[0]
    total = Family.objects.filter(owner=project).count()
    deep = min(ARGS.deep_page, max(1, total // settings.FAMILY_PAGE_SIZE))
    pages: dict[str, tuple[list[Callable[[], Any]], list[Callable[[], Any]]]] = {
        "family list": (
            [getter(client, "/familien/")],
            [getter(client, "/bench/plain/familien/")],
        ),
        f"family list, page {deep}": (
            [getter(client, f"/familien/?page={deep}")],
            [getter(client, f"/bench/plain/familien/?page={deep}")],
        ),
        "family search (surname)": (
            [getter(client, "/familien/", {"query": surname})],
            [getter(client, "/bench/plain/familien/", {"query": surname})],
        ),
        "family page": (
            [getter(client, f"/familien/{pk}/") for pk in families],
            [getter(client, f"/bench/plain/familien/{pk}/") for pk in families],
        ),
        "thread page": (
            [getter(client, f"/nachrichten/{thread.pk}/")],
            [getter(client, f"/bench/plain/nachrichten/{thread.pk}/")],
        ),
        "tag page": (
            [getter(client, f"/antraege/{code}/") for code in tags],
            [getter(client, f"/bench/plain/antraege/{code}/") for code in tags],
        ),
    }
    print(
        f"coach {coach.email}: {total} families in the project, {len(families)} family "
        f"pages, {len(tags)} tag pages, thread {thread.pk} ({thread.last_seq} messages)"
    )
    for name, (real, plain) in pages.items():
        for real_request, plain_request in zip(real[:5], plain[:5], strict=False):
            same_page(name, real_request, plain_request)
    results: dict[str, Any] = {"pages": {}, "families_in_project": total}
    results["calibration_before_ms"] = step2.calibration_ms()
    with step2.phase("pages"):
        for name, (real, plain) in pages.items():
            results["pages"][name] = interleaved(name, real, plain)
    results["calibration_after_ms"] = step2.calibration_ms()
    results["targets"] = {"p95_ms": TARGET_P95_MS, "ratio": TARGET_RATIO}
    results["arguments"] = {key: str(value) for key, value in vars(ARGS).items()}
    results["load_average"] = step2.LOAD
    ARGS.output.parent.mkdir(parents=True, exist_ok=True)
    ARGS.output.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
    print()
    for name, figures in results["pages"].items():
        worst = max(figures["ratio_p50"], figures["ratio_p95"])
        print(
            f"  {name:<26} p95 {figures['real']['p95']:6.2f} ms "
            f"({'met' if figures['real']['p95'] <= TARGET_P95_MS else 'NOT met'}), ratio "
            f"{worst:.2f} ({'met' if worst <= TARGET_RATIO else 'NOT met'})"
        )
    print(f"written to {ARGS.output}")


if __name__ == "__main__":
    main()
