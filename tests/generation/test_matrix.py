from __future__ import annotations

import json

import pytest

from generation.batching import derive_seed
from generation.matrix import lora_matrix_parse, matrix_parse
from generation.models import Campaign, Item
from generation.services import campaign_estimate, campaign_plan, lora_register, recipe_create
from studio.errors import InputError
from studio.launch import campaign_launch

CSV = (
    b"sku,product_type,name,color,material\n"
    b"A-1,sneaker,Aero,red,mesh\nA-2,boot,Trail,brown,leather\n"
)


@pytest.fixture
def loras(db, tmp_path):
    made = {}
    for name in ("style-a", "style-b"):
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(name.encode())
        made[name] = lora_register(name=name, file=str(path))
    return made


def launch(template_version, recipe, **overrides):
    arguments = {
        "name": "Matrix",
        "template_version": template_version,
        "recipe": recipe,
        "csv_bytes": CSV,
        "base_seed": 7,
    } | overrides
    return campaign_launch(**arguments)


def messages(exc: pytest.ExceptionInfo) -> str:
    return " | ".join(exc.value.messages())


def test_a_product_of_seeds_and_two_lora_weight_lists_makes_every_combination(
    template_version, recipe, loras
):
    matrix = {"seeds": 20, **lora_matrix_parse("style-a=0.4,0.8;style-b=0,0.5")}
    campaign = launch(template_version, recipe, matrix=matrix)
    assert campaign.items.count() == 2 * 20 * 4
    assert campaign.variations == 80
    assert campaign.matrix["seeds"] == 20
    assert campaign.matrix["loras"] == {"style-a:1": [0.4, 0.8], "style-b:1": [0.0, 0.5]}
    combos = {
        json.dumps(item.axes["lora"], sort_keys=True) for item in campaign.items.filter(row_index=0)
    }
    assert len(combos) == 4
    item = campaign.items.get(
        row_index=0, axes__seed=3, axes__lora={"style-a": 0.8, "style-b": 0.5}
    )
    assert [(p["name"], p["weight"]) for p in item.loras] == [("style-a", 0.8), ("style-b", 0.5)]
    assert item.provenance()["axes"] == {"seed": 3, "lora": {"style-a": 0.8, "style-b": 0.5}}
    # Weight 0 leaves the LoRA out of what the worker loads.
    zero = campaign.items.filter(row_index=0, axes__lora={"style-a": 0.4, "style-b": 0.0}).first()
    assert [p["name"] for p in zero.loras] == ["style-a"]


def test_the_same_row_and_seed_index_get_the_same_seed_in_every_cell(
    template_version, recipe, loras
):
    campaign = launch(
        template_version, recipe, matrix={"seeds": 3, "loras": {"style-a": [0.2, 0.6]}}
    )
    for row_index in (0, 1):
        for seed_index in range(3):
            seeds = set(
                campaign.items.filter(row_index=row_index, axes__seed=seed_index + 1).values_list(
                    "seed", flat=True
                )
            )
            assert seeds == {derive_seed(7, row_index, seed_index)}


def test_a_recipe_axis_runs_the_same_rows_and_seeds_under_each_recipe(
    template_version, recipe, base_model
):
    other = recipe_create(name="catalogue", base_model=base_model, steps=9, width=64, height=64)
    campaign = launch(
        template_version,
        recipe,
        matrix={"seeds": 2, "recipes": ["catalogue:1", "catalogue:2"]},
    )
    assert campaign.items.count() == 2 * 2 * 2
    by_recipe = {}
    for item in campaign.items.all():
        by_recipe.setdefault(item.axes["recipe"], set()).add((item.row_index, item.seed))
        assert item.params["steps"] == (9 if item.recipe_id == other.pk else 2)
    assert set(by_recipe) == {"catalogue v1", "catalogue v2"}
    assert by_recipe["catalogue v1"] == by_recipe["catalogue v2"]
    plan = campaign_plan(
        template_version=template_version,
        recipe=recipe,
        csv_bytes=CSV,
        matrix={"seeds": 2, "recipes": ["catalogue:1", "catalogue:2"]},
    )
    estimate = campaign_estimate(plan=plan)
    assert sorted(line.images for line in estimate.lines) == [4, 4]


