from __future__ import annotations

import uuid

from catalogue.models import Asset, Entry
from catalogue.selectors import SearchFilters, entry_search
from catalogue.services import asset_publish, entries_sync
from tests.conftest import route_items


def test_publishing_an_approved_item_creates_one_asset_with_provenance(asset):
    assert asset.fields["sku"] == "SH-1001"
    assert asset.provenance["seed"] == asset.item.seed
    assert asset.provenance["base_model"]["name"] == "sd15"
    assert asset.thumbnail.name.endswith(".webp")
    assert asset.approved_by == "automatic"
    assert asset_publish(item_id=asset.item_id) == asset
    assert Asset.objects.count() == 1


def test_an_item_that_is_not_approved_is_not_published(campaign):
    (item,) = route_items(campaign, to="review")
    assert asset_publish(item_id=item.pk) is None


def found(query: str = "", **filters) -> set:
    results = entry_search(
        query=query, filters=SearchFilters(**filters), per_page=100, facets=False
    )
    return {entry.item_id for entry in results.entries}


def _indexed(asset) -> Entry:
    entries_sync(item_ids=[asset.item_id])
    return Entry.objects.get(pk=asset.item_id)


def test_search_finds_entries_by_prompt_words_with_stemming(asset):
    _indexed(asset)
    assert found("sneakers") == {asset.item_id}
    assert found("Aero Runner") == {asset.item_id}


def test_search_finds_entries_by_csv_fields_and_campaign_name(asset):
    _indexed(asset)
    assert found("SH-1001") == {asset.item_id}
    assert found("footwear") == {asset.item_id}
    assert found("spring") == {asset.item_id}


def test_search_supports_websearch_syntax(asset):
    _indexed(asset)
    assert found('"red mesh"') == {asset.item_id}
    assert found("sneaker -mesh") == set()
    assert found("boot OR sneaker") == {asset.item_id}


def test_search_does_not_find_absent_words(asset):
    _indexed(asset)
    assert found("helicopter") == set()


def test_search_ranks_best_matches_first_with_a_score_from_0_to_1(campaign):
    entries_sync(item_ids=list(campaign.items.values_list("pk", flat=True)))
    results = entry_search(query="sneaker", per_page=100, facets=False)
    ranks = [entry.rank for entry in results.entries]
    assert results.ranked and ranks
    assert all("sneaker" in entry.item.prompt for entry in results.entries)
    assert ranks == sorted(ranks, reverse=True)
    assert all(0 < rank < 1 for rank in ranks)


def test_search_filters_by_campaign_status_and_publication(asset):
    _indexed(asset)
    mine = {asset.item_id}
    assert found("sneaker", campaign_id=asset.campaign_id) == mine
    assert found("sneaker", campaign_id=uuid.uuid4()) == set()
    assert found("sneaker", statuses=("approved",), published=True) == mine
    assert found("sneaker", published=False) == set()
    Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.WITHDRAWN)
    _indexed(asset)
    assert found("sneaker", published=False, statuses=("approved",)) == set()
    assert found("sneaker", published=False, statuses=("approved",), withdrawn="include") == mine
