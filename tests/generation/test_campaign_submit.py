from __future__ import annotations

import pytest

from generation.batching import derive_seed
from generation.models import Campaign, Item, PromptTemplateVersion
from generation.services import prompt_template_version_create, recipe_create
from review.models import QualityPolicy
from studio.errors import InputError
from studio.launch import campaign_launch


def submit(template_version, recipe, csv_bytes, **overrides):
    arguments = {
        "name": "Test",
        "template_version": template_version,
        "recipe": recipe,
        "csv_bytes": csv_bytes,
        "variations": 2,
        "base_seed": 7,
    } | overrides
    return campaign_launch(**arguments)


def test_it_creates_one_item_per_row_and_variation_with_resolved_prompts(
    template_version, recipe, products_csv, handoffs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        campaign = submit(template_version, recipe, products_csv)
    assert campaign.items.count() == 40
    first = campaign.items.get(row_index=0, variation=0)
    assert first.prompt.startswith("studio product photo of a red mesh sneaker, Aero Runner")
    assert first.negative_prompt == "blurry, text"
    assert first.row_data["sku"] == "SH-1001"
    assert first.params["steps"] == 2 and first.params["width"] == 64
    assert first.base_model == recipe.base_model
    assert first.status == Item.Status.QUEUED
    # One generation job per batch of 4, and one "index" hand-off, all after commit.
    assert not handoffs
    for callback in callbacks:
        callback()
    jobs = [job for job, _ids in handoffs]
    assert jobs.count("generation.jobs.generate_items") == 10
    assert jobs.count("catalogue.jobs.index_items") == 1
    assert len(jobs) == 11


def test_it_derives_reproducible_distinct_seeds_from_the_base_seed(
    template_version, recipe, products_csv
):
    campaign = submit(template_version, recipe, products_csv)
    seeds = list(campaign.items.values_list("seed", flat=True))
    assert len(set(seeds)) == len(seeds)
    item = campaign.items.get(row_index=3, variation=1)
    assert item.seed == derive_seed(7, 3, 1)


def test_it_batches_items_into_jobs_of_the_configured_size(
    settings, template_version, recipe, products_csv
):
    # 5, not the default 4: the test fails if the setting the backend uses is not read.
    settings.STUDIO_BATCH_SIZE_DIFFUSERS = 5
    campaign = submit(template_version, recipe, products_csv)
    job_ids = list(campaign.items.values_list("job_id", flat=True))
    assert len(job_ids) == 40
    assert len(set(job_ids)) == 8
    assert all(job_ids.count(job_id) == 5 for job_id in set(job_ids))


def test_it_creates_the_quality_policy_with_the_given_thresholds(
    template_version, recipe, products_csv
):
    campaign = submit(template_version, recipe, products_csv, approve_at=0.8, reject_below=0.3)
    policy = QualityPolicy.objects.get(campaign=campaign)
    assert (policy.approve_at, policy.reject_below) == (0.8, 0.3)


@pytest.mark.parametrize(
    "csv_bytes, overrides, message",
    [
        (b"sku,name,color,material\n1,a,red,mesh\n", {}, "column 'product_type' is missing"),
        (
            b"sku,product_type,name,color,material\n1,boot,a,red,mesh\n2,boot,b,,mesh\n",
            {},
            "row 2, column 'color' is empty",
        ),
        (
            b"product_type,name,color,material\nboot,a,r\x81d,mesh\n",
            {},
            "line 2, byte 41 (0x81) is neither UTF-8 nor Windows-1252",
        ),
        (b"product_type,name,color,material\n", {}, "header but no rows"),
        (b"", {}, "the file is empty"),
        (None, {"variations": 0}, "variations: must be between 1 and"),
        (None, {"name": "  "}, "name: a campaign needs a name"),
        (None, {"width": 100}, "width 100 is not a multiple of 8"),
        (None, {"approve_at": 0.2, "reject_below": 0.5}, "reject_below: 0.5 is above approve_at"),
        (None, {"seed_policy": "lucky"}, "seed_policy: must be one of"),
    ],
)
def test_it_refuses_bad_input_and_creates_nothing(
    template_version, recipe, products_csv, csv_bytes, overrides, message
):
    with pytest.raises(InputError) as error:
        submit(
            template_version,
            recipe,
            csv_bytes if csv_bytes is not None else products_csv,
            **overrides,
        )
    assert message in str(error.value)
    assert Campaign.objects.count() == 0
    assert Item.objects.count() == 0


def test_it_refuses_more_rows_than_the_configured_limit(
    settings, template_version, recipe, products_csv
):
    settings.STUDIO_MAX_CSV_ROWS = 5
    with pytest.raises(InputError, match="more than 5 rows"):
        submit(template_version, recipe, products_csv)
    assert Campaign.objects.count() == 0


def test_a_template_edit_is_a_new_version_and_the_old_one_is_kept(template_version):
    newer = prompt_template_version_create(name="product-photo", body="a {name}")
    assert newer.version == template_version.version + 1
    assert PromptTemplateVersion.objects.get(pk=template_version.pk).body.startswith("studio")
    assert newer.template.active_version() == newer
    again = prompt_template_version_create(name="product-photo", body="a {name}")
    assert again == newer


def test_it_refuses_a_template_with_an_unknown_placeholder_syntax(db):
    with pytest.raises(InputError, match=r"body: placeholder \{0\} is not a column name"):
        prompt_template_version_create(name="broken", body="a {0}")


def test_an_unchanged_recipe_is_not_a_new_version(base_model):
    first = recipe_create(name="r", base_model=base_model, steps=3, width=64, height=64)
    assert recipe_create(name="r", base_model=base_model, steps=3, width=64, height=64) == first
    second = recipe_create(name="r", base_model=base_model, steps=4, width=64, height=64)
    assert second.version == 2 and second.is_active
    first.refresh_from_db()
    assert not first.is_active


def test_a_rejected_item_is_regenerated_with_a_new_seed_and_linked_to_it(campaign):
    from generation.services import item_regenerate
    from tests.conftest import route_items

    (old,) = route_items(campaign, to="rejected")
    campaign.refresh_from_db()
    new = item_regenerate(item=old, seed=99)
    assert new.regenerated_from == old
    assert (new.seed, new.prompt, new.row_index) == (99, old.prompt, old.row_index)
    assert new.status == Item.Status.QUEUED and new.job_id
    assert campaign.items.count() == 41
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


def test_only_a_rejected_item_can_be_regenerated(campaign):
    from generation.services import item_regenerate

    with pytest.raises(InputError, match="only a rejected image"):
        item_regenerate(item=campaign.items.first())
