"""The demo network: the Gladbeck Akti(F) Plus example from shared/context/, with
fictional staff, direct numbers and opening hours. Loaded by `manage.py load_demo`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.apps import apps
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from dienstweg import actions
from dienstweg.models import (
    Agency,
    AuthenticatorDevice,
    Consent,
    Contact,
    DataCategory,
    Location,
    Membership,
    Purpose,
    Service,
    User,
)

DEMO_DOMAIN = "demo.dienstweg.invalid"
# Only ever set while DEBUG is on (see the load_demo command).
DEMO_PASSWORD = "Gladbeck-Demo-2026"  # noqa: S105

Role = Membership.Role

# name, kind, rechtskreis, street, description, public phone, golden number
AGENCIES: list[tuple[str, str, str, str, str, str, str]] = [
    (
        "Familiencoaching Gladbeck (rebeq GmbH)",
        "project",
        "other",
        "Bottroper Straße 1",
        "Akti(F) Plus-Projekt: aufsuchende Beratung und Coaching für Familien, "
        "rechtskreis- und trägerübergreifend.",
        "02043 99 10 00",
        "02043 99 10 01",
    ),
    (
        "Jobcenter Kreis Recklinghausen, Bezirksstelle Gladbeck",
        "jobcenter",
        "sgb_ii",
        "Friedrich-Ebert-Straße 10",
        "Bürgergeld, Integration in Arbeit, Leistungen für Bildung und Teilhabe nach SGB II.",
        "02043 99 20 00",
        "02043 99 20 01",
    ),
    (
        "Stadt Gladbeck, Amt für Jugend und Familie",
        "jugendamt",
        "sgb_viii",
        "Willy-Brandt-Platz 2",
        "Allgemeiner Sozialer Dienst, Hilfen zur Erziehung, Kita-Plätze, Frühe Hilfen.",
        "02043 99 30 00",
        "02043 99 30 01",
    ),
    (
        "Stadt Gladbeck, Amt für Soziales und Wohnen",
        "sozialamt",
        "sgb_xii",
        "Willy-Brandt-Platz 2",
        "Sozialhilfe, Grundsicherung im Alter, Wohngeld, Wohnungsnotfälle.",
        "02043 99 40 00",
        "02043 99 40 01",
    ),
    (
        "Stadt Gladbeck, Amt für Migration und Zusammenleben",
        "partner",
        "other",
        "Willy-Brandt-Platz 2",
        "Ausländerangelegenheiten, Integration, Beratung zu Aufenthalt und Teilhabe.",
        "02043 99 50 00",
        "02043 99 50 01",
    ),
    (
        "Deutsches Rotes Kreuz KV Gladbeck e. V.",
        "partner",
        "other",
        "Schützenstraße 20",
        "Beratungsdienste, Kleiderkammer, Familienbildung.",
        "02043 99 60 00",
        "02043 99 60 01",
    ),
    (
        "internationales Mädchenzentrum Gladbeck e. V.",
        "partner",
        "sgb_viii",
        "Horster Straße 30",
        "Offene Arbeit, Beratung und Bildungsangebote für Mädchen und junge Frauen.",
        "02043 99 70 00",
        "02043 99 70 01",
    ),
    (
        "Familienkasse Nordrhein-Westfalen Nord",
        "familienkasse",
        "other",
        "Postfach 1000",
        "Kindergeld und Kinderzuschlag.",
        "0800 4 5555 30",
        "02043 99 80 01",
    ),
]

# agency index, service name, audience, rechtskreis, hours, languages, accepts new families
SERVICES: list[tuple[int, str, str, str, str, str, bool]] = [
    (
        0,
        "Familiencoaching",
        "Familien mit Kindern im Bezug von Bürgergeld oder Sozialhilfe",
        "other",
        "Mo–Fr 8–16 Uhr, Hausbesuche nach Vereinbarung",
        "Deutsch, Türkisch, Arabisch",
        True,
    ),
    (
        1,
        "Integrationsfachkräfte für Familien",
        "Erwerbsfähige Leistungsberechtigte mit Kindern",
        "sgb_ii",
        "Mo–Mi 8–12:30 Uhr, Do 8–17 Uhr",
        "Deutsch, Englisch",
        True,
    ),
    (
        1,
        "Bildung und Teilhabe",
        "Kinder und Jugendliche in Bedarfsgemeinschaften",
        "sgb_ii",
        "Mo–Fr 8–12 Uhr",
        "Deutsch",
        True,
    ),
    (
        2,
        "Allgemeiner Sozialer Dienst",
        "Familien, Kinder und Jugendliche in Gladbeck",
        "sgb_viii",
        "Mo–Fr 8–16 Uhr, Bereitschaft rund um die Uhr",
        "Deutsch, Polnisch",
        True,
    ),
    (
        2,
        "Kita-Platzvergabe",
        "Eltern von Kindern unter sechs Jahren",
        "sgb_viii",
        "Di und Do 9–12 Uhr",
        "Deutsch",
        False,
    ),
    (
        3,
        "Wohngeldstelle",
        "Haushalte mit geringem Einkommen",
        "other",
        "Mo, Di, Do 8–12 Uhr",
        "Deutsch",
        True,
    ),
    (
        4,
        "Integrationsberatung",
        "Zugewanderte Familien",
        "other",
        "Mo–Fr 9–12 Uhr",
        "Deutsch, Arabisch, Ukrainisch, Rumänisch",
        True,
    ),
    (
        5,
        "Familienbildung und Elterncafé",
        "Eltern mit kleinen Kindern",
        "other",
        "Mi 15–17 Uhr",
        "Deutsch, Türkisch",
        True,
    ),
    (
        6,
        "Mädchenberatung",
        "Mädchen und junge Frauen von 10 bis 27 Jahren",
        "sgb_viii",
        "Mo–Do 14–19 Uhr",
        "Deutsch, Türkisch, Kurdisch",
        True,
    ),
    (
        7,
        "Kinderzuschlag",
        "Eltern mit kleinem Einkommen",
        "other",
        "telefonisch Mo–Fr 8–18 Uhr",
        "Deutsch",
        True,
    ),
]


@dataclass(frozen=True)
class DemoPerson:
    local: str
    name: str
    agency: int
    role: str
    title: str
    # False: no password; each load_demo prints a fresh enrolment link (to try the flow)
    enrolled: bool = True
    admin: bool = False
    also: tuple[int, ...] = ()  # further agencies where she holds the same role


PEOPLE: list[DemoPerson] = [
    DemoPerson("anna", "Anna Albers", 0, Role.COACH, "Familiencoach"),
    DemoPerson("paul", "Paul Peters", 0, Role.LEAD, "Projektleitung"),
    DemoPerson("ben", "Ben Becker", 1, Role.CASEWORKER, "Integrationsfachkraft"),
    DemoPerson("jana", "Jana Jansen", 1, Role.LEAD, "Teamleitung"),
    DemoPerson("clara", "Clara Czerny", 2, Role.LEAD, "Abteilungsleitung ASD"),
    DemoPerson("emil", "Emil Engel", 2, Role.CASEWORKER, "Sozialarbeiter ASD"),
    DemoPerson("sofia", "Sofia Schulz", 3, Role.LEAD, "Amtsleitung"),
    DemoPerson("nora", "Nora Neumann", 3, Role.CASEWORKER, "Sachbearbeitung Wohngeld", False),
    DemoPerson("mira", "Mira Mahler", 4, Role.LEAD, "Amtsleitung"),
    DemoPerson("dirk", "Dirk Dahl", 4, Role.CASEWORKER, "Integrationsberatung"),
    DemoPerson("rita", "Rita Roth", 5, Role.LEAD, "Geschäftsführung"),
    DemoPerson("ida", "Ida Iske", 6, Role.LEAD, "Leitung"),
    DemoPerson("felix", "Felix Fuchs", 7, Role.LEAD, "Teamleitung Kinderzuschlag"),
    # The city's DPO answers for its three offices; the project has its own (each agency is
    # its own controller); the network's DPO sees the whole platform (Art. 26 DSGVO).
    DemoPerson(
        "dora", "Dora Demir", 2, Role.DPO, "Datenschutzbeauftragte der Stadt Gladbeck", also=(3, 4)
    ),
    DemoPerson("pia", "Pia Pohl", 0, Role.DPO, "Datenschutzbeauftragte der rebeq GmbH"),
    DemoPerson("vera", "Vera Vogt", 1, Role.NETWORK_DPO, "Datenschutzbeauftragte des Verbunds"),
    # The network's steering group: the Strukturkonferenz report, no case.
    DemoPerson("sven", "Sven Sommer", 2, Role.STEERING, "Koordination Steuerungsgruppe"),
    DemoPerson("tom", "Tom Technik", 2, Role.ADMIN, "Plattformbetrieb", admin=True),
]


@dataclass(frozen=True)
class DemoLogin:
    email: str
    name: str
    role: str
    agency: str
    totp_secret: str | None  # base32, for an authenticator app; None: not enrolled
    backup_code: str | None
    # The single-use link of a demo account that has not set up its access yet.
    enrolment_link: str | None = None


def email_of(person: DemoPerson) -> str:
    return f"{person.local}@{DEMO_DOMAIN}"


@transaction.atomic
def load_demo() -> list[DemoLogin]:
    """Create what is missing of the demo network; running it again duplicates nothing.

    Returns the demo logins. Each run issues fresh backup codes for the demo users (the
    old ones cannot be shown: only their hashes are stored) and prints one of them."""
    today = timezone.localdate()
    agencies: list[Agency] = []
    for name, kind, rechtskreis, street, description, phone, golden in AGENCIES:
        agency = Agency.objects.filter(name=name).first() or actions.create_agency(
            name=name,
            kind=kind,
            rechtskreis=rechtskreis,
            description=description,
            public_phone=phone,
            golden_phone=golden,
            checked_on=today,
        )
        if not agency.locations.exists():
            Location.objects.create(
                agency=agency, street=street, postal_code="45964", city="Gladbeck"
            )
        if not agency.dpo_email:  # each controller's DPO, for the Art. 15 and 30 reports
            slug = "".join(ch for ch in name.split(",")[0].split("(")[0].lower() if ch.isalpha())
            agency.dpo_name = "Datenschutzbeauftragte/r"
            agency.dpo_email = f"datenschutz@{slug}.demo.dienstweg.invalid"
            agency.dpo_phone = phone
            agency.save(update_fields=["dpo_name", "dpo_email", "dpo_phone"])
        agencies.append(agency)

    for index, name, audience, rechtskreis, hours, languages, accepting in SERVICES:
        Service.objects.get_or_create(
            agency=agencies[index],
            name=name,
            defaults={
                "audience": audience,
                "rechtskreis": rechtskreis,
                "opening_hours": hours,
                "languages": languages,
                "accepts_new_families": accepting,
                "location": agencies[index].locations.first(),
                "checked_on": today,
            },
        )

    logins = []
    for number, person in enumerate(PEOPLE, start=1):
        agency = agencies[person.agency]
        user = User.objects.filter(email=email_of(person)).first()
        link = None
        if user is None and not person.enrolled:
            # As every real account starts: no password, a link to her own address.
            issued = actions.create_account(email_of(person), full_name=person.name, by=None)
            user, link = issued.link.user, issued.url
        elif user is None:
            user = actions.create_staff(
                email_of(person), full_name=person.name, password=DEMO_PASSWORD
            )
            if person.admin:  # an operator: the admin role, never a case or dpo role
                actions.set_admin_rights(user, staff=True, superuser=True, by=None)
        # Demo data: the roles are given directly, as confirmed, without a proposal (the
        # console lists them as granted by the platform).
        for index in (person.agency, *person.also):
            actions.add_membership(user, agency=agencies[index], role=person.role, by=None)
        Contact.objects.get_or_create(
            agency=agency,
            name=person.name,
            defaults={
                "title": person.title,
                "email": user.email,
                "direct_phone": f"{agency.golden_phone[:-2]}{number + 10:02d}",
                "hours": "Mo–Fr 8–15 Uhr",
                "checked_on": today,
            },
        )
        secret, code = None, None
        if not person.enrolled and link is None and not actions.has_second_factor(user):
            link = actions.send_enrolment_link(user, by=None).url  # the older one stops working
        if person.enrolled:
            device = AuthenticatorDevice.objects.filter(user=user, confirmed=True).first()
            if device is None:
                device = AuthenticatorDevice.create_for(
                    user, name="Authenticator-App (Demo)", confirmed=True
                )
            secret = device.secret_base32
            code = actions.issue_backup_codes(user)[0]
        logins.append(
            DemoLogin(
                email=user.email,
                name=person.name,
                role=str(Membership.Role(person.role).label),
                agency=agency.name,
                totp_secret=secret,
                backup_code=code,
                enrolment_link=link,
            )
        )
    _load_demo_families(agencies, coach=User.objects.get(email=email_of(PEOPLE[0])))
    operator = User.objects.get(email=email_of(PEOPLE[-1]))
    demo_agencies = Agency.objects.filter(name__in=[row[0] for row in AGENCIES])
    demo_agencies.filter(checked_by=None).update(checked_by=operator)
    for model in (Service, Contact):
        model.objects.filter(agency__in=demo_agencies, checked_by=None).update(checked_by=operator)
    # Apps above the core add their demo data (referrals, ...) without the core importing them.
    for config in apps.get_app_configs():
        loader = getattr(config, "demo_loader", None)
        if loader:
            import_string(loader)()
    return logins


# Fictional families of the coaching project: (members, address, recipients by agency index)
FAMILIES: list[tuple[list[tuple[str, str, str, str]], str, list[int]]] = [
    (
        [
            ("adult", "Ayşe", "Yılmaz", "1988-04-12"),
            ("child", "Leyla", "Yılmaz", "2010-01-20"),
            ("child", "Emre", "Yılmaz", "2016-09-01"),
        ],
        "Horster Straße 130, 45964 Gladbeck",
        [1, 2],
    ),
    (
        [
            ("adult", "Marek", "Nowak", "1979-11-02"),
            ("adult", "Joanna", "Nowak", "1983-06-17"),
            ("child", "Zofia", "Nowak", "2019-02-28"),
        ],
        "Hegestraße 14, 45966 Gladbeck",
        [1, 3, 7],
    ),
    (
        [("adult", "Sandra", "Klein", "1995-08-09"), ("child", "Mia", "Klein", "2021-12-03")],
        "Wilhelmstraße 52, 45964 Gladbeck",
        [2],
    ),
]


def _load_demo_families(agencies: list[Agency], *, coach: User) -> None:
    """Register the demo families once, each with a consent recorded orally."""

    project = agencies[0]
    if project.families.exists():
        return
    today = timezone.localdate()
    for members, address, recipients in FAMILIES:
        family = actions.register_family(
            owner=project,
            members=[
                actions.MemberData(kind, first, last, date.fromisoformat(born))
                for kind, first, last, born in members
            ],
            address=address,
            phone="",
            notes="Fiktive Demo-Familie.",
            by=coach,
        )
        adult = family.members.get(position=0)
        actions.grant_consent(
            family,
            data=actions.ConsentData(
                recipients=[agencies[index] for index in recipients],
                categories=[DataCategory.IDENTITY, DataCategory.HOUSEHOLD, DataCategory.CHILDREN],
                purposes=[Purpose.REFERRAL, Purpose.APPLICATION_SUPPORT],
                valid_from=today,
                valid_until=today + timedelta(days=365),
                given_by=adult,
                capacity=Consent.Capacity.ADULT_SELF,
                method=Consent.Method.ORAL_RECORDED,
                witness_note="Demo: mündlich erteilt im Beisein der Projektleitung.",
                text_version="2026-1",
            ),
            by=coach,
        )
