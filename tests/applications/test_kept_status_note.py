"""A status entry that is refused brings the tag's page back with the note as typed and
the reason beside it; a note over the limit is refused whole, never cut by the box."""

from __future__ import annotations

import re
from html import unescape

import pytest

from applications.models import ApplicationTag
from tests.applications.helpers import status_url
from tests.conftest import Network, verified_client

pytestmark = pytest.mark.usefixtures("empty_cache", "project_phone")


def test_a_note_over_the_limit_comes_back_whole(
    network: Network, jobcenter_tag: ApplicationTag
) -> None:
    note = "Es fehlen die Kontoauszüge der letzten drei Monate. " * 45  # 2,340 characters
    response = verified_client(network.ben).post(
        status_url(jobcenter_tag.code), {"state": "documents_requested", "note": note}
    )
    assert response.status_code == 200
    page = response.content.decode()
    box = re.search(r'(<textarea name="note"[^>]*>)\n?(.*?)</textarea>', page, re.S)
    assert box and unescape(box.group(2)) == note
    assert "maxlength" not in box.group(1) and 'data-max-chars="2000"' in box.group(1)
    assert "höchstens 2000 Zeichen" in page
    jobcenter_tag.refresh_from_db()
    assert jobcenter_tag.state == ApplicationTag.State.SUBMITTED
