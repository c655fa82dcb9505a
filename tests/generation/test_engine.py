"""The generation worker path: routing by purpose, channel sizes, batching, cost, exact
reproduction and the remote backends through items_generate (the job's service)."""

from __future__ import annotations

import io
import json
import shutil
import socket
from decimal import Decimal

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from generation.backends import BackendError
from generation.models import CampaignRecipe, Item
from generation.services import (
    base_model_register,
    campaign_submit,
    items_generate,
    lora_register,
    prompt_template_version_create,
    recipe_create,
)
from studio.errors import InputError
from tests.generation.conftest import png_bytes
from tests.generation.test_remote_backends import CHECKPOINTS, SHA, txt2img_answer

CSV = b"color,thing,purpose\nred,shoe,hero\nblue,bag,\ngreen,hat,thumbnail\n"


@pytest.fixture
def template(db):
    return prompt_template_version_create(name="simple", body="a {color} {thing}")


@pytest.fixture
def tiny_base(db, tiny_model):
    return base_model_register(name="tiny", source=tiny_model["model"])


@pytest.fixture
def recipes(tiny_base, tiny_model):
    a = lora_register(name="tiny-style-a", file=tiny_model["loras"]["tiny-style-a"])
    b = lora_register(name="tiny-style-b", file=tiny_model["loras"]["tiny-style-b"])
    return {
        "hero": recipe_create(
            name="hero",
            base_model=tiny_base,
            loras=[(a, 0.8), (b, 0.5)],
            purpose="hero",
            steps=3,
            width=64,
            height=64,
        ),
        "variation": recipe_create(
            name="bulk", base_model=tiny_base, purpose="variation", steps=2, width=64, height=64
        ),
        "thumbnail": recipe_create(
            name="thumb", base_model=tiny_base, purpose="thumbnail", steps=1, width=64, height=64
        ),
    }


def submit(template, recipe, csv=CSV, **kwargs):
    return campaign_submit(
        name="Test", template_version=template, recipe=recipe, csv_bytes=csv, base_seed=7, **kwargs
    )


def generate_all(campaign) -> list[Item]:
    items_generate(item_ids=[str(pk) for pk in campaign.items.values_list("pk", flat=True)])
    return list(campaign.items.select_related("base_model").order_by("row_index", "variation"))


def stored_pixels(item: Item) -> np.ndarray:
    with default_storage.open(item.image.name, "rb") as fh:
        return np.asarray(Image.open(io.BytesIO(fh.read())).convert("RGB")).astype(np.int16)


# --- routing and sizes -------------------------------------------------------------------------


def test_rows_are_routed_to_the_recipe_of_their_purpose(template, recipes):
    campaign = submit(
        template,
        recipes["variation"],
        recipes={"hero": recipes["hero"], "thumbnail": recipes["thumbnail"]},
    )

    items = list(campaign.items.order_by("row_index"))
    assert [i.purpose for i in items] == ["hero", "variation", "thumbnail"]
    assert [i.recipe.name for i in items] == ["hero", "bulk", "thumb"]
    assert [i.params["steps"] for i in items] == [3, 2, 1]
    assert [(lora["name"], lora["weight"]) for lora in items[0].loras] == [
        ("tiny-style-a", 0.8),
        ("tiny-style-b", 0.5),
    ]
    assert items[1].loras == []
    assert CampaignRecipe.objects.filter(campaign=campaign).count() == 3


def test_a_row_whose_purpose_has_no_recipe_is_refused_naming_row_and_column(template, recipes):
    with pytest.raises(InputError) as caught:
        submit(template, recipes["variation"], recipes={"hero": recipes["hero"]})

    assert caught.value.messages() == [
        "csv: row 3, column 'purpose': 'thumbnail' has no recipe in this campaign "
        "(it has: hero, variation)"
    ]


def test_channels_make_one_item_each_at_the_nearest_size_the_model_supports(template, tiny_base):
    recipe = recipe_create(name="sd-native", base_model=tiny_base, width=512, height=512)
    campaign = submit(
        template,
        recipe,
        csv=b"color,thing\nred,shoe\n",
        channels=["instagram", "tiktok", "linkedin", "300x200"],
    )

    items = {i.channel: i for i in campaign.items.all()}
    assert {c: (i.target_width, i.target_height) for c, i in items.items()} == {
        "instagram": (1080, 1080),
        "tiktok": (1080, 1920),
        "linkedin": (1200, 627),
        "300x200": (300, 200),
    }
    sizes = {c: (i.params["width"], i.params["height"]) for c, i in items.items()}
    assert sizes == {
        "instagram": (512, 512),
        "tiktok": (384, 680),
        "linkedin": (712, 368),
        "300x200": (624, 416),
    }
    # One picture per variation, reframed: every channel shares the seed.
    assert len({i.seed for i in items.values()}) == 1


