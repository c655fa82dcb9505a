"""An A/B trial end to end with the tiny model: two recipe versions make the same sample rows
with the same seeds, the images are scored and judged, and the side-by-side page names the
winner, which a manager promotes."""

from __future__ import annotations

from django.urls import reverse

from generation.models import Item, Recipe
from generation.services import items_generate
from review.services import review_task_claim_next, review_task_decide
from studio.launch import campaign_launch, trial_launch
from tests.conftest import fixture_csv


def test_a_trial_runs_end_to_end_and_the_winner_is_promoted(
    tiny_model_dir, manager, manager_client, reviewer, stages_inline
):
    from generation.demo import demo_seed
    from generation.models import PromptTemplate

    demo_seed(models_dir=tiny_model_dir)
    v1 = Recipe.objects.get(name="demo-social", version=1)
    v2 = Recipe.objects.get(name="demo-social", version=2)
    source = campaign_launch(
        name="Shop",
        template_version=PromptTemplate.objects.get(name="product-photo").active_version(),
        recipe=Recipe.objects.get(name="demo-product", is_active=True),
        csv_bytes=fixture_csv("products.csv"),
        csv_filename="products.csv",
        base_seed=11,
        approve_at=1.0,  # every image goes to a reviewer: the test decides them
        reject_below=0.0,
    )
    trial = trial_launch(campaign=source, recipes=[v1, v2], rows=5, user=manager)
    assert trial.items.count() == 10

    with stages_inline():
        items_generate(item_ids=[str(pk) for pk in trial.items.values_list("pk", flat=True)])
    generated = list(trial.items.all())
    assert all(item.status == Item.Status.REVIEW for item in generated), [
        (item.status, item.error) for item in generated
    ]
    by_recipe = {v1.pk: set(), v2.pk: set()}
    for item in generated:
        by_recipe[item.recipe_id].add((item.row_index, item.seed))
    assert by_recipe[v1.pk] == by_recipe[v2.pk]  # same rows, same seeds

    # The reviewer approves every v1 image and rejects two of v2's.
    rejected_v2 = 0
    while (task := review_task_claim_next(user=reviewer)) is not None:
        item = Item.objects.get(pk=task.item_id)
        reject = item.recipe_id == v2.pk and rejected_v2 < 2
        rejected_v2 += reject
        with stages_inline():
            review_task_decide(
                task_id=task.pk,
                user=reviewer,
                token=task.lease_token,
                decision="rejected" if reject else "approved",
                reason_code="artefacts" if reject else "",
            )

    page = manager_client.get(
        reverse("generation:campaign", args=[trial.pk]) + "?grid=recipe"
    ).content.decode()
    assert "demo-social v1 wins: 100% accepted against 60% for demo-social v2" in page
    manager_client.post(reverse("generation:campaign_promote", args=[trial.pk]), {"recipe": v1.pk})
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert v1.is_active and not v2.is_active