def test_guidance_and_steps_lists_set_each_items_parameters(template_version, recipe):
    campaign = launch(template_version, recipe, matrix={"guidance": "5, 7.5", "steps": [10, 20]})
    assert campaign.items.count() == 2 * 4
    params = {(i.params["guidance_scale"], i.params["steps"]) for i in campaign.items.all()}
    assert params == {(5.0, 10), (5.0, 20), (7.5, 10), (7.5, 20)}


def test_zip_pairs_the_axes_up_instead_of_combining_them(template_version, recipe, loras):
    campaign = launch(
        template_version,
        recipe,
        variations=2,
        matrix={"mode": "zip", "guidance": [5, 7.5], "steps": [10, 20]},
    )
    # 2 zipped cells × 2 seeds (variations, not zipped) per row.
    assert campaign.items.count() == 2 * 2 * 2
    params = {(i.params["guidance_scale"], i.params["steps"]) for i in campaign.items.all()}
    assert params == {(5.0, 10), (7.5, 20)}


def test_zip_of_axes_of_different_lengths_is_refused_naming_them(template_version, recipe, loras):
    with pytest.raises(InputError) as exc:
        launch(
            template_version,
            recipe,
            matrix={
                "mode": "zip",
                "seeds": 20,
                **lora_matrix_parse("style-a=0.4,0.8;style-b=0,0.5"),
            },
        )
    assert "seeds 20" in messages(exc) and "LoRA weight sets 4" in messages(exc)
    assert not Campaign.objects.exists()


def test_twenty_seeds_and_a_thousand_images_per_row_fit_the_default_limits(settings):
    assert settings.STUDIO_MAX_VARIATIONS >= 20
    assert settings.STUDIO_MAX_MATRIX_ITEMS_PER_ROW >= 1000


def test_a_matrix_past_the_per_row_cap_is_refused_naming_the_axis_sizes(
    template_version, recipe, loras, settings
):
    settings.STUDIO_MAX_MATRIX_ITEMS_PER_ROW = 50
    with pytest.raises(InputError) as exc:
        launch(template_version, recipe, matrix={"seeds": 20, "guidance": [4, 5, 6]})
    assert exc.value.fields == {"matrix"}
    assert "20 seeds × 3 guidance scales = 60 images per row" in messages(exc)
    assert "STUDIO_MAX_MATRIX_ITEMS_PER_ROW" in messages(exc)
    assert not Item.objects.exists()


def test_a_matrix_past_the_campaign_cap_is_refused_naming_the_axis_sizes(
    template_version, recipe, settings
):
    settings.STUDIO_MAX_CAMPAIGN_ITEMS = 30
    with pytest.raises(InputError) as exc:
        launch(template_version, recipe, matrix={"seeds": 20})
    assert "2 rows × 20 seeds = 40 images" in messages(exc)
    assert "STUDIO_MAX_CAMPAIGN_ITEMS" in messages(exc)
    assert not Campaign.objects.exists()


def test_more_seeds_than_allowed_is_refused(template_version, recipe, settings):
    settings.STUDIO_MAX_VARIATIONS = 10
    with pytest.raises(InputError) as exc:
        launch(template_version, recipe, matrix={"seeds": 11})
    assert exc.value.fields == {"seeds"}
    assert "at most 10" in messages(exc)


