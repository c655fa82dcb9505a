"""Storage in the cost ledger: a published asset's bytes × the monthly rate, pro rata."""

from __future__ import annotations

import calendar
from datetime import date, datetime, time
from decimal import Decimal

from django.core.files.storage import default_storage
from django.utils import timezone

from catalogue.costs import GIB, asset_bytes, storage_costs_accrue
from catalogue.models import Asset
from catalogue.services import asset_publish
from generation.models import CostEntry, Item
from generation.services import month_of


def test_publishing_an_asset_records_its_storage_for_the_rest_of_the_month(asset, settings):
    entry = CostEntry.objects.get(kind="storage")
    size = default_storage.size(asset.image.name) + default_storage.size(asset.thumbnail.name)
    month = month_of(asset.created_at)
    days = calendar.monthrange(month.year, month.month)[1]
    tz = timezone.get_current_timezone()
    start = datetime.combine(month, time.min, tzinfo=tz)
    end = datetime.combine(date(month.year, month.month, days), time.max, tzinfo=tz)
    fraction = (end - asset.created_at) / (end - start)

    assert asset_bytes(asset) == size > 0
    assert entry.detail["bytes"] == size
    assert abs(float(entry.detail["fraction_of_month"]) - fraction) <= 1e-6
    assert entry.unit == "gib_month" and entry.rate == settings.STUDIO_STORAGE_GB_MONTH_RATE
    expected = Decimal(size) / GIB * Decimal(fraction) * settings.STUDIO_STORAGE_GB_MONTH_RATE
    assert abs(entry.amount - expected) < Decimal("1e-9")
    assert entry.key == f"storage:{asset.pk}:{month:%Y-%m}"
    assert (entry.item_id, entry.campaign_id, entry.month) == (
        asset.item_id,
        asset.campaign_id,
        month,
    )
    assert Item.objects.get(pk=asset.item_id).cost == entry.amount


def test_publishing_again_records_no_more_storage(asset):
    asset_publish(item_id=asset.item_id)

    assert CostEntry.objects.filter(kind="storage").count() == 1


def test_each_later_month_records_a_whole_month_once_for_assets_still_published(asset, settings):
    settings.STUDIO_STORAGE_GB_MONTH_RATE = Decimal("1.00")
    later = date(asset.created_at.year + 1, 1, 1)

    assert storage_costs_accrue(month=later) == 1
    assert storage_costs_accrue(month=later) == 0
    Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.WITHDRAWN)
    assert storage_costs_accrue(month=date(later.year, 2, 1)) == 0

    entry = CostEntry.objects.get(kind="storage", month=later)
    assert entry.amount == (Decimal(asset_bytes(asset)) / GIB).quantize(Decimal("1e-10"))
    assert entry.detail["fraction_of_month"] == "1.000000"
