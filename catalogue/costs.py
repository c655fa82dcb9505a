"""Storage into the cost ledger: a published asset's bytes × STUDIO_STORAGE_GB_MONTH_RATE.

An asset pays for the rest of the month it is published in, pro rata by the second
(``asset_storage_record``, called when it is published), then a whole month for every month
it is still published at the start of (``storage_costs_accrue``, for the reconciler or a
monthly cron). Both are keyed by asset and month, so running them again writes nothing new.
"""

from __future__ import annotations

import calendar
import logging
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import CharField, Exists, OuterRef, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from catalogue.models import Asset
from generation.costs import PLACES, RATE_PLACES
from generation.models import CostEntry
from generation.services import cost_record, month_of

logger = logging.getLogger(__name__)

GIB = Decimal(2**30)


def _month_bounds(month: date) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    start = datetime.combine(month, time.min, tzinfo=tz)
    days = calendar.monthrange(month.year, month.month)[1]
    end = datetime.combine(date(month.year, month.month, days), time.max, tzinfo=tz)
    return start, end


def asset_bytes(asset: Asset) -> int:
    """Bytes the asset keeps in storage: its image and thumbnail (a file that cannot be read
    counts 0, logged)."""
    total = 0
    for name in (asset.image.name, asset.thumbnail.name if asset.thumbnail else ""):
        if not name:
            continue
        try:
            total += default_storage.size(name)
        except (OSError, NotImplementedError):
            logger.warning("storage cost: cannot read the size of %s", name)
    return total


def _record(asset: Asset, month: date, fraction: Decimal, size: int, moment: datetime):
    rate = settings.STUDIO_STORAGE_GB_MONTH_RATE
    quantity = (Decimal(size) / GIB * fraction).quantize(PLACES, rounding=ROUND_HALF_UP)
    return cost_record(
        key=f"storage:{asset.pk}:{month:%Y-%m}",
        kind=CostEntry.Kind.STORAGE,
        quantity=quantity,
        unit="gib_month",
        rate=rate.quantize(RATE_PLACES),
        amount=Decimal(size) / GIB * fraction * rate,
        item_id=asset.item_id,
        occurred_at=moment,
        detail={
            "bytes": size,
            "fraction_of_month": str(fraction.quantize(Decimal("0.000001"))),
            "gib_month_rate": str(rate),
            "setting": "STUDIO_STORAGE_GB_MONTH_RATE",
            "asset": str(asset.pk),
        },
    )


def asset_storage_record(*, asset: Asset) -> CostEntry | None:
    """Storage for the rest of the month the asset is published in (pro rata); once."""
    published = asset.created_at or timezone.now()
    month = month_of(published)
    start, end = _month_bounds(month)
    length = Decimal(str((end - start).total_seconds()))
    left = Decimal(str(max(0.0, (end - published).total_seconds())))
    return _record(asset, month, left / length, asset_bytes(asset), published)


def storage_costs_accrue(*, month: date | None = None) -> int:
    """A whole month of storage (default this month) for every asset published before the
    month began and still published; returns how many entries were written."""
    month = month_of(month) if month is not None else month_of()
    start, _end = _month_bounds(month)
    # Each asset's entry for the month by its key (unique, indexed): one EXISTS per asset.
    key = Concat(Value("storage:"), Cast(OuterRef("pk"), CharField()), Value(f":{month:%Y-%m}"))
    assets = (
        Asset.objects.filter(status=Asset.Status.PUBLISHED, created_at__lt=start)
        .exclude(Exists(CostEntry.objects.filter(key=key)))
        .order_by("pk")
    )
    written = 0
    for asset in assets.iterator(chunk_size=500):
        if _record(asset, month, Decimal(1), asset_bytes(asset), start) is not None:
            written += 1
    return written
