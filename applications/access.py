"""Who may see which application tag, defined once.

The project that tagged an application sees it through its case roles; the processing
office sees it while the family's consent covers the office for application support and
the family's processing is not restricted (GDPR Art. 18). Lists, pages, the look-up by
code, the stamp and the tag's thread all derive from these helpers."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Case, CharField, Exists, OuterRef, QuerySet, Value, When
from django.http import Http404
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from applications.audit_actions import (
    TAG_ACCESS_DENIED,
    TAG_ACCESS_RESTRICTED,
    TAG_CONSENT_MISSING,
    TAG_LOOKUP_THROTTLED,
    TAG_VIEWED,
)
from applications.models import ApplicationTag
from audit.trail import record
from dienstweg.access import (
    CASE_ROLES,
    Reach,
    agency_ids_of,
    holds_role,
    members_holding,
    memberships_holding,
    roles_of,
)
from dienstweg.consent import (
    ConsentMissing,
    ProcessingRestricted,
    Terms,
    covering_consents,
    has_consent,
    quoted,
    require_consent,
    uncovered,
)
from dienstweg.hooks import Loss
from dienstweg.models import Agency, Consent, Membership, Purpose, User

# Coaches and leads of the project tag applications; its caseworkers do not.
TAGGING_ROLES = (Membership.Role.COACH, Membership.Role.LEAD)

# The data category a tag discloses to the processing office, by kind of application.
TAG_CATEGORY = {
    ApplicationTag.Kind.EDUCATION: "children",
    ApplicationTag.Kind.CHILDCARE: "children",
    ApplicationTag.Kind.HOUSING_BENEFIT: "housing",
    ApplicationTag.Kind.CHILD_SUPPLEMENT: "household",
    ApplicationTag.Kind.CITIZENS_BENEFIT: "household",
    ApplicationTag.Kind.OTHER: "household",
}


class TagRefused(Exception):
    """The clerk's agency processes the application, but the family's consent does not
    cover it: a clear refusal (the clerk holds the paper with the code anyway)."""


class TagLookupThrottled(Exception):
    """Too many wrong codes in a short time."""


def tags_visible_to(user: User, reach: Reach | None = None) -> QuerySet[ApplicationTag]:
    """The tags of the user's projects (the coach's list): open document requests first."""
    project_ids = agency_ids_of(user) if reach is None else reach.agency_ids
    return tags_within(project_ids)


def tags_within(agency_ids: list[int]) -> QuerySet[ApplicationTag]:
    """tags_visible_to for the case roles' AGENCY_IDS of a reach (the start page compiles
    it once with sentinel ids, dienstweg/compiled.py)."""
    return ApplicationTag.objects.filter(project_id__in=agency_ids).order_by(
        "priority", "-submitted_on", "-id"
    )


def tag_sides_of(user: User) -> set[str]:
    """The sides of a tag the user works on, by the kinds of her agencies (one query):
    "project" tags applications and prints stamps, "office" looks them up by code."""
    kinds = set(memberships_holding(user, *CASE_ROLES).values_list("agency__kind", flat=True))
    return {"project" if kind == Agency.Kind.PROJECT else "office" for kind in kinds}


def normalize_code(code: str) -> str:
    """The code as printed ("7KQM-3XPA-94TD"), from what a person typed or scanned."""
    letters = "".join(ch for ch in code.upper() if ch.isalnum())[:12]
    return "-".join(letters[i : i + 4] for i in range(0, len(letters), 4))


def _throttle_key(user: User) -> str:
    return f"tag-lookup-failures:{user.pk}"


def check_lookup_throttle(user: User) -> None:
    """Refuse look-ups after too many wrong codes (counted per account)."""
    if cache.get(_throttle_key(user), 0) >= settings.TAG_LOOKUP_MAX_FAILURES:
        with transaction.atomic():
            record(user, TAG_LOOKUP_THROTTLED)
        raise TagLookupThrottled


def _count_failure(user: User) -> None:
    key = _throttle_key(user)
    window = settings.TAG_LOOKUP_WINDOW_MINUTES * 60
    if not cache.add(key, 1, timeout=window):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window)


def access_tag_by_code(
    user: User,
    code: str,
    *,
    action: str | None = TAG_VIEWED,
    sides: tuple[str, ...] = ("project", "office"),
) -> tuple[ApplicationTag, str]:
    """Fetch a tag by its code with the side the user sees it from ("project" or
    "office", one of SIDES), and record ACTION; or 404 (an unknown code and a missing right look the
    same, and count towards the throttle), or TagRefused when the family's consent does
    not cover the processing office for application support.

    For the processing office the look-up is a transmission: the consent is checked and
    locked in the transaction that records it."""
    check_lookup_throttle(user)
    tag = (
        ApplicationTag.objects.select_related(
            "family__data_key", "project", "processing_agency", "coach"
        )
        .filter(code=normalize_code(code))
        .first()
    )
    side = _role_side(user, tag) if tag is not None else None
    if tag is not None and side is not None and side not in sides:
        # A page for the other side (the stamp is the project's): refused, audited.
        with transaction.atomic():
            record(user, TAG_ACCESS_DENIED, target=tag, family=tag.family)
        raise Http404
    if tag is None or side is None:
        _count_failure(user)
        with transaction.atomic():
            record(
                user,
                TAG_ACCESS_DENIED,
                target=tag,
                family=tag.family if tag is not None else None,
            )
        raise Http404
    try:
        with transaction.atomic():
            if side == "office":
                require_tag_consent(tag)
            if action:
                record(
                    user,
                    action,
                    target=tag,
                    family=tag.family,
                    purpose=str(Purpose.APPLICATION_SUPPORT.label) if side == "office" else "",
                    agency_id=tag.processing_agency_id if side == "office" else tag.project_id,
                )
    except ProcessingRestricted:
        with transaction.atomic():
            record(
                user,
                TAG_ACCESS_RESTRICTED,
                target=tag,
                family=tag.family,
                agency_id=tag.processing_agency_id,
                purpose="Art. 18 DSGVO",
            )
        # Whether and why the family restricted its processing is not the office's to know.
        raise TagRefused(
            _(
                "Ihre Stelle kann diesen Antragsmarker derzeit nicht öffnen. Bitte wenden Sie "
                "sich an das Projekt."
            )
        ) from None
    except ConsentMissing:
        with transaction.atomic():
            record(
                user,
                TAG_CONSENT_MISSING,
                target=tag,
                family=tag.family,
                agency_id=tag.processing_agency_id,
            )
        raise TagRefused(
            _(
                "Die Einwilligung der Familie erlaubt Ihrer Stelle keinen Zugriff auf diesen "
                "Antragsmarker. Bitte wenden Sie sich an das Projekt."
            )
        ) from None
    return tag, side


def _role_side(user: User, tag: ApplicationTag) -> str | None:
    """ "project" or "office" by the user's case roles alone (the consent not asked)."""
    held = roles_of(user, agencies=[tag.project_id, tag.processing_agency_id])
    if holds_role(held, *CASE_ROLES, agency=tag.project_id):
        return "project"
    if holds_role(held, *CASE_ROLES, agency=tag.processing_agency_id):
        return "office"
    return None