@pytest.mark.parametrize(
    ("matrix", "field", "text"),
    [
        ({"loras": {"style-x": [0.5]}}, "lora_matrix", "unknown LoRA 'style-x'"),
        ({"loras": {"style-a:7": [0.5]}}, "lora_matrix", "'style-a' has no version 7"),
        ({"loras": {"style-a": [0.5, 9]}}, "lora_matrix", "style-a weight 9 is outside -4…4"),
        ({"loras": {"style-a": []}}, "lora_matrix", "style-a: no weights given"),
        ({"loras": {"style-a": ["strong"]}}, "lora_matrix", "'strong' is not a number"),
        ({"loras": {"style-a": [0.5, 0.5]}}, "lora_matrix", "0.5 is listed twice"),
        ({"loras": {}}, "lora_matrix", "the axis is empty"),
        ({"lora_sets": []}, "lora_matrix", "the axis is empty"),
        ({"lora_sets": [{"name": "x", "weights": {"nope": 1}}]}, "lora_matrix", "'nope'"),
        ({"seeds": 0}, "seeds", "the axis is empty"),
        ({"seeds": []}, "seeds", "the axis is empty"),
        ({"seeds": [1, -5]}, "seeds", "-5 is outside"),
        ({"recipes": ["missing"]}, "matrix_recipes", "unknown recipe 'missing'"),
        ({"recipes": []}, "matrix_recipes", "the axis is empty"),
        ({"guidance": [7, 31]}, "guidance", "31 is outside 0…30"),
        ({"guidance": []}, "guidance", "the axis is empty"),
        ({"steps": [0]}, "steps", "0 is outside 1…200"),
        ({"steps": ["many"]}, "steps", "'many' is not a number"),
        ({"mode": "cross"}, "matrix", "mode must be product or zip"),
        ({"colour": [1]}, "matrix", "unknown axis 'colour'"),
    ],
)
def test_each_bad_axis_is_refused_naming_the_axis_and_value_and_writes_nothing(
    template_version, recipe, loras, matrix, field, text
):
    with pytest.raises(InputError) as exc:
        launch(template_version, recipe, matrix=matrix)
    assert exc.value.fields == {field}
    assert text in messages(exc)
    assert not Campaign.objects.exists() and not Item.objects.exists()


def test_lora_matrix_text_that_is_not_name_equals_weights_is_refused():
    with pytest.raises(InputError) as exc:
        lora_matrix_parse("style-a 0.4")
    assert "write NAME=WEIGHT,WEIGHT" in messages(exc)
    with pytest.raises(InputError) as exc:
        lora_matrix_parse("[{")
    assert "not valid JSON" in messages(exc)


def test_named_lora_combinations_are_one_axis_value_each(template_version, recipe, loras):
    sets = lora_matrix_parse(
        '[{"name": "soft", "weights": {"style-a": 0.3}},'
        ' {"name": "bold", "weights": {"style-a": 0.9, "style-b": 0.6}}]'
    )
    matrix = matrix_parse(sets | {"seeds": 2})
    assert matrix.cell_count == 4 and matrix.describe() == "2 seeds × 2 LoRA weight sets"
    campaign = launch(template_version, recipe, matrix=sets)
    assert {i.axes["lora_set"] for i in campaign.items.all()} == {"soft", "bold"}


def test_a_recipe_axis_cannot_be_combined_with_recipes_by_purpose(
    template_version, recipe, base_model
):
    hero = recipe_create(name="hero", base_model=base_model, purpose="hero", width=64, height=64)
    with pytest.raises(InputError) as exc:
        launch(template_version, recipe, recipes={"hero": hero}, matrix={"recipes": ["catalogue"]})
    assert exc.value.fields == {"matrix_recipes"}


def test_a_campaign_without_a_matrix_still_records_each_items_seed_number(template_version, recipe):
    campaign = launch(template_version, recipe, variations=3)
    assert campaign.matrix == {}
    assert campaign.items.count() == 6
    assert sorted(campaign.items.filter(row_index=0).values_list("axes__seed", flat=True)) == [
        1,
        2,
        3,
    ]
    first = campaign.items.get(row_index=1, variation=2)
    assert first.seed == derive_seed(7, 1, 2)


def cli(csv_path, *extra) -> tuple[int, str]:
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    out = io.StringIO()
    args = ["campaign_create", "--name", "CLI", "--template", "product-photo"]
    args += ["--csv", str(csv_path), "--recipe", "catalogue", "--json", *extra]
    try:
        call_command(*args, stdout=out)
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, out.getvalue()