def test_a_channel_the_model_cannot_generate_is_refused_with_a_clear_message(template, recipes):
    with pytest.raises(InputError, match="channels: 4000x500 is more elongated than 4:1"):
        submit(
            template, recipes["variation"], csv=b"color,thing\nred,shoe\n", channels=["4000x500"]
        )
    with pytest.raises(InputError, match="channels: 'poster' is not one of instagram"):
        submit(template, recipes["variation"], csv=b"color,thing\nred,shoe\n", channels=["poster"])


# --- the diffusers worker path -----------------------------------------------------------------


def test_the_worker_batches_items_sharing_recipe_and_size_and_records_cost_and_timing(
    template, recipes, settings
):
    settings.STUDIO_BATCH_SIZE_DIFFUSERS = 4
    settings.STUDIO_CPU_HOURLY_RATE = Decimal("3.60")  # the tiny model runs on the CPU here
    csv = b"color,thing\nred,shoe\nblue,bag\nteal,cap\n"
    campaign = submit(template, recipes["variation"], csv=csv, variations=2)

    items = generate_all(campaign)

    assert all(i.status == Item.Status.SCORING for i in items)
    assert sorted(i.run["batch_size"] for i in items) == [2, 2, 4, 4, 4, 4]
    item = items[0]
    assert item.cost_detail["basis"] == "cpu_seconds"
    (entry,) = item.cost_entries.all()
    assert (entry.kind, entry.unit, entry.key) == (
        "compute",
        "cpu_second",
        f"item:{item.pk}:attempt-1:generation",
    )
    assert entry.amount == (
        Decimal(str(round(item.duration_s, 6))) * Decimal("3.60") / 3600
    ).quantize(Decimal("0.0000000001"))
    assert item.cost == entry.amount
    assert item.duration_s > 0 and item.queued_s >= 0
    assert item.worker_host == socket.gethostname()


def test_item_reproduce_check_regenerates_a_batch_invariant_item_alone_with_identical_pixels(
    template, recipes, settings
):
    settings.STUDIO_BATCH_SIZE_DIFFUSERS = 4
    settings.STUDIO_BATCH_INVARIANT = True
    campaign = submit(
        template, recipes["hero"], csv=b"color,thing\nred,shoe\nblue,bag\n", variations=2
    )
    item = generate_all(campaign)[1]
    assert item.run["batch_size"] == 4 and item.run["batch_invariant"] is True

    out = io.StringIO()
    call_command("item_reproduce", str(item.pk), "--check", stdout=out)

    assert "identical pixels (regenerated alone, batch-invariant)" in out.getvalue()


def test_item_reproduce_check_regenerates_an_item_at_its_recorded_batch_size(
    template, recipes, settings
):
    settings.STUDIO_BATCH_SIZE_DIFFUSERS = 4
    campaign = submit(
        template, recipes["hero"], csv=b"color,thing\nred,shoe\nblue,bag\n", variations=2
    )
    item = generate_all(campaign)[1]
    assert item.run["batch_size"] == 4 and item.run["batch_invariant"] is False
    # The worker's setting may change later; the item's own record decides.
    settings.STUDIO_BATCH_INVARIANT = True

    out = io.StringIO()
    call_command("item_reproduce", str(item.pk), "--check", stdout=out)

    assert "identical pixels (batch size 4)" in out.getvalue()


def test_item_reproduce_check_exits_1_when_the_pixels_differ(template, recipes):
    campaign = submit(template, recipes["variation"], csv=b"color,thing\nred,shoe\n")
    (item,) = generate_all(campaign)
    default_storage.delete(item.image.name)
    default_storage.save(item.image.name, ContentFile(png_bytes()))

    with pytest.raises(CommandError) as caught:
        call_command("item_reproduce", str(item.pk), "--check", stdout=io.StringIO())
    assert caught.value.returncode == 1
    assert "pixels differ" in str(caught.value)


def test_loras_of_a_hero_recipe_change_the_pixels_of_the_same_seed(template, recipes):
    hero = generate_all(submit(template, recipes["hero"], csv=b"color,thing\nred,shoe\n"))[0]
    plain_recipe = recipe_create(
        name="hero-plain",
        base_model=recipes["hero"].base_model,
        purpose="hero",
        steps=3,
        width=64,
        height=64,
    )
    plain = generate_all(submit(template, plain_recipe, csv=b"color,thing\nred,shoe\n"))[0]

    assert hero.seed == plain.seed
    assert np.abs(stored_pixels(hero) - stored_pixels(plain)).mean() > 1


def test_a_model_file_changed_after_registration_fails_the_item_with_that_message(
    template, tiny_model, tmp_path
):
    copy = tmp_path / "model"
    shutil.copytree(tiny_model["model"], copy)
    base = base_model_register(name="edited", source=str(copy))
    recipe = recipe_create(name="edited", base_model=base, steps=1, width=64, height=64)
    campaign = submit(template, recipe, csv=b"color,thing\nred,shoe\n")
    with (copy / "unet" / "config.json").open("a") as fh:
        fh.write(" ")

    (item,) = generate_all(campaign)  # a permanent error: nothing is raised for RQ to retry

    assert item.status == Item.Status.FAILED
    assert "has changed since it was registered" in item.error