def tag_consented(tag: ApplicationTag) -> bool:
    """Whether the family's consent lets the processing office see the tag today and its
    processing is not restricted (no lock: for pages and recipients; a transmission locks
    it, require_tag_consent)."""
    return has_consent(
        tag.family,
        to_agency=tag.processing_agency,
        categories=[TAG_CATEGORY[ApplicationTag.Kind(tag.kind)]],
        purpose=Purpose.APPLICATION_SUPPORT,
    )


def seen_by_office(tags: QuerySet[ApplicationTag]) -> QuerySet[ApplicationTag]:
    """Those of TAGS that their processing office may see now: tag_consented asked in the
    query, for a list of many (the office's start page). The same rule:
    tests/applications/test_tag_visibility_rule.py holds the two equal."""
    by_category: dict[str, list[str]] = {}
    for kind, category in TAG_CATEGORY.items():
        by_category.setdefault(category, []).append(kind)
    needed = Case(
        *(When(kind__in=kinds, then=Value(quoted(c))) for c, kinds in by_category.items()),
        output_field=CharField(),
    )
    covered = covering_consents(
        family=OuterRef("family_id"),
        agency=OuterRef("processing_agency_id"),
        category=OuterRef("needed_category"),
        purpose=Purpose.APPLICATION_SUPPORT,
        on=timezone.localdate(),
    )
    return (
        tags.filter(family__restricted_at__isnull=True)
        .annotate(needed_category=needed)
        .filter(Exists(covered))
    )