def test_the_command_line_makes_a_seed_and_lora_matrix(template_version, recipe, loras, tmp_path):
    csv_path = tmp_path / "rows.csv"
    csv_path.write_bytes(CSV)
    code, out = cli(csv_path, "--seeds", "20", "--lora-matrix", "style-a=0.4,0.8;style-b=0,0.5")
    assert code == 0
    assert json.loads(out)["items"] == 2 * 20 * 4
    campaign = Campaign.objects.get()
    assert campaign.matrix["seeds"] == 20 and "loras" in campaign.matrix


def test_the_command_line_reads_a_matrix_file_and_its_options_override_it(
    template_version, recipe, tmp_path
):
    csv_path = tmp_path / "rows.csv"
    csv_path.write_bytes(CSV)
    spec = tmp_path / "matrix.json"
    spec.write_text(json.dumps({"seeds": 5, "guidance": [5, 7.5], "mode": "product"}))
    code, out = cli(csv_path, "--matrix", str(spec), "--seeds", "3")
    assert code == 0
    assert json.loads(out)["items"] == 2 * 3 * 2


@pytest.mark.parametrize(
    ("extra", "text"),
    [
        (["--lora-matrix", "style-x=0.5"], "lora_matrix: LoRA weight sets: unknown LoRA 'style-x'"),
        (["--lora-matrix", "style-a=7"], "style-a weight 7 is outside -4…4"),
        (["--seeds", "20", "--lora-matrix", "style-a=0.4,0.8", "--zip"], "seeds 20"),
        (["--recipes", "catalogue,missing"], "unknown recipe 'missing'"),
        (["--steps", "0"], "steps: step counts: value 0 is outside 1…200"),
        (["--matrix", "/nonexistent.json"], "matrix: cannot read /nonexistent.json"),
    ],
)
def test_the_command_line_exits_2_with_the_matrix_message_and_creates_nothing(
    template_version, recipe, loras, tmp_path, extra, text
):
    csv_path = tmp_path / "rows.csv"
    csv_path.write_bytes(CSV)
    code, out = cli(csv_path, *extra)
    assert code == 2
    assert text in out
    assert not Campaign.objects.exists()


def test_the_command_line_refuses_a_matrix_past_the_cap_naming_the_axis_sizes(
    template_version, recipe, loras, tmp_path, settings
):
    settings.STUDIO_MAX_MATRIX_ITEMS_PER_ROW = 10
    csv_path = tmp_path / "rows.csv"
    csv_path.write_bytes(CSV)
    code, out = cli(csv_path, "--seeds", "20", "--lora-matrix", "style-a=0.4,0.8")
    assert code == 2
    assert "20 seeds × 2 LoRA weight sets = 40 images per row" in out


# --- Pages --------------------------------------------------------------------------------

HTMX = {"HTTP_HX_REQUEST": "true"}


def page_form(template_version, recipe, **overrides) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {
        "name": "Matrix page",
        "template": template_version.pk,
        "recipe": recipe.pk,
        "csv_file": SimpleUploadedFile("rows.csv", CSV, content_type="text/csv"),
        "variations": 20,
        "seed_policy": "fixed",
        "base_seed": "7",
        "lora_matrix": "style-a=0.4,0.8;style-b=0,0.5",
    } | overrides


