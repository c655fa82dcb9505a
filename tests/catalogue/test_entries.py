"""Every image a campaign made is in the catalogue's index, whatever its status, and search
over it takes text, filters and facets together."""

from __future__ import annotations

from datetime import date

import pytest
from django.db.models import Count

from catalogue.models import Entry
from catalogue.selectors import SearchFilters, entry_search
from catalogue.services import entries_reconcile, entries_sync
from generation.models import Item
from review.models import QualityResult
from review.services import review_task_claim_next, review_task_decide
from studio.errors import InputError
from tests.conftest import blur_rejections, route_items


def _index(campaign) -> None:
    entries_sync(item_ids=list(campaign.items.values_list("pk", flat=True)))


def test_every_item_gets_an_entry_whatever_its_status(campaign):
    route_items(campaign, to="rejected", count=2)
    route_items(campaign, to="review", count=1)
    _index(campaign)

    statuses = dict(Entry.objects.values_list("status").annotate(n=Count("pk")))
    assert statuses == {"queued": 37, "rejected": 2, "review": 1}
    entry = Entry.objects.get(item__row_index=0, item__variation=0)
    assert entry.title == "SH-1001 · Aero Runner"
    assert (entry.model_name, entry.model_version) == ("sd15", 1)


def test_the_reconciler_indexes_items_missing_or_out_of_step(campaign, stages_inline):
    with stages_inline():
        counts = entries_reconcile()
    assert counts == {"reindexed": 40}
    assert Entry.objects.count() == 40
    Item.objects.filter(pk=campaign.items.first().pk).update(status=Item.Status.FAILED)
    with stages_inline():
        assert entries_reconcile() == {"reindexed": 1}
    assert Entry.objects.filter(status="failed").count() == 1


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("dep sai gon", {"SH-1004"}),
        ("Dép", {"SH-1004"}),
        ("ao dai", {"AP-5003"}),
        ("tas", {"BG-2002"}),
        ("footwear -sneaker", {"SH-1003", "SH-1004"}),
        ('"trail ranger"', {"SH-1003"}),
    ],
)
def test_text_search_folds_accents_keeps_other_languages_and_honours_negation(
    campaign, query, expected
):
    _index(campaign)
    results = entry_search(query=query, per_page=100, facets=False)
    skus = {entry.title.split(" · ")[0] for entry in results.entries}
    assert skus == expected


def test_rejected_for_blur_and_the_facets_count_the_current_set(campaign, reviewer):
    rejected, task = blur_rejections(campaign, reviewer)
    _index(campaign)

    results = entry_search(filters=SearchFilters(statuses=("rejected",), reason="blur"))

    assert {e.item_id for e in results.entries} == {rejected[0].pk, task.item_id}
    assert results.total == 2
    reasons = {f.value: f.count for f in results.facets["reason"]}
    assert reasons["blur"] == 2
    assert {f.value: f.count for f in results.facets["status"]} == {"rejected": 2}
    assert next(e for e in results.entries if e.item_id == task.item_id).reviewer == "rui"


def test_pages_reach_every_result_and_sorts_apply(campaign):
    _index(campaign)
    seen = []
    for page in (1, 2, 3):
        results = entry_search(page=page, per_page=15, sort="newest", facets=False)
        seen += [e.item_id for e in results.entries]
    assert results.pages == 3 and len(seen) == 40 and len(set(seen)) == 40


def test_a_lora_version_in_a_month_is_found_exactly(campaign):
    _index(campaign)
    first = campaign.items.order_by("row_index", "variation")[:5]
    Entry.objects.filter(item__in=first).update(
        loras=["style:2"], lora_names=["style"], generated_at="2027-01-15T10:00:00Z"
    )
    Entry.objects.exclude(item__in=first).update(generated_at="2026-12-15T10:00:00Z")

    found = entry_search(
        filters=SearchFilters(lora_name="style", lora_version=2, month=date(2027, 1, 1))
    )

    assert found.total == 5
    assert entry_search(filters=SearchFilters(lora_name="style", lora_version=1)).total == 0


def test_the_campaign_name_is_not_a_tag_and_ranks_mean_something(campaign):
    from generation.models import Campaign

    Campaign.objects.filter(pk=campaign.pk).update(name="Sneaker season")
    _index(campaign)

    results = entry_search(query="sneaker", per_page=100, facets=False)

    titles = {entry.title for entry in results.entries}
    # The product's own words outrank a campaign name that happens to say "sneaker".
    sneakers = [e for e in results.entries if "sneaker" in e.item.prompt]
    others = [e for e in results.entries if "sneaker" not in e.item.prompt]
    assert sneakers and results.ranked
    assert min(e.rank for e in sneakers) > max((e.rank for e in others), default=0)
    assert all(0 < e.rank < 1 for e in results.entries)
    assert "SH-1001 · Aero Runner" in titles


def test_an_item_announces_its_changes_to_the_index_stage(campaign, reviewer, stages_inline):
    with stages_inline():
        (item,) = route_items(campaign, to="review", count=1)
    assert Entry.objects.get(item=item).status == "review"

    task = review_task_claim_next(user=reviewer)
    with stages_inline():
        review_task_decide(
            task_id=task.pk, user=reviewer, token=task.lease_token, decision="approved"
        )

    entry = Entry.objects.get(item=item)
    assert (entry.status, entry.published, entry.reviewer) == ("approved", True, "rui")


def test_every_image_gets_tags_with_their_source(campaign):

    (item,) = route_items(campaign, to="review", count=1)
    QualityResult.objects.filter(item=item).update(
        palette=[{"name": "teal", "share": 0.6, "rgb": [30, 140, 140]}],
        measures={"plain_backdrop": 1.0, "backdrop_luma": 250.0, "mean_luma": 200.0},
    )
    _index(campaign)

    tags = {t["tag"]: t for t in Entry.objects.get(item=item).tags}
    assert tags["sneaker"]["source"] == "csv" and tags["footwear"]["source"] == "csv"
    assert tags["teal"] == {"tag": "teal", "source": "colour", "score": 0.6}
    assert tags["white background"]["source"] == "quality"
    assert tags["high-key"]["source"] == "quality"
    assert "sh-1001" not in tags and "aero runner" not in tags  # ids and names are not tags


def test_a_creatives_tag_edits_on_a_selection_survive_reindexing(campaign):
    from catalogue.services import entries_tags_edit

    _index(campaign)
    selection = list(campaign.items.values_list("pk", flat=True)[:3])

    assert entries_tags_edit(item_ids=selection, add=["Hero Shot"], remove=["footwear"]) == 3
    _index(campaign)

    for entry in Entry.objects.filter(item_id__in=selection):
        names = set(entry.tag_names)
        assert "hero shot" in names and "footwear" not in names
        assert {"tag": "hero shot", "source": "manual", "score": None} in entry.tags
    found = entry_search(query="hero shot", facets=False)
    assert {e.item_id for e in found.entries} == set(selection)
    with pytest.raises(InputError):
        entries_tags_edit(item_ids=selection, add=[" "], remove=[])
