"""One campaign through the whole line: generation → quality → delivery → search."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from catalogue.models import Asset, Entry
from catalogue.selectors import SearchFilters, entry_search
from generation.demo import demo_seed
from generation.models import Campaign, Item, PromptTemplate, Recipe
from review.models import ReviewTask
from review.services import review_task_claim_next, review_task_decide
from studio.launch import campaign_launch
from tests.conftest import fixture_csv, make_user


@pytest.fixture
def demo(transactional_db, tiny_model_dir):
    return demo_seed(models_dir=tiny_model_dir)


def drain() -> None:
    call_command("rqworker", "generation", "quality", "delivery", burst=True)


@pytest.mark.django_db(transaction=True)
def test_a_campaign_of_twenty_products_travels_the_whole_line(demo, redis_queues, settings):
    settings.STUDIO_BATCH_SIZE_DIFFUSERS = 4
    creative = make_user("cara", "creative")
    template = PromptTemplate.objects.get(name="product-photo").active_version()
    recipe = Recipe.objects.get(name="demo-tiny", is_active=True)
    # Thresholds chosen to split the tiny model's output into all three verdicts would depend
    # on random weights; instead approve everything scoring well and review the rest.
    campaign = campaign_launch(
        name="Spring catalogue",
        template_version=template,
        recipe=recipe,
        csv_bytes=fixture_csv("products.csv"),
        variations=2,
        user=creative,
        base_seed=1234,
        approve_at=0.5,
        reject_below=0.0,
    )
    assert redis_queues["generation"].count == 10  # 40 items in batches of 4
    drain()

    items = Item.objects.filter(campaign=campaign)
    assert items.count() == 40
    assert not items.filter(status__in=["queued", "running", "scoring", "failed"]).exists()
    assert all(item.image.name and item.cost > 0 for item in items)
    assert all(item.duration_s > 0 and item.attempts == 1 for item in items)

    # Every borderline image goes to a human; decide them all (approve), then drain delivery.
    reviewer = make_user("rui", "reviewer")
    while (task := review_task_claim_next(user=reviewer)) is not None:
        review_task_decide(
            task_id=task.pk, user=reviewer, token=task.lease_token, decision="approved"
        )
    drain()

    assert not ReviewTask.objects.filter(status="pending").exists()
    approved = items.filter(status="approved")
    assert Asset.objects.filter(campaign=campaign).count() == approved.count() == 40
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    # The index stage kept the catalogue's entry of every image in step with its item.
    entries = Entry.objects.filter(campaign=campaign)
    assert entries.count() == 40
    assert set(entries.values_list("status", flat=True)) == {"approved"}
    assert entries.filter(published=True).count() == 40

    mine = SearchFilters(campaign_id=campaign.pk)
    found = entry_search(query="leather boot", filters=mine, per_page=100, facets=False)
    prompts = [entry.item.prompt for entry in found.entries]
    assert prompts and all("leather" in p and "boot" in p for p in prompts)
    assert all(entry.item.asset.status == "published" for entry in found.entries)
    assert found.total == 2 * sum(
        1
        for row in campaign.csv_rows
        if row["material"] == "leather" and row["product_type"] == "boot"
    )
    assert entry_search(query='"Dép Sài Gòn"', filters=mine, facets=False).total == 2


@pytest.mark.django_db(transaction=True)
def test_running_a_generation_job_twice_makes_one_image(demo, redis_queues):
    from generation.jobs import generate_items

    template = PromptTemplate.objects.get(name="product-photo").active_version()
    recipe = Recipe.objects.get(name="demo-tiny", is_active=True)
    campaign = campaign_launch(
        name="Twice",
        template_version=template,
        recipe=recipe,
        csv_bytes=b"product_type,name,color,material\nboot,Trail,brown,leather\n",
    )
    (item,) = campaign.items.all()
    assert generate_items([str(item.pk)]) == 1
    assert generate_items([str(item.pk)]) == 0
    item.refresh_from_db()
    assert item.attempts == 1 and item.status == Item.Status.SCORING


@pytest.mark.django_db(transaction=True)
def test_a_generated_batch_is_scored_by_one_job(demo, redis_queues):
    from generation.jobs import generate_items

    template = PromptTemplate.objects.get(name="product-photo").active_version()
    recipe = Recipe.objects.get(name="demo-tiny", is_active=True)
    campaign = campaign_launch(
        name="One scoring job",
        template_version=template,
        recipe=recipe,
        csv_bytes=b"product_type,name,color,material\nboot,Trail,brown,leather\n",
        variations=3,
    )
    redis_queues["generation"].empty()
    assert generate_items([str(pk) for pk in campaign.items.values_list("pk", flat=True)]) == 3
    (job,) = redis_queues["quality"].jobs
    assert sorted(job.args[0]) == sorted(
        str(pk) for pk in campaign.items.values_list("pk", flat=True)
    )
