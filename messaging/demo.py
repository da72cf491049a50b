"""Demo messages for `make run` (called by dienstweg's load_demo through
MessagingConfig.demo_loader, after the demo referrals; development only)."""

from __future__ import annotations

import uuid

from dienstweg.demo import AGENCIES, PEOPLE, email_of
from dienstweg.models import Agency, User
from messaging import actions
from messaging.models import Thread
from referrals.models import Referral


def load() -> None:
    """Once: a short exchange between Anna and Ben on the referral waiting at the
    Jobcenter, and a direct message between two colleagues."""
    if Thread.objects.exists():
        return
    users = {person.local: User.objects.get(email=email_of(person)) for person in PEOPLE}
    project, jobcenter = (Agency.objects.get(name=row[0]) for row in AGENCIES[:2])
    waiting = Referral.objects.filter(from_agency=project, to_agency=jobcenter, state="sent")
    referral = waiting.order_by("created_at").first()
    if referral is None:
        return
    thread = actions.open_referral_thread(referral, by=users["anna"])
    for author, body in [
        ("anna", "Guten Tag, Frau Y. kann vormittags zwischen 8 und 12 Uhr. Passt ein Termin?"),
        ("ben", "Danke! Donnerstag, 9:30 Uhr bei uns in der Bezirksstelle. Ich lade sie ein."),
        ("anna", "Prima, ich begleite sie."),
    ]:
        actions.post_message(thread, body=body, client_id=uuid.uuid4(), by=users[author])
    direct = actions.open_direct_thread(users["jana"], by=users["anna"])
    actions.post_message(
        direct,
        body="Hallo Jana, hast du nächste Woche Zeit für unser Netzwerktreffen?",
        client_id=uuid.uuid4(),
        by=users["anna"],
    )
