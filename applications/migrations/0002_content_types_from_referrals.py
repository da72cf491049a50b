# The content types (and with them the model permissions, and admin log entries) of the
# moved models follow them to the applications app: renamed, not recreated, so rows that
# point at them keep pointing at them, and no stale referrals.* content type is left over.

from django.db import migrations

MODELS = ("applicationtag", "tagstatuschange")


def _move(apps, schema_editor, source, target):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MODELS:
        if ContentType.objects.using(db).filter(app_label=target, model=model).exists():
            continue  # a migrate stopped at 0001 has made it; remove_stale_contenttypes tidies
        ContentType.objects.using(db).filter(app_label=source, model=model).update(
            app_label=target
        )
    ContentType.objects.clear_cache()


def forwards(apps, schema_editor):
    _move(apps, schema_editor, "referrals", "applications")


def backwards(apps, schema_editor):
    _move(apps, schema_editor, "applications", "referrals")


class Migration(migrations.Migration):

    dependencies = [
        ('applications', '0001_initial'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