def test_preview_shows_the_count_per_axis_the_total_the_first_images_and_the_estimate(
    creative_client, template_version, recipe, loras
):
    from django.urls import reverse

    response = creative_client.post(
        reverse("generation:campaign_preview"), page_form(template_version, recipe), **HTMX
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "2 rows" in page and "20 seeds" in page and "4 LoRA weight sets" in page
    assert "160 images" in page
    assert page.count("<tr><td>") == 8  # the first images with their parameters
    assert "style-a 0.4" in page
    assert "Estimate:" in page
    assert not Campaign.objects.exists()


def test_preview_shows_a_bad_lora_matrix_on_its_field(
    creative_client, template_version, recipe, loras
):
    from django.urls import reverse

    response = creative_client.post(
        reverse("generation:campaign_preview"),
        page_form(template_version, recipe, lora_matrix="style-a=0.4;style-q=1"),
        **HTMX,
    )
    page = response.content.decode()
    assert "LoRA weight matrix" in page and "unknown LoRA &#x27;style-q&#x27;" in page
    assert not Campaign.objects.exists()


def test_create_with_zip_of_different_lengths_shows_the_error_and_writes_nothing(
    creative_client, template_version, recipe, loras
):
    from django.urls import reverse

    response = creative_client.post(
        reverse("generation:campaign_create"),
        page_form(template_version, recipe, guidance="5,7", steps="10,20,30", matrix_mode="zip"),
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert "zip pairs values up" in page and "guidance scales 2" in page
    assert not Campaign.objects.exists()


def test_create_with_a_recipe_comparison_makes_both_recipes_items(
    creative_client, template_version, recipe, base_model
):
    from django.urls import reverse

    other = recipe_create(name="catalogue", base_model=base_model, steps=9, width=64, height=64)
    response = creative_client.post(
        reverse("generation:campaign_create"),
        page_form(
            template_version,
            other,  # the active version; the comparison replaces it
            variations=2,
            lora_matrix="",
            matrix_recipes=[recipe.pk, other.pk],
        ),
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.items.count() == 2 * 2 * 2
    assert campaign.matrix["recipes"] == ["catalogue:1", "catalogue:2"]


def test_the_campaign_page_draws_rows_by_the_chosen_axis(
    creative_client, template_version, recipe, loras
):
    from django.urls import reverse

    campaign = launch(
        template_version, recipe, matrix={"seeds": 3, **lora_matrix_parse("style-a=0.4,0.8")}
    )
    url = reverse("generation:campaign", args=[campaign.pk])
    page = creative_client.get(url).content.decode()
    assert "?grid=lora" in page and "?grid=seed" in page
    page = creative_client.get(url + "?grid=lora").content.decode()
    assert 'class="matrix-grid"' in page
    assert '<th scope="col">style-a 0.4</th>' in page and '<th scope="col">style-a 0.8</th>' in page
    assert page.count('class="grid-cell"') == 2 * 2  # 2 rows × 2 weights, seed 1 only
    assert "Seed 1 of 3" in page
    page = creative_client.get(url + "?grid=lora&seed=2").content.decode()
    assert "Seed 2 of 3" in page
    page = creative_client.get(url + "?grid=seed").content.decode()
    assert page.count('class="grid-cell"') == 2 * 3 * 2


def test_the_campaign_page_refuses_a_grid_by_an_axis_it_does_not_have(
    creative_client, template_version, recipe
):
    from django.urls import reverse

    campaign = launch(template_version, recipe, variations=2)
    response = creative_client.get(
        reverse("generation:campaign", args=[campaign.pk]) + "?grid=recipe"
    )
    assert response.status_code == 400
    assert "no &#x27;recipe&#x27; axis" in response.content.decode()


def test_each_items_matrix_cell_is_a_catalogue_tag_that_search_finds(
    template_version, recipe, loras
):
    from catalogue.models import Entry
    from catalogue.selectors import entry_search
    from catalogue.services import entries_sync

    campaign = launch(
        template_version,
        recipe,
        matrix={"loras": {"style-a": [0.4, 0.8]}, "guidance": [5, 7.5]},
    )
    entries_sync(item_ids=list(campaign.items.values_list("pk", flat=True)))
    item = campaign.items.get(row_index=0, axes__lora={"style-a": 0.8}, axes__guidance=7.5)
    tags = {t["tag"]: t["source"] for t in Entry.objects.get(item=item).tags}
    assert tags["style-a 0.8"] == "matrix" and tags["guidance 7.5"] == "matrix"
    results = entry_search(query='"style-a 0.8" "guidance 7.5"', per_page=100, facets=False)
    assert {e.item_id for e in results.entries} == set(
        campaign.items.filter(axes__lora={"style-a": 0.8}, axes__guidance=7.5).values_list(
            "pk", flat=True
        )
    )
    assert item.provenance()["axes"] == {"seed": 1, "lora": {"style-a": 0.8}, "guidance": 7.5}


# --- The demo and the worker ----------------------------------------------------------------


def test_seed_demo_registers_role_loras_and_a_preset_per_template_and_twice_adds_nothing(
    db, tiny_model_dir
):
    from generation.demo import PRESETS, demo_seed, preset_matrix
    from generation.models import LoraVersion, Recipe

    first = demo_seed(models_dir=tiny_model_dir)
    again = demo_seed(models_dir=tiny_model_dir)
    names = {lora.name for lora in first["loras"]}
    assert names == {"ecommerce-clean", "brand-warm", "game-painterly", "game-pixel"}
    assert [r.pk for r in first["recipes"]] == [r.pk for r in again["recipes"]]
    assert LoraVersion.objects.filter(name__in=names).count() == 4
    assert len({lora.sha256 for lora in first["loras"]}) == 4  # four different LoRAs
    product = Recipe.objects.get(name="demo-product", is_active=True)
    assert [rl.lora.name for rl in product.loras.all()] == ["ecommerce-clean"]
    assert set(PRESETS) == {"product-photo", "game-assets", "social-post"}
    game = matrix_parse(preset_matrix("game-assets"))
    assert game.cell_count == 20 * 4
    social = matrix_parse(preset_matrix("social-post"))
    assert [f"{r.name}:{r.version}" for r in social.recipes] == ["demo-social:1", "demo-social:2"]


def test_the_game_asset_preset_makes_20_seeds_by_4_lora_sets_per_row_and_the_worker_uses_them(
    db, tiny_model_dir
):
    import io

    import numpy as np
    from django.core.files.storage import default_storage
    from PIL import Image

    from generation.demo import DEMO_DATA, demo_seed, preset_matrix
    from generation.models import PromptTemplate, Recipe
    from generation.services import items_generate

    demo_seed(models_dir=tiny_model_dir)
    template = PromptTemplate.objects.get(name="game-assets").active_version()
    rows = (DEMO_DATA / "game_assets.csv").read_bytes().splitlines()
    campaign = launch(
        template,
        Recipe.objects.get(name="demo-game", is_active=True),
        csv_bytes=b"\n".join(rows[:3]) + b"\n",
        matrix=preset_matrix("game-assets"),
    )
    assert campaign.items.count() == 2 * 20 * 4
    # One seed, the four LoRA sets: the worker loads each set's LoRAs at its weights.
    same_seed = list(campaign.items.filter(row_index=0, axes__seed=1).order_by("variation"))
    items_generate(item_ids=[str(item.pk) for item in same_seed])

    def pixels(item):
        item.refresh_from_db()
        assert item.status != Item.Status.FAILED, item.error
        with default_storage.open(item.image.name, "rb") as fh:
            return np.asarray(Image.open(io.BytesIO(fh.read())).convert("RGB")).astype(np.int16)

    images = [pixels(item) for item in same_seed]
    assert len({item.seed for item in same_seed}) == 1
    assert all(np.abs(images[0] - other).mean() > 0.5 for other in images[1:])


# --- The A/B trial: a recipe axis on a sample of rows --------------------------------------


@pytest.fixture
def two_versions(base_model, recipe):
    # ``recipe`` is catalogue v1; v2 becomes the active one.
    return recipe, recipe_create(
        name="catalogue", base_model=base_model, steps=5, width=64, height=64
    )


def test_a_trial_runs_both_recipes_on_the_same_sample_rows_and_seeds(
    creative_client, campaign, two_versions
):
    from django.urls import reverse

    v1, v2 = two_versions
    response = creative_client.post(
        reverse("generation:campaign_trial", args=[campaign.pk]),
        {"recipe_a": v1.pk, "recipe_b": v2.pk, "rows": 4, "seeds": 2},
    )
    trial = Campaign.objects.exclude(pk=campaign.pk).get()
    assert response.status_code == 302
    assert response["Location"].endswith(f"/campaigns/{trial.pk}/?grid=recipe")
    assert trial.items.count() == 4 * 2 * 2
    assert trial.matrix["recipes"] == ["catalogue:1", "catalogue:2"]
    assert trial.quality_policy.approve_at == campaign.quality_policy.approve_at
    sample = [row["sku"] for row in trial.csv_rows]
    assert sample == [campaign.csv_rows[i]["sku"] for i in (0, 5, 10, 15)]
    pairs = {}
    for item in trial.items.all():
        pairs.setdefault(item.recipe_id, set()).add((item.row_index, item.seed))
    assert pairs[v1.pk] == pairs[v2.pk]


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"rows": 4, "same": True}, "choose two different recipes"),
        ({"rows": 999}, "rows: must be between 1 and 20, got 999"),
    ],
)
def test_a_trial_between_a_version_and_itself_or_past_the_rows_is_refused(
    creative_client, campaign, two_versions, data, text
):
    from django.urls import reverse

    v1, v2 = two_versions
    response = creative_client.post(
        reverse("generation:campaign_trial", args=[campaign.pk]),
        {"recipe_a": v1.pk, "recipe_b": v1.pk if data.get("same") else v2.pk, "rows": data["rows"]}
        | {"seeds": 1},
        follow=True,
    )
    assert text in response.content.decode()
    assert Campaign.objects.count() == 1


