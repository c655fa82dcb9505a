from __future__ import annotations

from catalogue.models import Asset
from catalogue.selectors import asset_search
from catalogue.services import asset_publish
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


def test_search_finds_assets_by_prompt_words_with_stemming(asset):
    assert list(asset_search(query="sneakers")) == [asset]
    assert list(asset_search(query="Aero Runner")) == [asset]


def test_search_finds_assets_by_csv_fields_and_campaign_name(asset):
    assert list(asset_search(query="SH-1001")) == [asset]
    assert list(asset_search(query="footwear")) == [asset]
    assert list(asset_search(query="spring")) == [asset]


def test_search_supports_websearch_syntax(asset):
    assert list(asset_search(query='"red mesh"')) == [asset]
    assert list(asset_search(query="sneaker -mesh")) == []
    assert list(asset_search(query="boot OR sneaker")) == [asset]


def test_search_does_not_find_absent_words(asset):
    assert list(asset_search(query="helicopter")) == []


def test_search_ranks_prompt_matches_above_campaign_name_matches(campaign):
    route_items(campaign, to="approved", count=3)
    for item in campaign.items.filter(status="approved"):
        asset_publish(item_id=item.pk)
    ranked = list(asset_search(query="sneaker"))
    assert ranked and all("sneaker" in a.prompt for a in ranked)
    assert [a.rank for a in ranked] == sorted((a.rank for a in ranked), reverse=True)


def test_search_filters_by_campaign_and_status(asset):
    import uuid

    assert list(asset_search(query="sneaker", campaign_id=asset.campaign_id)) == [asset]
    assert list(asset_search(query="sneaker", campaign_id=uuid.uuid4())) == []
    assert list(asset_search(query="sneaker", status="withdrawn")) == []
    Asset.objects.filter(pk=asset.pk).update(status="withdrawn")
    assert list(asset_search(query="sneaker", status="withdrawn")) == [asset]
