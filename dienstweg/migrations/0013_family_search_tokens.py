"""The search tokens of families (dienstweg/family_search.py), and those of every family
registered before them: decrypted here once, with the vault's keys, and hashed."""

from datetime import date

import django.db.models.deletion
from django.db import migrations, models


def index_existing_families(apps, schema_editor):
    # The application's own token function: tokens must be the ones a search computes.
    from dienstweg import family_search, vault

    Family = apps.get_model("dienstweg", "Family")
    HouseholdMember = apps.get_model("dienstweg", "HouseholdMember")
    FamilySearchToken = apps.get_model("dienstweg", "FamilySearchToken")
    families = Family.objects.filter(erased_at=None, data_key__isnull=False).select_related(
        "data_key"
    )
    for family in families.iterator(chunk_size=500):
        tokens = set()
        for member in HouseholdMember.objects.filter(family=family):

            def read(field, member=member, key=family.data_key):
                return vault.decrypt(
                    key,
                    getattr(member, f"{field}_enc"),
                    table="dienstweg_householdmember",
                    row=member.pk,
                    field=field,
                )

            tokens |= family_search.member_tokens(
                family.owner_id,
                read("first_name"),
                read("last_name"),
                date.fromisoformat(read("birth_date")),
            )
        FamilySearchToken.objects.bulk_create(
            [FamilySearchToken(family=family, token=token) for token in sorted(tokens)]
        )


class Migration(migrations.Migration):
    dependencies = [
        ("dienstweg", "0012_records_agency_dpo_contact"),
    ]

    operations = [
        migrations.CreateModel(
            name="FamilySearchToken",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("token", models.CharField(max_length=32)),
                (
                    "family",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="search_tokens",
                        to="dienstweg.family",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("token", "family"), name="family_search_token")
                ],
            },
        ),
        migrations.RunPython(index_existing_families, migrations.RunPython.noop),
    ]