def test_a_trial_of_a_campaign_without_rows_is_refused(campaign, two_versions):
    from studio.launch import trial_launch

    Campaign.objects.filter(pk=campaign.pk).update(csv_rows=[])
    campaign.refresh_from_db()
    with pytest.raises(InputError) as exc:
        trial_launch(campaign=campaign, recipes=list(two_versions), rows=2)
    assert "has no rows to sample" in messages(exc)


def test_the_side_by_side_page_shows_acceptance_cost_and_a_verdict_and_promotes_the_winner(
    manager_client, template_version, two_versions
):
    from decimal import Decimal

    from django.urls import reverse

    v1, v2 = two_versions
    trial = launch(
        template_version, v2, matrix={"seeds": 3, "recipes": ["catalogue:1", "catalogue:2"]}
    )
    url = reverse("generation:campaign", args=[trial.pk])
    page = manager_client.get(url + "?grid=recipe").content.decode()
    assert "No verdict yet: too few decided images" in page
    trial.items.filter(recipe=v1).update(status="approved", cost=Decimal("0.01"))
    v2_items = list(trial.items.filter(recipe=v2).values_list("pk", flat=True))
    Item.objects.filter(pk__in=v2_items[:3]).update(status="approved", cost=Decimal("0.01"))
    Item.objects.filter(pk__in=v2_items[3:]).update(status="rejected", cost=Decimal("0.01"))
    page = manager_client.get(url + "?grid=recipe").content.decode()
    assert "catalogue v1 wins: 100% accepted against 50% for catalogue v2" in page
    assert (
        '<th scope="col">catalogue v1</th>' in page and '<th scope="col">catalogue v2</th>' in page
    )
    assert "Promote" in page
    response = manager_client.post(
        reverse("generation:campaign_promote", args=[trial.pk]), {"recipe": v1.pk}
    )
    assert response.status_code == 302
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert v1.is_active and not v2.is_active


def test_promoting_a_recipe_the_campaign_does_not_compare_changes_nothing(
    manager_client, campaign, base_model, recipe
):
    from django.urls import reverse

    other = recipe_create(name="other", base_model=base_model, width=64, height=64, activate=False)
    response = manager_client.post(
        reverse("generation:campaign_promote", args=[campaign.pk]),
        {"recipe": other.pk},
        follow=True,
    )
    assert "choose one of the recipes this campaign compares" in response.content.decode()
    other.refresh_from_db()
    assert not other.is_active


def test_only_managers_promote_a_recipe(creative_client, campaign, recipe):
    from django.urls import reverse

    url = reverse("generation:campaign_promote", args=[campaign.pk])
    assert creative_client.post(url, {"recipe": recipe.pk}).status_code == 403
