"""The tags moved from the referrals app to their own without a trace in the data: the same
tables (and so the same encryption context), the same audit target type, and the content
types renamed rather than recreated."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType

from applications.models import ApplicationTag, TagStatusChange
from audit.models import AuditEvent
from dienstweg.models import Consent, Family
from messaging.models import Thread
from tests.applications.helpers import tag
from tests.conftest import Network


def test_tables_keep_their_names() -> None:
    assert ApplicationTag._meta.db_table == "referrals_applicationtag"
    assert TagStatusChange._meta.db_table == "referrals_tagstatuschange"
    assert Thread._meta.get_field("application_tag").related_model is ApplicationTag


def test_index_names_are_unchanged() -> None:
    names = {index.name for index in ApplicationTag._meta.indexes}
    assert {"tag_project_list", "tag_project_kind", "tag_family"} <= names


def test_records_audit_events_under_the_old_target_type(
    network: Network, family: Family, consent: Consent
) -> None:
    made = tag(network, family)
    event = AuditEvent.objects.get(action="application_tag.created")
    assert (event.target_type, event.target_id) == ("referrals.applicationtag", str(made.pk))


@pytest.mark.django_db
def test_content_types_belong_to_applications() -> None:
    for model in (ApplicationTag, TagStatusChange):
        content_type = ContentType.objects.get_for_model(model)
        assert content_type.app_label == "applications"
    assert not ContentType.objects.filter(
        app_label="referrals", model__in=["applicationtag", "tagstatuschange"]
    ).exists()
