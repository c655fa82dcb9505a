"""A/B of prompt template versions: the template axis of the variation matrix."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from generation.matrix import matrix_parse
from generation.models import Campaign, Item
from generation.services import prompt_template_version_create
from studio.errors import InputError
from studio.launch import campaign_launch, trial_launch

CSV = (
    b"sku,product_type,name,color,material\n"
    b"A-1,sneaker,Aero,red,mesh\nA-2,boot,Trail,brown,leather\n"
)
V2_BODY = "catalogue shot: {name}, a {color} {product_type} in {material}, soft light"


@pytest.fixture
def versions(template_version):
    """product-photo v1 (the conftest's) and v2, which becomes the active one."""
    return template_version, prompt_template_version_create(
        name="product-photo", body=V2_BODY, negative_prompt="watermark"
    )


def launch(template_version, recipe, **overrides):
    arguments = {
        "name": "Templates",
        "template_version": template_version,
        "recipe": recipe,
        "csv_bytes": CSV,
        "base_seed": 7,
    } | overrides
    return campaign_launch(**arguments)


def messages(exc: pytest.ExceptionInfo) -> str:
    return " | ".join(exc.value.messages())


def test_a_template_axis_expands_each_items_prompt_from_its_own_version_on_the_same_seeds(
    versions, recipe
):
    v1, v2 = versions
    campaign = launch(
        v2, recipe, matrix={"seeds": 3, "templates": ["product-photo v1", "product-photo v2"]}
    )
    assert campaign.items.count() == 2 * 3 * 2
    assert campaign.template_version == v1  # the axis's first version is the campaign's
    assert campaign.matrix["templates"] == ["product-photo v1", "product-photo v2"]
    first = campaign.items.get(row_index=0, axes__seed=1, template_version=v1)
    second = campaign.items.get(row_index=0, axes__seed=1, template_version=v2)
    assert first.prompt.startswith("studio product photo of a red mesh sneaker, Aero")
    assert second.prompt == "catalogue shot: Aero, a red sneaker in mesh, soft light"
    assert (first.negative_prompt, second.negative_prompt) == ("blurry, text", "watermark")
    assert first.axes == {"seed": 1, "template": "product-photo v1"}
    assert first.seed == second.seed
    pairs: dict = {}
    for item in campaign.items.all():
        pairs.setdefault(item.template_version_id, set()).add((item.row_index, item.seed))
    assert pairs[v1.pk] == pairs[v2.pk]


def test_a_campaign_without_a_template_axis_records_its_template_on_every_item(
    template_version, recipe
):
    campaign = launch(template_version, recipe, variations=2)
    assert set(campaign.items.values_list("template_version", flat=True)) == {template_version.pk}
    assert "template" not in campaign.items.first().axes


@pytest.mark.parametrize(
    "refs",
    [
        ["product-photo v1", "product-photo v2"],
        "product-photo:1, product-photo:2",
        "product-photo v1 product-photo v2",
    ],
)
def test_template_versions_are_named_as_name_vn_name_colon_n_or_their_ids(versions, refs):
    matrix = matrix_parse({"template": refs})
    assert matrix.templates == list(versions)
    by_id = matrix_parse({"templates": [v.pk for v in versions]})
    assert by_id.templates == list(versions)
    assert matrix.describe() == "1 seeds × 2 template versions"


def test_versions_of_two_different_templates_are_refused_naming_the_field(versions, recipe):
    other = prompt_template_version_create(name="game-asset", body="{name} as a game sprite")
    with pytest.raises(InputError) as exc:
        launch(versions[0], recipe, matrix={"templates": ["product-photo v1", str(other)]})
    assert exc.value.errors[0].field == "matrix_templates"
    assert "compare versions of one template, not different templates" in messages(exc)
    assert Campaign.objects.count() == 0


@pytest.mark.parametrize(
    ("refs", "text"),
    [
        (["product-photo v9"], "unknown template version 'product-photo v9'"),
        (["product-photo v1", "product-photo:1"], "is listed twice"),
        ([], "the axis is empty"),
        (["nothing-like-it"], "unknown template version 'nothing-like-it'"),
    ],
)
def test_bad_template_versions_are_refused_naming_the_axis_and_writing_nothing(
    versions, recipe, refs, text
):
    with pytest.raises(InputError) as exc:
        launch(versions[0], recipe, matrix={"templates": refs})
    assert exc.value.errors[0].field == "matrix_templates"
    assert "template versions: " in messages(exc) and text in messages(exc)
    assert Campaign.objects.count() == 0


def test_a_version_whose_placeholders_the_rows_lack_is_refused(versions, recipe):
    prompt_template_version_create(name="product-photo", body="{name} for {season}")
    with pytest.raises(InputError) as exc:
        launch(versions[0], recipe, matrix={"templates": ["product-photo v1", "product-photo v3"]})
    assert "season" in messages(exc)
    assert Campaign.objects.count() == 0


def test_the_catalogue_entry_the_ledger_and_the_prompts_report_take_the_items_version(
    versions, recipe
):
    from catalogue.models import Entry
    from catalogue.reports.selectors import report_prompts
    from catalogue.services import automatic_tags, entries_sync
    from generation.models import CostEntry
    from generation.services.ledger import cost_record

    v1, v2 = versions
    campaign = launch(v1, recipe, matrix={"templates": [v1.pk, v2.pk]})
    items = list(campaign.items.all())
    entries_sync(item_ids=[item.pk for item in items])
    for item in items:
        assert Entry.objects.get(item=item).template_version_id == item.template_version_id
    second = campaign.items.filter(template_version=v2).first()
    assert {"tag": "template product-photo v2", "source": "matrix", "score": None} in (
        automatic_tags(second)
    )
    cost_record(key="t-1", kind="compute", quantity=2, unit="s", rate="0.01", item_id=second.pk)
    assert CostEntry.objects.get(key="t-1").template_version_id == v2.pk
    # v1's images approved, v2's rejected: the report tells the versions apart.
    Item.objects.filter(template_version=v1).update(status="approved")
    Item.objects.filter(template_version=v2).update(status="rejected")
    entries_sync(item_ids=[item.pk for item in items])
    rows = {row["label"]: row for row in report_prompts()["templates"]}
    assert rows["product-photo v1"]["acceptance"] == 1.0
    assert rows["product-photo v2"]["acceptance"] == 0.0


def test_the_migration_backfills_items_from_their_campaign_in_one_statement(
    template_version, recipe
):
    import importlib

    migration = importlib.import_module("generation.migrations.0006_item_template_version")
    campaign = launch(template_version, recipe, variations=2)
    campaign.items.update(template_version=None)
    with connection.cursor() as cursor:
        cursor.execute(migration.Migration.operations[1].sql)
    assert set(campaign.items.values_list("template_version", flat=True)) == {template_version.pk}


# --- The grid, the A/B trial, promoting the winner -------------------------------------------


def test_the_campaign_page_draws_rows_by_template_version(creative_client, versions, recipe):
    campaign = launch(versions[0], recipe, matrix={"templates": [v.pk for v in versions]})
    page = creative_client.get(
        reverse("generation:campaign", args=[campaign.pk]) + "?grid=template"
    ).content.decode()
    assert "by template version" in page
    assert '<th scope="col">product-photo v1</th>' in page
    assert '<th scope="col">product-photo v2</th>' in page
    assert "Template versions on the same rows and seeds" in page


def test_a_template_trial_runs_both_versions_on_the_same_sample_rows_and_seeds(
    creative_client, campaign, versions
):
    v1, v2 = versions
    response = creative_client.post(
        reverse("generation:campaign_trial", args=[campaign.pk]),
        {"template_a": v1.pk, "template_b": v2.pk, "rows": 3, "seeds": 2},
    )
    trial = Campaign.objects.exclude(pk=campaign.pk).get()
    assert response.status_code == 302
    assert response["Location"].endswith(f"/campaigns/{trial.pk}/?grid=template")
    assert trial.items.count() == 3 * 2 * 2
    assert trial.recipe_id == campaign.recipe_id
    assert trial.matrix["templates"] == ["product-photo v1", "product-photo v2"]
    pairs: dict = {}
    for item in trial.items.all():
        pairs.setdefault(item.template_version_id, set()).add((item.row_index, item.seed))
    assert pairs[v1.pk] == pairs[v2.pk] and len(pairs[v1.pk]) == 6


def test_a_template_trial_between_a_version_and_itself_or_two_templates_is_refused(
    creative_client, campaign, versions
):
    other = prompt_template_version_create(name="game-asset", body="{name} as a game sprite")
    url = reverse("generation:campaign_trial", args=[campaign.pk])
    same = creative_client.post(
        url,
        {"template_a": versions[0].pk, "template_b": versions[0].pk, "rows": 2, "seeds": 1},
        follow=True,
    )
    assert "choose two different versions of one template" in same.content.decode()
    mixed = creative_client.post(
        url,
        {"template_a": versions[0].pk, "template_b": other.pk, "rows": 2, "seeds": 1},
        follow=True,
    )
    assert "not two different templates" in mixed.content.decode()
    half = creative_client.post(
        url, {"template_a": versions[0].pk, "rows": 2, "seeds": 1}, follow=True
    )
    assert "choose both template versions to compare" in half.content.decode()
    with pytest.raises(InputError) as exc:
        trial_launch(campaign=campaign, recipes=[campaign.recipe], templates=list(versions), rows=2)
    assert "not both" in messages(exc)
    assert Campaign.objects.count() == 1


def test_the_side_by_side_page_gives_a_verdict_and_a_manager_promotes_the_winning_version(
    manager_client, versions, recipe
):
    v1, v2 = versions
    trial = launch(v2, recipe, matrix={"seeds": 3, "templates": [v1.pk, v2.pk]})
    url = reverse("generation:campaign", args=[trial.pk]) + "?grid=template"
    assert "No verdict yet: too few decided images" in manager_client.get(url).content.decode()
    trial.items.filter(template_version=v1).update(status="approved", cost=Decimal("0.01"))
    v2_items = list(trial.items.filter(template_version=v2).values_list("pk", flat=True))
    Item.objects.filter(pk__in=v2_items[:3]).update(status="approved", cost=Decimal("0.01"))
    Item.objects.filter(pk__in=v2_items[3:]).update(status="rejected", cost=Decimal("0.01"))
    page = manager_client.get(url).content.decode()
    assert "product-photo v1 wins: 100% accepted against 50% for product-photo v2" in page
    assert f'name="template" value="{v1.pk}"' in page
    promote = reverse("generation:campaign_promote", args=[trial.pk])
    response = manager_client.post(promote, {"template": v1.pk})
    assert response["Location"].endswith("?grid=template")
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert v1.is_active and not v2.is_active
    # A version the trial does not compare is refused.
    other = prompt_template_version_create(name="game-asset", body="{name} as a game sprite")
    refused = manager_client.post(promote, {"template": other.pk}, follow=True)
    assert "template: choose one of the template versions" in refused.content.decode()


# --- The command line and the page ----------------------------------------------------------


def test_the_command_line_makes_a_template_axis(versions, recipe, tmp_path, capsys):
    path = tmp_path / "rows.csv"
    path.write_bytes(CSV)
    call_command(
        "campaign_create",
        "--name", "CLI templates", "--template", "product-photo", "--csv", str(path),
        "--recipe", recipe.name, "--templates", "product-photo v1, product-photo v2", "--json",
    )  # fmt: skip
    campaign = Campaign.objects.get(name="CLI templates")
    assert campaign.items.count() == 4
    assert set(campaign.items.values_list("template_version", flat=True)) == {
        v.pk for v in versions
    }


def test_the_command_line_refuses_two_templates_with_exit_2(versions, recipe, tmp_path):
    from django.core.management.base import CommandError

    other = prompt_template_version_create(name="game-asset", body="{name} as a game sprite")
    path = tmp_path / "rows.csv"
    path.write_bytes(CSV)
    with pytest.raises(CommandError) as exc:
        call_command(
            "campaign_create",
            "--name", "Bad", "--template", "product-photo", "--csv", str(path),
            "--recipe", recipe.name, "--templates", f"product-photo v1, {other}",
        )  # fmt: skip
    assert exc.value.returncode == 2
    assert "not different templates" in str(exc.value)
    assert Campaign.objects.count() == 0


def test_the_create_page_compares_template_versions_and_refuses_two_templates(
    creative_client, versions, recipe
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    other = prompt_template_version_create(name="game-asset", body="{name} as a game sprite")
    url = reverse("generation:campaign_create")

    def post(chosen):
        return creative_client.post(
            url,
            {
                "name": "Page templates",
                "template": versions[1].pk,
                "recipe": recipe.pk,
                "csv_file": SimpleUploadedFile("rows.csv", CSV, content_type="text/csv"),
                "variations": 1,
                "seed_policy": "fixed",
                "base_seed": "7",
                "matrix_templates": [v.pk for v in chosen],
            },
        )

    bad = post([versions[0], other])
    assert bad.status_code == 400  # the form again, the error on its field
    assert "compare versions of one template" in bad.content.decode()
    assert Campaign.objects.count() == 0
    good = post(list(versions))
    assert good.status_code == 302, good.content.decode()[:2000]
    campaign = Campaign.objects.get()
    assert campaign.items.filter(template_version=versions[0]).count() == 2
    assert campaign.items.filter(template_version=versions[1]).count() == 2