def side_sees(tag: ApplicationTag, side: str) -> bool:
    """The rule, defined once: whether the case roles of SIDE ("project" or "office") may
    see the tag now. The project always; the processing office while the family's consent
    covers it today and its processing is not restricted (no lock: for pages and
    recipients; a look-up by the office locks it, access_tag_by_code)."""
    return side == "project" or (side == "office" and tag_consented(tag))


def tag_readers(tag: ApplicationTag) -> list[int]:
    """The ids of the active users who may open the tag now (side_sees, for both sides)."""
    sides = {"project": tag.project_id, "office": tag.processing_agency_id}
    agencies = [agency for side, agency in sides.items() if side_sees(tag, side)]
    readers = members_holding(*CASE_ROLES, agencies=agencies).filter(is_active=True)
    return sorted(readers.values_list("pk", flat=True))


def tag_side(user: User, tag: ApplicationTag) -> str | None:
    """ "project", "office" or None: whether and from which side the user may see the tag
    now (side_sees; no throttle, no audit: for helpers above)."""
    side = _role_side(user, tag)
    return side if side is not None and side_sees(tag, side) else None


def require_tag_consent(tag: ApplicationTag) -> None:
    """Lock the consent that lets the processing office see this tag, or ConsentMissing.
    Runs inside the transaction that shows or changes the tag."""
    require_consent(
        tag.family,
        to_agency=tag.processing_agency,
        categories=[TAG_CATEGORY[ApplicationTag.Kind(tag.kind)]],
        purpose=Purpose.APPLICATION_SUPPORT,
    )


def tags_losing_access(consent: Consent) -> list[ApplicationTag]:
    """The family's tags that the processing office would no longer see if CONSENT were
    revoked: those it covers today, and no other consent of the family covers as well
    (consents add up, dienstweg.consent.uncovered). Three queries however many tags."""
    on = timezone.localdate()
    recipients = list(consent.recipients.values_list("pk", flat=True))
    terms = Terms.of(consent, recipients)
    kinds = [kind for kind, category in TAG_CATEGORY.items() if category in terms.categories]
    if not kinds or not any(
        terms.allows(agency_id=agency_id, purpose=Purpose.APPLICATION_SUPPORT, on=on)
        for agency_id in recipients
    ):
        return []
    tags = list(
        ApplicationTag.objects.filter(
            family_id=consent.family_id, processing_agency_id__in=recipients, kind__in=kinds
        )
        .select_related("processing_agency")
        .order_by("submitted_on", "id")
    )
    if not tags:
        return []
    others = (
        Consent.objects.filter(
            family_id=consent.family_id,
            revoked_at__isnull=True,
            valid_from__lte=on,
            valid_until__gte=on,
        )
        .exclude(pk=consent.pk)
        .prefetch_related("recipients")
    )
    remaining = [Terms.of(other, [a.pk for a in other.recipients.all()]) for other in others]
    return [
        tag
        for tag in tags
        if uncovered(
            remaining,
            agency_id=tag.processing_agency_id,
            categories=[TAG_CATEGORY[ApplicationTag.Kind(tag.kind)]],
            purpose=Purpose.APPLICATION_SUPPORT,
            on=on,
        )
    ]


def tag_label(tag: ApplicationTag) -> str:
    """The tag as a confirmation names it: "Antragsmarker Wohngeld vom 02.03.2026 (eingegangen)"."""
    return _("Antragsmarker %(kind)s vom %(date)s (%(state)s)") % {
        "kind": tag.get_kind_display(),
        "date": date_format(tag.submitted_on, "SHORT_DATE_FORMAT"),
        "state": tag.get_state_display(),
    }


def losses_on_revocation(consent: Consent) -> list[Loss]:
    """Handler of dienstweg.hooks.revocation_losses: the tags whose processing office would
    lose sight of them (tags_losing_access)."""
    return [
        Loss(agency=tag.processing_agency.name, what=tag_label(tag))
        for tag in tags_losing_access(consent)
    ]
