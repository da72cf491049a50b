"""Seals carry the newest event time sealed so far and the events refused as dated out of
order (audit/chronology.py), both covered by the seal's hash when present.

Both columns are nullable without a default, so SQLite adds them with ALTER TABLE ADD
COLUMN and keeps the append-only triggers of 0002 and 0004 (a rebuilt table would lose
them; tests/audit/test_append_only.py checks that they are there).
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0004_pruning'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditseal',
            name='high_water',
            field=models.DateTimeField(blank=True, null=True, verbose_name='neuestes Ereignis bis hier'),
        ),
        migrations.AddField(
            model_name='auditseal',
            name='refused',
            field=models.BinaryField(blank=True, null=True),
        ),
    ]