# --- remote backends through the worker --------------------------------------------------------


@pytest.fixture
def a1111_recipe(db, provider):
    provider.answer("/sdapi/v1/sd-models", json=CHECKPOINTS)
    base = base_model_register(
        name="dreamshaper", source="dreamshaper_8", backend="automatic1111", sha256=SHA
    )
    return recipe_create(name="a1111", base_model=base, steps=20, width=512, height=512)


def test_an_automatic1111_campaign_runs_and_costs_the_configured_rate_per_image(
    template, a1111_recipe, provider, settings
):
    settings.STUDIO_A1111_IMAGE_RATE = Decimal("0.002")
    campaign = submit(template, a1111_recipe, csv=b"color,thing\nred,shoe\n")
    (queued,) = campaign.items.all()
    provider.answer("/sdapi/v1/txt2img", json=txt2img_answer([queued.seed]))

    (item,) = generate_all(campaign)

    assert item.status == Item.Status.SCORING
    assert item.cost == Decimal("0.002")
    assert item.cost_detail == {"basis": "per_image", "image_rate": "0.002"}
    assert item.run["provider"]["sd_model_hash"] == SHA[:10]


def test_a_permanent_provider_error_fails_the_items_with_the_providers_message(
    template, a1111_recipe, provider
):
    campaign = submit(template, a1111_recipe, csv=b"color,thing\nred,shoe\n")
    provider.answer("/sdapi/v1/txt2img", status=422, json={"detail": "bad sampler"})

    (item,) = generate_all(campaign)

    assert item.status == Item.Status.FAILED
    assert item.error == "AUTOMATIC1111: HTTP 422: bad sampler"


def test_a_retryable_provider_error_requeues_the_items_and_raises_for_rqs_retry(
    template, a1111_recipe, provider
):
    campaign = submit(template, a1111_recipe, csv=b"color,thing\nred,shoe\n")
    provider.answer("/sdapi/v1/txt2img", status=503, body=b"overloaded")

    with pytest.raises(BackendError, match="HTTP 503"):
        items_generate(item_ids=[str(pk) for pk in campaign.items.values_list("pk", flat=True)])

    item = campaign.items.get()
    assert (item.status, item.attempts) == (Item.Status.QUEUED, 1)
    assert "overloaded" in item.error


def test_a_stability_image_blocked_by_the_content_filter_fails_with_that_reason_and_its_cost(
    template, provider, settings
):
    settings.STUDIO_STABILITY_CREDIT_PRICE = Decimal("0.01")
    base = base_model_register(name="stability-core", source="core", backend="stability")
    recipe = recipe_create(name="core", base_model=base, width=1024, height=1024)
    campaign = submit(template, recipe, csv=b"color,thing\nred,shoe\nblue,bag\n")
    path = "/v2beta/stable-image/generate/core"
    provider.answer(path, body=png_bytes(), headers={"seed": "1", "finish-reason": "SUCCESS"})
    provider.answer(path, body=b"", headers={"seed": "2", "finish-reason": "CONTENT_FILTERED"})

    ok, blocked = generate_all(campaign)

    assert ok.status == Item.Status.SCORING and ok.cost == Decimal("0.03")
    assert ok.cost_detail == {"basis": "credits", "credits": 3.0, "credit_price": "0.01"}
    assert blocked.status == Item.Status.FAILED
    assert blocked.error.startswith("CONTENT_FILTERED")
    assert blocked.cost == Decimal("0.03")


def test_consecutive_jobs_of_recipes_sharing_a_base_model_never_reload_it(template, recipes):
    from generation.backends import diffusers as backend

    one_row = b"color,thing\nred,shoe\n"
    generate_all(submit(template, recipes["hero"], csv=one_row))  # loads model and LoRAs
    before = backend.cache_info()

    for name in ("hero", "thumbnail", "variation", "hero"):
        generate_all(submit(template, recipes[name], csv=one_row))

    after = backend.cache_info()
    assert after["pipeline_loads"] == before["pipeline_loads"]
    assert after["calls"] == before["calls"] + 4
    # The hero recipe's two LoRAs stay loaded and are only switched off and on again.
    assert after["lora_loads"] == before["lora_loads"]


def test_an_automatic1111_rows_variations_get_consecutive_seeds_and_share_one_call(
    template, a1111_recipe, provider, settings
):
    settings.STUDIO_BATCH_SIZE_A1111 = 4
    campaign = submit(template, a1111_recipe, csv=b"color,thing\nred,shoe\n", variations=3)
    seeds = list(campaign.items.order_by("variation").values_list("seed", flat=True))
    assert seeds == [seeds[0], seeds[0] + 1, seeds[0] + 2]
    provider.answer("/sdapi/v1/txt2img", json=txt2img_answer(seeds))

    items = generate_all(campaign)

    (call,) = provider.posts("/sdapi/v1/txt2img")
    assert json.loads(call[3])["batch_size"] == 3
    assert [i.run["batch_size"] for i in items] == [3, 3, 3]
    assert all(i.status == Item.Status.SCORING for i in items)
