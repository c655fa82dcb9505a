"""Item.template_version: the template version each item's prompt was expanded from (a
template axis of the variation matrix varies it). Existing items take their campaign's."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0005_variation_matrix"),
    ]

    operations = [
        migrations.AddField(
            model_name="item",
            name="template_version",
            field=models.ForeignKey(
                blank=True,
                help_text="The template version its prompt was expanded from (a template axis "
                "varies it; else the campaign's).",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="generation.prompttemplateversion",
            ),
        ),
        migrations.RunSQL(
            sql="""
                UPDATE generation_item AS item
                   SET template_version_id = campaign.template_version_id
                  FROM generation_campaign AS campaign
                 WHERE item.campaign_id = campaign.id
                   AND item.template_version_id IS NULL
            """,
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
