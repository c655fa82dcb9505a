"""Entries know their asset's status (withdrawn assets leave the default search), filled in
for the entries already there; the assets' own search vector, which nothing reads since the
catalogue searches entries, is dropped."""

from django.db import migrations, models

# One statement, however many entries: the status of each entry's asset, if it has one.
BACKFILL = """
UPDATE catalogue_entry AS e SET asset_status = a.status
FROM catalogue_asset AS a
WHERE a.item_id = e.item_id AND e.asset_status IS DISTINCT FROM a.status
"""


class Migration(migrations.Migration):
    dependencies = [
        ("catalogue", "0005_entry_tags"),
    ]

    operations = [
        migrations.AddField(
            model_name="entry",
            name="asset_status",
            field=models.CharField(blank=True, db_default="", default="", max_length=20),
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop, elidable=True),
        migrations.RemoveIndex(
            model_name="asset",
            name="asset_search_gin",
        ),
        migrations.RemoveField(
            model_name="asset",
            name="search_vector",
        ),
        migrations.AddIndex(
            model_name="asset",
            index=models.Index(
                condition=models.Q(("status", "withdrawn")),
                fields=["image"],
                name="asset_withdrawn_image",
            ),
        ),
        migrations.AddIndex(
            model_name="asset",
            index=models.Index(
                condition=models.Q(("status", "withdrawn")),
                fields=["thumbnail"],
                name="asset_withdrawn_thumbnail",
            ),
        ),
    ]
