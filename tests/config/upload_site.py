"""Run in a server's environment (`python -m tests.config.upload_site`): two colleagues of
one agency, a direct thread between them, and a verified session of the first. Prints them
as JSON for a test that talks to that server over raw sockets."""

from __future__ import annotations

import json
import os

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from dienstweg import actions
    from dienstweg.models import Membership
    from messaging.actions import open_direct_thread
    from tests.conftest import make_staff, verified_client

    agency = actions.create_agency(
        name="Jobcenter Gladbeck", kind="jobcenter", rechtskreis="sgb_ii"
    )
    anna = make_staff("anna@example.org", "Anna Albers", agency, Membership.Role.CASEWORKER)
    ben = make_staff("ben@example.org", "Ben Becker", agency, Membership.Role.CASEWORKER)
    thread = open_direct_thread(ben, by=anna)
    client = verified_client(anna)
    from django.conf import settings

    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    print(json.dumps({"thread": str(thread.pk), "session": cookie}))


if __name__ == "__main__":
    main()
